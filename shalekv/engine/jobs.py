"""Flush and compaction jobs. They run in worker processes (or a thread when
compaction_workers=0): inputs are immutable files named in a picklable spec, outputs
are new files plus the metadata the main process installs with one MANIFEST edit.

A job never changes a file it did not create. If it fails or the process dies, its
partial outputs are unreferenced and removed at the next open.
"""

from __future__ import annotations

import importlib
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, islice
from operator import eq, itemgetter, ne, neg
from typing import Any

from shalekv.engine import blob, compression, filenames
from shalekv.engine.log_format import LogReader
from shalekv.engine.merge import merge_chunks
from shalekv.engine.sstable import SSTableReader, SSTableWriter
from shalekv.engine.version import BlobMeta, FileMeta, Version, range_deleted
from shalekv.engine.write_batch import (
    BLOB_INDEX,
    DELETE,
    PUT,
    RANGE_DELETE,
    SINGLE_PUT,
    decode,
)

Entry = tuple[bytes, int, int, bytes]

_first, _second, _third, _fourth = (itemgetter(i) for i in range(4))


class RateLimiter:
    """Token bucket on bytes written, so compaction leaves disk bandwidth to writes."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.allowance = float(rate)
        self.last = time.monotonic()
        self.slept = 0.0

    def request(self, n: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self.allowance = min(float(self.rate), self.allowance + (now - self.last) * self.rate)
        self.last = now
        self.allowance -= n
        if self.allowance < 0:
            pause = -self.allowance / self.rate
            self.slept += pause
            time.sleep(pause)


class OutputBuilder:
    """Writes a sorted entry stream into tables of about target_file_size, moving
    values of blob_threshold bytes or more into a blob file."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.dirs: list[str] = spec["dirs"]
        self.numbers: list[int] = list(spec["numbers"])
        self.block_size: int = spec["block_size"]
        self.codec: int = compression.CODES[spec["compression"]]
        self.bloom_bits: int = spec["bloom_bits_per_key"]
        self.target: int = spec["target_file_size"]
        self.blob_threshold: int = spec["blob_threshold"]
        self.split: bool = spec.get("split", True)
        self.rdels: list[tuple[bytes, bytes, int]] = [
            (bytes.fromhex(a), bytes.fromhex(b), int(q)) for a, b, q in spec.get("range_dels", ())
        ]
        self._dirty: set[int] = set()  # range deletions the current table holds older keys of
        # Where output must be cut whatever its size: where the first plen bytes of the
        # key change (options.partition_prefix_len), and across each fence, the key
        # range of a file of the output level that this job leaves in place (no output
        # table may span one: the level would overlap itself).
        self.plen: int = spec.get("partition_prefix_len", 0)
        self.fences: list[tuple[bytes, bytes]] = [
            (bytes.fromhex(a), bytes.fromhex(b)) for a, b in spec.get("fences", ())
        ]
        self._fence = 0  # fences below this index lie below every key added so far
        self.limiter = RateLimiter(spec.get("rate_limit", 0))
        self.tables: list[dict[str, Any]] = []
        self.blobs: list[dict[str, Any]] = []
        self._table: SSTableWriter | None = None
        self._blob: blob.BlobWriter | None = None
        self._last_key: bytes | None = None
        self.bytes_written = 0

    def _next_number(self) -> int:
        if not self.numbers:
            raise RuntimeError("job ran out of reserved file numbers")
        return self.numbers.pop(0)

    def _must_cut(self, key: bytes) -> bool:
        """Must a table end before key? Across a fence always (no key lies inside
        one); where the prefix changes while file numbers last (past them a table
        grows over several prefixes: a missed optimization, not an error)."""
        last = self._last_key
        fences = self.fences
        i = self._fence
        crossed = False
        while i < len(fences) and fences[i][1] < key:
            if last is not None and fences[i][0] > last:
                crossed = True
            i += 1
        self._fence = i
        # optional cuts leave a number for a blob file and one per fence still ahead
        return crossed or bool(
            last is not None
            and self.plen
            and key[: self.plen] != last[: self.plen]
            and len(self.numbers) > 1 + len(fences) - i
        )

    def _current_table(self, key: bytes) -> SSTableWriter:
        """The table to add key to: a new one once the current reached its target size
        (only between two keys), and wherever _must_cut says."""
        t = self._table
        cut = (self.plen or self.fences) and key != self._last_key and self._must_cut(key)
        if t is not None and key != self._last_key:
            if cut or (
                self.split
                and t.estimated_size >= self.target
                and len(self.numbers) > 1 + len(self.fences) - self._fence  # blob file, fences
            ):
                self._finish_table()
                t = None
        if t is None:
            n = self._next_number()
            d = filenames.place(n, len(self.dirs))
            t = self._table = SSTableWriter(
                filenames.table_path(self.dirs, d, n),
                block_size=self.block_size,
                codec=self.codec,
                bloom_bits_per_key=self.bloom_bits,
                rate_limiter=self.limiter,
            )
            t.number = n  # type: ignore[attr-defined]
            t.dir_index = d  # type: ignore[attr-defined]
        return t

    def add(self, key: bytes, seq: int, kind: int, value: bytes) -> None:
        t = self._current_table(key)
        if kind == PUT and len(value) >= self.blob_threshold:
            value = self.add_blob(key, value)
            kind = BLOB_INDEX
        if kind == BLOB_INDEX:
            bnum, _, size = blob.decode_pointer(value)
            t.add_blob_ref(bnum, size)
        t.add(key, seq, kind, value)
        self._last_key = key
        if self.rdels:
            for s, e, q in self.rdels:
                if seq < q and s <= key < e:
                    self._dirty.add(q)

    def chunk_fits(self, kinds: list[int], values: list[Any]) -> bool:
        """Can add_chunk take these entries as they are (no blob to write or count,
        no range deletion to track)?"""
        return (
            not self.rdels
            and BLOB_INDEX not in kinds
            and max(map(len, values)) < self.blob_threshold
        )

    def add_chunk(
        self, keys: list[bytes], seqs: list[int], kinds: list[int], values: list[Any]
    ) -> None:
        """Distinct ascending keys for which chunk_fits() holds, in one go (in pieces
        where the output must be cut)."""
        if not (self.plen or self.fences):
            t = self._current_table(keys[0])
            t.add_many(keys, seqs, kinds, values)
            self._last_key = keys[-1]
            return
        start, n = 0, len(keys)
        while start < n:
            end = self._piece_end(keys, start)
            t = self._current_table(keys[start])
            if start == 0 and end == n:
                t.add_many(keys, seqs, kinds, values)
            else:
                t.add_many(keys[start:end], seqs[start:end], kinds[start:end], values[start:end])
            self._last_key = keys[end - 1]
            start = end

    def _piece_end(self, keys: list[bytes], start: int) -> int:
        """The end of the run of keys from start that no cut separates."""
        n = len(keys)
        end = n
        first = keys[start]
        if self.plen:
            after = _after_prefix(first[: self.plen])
            if after is not None:
                end = bisect_left(keys, after, start + 1, end)
        for lo, _hi in self.fences[self._fence :]:
            if lo > first:  # the next fence above: keys past it go to another table
                end = bisect_left(keys, lo, start + 1, end)
                break
        return end

    def add_blob(self, key: bytes, value: bytes) -> bytes:
        b = self._blob
        if b is None:
            n = self._next_number()
            d = filenames.place(n, len(self.dirs))
            b = self._blob = blob.BlobWriter(filenames.blob_path(self.dirs, d, n), n)
            b.dir_index = d  # type: ignore[attr-defined]
        ptr = b.add(key, value)
        self.limiter.request(len(value))
        return ptr

    def _finish_table(self) -> None:
        t = self._table
        assert t is not None
        meta = t.finish()
        self.bytes_written += meta["file_size"]
        fm = FileMeta(
            number=t.number,  # type: ignore[attr-defined]
            dir_index=t.dir_index,  # type: ignore[attr-defined]
            size=meta["file_size"],
            smallest=t.smallest or b"",
            largest=t.largest or b"",
            entries=t.entries,
            deletions=t.deletions,
            min_seq=meta["min_seq"],
            max_seq=meta["max_seq"],
            blob_refs=dict(t.blob_refs),
            rdel_free=tuple(q for _, _, q in self.rdels if q not in self._dirty),
        )
        self.tables.append(fm.to_json())
        self._table = None
        self._dirty = set()

    def finish(self) -> None:
        if self._table is not None:
            self._finish_table()
        if self._blob is not None:
            b = self._blob
            size = b.finish()
            self.bytes_written += size
            self.blobs.append(BlobMeta(b.number, b.dir_index, size, b.value_bytes).to_json())  # type: ignore[attr-defined]
            self._blob = None

    def abandon(self) -> None:
        if self._table is not None:
            self._table.abandon()
        if self._blob is not None:
            self._blob.abandon()


def _after_prefix(p: bytes) -> bytes | None:
    """The least byte string above every key that starts with p (None: no such)."""
    b = bytearray(p)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


def _sync_dirs(dirs: list[str]) -> None:
    for d in dirs:
        for sub in ("sst", "blob"):
            p = os.path.join(d, sub)
            if os.path.isdir(p):
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


# ---------------------------------------------------------------- retention rules


def retain(
    entries: Iterable[Entry],
    smallest_snapshot: int,
    range_dels: list[tuple[bytes, bytes, int]],
    is_base_level: Callable[[bytes], bool],
    compaction_filter: Callable[[bytes, bytes | None], bool] | None,
    dropped: Callable[[int, bytes], None] | None = None,
) -> Iterator[Entry]:
    """Drop what no reader can see, as LevelDB's DoCompactionWork: a version hidden by
    a newer one that every snapshot sees, a tombstone every snapshot sees when no
    older level holds the key, and values under a range deletion every snapshot sees.
    Entries arrive in (key asc, seq desc) order."""
    prev_key = None
    last_seq = 0
    rdels = [r for r in range_dels if r[2] <= smallest_snapshot]
    for key, seq, kind, value in entries:
        if key != prev_key:
            prev_key = key
            last_seq = 1 << 63
            newest = True
        else:
            newest = False
        drop = False
        if last_seq <= smallest_snapshot:
            drop = True  # shadowed by a newer version every reader sees
        elif kind == DELETE and seq <= smallest_snapshot and is_base_level(key):
            drop = True
        elif rdels and range_deleted(rdels, key, seq):
            drop = True
        elif (
            newest
            and compaction_filter is not None
            and kind != DELETE
            and seq <= smallest_snapshot
            and compaction_filter(key, value if kind == PUT else None)
        ):
            if is_base_level(key):
                drop = True
            else:
                last_seq = seq
                if dropped is not None:
                    dropped(kind, value)
                yield key, seq, DELETE, b""
                continue
        last_seq = seq
        if drop:
            if dropped is not None:
                dropped(kind, value)
            continue
        yield key, seq, kind, value


# ---------------------------------------------------------------- flush

_FLUSH_CHUNK = 1024


def _all_versions(
    keys: list[bytes], versions: dict[bytes, list[tuple[int, int, bytes]]]
) -> Iterator[Entry]:
    """(key, seq, kind, value) for every version, newest first within a key."""
    for key in keys:
        for s, k, v in reversed(versions[key]):
            yield key, s, k, v


def run_flush(spec: dict[str, Any]) -> dict[str, Any]:
    """Replay one WAL segment and write it as a level-0 table (plus a blob file)."""
    t0 = time.monotonic()
    reader = LogReader(spec["wal_path"])
    versions: dict[bytes, list[tuple[int, int, bytes]]] = {}
    newest: dict[bytes, tuple[int, int, bytes]] = {}
    range_dels: list[tuple[bytes, bytes, int]] = []
    max_seq = spec["max_seq"]
    smallest_snapshot = spec["smallest_snapshot"]
    # No snapshot inside this segment: only each key's newest version counts, and a
    # dict assignment per entry replaces keeping every version.
    only_newest = smallest_snapshot >= max_seq
    view_from = spec["blob_threshold"]
    head = SINGLE_PUT.size
    for offset, record in reader:
        if len(record) >= head:
            # Fast path for the commonest record, a single put (no ops list built).
            seq, count, kind, klen, vlen = SINGLE_PUT.unpack_from(record)
            if count == 1 and kind == PUT and head + klen + vlen == len(record):
                if seq > max_seq:
                    break
                key = bytes(record[head : head + klen])
                if vlen >= view_from:
                    value: Any = memoryview(record)[head + klen :]
                else:
                    value = bytes(record[head + klen :])
                if only_newest:
                    newest[key] = (seq, PUT, value)
                else:
                    versions.setdefault(key, []).append((seq, PUT, value))
                continue
        # Values bound for a blob file stay views into the record: no second copy.
        seq, ops = decode(record, spec["wal_path"], offset, view_from=view_from)
        if seq > max_seq:
            break  # written after the memtable was sealed (cannot happen; be safe)
        for kind, key, value in ops:
            if kind == RANGE_DELETE:
                assert value is not None
                range_dels.append((key, value, seq))
            elif only_newest:
                newest[key] = (seq, kind, value or b"")
            else:
                versions.setdefault(key, []).append((seq, kind, value or b""))
            seq += 1
    out = OutputBuilder(
        {**spec, "split": False, "range_dels": [(s.hex(), e.hex(), q) for s, e, q in range_dels]}
    )
    try:
        if only_newest:
            keys = sorted(newest)
            for i in range(0, len(keys), _FLUSH_CHUNK):
                part = keys[i : i + _FLUSH_CHUNK]
                entries = list(map(newest.__getitem__, part))
                kinds = [v[1] for v in entries]
                values = [v[2] for v in entries]
                if out.chunk_fits(kinds, values):
                    out.add_chunk(part, [v[0] for v in entries], kinds, values)
                else:
                    for k, (s, kd, v) in zip(part, entries, strict=True):
                        out.add(k, s, kd, v)
        else:
            # Never drop tombstones here: older levels may hold the key.
            keys = sorted(versions)
            for e in retain(
                _all_versions(keys, versions), smallest_snapshot, [], lambda _k: False, None
            ):
                out.add(*e)
        out.finish()
        _sync_dirs(spec["dirs"])
    except BaseException:
        out.abandon()
        raise
    return {
        "tables": out.tables,
        "blobs": out.blobs,
        "range_dels": [(s.hex(), e.hex(), q) for s, e, q in range_dels],
        "bytes_written": out.bytes_written,
        "seconds": time.monotonic() - t0,
    }


# ---------------------------------------------------------------- compaction


def load_filter(
    path: str | None, arg: str, view: FileView
) -> Callable[[bytes, bytes | None], bool] | None:
    """Import 'module:factory' and call factory(arg, view) -> filter(key, value)."""
    if not path:
        return None
    mod, _, name = path.partition(":")
    factory = getattr(importlib.import_module(mod), name)
    return factory(arg, view)  # type: ignore[no-any-return]


class FileView:
    """Read-only view of the DB's files as of a compaction's start: what a compaction
    filter may consult (e.g. a collection's metadata key).

    Every write the view does not show was made at or after unflushed_since_ms (wall
    clock, ms): a filter that drops data by time (TTL) must only trust deadlines
    before it, since a later write (a PERSIST, say) may still sit in a memtable."""

    def __init__(self, version: Version, dirs: list[str], unflushed_since_ms: int = 0) -> None:
        self.version = version
        self.dirs = dirs
        self.unflushed_since_ms = unflushed_since_ms
        self._tables: dict[int, SSTableReader] = {}
        self._blobs: dict[int, blob.BlobReader] = {}

    def table(self, f: FileMeta) -> SSTableReader:
        t = self._tables.get(f.number)
        if t is None:
            t = self._tables[f.number] = SSTableReader(
                filenames.table_path(self.dirs, f.dir_index, f.number), f.number, None
            )
        return t

    def read_blob(self, pointer: bytes) -> bytes:
        n, off, size = blob.decode_pointer(pointer)
        r = self._blobs.get(n)
        if r is None:
            meta = self.version.blobs[n]
            r = self._blobs[n] = blob.BlobReader(
                filenames.blob_path(self.dirs, meta.dir_index, n), n
            )
        return r.read(off, size)[1]

    def get(self, key: bytes) -> bytes | None:
        """The newest value of key in the files (range deletions applied), or None."""
        r = self.version.get(key, None, self.table)
        if r is None:
            return None
        seq, kind, value = r
        if kind == DELETE or range_deleted(self.version.range_dels, key, seq):
            return None
        if kind == BLOB_INDEX:
            return self.read_blob(value)
        return value

    def close(self) -> None:
        for t in self._tables.values():
            t.close()
        for b in self._blobs.values():
            b.close()


_MERGE_CHUNK = 2048  # entries per list a run hands to the merge (a block is ~100)


def _run_chunks(readers: list[SSTableReader]) -> Iterator[list[tuple[bytes, int, int, bytes]]]:
    """A run of non-overlapping files (one level, or one L0 file) in lists of a few
    consecutive blocks: the merge and the chunk rules cost a few Python steps per list,
    so per-block lists made them a third of a compaction's time."""
    buf: list[tuple[bytes, int, int, bytes]] = []
    for r in readers:
        for chunk in r.iter_all_chunks():
            buf += chunk
            if len(buf) >= _MERGE_CHUNK:
                yield buf
                buf = []
    if buf:
        yield buf


def run_compaction(spec: dict[str, Any]) -> dict[str, Any]:
    """Merge the input files into new files for the output level."""
    t0 = time.monotonic()
    dirs = spec["dirs"]
    version = Version(
        [[FileMeta.from_json(f) for f in lvl] for lvl in spec["levels"]],
        {int(b["number"]): BlobMeta.from_json(b) for b in spec["blobs"]},
        [(bytes.fromhex(s), bytes.fromhex(e), q) for s, e, q in spec["range_dels"]],
    )
    view = FileView(version, dirs, spec.get("unflushed_since_ms", 0))
    runs: list[list[SSTableReader]] = []
    for run_files in spec["inputs"]:
        runs.append([view.table(FileMeta.from_json(f)) for f in run_files])
    deeper: list[list[tuple[bytes, bytes]]] = [
        [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in lvl] for lvl in spec["deeper"]
    ]
    deeper_largest = [[b for _, b in lvl] for lvl in deeper]

    def is_base_level(key: bytes) -> bool:
        for ranges, largest in zip(deeper, deeper_largest, strict=True):
            i = bisect_left(largest, key)
            if i < len(ranges) and ranges[i][0] <= key:
                return False
        return True

    gc_blobs = set(spec.get("gc_blobs", ()))
    garbage: dict[int, int] = {}

    def dropped(kind: int, value: bytes) -> None:
        if kind == BLOB_INDEX:
            n, _, size = blob.decode_pointer(value)
            garbage[n] = garbage.get(n, 0) + size

    flt = load_filter(spec.get("compaction_filter"), spec.get("compaction_filter_arg", ""), view)
    out = OutputBuilder(spec)
    entries_in = 0
    entries_out = 0
    try:
        rdels = version.range_dels
        # The common case is decided per chunk with C-level list operations: when
        # every version in it is older than all snapshots, only each key's newest
        # version can matter, tombstones go where no deeper level holds the key, and
        # the rest is written in one go. Anything else takes the per-entry rules.
        # A filter with a may_drop(keys) verdict (False: it drops none of them) lets
        # chunks it keeps whole take the fast path too.
        may_drop = getattr(flt, "may_drop", None)
        fast = (flt is None or may_drop is not None) and not rdels and not gc_blobs
        horizon = -spec["smallest_snapshot"]  # negated seqs: visible to all if >= this
        for chunk in merge_chunks([_run_chunks(r) for r in runs]):
            if fast and min(map(_second, chunk)) >= horizon:
                keys = list(map(_first, chunk))
                kinds = list(map(_third, chunk))
                if BLOB_INDEX not in kinds:
                    if any(map(eq, keys, islice(keys, 1, None))):
                        newest = [True, *map(ne, keys, islice(keys, 1, None))]
                        chunk = list(compress(chunk, newest))
                        keys = list(compress(keys, newest))
                        kinds = list(compress(kinds, newest))
                    if may_drop is None or not may_drop(keys):
                        if DELETE in kinds:
                            live = [
                                kd != DELETE or not is_base_level(k)
                                for k, kd in zip(keys, kinds, strict=True)
                            ]
                            chunk = list(compress(chunk, live))
                            keys = list(compress(keys, live))
                            kinds = list(compress(kinds, live))
                        if not chunk:
                            continue
                        values = list(map(_fourth, chunk))
                        if out.chunk_fits(kinds, values):
                            out.add_chunk(keys, list(map(neg, map(_second, chunk))), kinds, values)
                            entries_out += len(chunk)
                            continue
            entries = ((k, -q, kd, v) for k, q, kd, v in chunk)
            for key, seq, kind, value in retain(
                entries, spec["smallest_snapshot"], rdels, is_base_level, flt, dropped
            ):
                if kind == BLOB_INDEX:
                    n, _, size = blob.decode_pointer(value)
                    if n in gc_blobs:
                        # Relocate a live value out of a mostly-dead blob file.
                        garbage[n] = garbage.get(n, 0) + size
                        value = out.add_blob(key, view.read_blob(value))
                out.add(key, seq, kind, value)
                entries_out += 1
        out.finish()
        _sync_dirs(dirs)
    except BaseException:
        out.abandon()
        raise
    finally:
        view.close()
    for r in runs:
        for t in r:
            entries_in += t.props.get("entries", 0)
    return {
        "tables": out.tables,
        "blobs": out.blobs,
        "blob_garbage": garbage,
        "bytes_written": out.bytes_written,
        "entries_in": entries_in,
        "entries_out": entries_out,
        "rate_limited_seconds": out.limiter.slept,
        "seconds": time.monotonic() - t0,
    }
