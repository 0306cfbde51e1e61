"""SSTable writer and reader. Byte layout: docs/format/sstable.md.

A table is: data blocks, a filter block, a properties block, an index block and a
52-byte footer. Every block is followed by a 5-byte trailer (codec u8, masked
CRC32C u32 of payload+codec). Blocks are built as length arrays plus bulk
regions so a reader decodes one with a few struct calls and slices, no per-byte loop.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate, compress, islice, repeat
from operator import add, mod, ne, rshift
from typing import Any

from xxhash import xxh64_intdigest

from shalekv.engine import bloom, checksum, compression, filenames
from shalekv.engine.block_cache import RAW_KNOWN, BlockCache, cache_key
from shalekv.engine.write_batch import DELETE
from shalekv.errors import ClosedError, CorruptionError

MAGIC = 0x53484C4B56535354  # "SHLKVSST"
# 2: data blocks may end with a hash index (FLAG_HASH8/16); version 1 tables are read
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
FOOTER = struct.Struct(
    "<QIQIQIIIQ"
)  # index off/len, filter off/len, props off/len, version, crc, magic
TRAILER = struct.Struct("<BI")
TRAILER_SIZE = 5
BLOCK_HEAD = struct.Struct("<IB")  # entry count, flags
FLAG_MULTI_VERSION = 1  # some key has more than one version in this block
# The block ends with a hash index of its distinct keys: buckets of u8 (blocks of fewer
# than 255 entries) or u16 entry numbers, 255/65535 for an empty bucket; a key's bucket
# is (xxh64(key) >> 32) mod buckets, collisions go to the next bucket (linear probing).
# A point lookup then compares one or two keys instead of a binary search, and an empty
# bucket proves the key absent (RocksDB's data block hash index, without restarts).
FLAG_HASH8 = 2
FLAG_HASH16 = 4
HASH_EMPTY8 = 0xFF
HASH_EMPTY16 = 0xFFFF
_FIRST_CHUNK = 8  # entries an iterator hands over first (seeks usually read a few)
# Searches of a block in place before its key list is built. An in-place search costs
# ~1.3 us against ~0.2 us for a bisect of the list, and building the list ~20-35 us
# (140-entry blocks): ~25 searches pay for it, and building after that many (ski
# rental) costs at most about twice the better choice, for blocks read once (random
# lookups over a big table) and for hot ones alike.
_FINDS_BEFORE_LIST = 24

Entry = tuple[bytes, int, int, bytes]  # (key, seq, kind, value)
TaggedEntry = tuple[bytes, int, int, bytes]  # (key, source, seq << 8 | kind, value)
_LITTLE = sys.byteorder == "little"
_TAG = struct.Struct("<Q").unpack_from  # one entry's tag, where it lies in the payload


def encode_data_block(
    keys: list[bytes], tags: list[int], values: list[bytes], multi: bool, hashed: bool = True
) -> bytes:
    """Payload: count, flags, key end offsets, value end offsets (both from the start
    of the payload), tags, keys, values, then (hashed, the default) the hash index of
    the distinct keys. hashed=False writes a format-1 block (tests of old tables)."""
    n = len(keys)
    kbase = BLOCK_HEAD.size + 16 * n
    kends = list(accumulate(map(len, keys), initial=kbase))
    vends = list(accumulate(map(len, values), initial=kends[-1]))
    flags = FLAG_MULTI_VERSION if multi else 0
    index = b""
    if hashed and 0 < n < HASH_EMPTY16:
        index = _hash_index(keys, multi)
        flags |= FLAG_HASH8 if n < HASH_EMPTY8 else FLAG_HASH16
    return b"".join(
        (
            BLOCK_HEAD.pack(n, flags),
            struct.pack(f"<{n}I", *kends[1:]),
            struct.pack(f"<{n}I", *vends[1:]),
            struct.pack(f"<{n}Q", *tags),
            b"".join(keys),
            b"".join(values),
            index,
        )
    )


def _hash_index(keys: list[bytes], multi: bool) -> bytes:
    """The buckets: twice as many as distinct keys (linear probing at load 1/2: a hit
    compares ~1.5 keys, a miss ~2.5), each holding the number of the key's first entry
    (its newest version) or the empty mark; keys placed in order."""
    n = len(keys)
    if multi:
        firsts = [0, *compress(range(1, n), map(ne, islice(keys, 1, None), keys))]
    else:
        firsts = list(range(n))
    nb = 2 * len(firsts)
    empty = HASH_EMPTY8 if n < HASH_EMPTY8 else HASH_EMPTY16
    buckets = [empty] * nb
    homes = map(
        mod,
        map(rshift, map(xxh64_intdigest, map(keys.__getitem__, firsts)), repeat(32)),
        repeat(nb),
    )
    for i, b in zip(firsts, homes, strict=True):
        while buckets[b] != empty:
            b += 1
            if b == nb:
                b = 0
        buckets[b] = i
    return struct.pack(f"<{nb}{'B' if empty == HASH_EMPTY8 else 'H'}", *buckets)


class DecodedBlock:
    """A data block's payload with its arrays: the key and value end offsets are one
    memoryview over the payload (no per-entry int objects), values are sliced on
    demand, a tag is read where it lies. The key list is built once a block has been
    searched a few times: a block read once or twice (a random point lookup over a
    large table) is searched in place, which is cheaper than slicing every key; short
    scans slice out only the keys they return.

    Few objects for the cyclic GC: a cached block is tracked as itself, its one
    offsets view and the view's buffer (plus a 16-bit hash index's view); three array
    views and a cache entry made it six, and the objects of every block the cache grows
    by count towards the full collections Python runs (docs/types.md)."""

    __slots__ = (
        "n",
        "flags",
        "payload",
        "kbase",
        "offs",
        "tbase",
        "vbase",
        "_keys",
        "_finds",
        "buckets",
        "empty",
    )

    def __init__(self, buf: bytes) -> None:
        n, flags = BLOCK_HEAD.unpack_from(buf, 0)
        pos = BLOCK_HEAD.size
        kbase = pos + 16 * n
        if len(buf) < kbase:
            raise ValueError("block shorter than its offset arrays")
        # offs[j]: the end of key j; offs[n + j]: the end of value j (little-endian u32s)
        if _LITTLE:
            mv = memoryview(buf)
            offs: Any = mv[pos : pos + 8 * n].cast("I")
        else:  # the format is little-endian; big-endian hosts pay for a conversion
            offs = struct.unpack_from(f"<{2 * n}I", buf, pos)
        vbase = offs[n - 1] if n else kbase
        end = len(buf)
        hashed = flags & (FLAG_HASH8 | FLAG_HASH16)
        if hashed and n:  # the hash index: after the values, of the flagged width
            end = offs[2 * n - 1]
            size = len(buf) - end
            if hashed == FLAG_HASH8 and n < HASH_EMPTY8:
                nb = size
                self.buckets: Any = buf[end:]
                self.empty = HASH_EMPTY8
            elif hashed == FLAG_HASH16 and HASH_EMPTY8 <= n < HASH_EMPTY16 and not size & 1:
                nb = size >> 1
                self.buckets = (
                    mv[end:].cast("H") if _LITTLE else struct.unpack_from(f"<{nb}H", buf, end)
                )
                self.empty = HASH_EMPTY16
            else:
                raise ValueError("hash index does not match the block")
            # two buckets per distinct key: 2n, or fewer (and even) when keys repeat
            if nb != 2 * n and (not flags & FLAG_MULTI_VERSION or nb & 1 or not 2 <= nb < 2 * n):
                raise ValueError("hash index does not match the block")
        else:
            self.buckets = None
            self.empty = 0
        if n and (offs[2 * n - 1] != end or offs[0] < kbase or not vbase <= offs[n] <= end):
            raise ValueError("block offsets do not match its size")
        self.n = n
        self.flags = flags
        self.payload = buf
        self.kbase = kbase
        self.offs = offs
        self.tbase = pos + 8 * n
        self.vbase = vbase
        self._keys: list[bytes] | None = None
        self._finds = 0

    @property
    def kends(self) -> Any:
        """The key end offsets (a view made per call: for scans, not point lookups)."""
        return self.offs[: self.n]

    @property
    def vends(self) -> Any:
        """The value end offsets (a view made per call, as kends)."""
        return self.offs[self.n :]

    @property
    def tags(self) -> Any:
        """The entries' tags, seq << 8 | kind (a view made per call, as kends; a point
        lookup reads its one tag with `tag_at`)."""
        if _LITTLE:
            return memoryview(self.payload)[self.tbase : self.kbase].cast("Q")
        return struct.unpack_from(f"<{self.n}Q", self.payload, self.tbase)

    def tag_at(self, j: int) -> int:
        return int(_TAG(self.payload, self.tbase + 8 * j)[0])

    @property
    def keys(self) -> list[bytes]:
        keys = self._keys
        if keys is None:
            keys = self._keys = self._slice_keys(0, self.n)
        return keys

    def _slice_keys(self, lo: int, hi: int) -> list[bytes]:
        """Keys lo..hi-1 sliced from the payload. A plain loop: ~2x faster than
        map(buf.__getitem__, map(slice, ...)), whose method-wrapper call and slice
        object per key cost more than the loop's bytecodes (CPython 3.11)."""
        buf = self.payload
        offs = self.offs
        s = offs[lo - 1] if lo else self.kbase
        out = []
        for e in offs[lo:hi]:
            out.append(buf[s:e])
            s = e
        return out

    def find(self, key: bytes) -> int:
        """Index of the first entry whose key is >= key."""
        keys = self._keys
        if keys is None:
            if self._finds < _FINDS_BEFORE_LIST:
                # Binary search in place (a few slices) until the block has proved hot.
                self._finds += 1
                buf = self.payload
                kends = self.offs  # key j ends at offs[j]
                kbase = self.kbase
                lo, hi = 0, self.n
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if buf[kends[mid - 1] if mid else kbase : kends[mid]] < key:
                        lo = mid + 1
                    else:
                        hi = mid
                return lo
            keys = self.keys
        return bisect_left(keys, key)

    def lookup(self, key: bytes, h: int) -> int:
        """Index of key's first (newest) entry, -1 if the block does not hold it; h is
        xxh64(key). Through the hash index when the block has one, else find().
        SSTableReader.find_entry runs the same probe inline: keep the two in step."""
        buckets = self.buckets
        if buckets is None:
            j = self.find(key)
            return j if j < self.n and self.key(j) == key else -1
        nb = len(buckets)
        home = b = (h >> 32) % nb
        n = self.n
        keys = self._keys
        buf = self.payload
        kends = self.offs  # key j ends at offs[j]
        while True:
            j = buckets[b]
            if j >= n:
                if j == self.empty:
                    return -1
                raise ValueError(f"hash bucket names entry {j} of {n}")
            # self.key(j), inline: the hot step of every point lookup in a table
            if (
                keys[j] if keys is not None else buf[kends[j - 1] if j else self.kbase : kends[j]]
            ) == key:
                if j and self.flags & FLAG_MULTI_VERSION and self.key(j - 1) == key:
                    raise ValueError(f"hash bucket names entry {j}, not its key's first")
                return j
            b += 1
            if b == nb:
                b = 0
            if b == home:  # a written index always has an empty bucket
                raise ValueError("hash index has no empty bucket")

    def check_index(self) -> None:
        """Every distinct key is found at its first entry (verify: a writer's bug, or
        damage under a valid checksum). ValueError if not."""
        if self.buckets is None:
            return
        prev = None
        for i, k in enumerate(self.keys):
            if k != prev:
                if self.lookup(k, xxh64_intdigest(k)) != i:
                    raise ValueError(f"hash index does not lead to entry {i}")
                prev = k

    def key_range(self, lo: int, hi: int) -> list[bytes]:
        """Keys lo..hi-1, sliced from the payload when the list is not built yet (and
        a quarter of the block or less is asked for: a short scan's few keys)."""
        keys = self._keys
        if keys is None and hi - lo > self.n >> 2:
            keys = self.keys
        if keys is not None:
            return keys[lo:hi]
        return self._slice_keys(lo, hi)

    def kinds(self, lo: int, hi: int) -> bytes:
        """The kinds of entries lo..hi-1, one byte each: a tag's low byte, read from
        the payload with a stride of 8 (the format is little-endian on every host)."""
        t = self.tbase
        return self.payload[t + 8 * lo : t + 8 * hi : 8]

    def key(self, i: int) -> bytes:
        keys = self._keys
        if keys is not None:
            return keys[i]
        offs = self.offs
        return self.payload[offs[i - 1] if i else self.kbase : offs[i]]

    def value(self, i: int) -> bytes:
        offs = self.offs
        n = self.n
        return self.payload[offs[n + i - 1] if i else self.vbase : offs[n + i]]


class SSTableWriter:
    """Builds one table from entries added in order (key asc, sequence desc).

    Used in worker processes; writes with a buffered file and fsyncs at finish().
    """

    def __init__(
        self,
        path: str,
        *,
        block_size: int = 8192,
        codec: int = compression.LZ4,
        bloom_bits_per_key: int = 10,
        rate_limiter: Any = None,
    ) -> None:
        self.path = path
        self.f = open(path, "xb")
        self.block_size = block_size
        self.codec = codec
        self.bloom_bits = bloom_bits_per_key
        self.rate_limiter = rate_limiter
        self.offset = 0
        self._keys: list[bytes] = []
        self._tags: list[int] = []
        self._values: list[bytes] = []
        self._bytes = 0
        self._multi = False
        self._index_keys: list[bytes] = []
        self._index_offsets: list[int] = []
        self._index_sizes: list[int] = []
        self._filter_keys: list[bytes] = []
        self.entries = 0
        self.deletions = 0
        self.raw_key_bytes = 0
        self.raw_value_bytes = 0
        self.min_seq = 1 << 62
        self.max_seq = 0
        self.smallest: bytes | None = None
        self.largest: bytes | None = None
        self.blob_refs: dict[int, int] = {}  # blob file number -> referenced value bytes

    def add(self, key: bytes, seq: int, kind: int, value: bytes) -> None:
        keys = self._keys
        if keys and key != keys[-1]:
            if self._bytes >= self.block_size:
                self._flush_block()
                keys = self._keys
        if not keys or key != keys[-1]:
            if self.smallest is None:
                self.smallest = key
            self._filter_keys.append(key)
        elif keys:
            self._multi = True
        keys.append(key)
        self._tags.append(seq << 8 | kind)
        self._values.append(value)
        self._bytes += len(key) + len(value) + 16
        self.largest = key
        self.entries += 1
        if kind == DELETE:
            self.deletions += 1
        self.raw_key_bytes += len(key)
        self.raw_value_bytes += len(value)
        if seq < self.min_seq:
            self.min_seq = seq
        if seq > self.max_seq:
            self.max_seq = seq

    def add_many(
        self, keys: list[bytes], seqs: list[int], kinds: list[int], values: list[Any]
    ) -> None:
        """Append entries with distinct keys, ascending and above every key added so
        far (a merge's fast path): block cuts found with accumulate + bisect, the
        buffers extended by slices; no Python step per entry beyond list builds."""
        n = len(keys)
        if not n:
            return
        tags = [s << 8 | k for s, k in zip(seqs, kinds, strict=True)]
        klens = list(map(len, keys))
        vlens = list(map(len, values))
        # cum[t]: the size (key + value + 16, as add() counts) of entries 0..t-1.
        sizes = accumulate(map(add, klens, vlens), initial=0)
        cum = list(map(add, sizes, range(0, 16 * (n + 1), 16)))  # + 16 per entry, in C
        block = self.block_size
        i = 0
        while i < n:
            if self._keys and self._bytes >= block:
                self._flush_block()
            # Entries i..j-1 fill the current block: the entry that brings it to
            # block_size is the last one in (the same rule as add()).
            j = min(bisect_left(cum, cum[i] + block - self._bytes, i + 1), n)
            self._keys += keys[i:j]
            self._tags += tags[i:j]
            self._values += values[i:j]
            self._bytes += cum[j] - cum[i]
            i = j
        if self.smallest is None:
            self.smallest = keys[0]
        self.largest = keys[-1]
        self._filter_keys += keys
        self.entries += n
        self.deletions += kinds.count(DELETE)
        self.raw_key_bytes += sum(klens)
        self.raw_value_bytes += sum(vlens)
        lo, hi = min(seqs), max(seqs)
        if lo < self.min_seq:
            self.min_seq = lo
        if hi > self.max_seq:
            self.max_seq = hi

    def add_blob_ref(self, blob_number: int, size: int) -> None:
        self.blob_refs[blob_number] = self.blob_refs.get(blob_number, 0) + size

    @property
    def estimated_size(self) -> int:
        return self.offset + self._bytes

    def _write_block(self, payload: bytes, codec: int) -> tuple[int, int]:
        ctype, data = compression.compress(codec, payload)
        crc = checksum.masked(bytes((ctype,)), checksum.value(data))
        off = self.offset
        self.f.write(data)
        self.f.write(TRAILER.pack(ctype, crc))
        self.offset += len(data) + TRAILER_SIZE
        if self.rate_limiter is not None:
            self.rate_limiter.request(len(data) + TRAILER_SIZE)
        return off, len(data)

    def _flush_block(self) -> None:
        if not self._keys:
            return
        payload = encode_data_block(self._keys, self._tags, self._values, self._multi)
        off, size = self._write_block(payload, self.codec)
        self._index_keys.append(self._keys[-1])
        self._index_offsets.append(off)
        self._index_sizes.append(size)
        self._keys, self._tags, self._values = [], [], []
        self._bytes = 0
        self._multi = False

    def finish(self, extra_props: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write filter, properties, index and footer; fsync; return the table's metadata."""
        self._flush_block()
        fkeys = self._filter_keys
        filt = bloom.build(fkeys, len(fkeys), self.bloom_bits) if self.bloom_bits else b""
        filter_off, filter_len = self._write_block(filt, compression.NONE)
        meta: dict[str, Any] = {
            "entries": self.entries,
            "deletions": self.deletions,
            "keys": len(fkeys),
            "raw_key_bytes": self.raw_key_bytes,
            "raw_value_bytes": self.raw_value_bytes,
            "data_blocks": len(self._index_keys),
            "compression": compression.NAMES[self.codec],
            "bloom_bits_per_key": self.bloom_bits,
            "min_seq": self.min_seq if self.entries else 0,
            "max_seq": self.max_seq,
            "smallest": (self.smallest or b"").hex(),
            "largest": (self.largest or b"").hex(),
            "blob_refs": {str(k): v for k, v in self.blob_refs.items()},
            "format_version": FORMAT_VERSION,
        }
        if extra_props:
            meta.update(extra_props)
        props_off, props_len = self._write_block(
            json.dumps(meta, sort_keys=True).encode(), compression.NONE
        )
        n = len(self._index_keys)
        index = b"".join(
            (
                struct.pack("<I", n),
                struct.pack(f"<{n}I", *accumulate(map(len, self._index_keys))),
                struct.pack(f"<{n}Q", *self._index_offsets),
                struct.pack(f"<{n}I", *self._index_sizes),
                b"".join(self._index_keys),
            )
        )
        index_off, index_len = self._write_block(index, compression.NONE)
        fields = (
            index_off,
            index_len,
            filter_off,
            filter_len,
            props_off,
            props_len,
            FORMAT_VERSION,
        )
        crc = checksum.masked(FOOTER.pack(*fields, 0, MAGIC)[:40])
        self.f.write(FOOTER.pack(*fields, crc, MAGIC))
        self.offset += FOOTER.size
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        meta["file_size"] = self.offset
        return meta

    def abandon(self) -> None:
        """Remove the partial file."""
        filenames.abandon(self.f, self.path)


class SSTableReader:
    """Reads one table. Index, filter and properties stay in memory (pinned);
    data blocks go through the shared BlockCache. Thread-safe (pread only)."""

    def __init__(
        self, path: str, number: int, cache: BlockCache | None, *, verify: bool = True
    ) -> None:
        self.path = path
        self.number = number
        self.cache = cache
        self._key_base = cache_key(number, 0)  # | block index: its key in the cache
        self.verify = verify
        self.fd = os.open(path, os.O_RDONLY)
        try:
            self._load()
        except BaseException:
            os.close(self.fd)
            raise

    def _load(self) -> None:
        size = os.fstat(self.fd).st_size
        self.file_size = size
        if size < FOOTER.size:
            raise CorruptionError("file too short for a footer", self.path, 0)
        foot_off = size - FOOTER.size
        raw = os.pread(self.fd, FOOTER.size, foot_off)
        fields = FOOTER.unpack(raw)
        io, il, fo, fl, po, pl, version, crc, magic = fields
        if magic != MAGIC:
            raise CorruptionError("bad table magic (not an SSTable?)", self.path, foot_off + 44)
        if checksum.masked(raw[:40]) != crc:
            raise CorruptionError("footer checksum mismatch", self.path, foot_off)
        if version not in READABLE_VERSIONS:
            raise CorruptionError(
                f"unsupported table format version {version}", self.path, foot_off
            )
        self.props: dict[str, Any] = json.loads(self._read_block(po, pl, always_verify=True))
        filt = self._read_block(fo, fl, always_verify=True)
        self.bloom = bloom.BloomFilter(filt) if filt else None
        # The filter's words for callers that test it inline (bloom.probe), None when
        # there is no usable filter (every key may be there).
        self.bloom_words = self.bloom.words if self.bloom and self.bloom.usable() else None
        self.bloom_nwords = self.bloom.nwords if self.bloom else 0
        index = self._read_block(io, il, always_verify=True)
        try:
            (n,) = struct.unpack_from("<I", index, 0)
            pos = 4
            kends = struct.unpack_from(f"<{n}I", index, pos)
            pos += 4 * n
            self.block_offsets = struct.unpack_from(f"<{n}Q", index, pos)
            pos += 8 * n
            self.block_sizes = struct.unpack_from(f"<{n}I", index, pos)
            pos += 4 * n
        except struct.error:
            raise CorruptionError("malformed index block", self.path, io) from None
        starts = (0, *kends[:-1])
        self.index_keys = [index[pos + a : pos + b] for a, b in zip(starts, kends, strict=True)]
        self.num_blocks = n
        self.bloom_useful = 0  # lookups the filter answered without reading a block
        self.smallest = bytes.fromhex(self.props["smallest"])
        self.largest = bytes.fromhex(self.props["largest"])
        self.max_seq = int(self.props["max_seq"])
        # A block this table's writer stored raw although it had a codec could not be
        # compressed by 1/8: the cache's second tier should not try again (block_cache)
        self._raw_mark = (
            compression.NONE if self.props.get("compression", "none") == "none" else RAW_KNOWN
        )

    def _read_block(self, offset: int, size: int, always_verify: bool = False) -> bytes:
        raw = os.pread(self._fd(), size + TRAILER_SIZE, offset)
        if len(raw) != size + TRAILER_SIZE:
            raise CorruptionError("block runs past the end of the file", self.path, offset)
        codec, crc = TRAILER.unpack_from(raw, size)
        data = raw[:size]
        if (always_verify or self.verify) and checksum.masked(
            raw[size : size + 1], checksum.value(data)
        ) != crc:
            raise CorruptionError("block checksum mismatch", self.path, offset)
        return compression.decompress(codec, data, self.path, offset)

    def block(self, i: int) -> DecodedBlock:
        """Decoded data block i, through the cache."""
        cache = self.cache
        if cache is not None:
            blk = cache.get(self._key_base | i)
            if blk is not None:
                return blk
        return self._load_block(i)

    def _load_block(self, i: int) -> DecodedBlock:
        """Block i from the compressed tier or the disk; inserted into the cache."""
        cache = self.cache
        key = self._key_base | i
        if cache is not None:
            cache.miss()
            stored = cache.take_compressed(key)
            if stored is not None:
                payload = compression.decompress(
                    stored[0], stored[1], self.path, self.block_offsets[i]
                )
                blk = self._decode(payload, i)
                if stored[0] == compression.NONE:
                    stored = (self._raw_mark, stored[1])
                cache.insert(key, blk, _charge(blk, stored), stored)
                return blk
        off = self.block_offsets[i]
        size = self.block_sizes[i]
        raw = os.pread(self._fd(), size + TRAILER_SIZE, off)
        if len(raw) != size + TRAILER_SIZE:
            raise CorruptionError("block runs past the end of the file", self.path, off)
        codec, crc = TRAILER.unpack_from(raw, size)
        data = raw[:size]
        if self.verify and checksum.masked(raw[size : size + 1], checksum.value(data)) != crc:
            raise CorruptionError("block checksum mismatch", self.path, off)
        payload = compression.decompress(codec, data, self.path, off)
        blk = self._decode(payload, i)
        if cache is not None:
            stored = (codec if codec != compression.NONE else self._raw_mark, data)
            cache.insert(key, blk, _charge(blk, stored), stored)
        return blk

    def _decode(self, payload: bytes, i: int) -> DecodedBlock:
        try:
            return DecodedBlock(payload)
        except (struct.error, ValueError) as e:
            raise self.malformed(i, e) from None

    def malformed(self, i: int, e: Exception) -> CorruptionError:
        """The error for data block i, whose decoding or index failed with e."""
        return CorruptionError(f"malformed data block ({e})", self.path, self.block_offsets[i])

    def get(
        self, key: bytes, snapshot: int | None, h: int | None = None
    ) -> tuple[int, int, bytes] | None:
        """(seq, kind, value) of the newest version of key visible at snapshot, or None.
        h: the key's xxh64, when the caller hashed it once for several tables."""
        if h is None:
            h = xxh64_intdigest(key)
        if self.bloom is not None and not self.bloom.may_contain_hash(h):
            self.bloom_useful += 1
            return None
        return self.find_entry(key, snapshot, h)

    def find_entry(self, key: bytes, snapshot: int | None, h: int) -> tuple[int, int, bytes] | None:
        """get() past the bloom filter (the caller tested it, or has none to test);
        h is xxh64(key), for the block's hash index."""
        i = bisect_left(self.index_keys, key)
        if i >= self.num_blocks:
            return None
        # self.block(i), cache.get() and blk.lookup(key, h), inline: the path of every
        # point read that reaches a table (three frames fewer)
        cache = self.cache
        blk: Any
        if cache is None:
            blk = self._load_block(i)
        else:
            ck = self._key_base | i
            lru = cache.blocks
            blk = lru.get(ck)
            if blk is None:
                blk = self._load_block(i)
            else:
                try:
                    lru.move_to_end(ck)
                except KeyError:  # evicted meanwhile by another thread
                    pass
                cache.hits += 1
        buckets = blk.buckets
        n = blk.n
        payload = blk.payload
        offs = blk.offs  # key j ends at offs[j], value j at offs[n + j]
        if buckets is None:
            try:
                j = blk.lookup(key, h)
            except ValueError as e:
                raise self.malformed(i, e) from None
            if j < 0:
                return None
        else:
            nb = len(buckets)
            home = b = (h >> 32) % nb
            keys = blk._keys
            while True:
                j = buckets[b]
                if j >= n:
                    if j == blk.empty:
                        return None
                    raise self.malformed(i, ValueError(f"hash bucket names entry {j} of {n}"))
                if (
                    keys[j]
                    if keys is not None
                    else payload[offs[j - 1] if j else blk.kbase : offs[j]]
                ) == key:
                    if j and blk.flags & FLAG_MULTI_VERSION and blk.key(j - 1) == key:
                        raise self.malformed(
                            i, ValueError(f"hash bucket names entry {j}, not its key's first")
                        )
                    break
                b += 1
                if b == nb:
                    b = 0
                if b == home:  # a written index always has an empty bucket
                    raise self.malformed(i, ValueError("hash index has no empty bucket"))
        tag = _TAG(payload, blk.tbase + 8 * j)[0]  # blk.tag_at(j), inline
        if snapshot is not None and tag >> 8 > snapshot:
            # too new for the snapshot: an older version of the key may follow
            j += 1
            while j < n and blk.key(j) == key:
                tag = blk.tag_at(j)
                if tag >> 8 <= snapshot:
                    break
                j += 1
            else:
                return None
        # entry j holds key (compared above): its value, inline
        return tag >> 8, tag & 0xFF, payload[offs[n + j - 1] if j else blk.vbase : offs[n + j]]

    def live_keys(self, lower: bytes, upper: bytes) -> Iterator[list[bytes]]:
        """The keys in [lower, upper) whose newest version is not a tombstone, a block
        at a time, sliced from the payload (no per-entry tuples): for counting scans
        over a range that no other table or memtable shares (DB.key_chunks)."""
        prev = None
        for blk, lo, hi in self._spans(lower, upper):
            keys = _live_in(blk, lo, hi, prev)
            prev = blk.key(hi - 1)
            if keys:
                yield keys

    def count_live(self, lower: bytes, upper: bytes) -> int:
        """How many keys of [lower, upper) have a newest version that is not a
        tombstone: live_keys() counted, but a block with one version per key is
        counted from its positions and kinds, no key sliced (DB.count_keys)."""
        n = 0
        prev = None
        for blk, lo, hi in self._spans(lower, upper):
            if blk.flags & FLAG_MULTI_VERSION or blk.key(lo) == prev:
                n += len(_live_in(blk, lo, hi, prev))
            else:
                n += hi - lo - blk.kinds(lo, hi).count(DELETE)
            prev = blk.key(hi - 1)
        return n

    def _spans(self, lower: bytes, upper: bytes) -> Iterator[tuple[DecodedBlock, int, int]]:
        """(block, lo, hi) for each block holding entries of [lower, upper): its
        entries lo..hi-1 are the range's, in order."""
        b = bisect_left(self.index_keys, lower)
        while b < self.num_blocks:
            blk = self.block(b)
            lo = blk.find(lower)
            hi = blk.find(upper)
            if hi > lo:
                yield blk, lo, hi
            if hi < blk.n:
                return
            b += 1

    def iter_chunks(
        self,
        lower: bytes | None,
        upper: bytes | None,
        snapshot: int | None,
        reverse: bool = False,
        src: int = 0,
    ) -> Iterator[list[TaggedEntry]]:
        """Lists (one per block) of (key, src, tag, value) for the newest visible
        version of each key in [lower, upper), in key order (descending when reverse);
        tag = seq << 8 | kind. `src` lets a merge order equal keys by source."""
        if self.num_blocks == 0:
            return
        ikeys = self.index_keys
        if snapshot is not None and self.max_seq <= snapshot:
            snapshot = None  # everything in this file is visible
        if not reverse:
            b = 0 if lower is None else bisect_left(ikeys, lower)
            first = True
            while b < self.num_blocks:
                blk = self.block(b)
                n = blk.n
                lo = 0 if lower is None else blk.find(lower)
                hi = n if upper is None else blk.find(upper)
                size = _FIRST_CHUNK
                while first and hi - lo > size:
                    # Most scans are short: hand over a few entries, then 4x more each
                    # time, so a 10-result query never decodes the whole block.
                    cut = lo + size
                    while cut < hi and blk.key(cut) == blk.key(cut - 1):
                        cut += 1
                    yield _visible(blk, lo, cut, snapshot, src, False)
                    lo = cut
                    size *= 4
                first = False
                yield _visible(blk, lo, hi, snapshot, src, False)
                if hi < n:
                    return
                b += 1
        else:
            b = (
                self.num_blocks - 1
                if upper is None
                else min(bisect_left(ikeys, upper), self.num_blocks - 1)
            )
            first = True
            while b >= 0:
                blk = self.block(b)
                hi = blk.n if upper is None else blk.find(upper)
                lo = 0 if lower is None else blk.find(lower)
                size = _FIRST_CHUNK
                while first and hi - lo > size:
                    cut = hi - size
                    while cut > lo and blk.key(cut) == blk.key(cut - 1):
                        cut -= 1
                    yield _visible(blk, cut, hi, snapshot, src, True)
                    hi = cut
                    size *= 4
                first = False
                yield _visible(blk, lo, hi, snapshot, src, True)
                if lo > 0:
                    return
                b -= 1

    def head(
        self, lower: bytes, upper: bytes | None, n: int, snapshot: int | None, src: int
    ) -> tuple[list[TaggedEntry], bytes | None]:
        """The first entries of [lower, upper): at most about n, as iter_chunks hands
        them (key, src, tag, value), and a bound below which they are complete when the
        table may hold more of the range (the last key looked at: more versions of it
        may follow), else None. One bisect, then as few blocks as hold them: for short
        scans (DB.head)."""
        b = bisect_left(self.index_keys, lower)
        if b >= self.num_blocks:
            return [], None
        if snapshot is not None and self.max_seq <= snapshot:
            snapshot = None
        out: list[TaggedEntry] = []
        lo = -1
        while True:
            blk = self.block(b)
            if lo < 0:
                lo = blk.find(lower)
            hi = min(lo + n - len(out), blk.n)
            last = upper is not None and hi > lo and blk.key(hi - 1) >= upper
            if last:
                hi = blk.find(upper)  # type: ignore[arg-type]
            part = _visible(blk, lo, hi, snapshot, src, False)
            if out and part and part[0][0] == out[-1][0]:
                # older versions of the previous block's last key: the newest came first
                k = out[-1][0]
                part = [e for e in part if e[0] != k]
            out += part
            if last:
                return out, None
            if hi < blk.n:
                return out, blk.key(hi - 1)  # n taken: the rest is unknown
            b += 1
            if b == self.num_blocks:
                return out, None
            if len(out) >= n:
                return out, blk.key(hi - 1) if hi else lower
            lo = 0

    def head_keys(
        self, lower: bytes, upper: bytes | None, n: int
    ) -> tuple[list[bytes], bytes, bytes | None]:
        """head() without entries: (keys, their kinds as bytes, bound), every version
        of a key (newest first) as the table holds it, at most about n. For reads that
        need only keys (DB.head_keys): no tuple or value per entry."""
        b = bisect_left(self.index_keys, lower)
        if b >= self.num_blocks:
            return [], b"", None
        keys: list[bytes] = []
        kinds = b""
        lo = -1
        while True:
            blk = self.block(b)
            if lo < 0:
                lo = blk.find(lower)
            hi = min(lo + n - len(keys), blk.n)
            last = upper is not None and hi > lo and blk.key(hi - 1) >= upper
            if last:
                hi = blk.find(upper)  # type: ignore[arg-type]
            if hi > lo:
                keys += blk.key_range(lo, hi)
                kinds += blk.kinds(lo, hi)
            if last:
                return keys, kinds, None
            if hi < blk.n:
                return keys, kinds, blk.key(hi - 1)  # n taken: the rest is unknown
            b += 1
            if b == self.num_blocks:
                return keys, kinds, None
            if len(keys) >= n:
                return keys, kinds, blk.key(hi - 1) if hi else lower
            lo = 0

    def head_rev(
        self, lower: bytes | None, upper: bytes | None, n: int, snapshot: int | None, src: int
    ) -> tuple[list[TaggedEntry], bytes | None]:
        """head() from the top: the last entries of [lower, upper) in descending key
        order, at most about n, and a bound above which they are complete when the
        table may hold more of the range (the smallest key taken, exclusive: newer
        versions of it may precede it), else None."""
        b = self.num_blocks - 1 if upper is None else bisect_left(self.index_keys, upper)
        if b >= self.num_blocks:
            b = self.num_blocks - 1
        if b < 0:
            return [], None
        if snapshot is not None and self.max_seq <= snapshot:
            snapshot = None
        out: list[TaggedEntry] = []
        hi = -1 if upper is None else self.block(b).find(upper)
        while True:
            blk = self.block(b)
            if hi < 0:
                hi = blk.n
            lo = max(0, hi - (n - len(out)))
            reached = lower is not None and lo < hi and blk.key(lo) < lower
            if reached:
                lo = blk.find(lower)  # type: ignore[arg-type]
            part = _visible(blk, lo, hi, snapshot, src, True)
            if out and part and part[0][0] == out[-1][0]:
                out.pop()  # an older version: the newest of this key is in this block
            out += part
            if reached or (b == 0 and lo == 0):
                return out, None
            if lo > 0:
                return out, blk.key(lo)  # n taken: what lies below is unknown
            if len(out) >= n:
                return out, blk.key(0)
            b -= 1
            hi = -1

    def iter_all_versions(self) -> Iterator[Entry]:
        """Every entry of the table in order (compaction input, verify)."""
        for b in range(self.num_blocks):
            blk = self.block(b)
            keys, tags, vends, values, vbase = blk.keys, blk.tags, blk.vends, blk.payload, blk.vbase
            starts = (vbase, *vends[:-1])
            for k, tag, s, e in zip(keys, tags, starts, vends, strict=True):
                yield k, tag >> 8, tag & 0xFF, values[s:e]

    def iter_all_chunks(self) -> Iterator[list[tuple[bytes, int, int, bytes]]]:
        """Every entry, one list per block, as (key, -seq, kind, value): tuples whose
        natural order is key ascending, newest first (compaction input)."""
        for b in range(self.num_blocks):
            blk = self.block(b)
            values = blk.payload
            vs = blk.vbase
            out = []
            for k, tag, ve in zip(blk.keys, blk.tags, blk.vends, strict=True):  # see _visible
                out.append((k, -(tag >> 8), tag & 0xFF, values[vs:ve]))
                vs = ve
            yield out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _fd(self) -> int:
        """The open file; ClosedError once closed (DB.close: an iterator or a paused
        scan used after it), not the EBADF of a read on fd -1."""
        if self.fd < 0:
            raise ClosedError("DB is closed")
        return self.fd


def _charge(blk: DecodedBlock, stored: tuple[int, bytes]) -> int:
    """What a decoded block costs the cache's first tier: its payload; the stored form
    it keeps for a move to tier two, unless that is the payload itself (a block stored
    raw); its objects (~640 bytes); and the key list a block searched often builds (a
    bytes object and a slot per key: 48 bytes and the key's own). Checked against
    tracemalloc in tests/engine/test_block_cache.py."""
    payload = blk.payload
    n = blk.n
    keys = blk.offs[n - 1] - blk.kbase if n else 0  # the keys' bytes, all together
    own = 0 if stored[1] is payload else len(stored[1])
    return len(payload) + own + 640 + 48 * n + keys


def _live_in(blk: DecodedBlock, lo: int, hi: int, prev: bytes | None) -> list[bytes]:
    """The keys of entries lo..hi-1 (lo < hi) of a block whose newest version is not a
    tombstone; prev is the last key of the table's previous span (its newest version
    came there, so its older ones here are skipped)."""
    keys = blk.key_range(lo, hi)
    kinds: bytes | list[int] = blk.kinds(lo, hi)
    if blk.flags & FLAG_MULTI_VERSION or keys[0] == prev:
        newest = [keys[0] != prev, *map(ne, keys, islice(keys, 1, None))]
        keys = list(compress(keys, newest))
        kinds = list(compress(kinds, newest))
    if DELETE in kinds:
        keys = list(compress(keys, [k != DELETE for k in kinds]))
    return keys


def _visible(
    blk: DecodedBlock, lo: int, hi: int, snapshot: int | None, src: int, reverse: bool
) -> list[TaggedEntry]:
    """Entries lo..hi-1 of a block, newest visible version per key. Plain loops: they
    run ~2x faster than zip/map over sliced memoryviews (method-wrapper calls and a
    slice object per value cost more than the loop's bytecodes, CPython 3.11)."""
    if lo >= hi:
        return []
    values, offs, n = blk.payload, blk.offs, blk.n
    keys = blk.key_range(lo, hi)
    vs = offs[n + lo - 1] if lo else blk.vbase
    # The tags of lo..hi-1 in one unpack, the value ends as one slice of the offsets
    # view (no view over the tags made and cut per call: blk.tags is for whole blocks).
    tags = struct.unpack_from(f"<{hi - lo}Q", values, blk.tbase + 8 * lo)
    vends = offs[n + lo : n + hi]
    out = []
    if snapshot is None and not blk.flags & FLAG_MULTI_VERSION:
        for k, tag, ve in zip(keys, tags, vends, strict=True):
            out.append((k, src, tag, values[vs:ve]))
            vs = ve
    else:
        prev = None
        for k, tag, ve in zip(keys, tags, vends, strict=True):
            if k != prev and (snapshot is None or tag >> 8 <= snapshot):
                prev = k
                out.append((k, src, tag, values[vs:ve]))
            vs = ve
    if reverse:
        out.reverse()
    return out


__all__ = ["SSTableReader", "SSTableWriter"]
