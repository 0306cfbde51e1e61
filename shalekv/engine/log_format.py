"""The framed record log shared by the WAL and the MANIFEST (LevelDB's log format).

The file is a sequence of 32 KiB blocks. A record is split into fragments so that
no fragment crosses a block boundary; each fragment has a 7-byte header:
masked CRC32C (u32 LE, over the type byte and payload), length (u16 LE), type (u8:
1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST). A block tail shorter than a header is zero
padding. See docs/format/wal.md.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from collections.abc import Iterator

from crc32c import crc32c as _crc32c

from shalekv.engine import checksum
from shalekv.engine.checksum import MASK_DELTA
from shalekv.errors import CorruptionError

BLOCK_SIZE = 32768
HEADER_SIZE = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_HEADER = struct.Struct("<IHB")
_TYPE_CRC = [checksum.value(bytes([t])) for t in range(5)]
_CRC_FULL = _TYPE_CRC[FULL]
_ZERO_PAD = bytes(HEADER_SIZE)
_IOV_MAX = 512
_JOIN_LIMIT = 1 << 20  # records up to this size are joined once rather than sliced
PENDING_LIMIT = 1 << 20  # deferred records written out early past this many bytes


class LogWriter:
    """Appends framed records to a file with unbuffered writes (one syscall per record),
    or, once `deferred` is set, into a memory buffer that `write_pending` writes with one
    syscall (the server writes the records of a whole event-loop pass at once, before
    any reply leaves, as Redis writes its AOF buffer).

    Not thread-safe: the DB's write path serializes callers.
    """

    def __init__(self, path: str, *, create: bool = True) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(path, flags, 0o644)
        self.size = os.fstat(self.fd).st_size  # including records still pending
        self._block_offset = self.size % BLOCK_SIZE
        self.deferred = False
        self.pending: list[bytes] = []
        self._pending_bytes = 0

    def add_record(self, parts: list[bytes]) -> int:
        """Write one record given as parts (joined logically, never copied when large);
        return the file size after it. On an I/O error the partial record is cut off
        again so the log stays well formed, and the error propagates."""
        if len(parts) == 1:
            return self.add_one(parts[0])
        if len(parts) < 64:
            return self.add_one(b"".join(parts))
        return self._add_parts(parts, sum(map(len, parts)))

    def add_one(self, data: bytes) -> int:
        """add_record([data]). The fast path, one fragment in the current block with one
        write syscall (or appended to the buffer, when deferred), is framed here: the
        path of every write whose record is one bytes object (DB.put)."""
        n = len(data)
        if n + HEADER_SIZE > BLOCK_SIZE - self._block_offset:
            return self._add_parts([data], n)
        crc = _crc32c(data, _CRC_FULL)
        buf = _HEADER.pack((((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF, n, FULL) + data
        n += HEADER_SIZE
        size = self.size
        if self.deferred:
            self.pending.append(buf)
            self._pending_bytes += n
            self.size = size + n
            self._block_offset += n
            if self._pending_bytes >= PENDING_LIMIT:
                self.write_pending()
        else:
            self._write(buf, size)
            self.size = size + n
            self._block_offset += n
        return size + n

    def _add_parts(self, parts: list[bytes], n: int) -> int:
        """A record of n bytes that needs fragments (or has too many parts to join
        first): framed across blocks, written with as few syscalls as it takes."""
        if n + HEADER_SIZE <= BLOCK_SIZE - self._block_offset:
            return self.add_one(b"".join(parts))
        self.write_pending()  # records stay in order
        if n <= _JOIN_LIMIT:
            # Moderate records: one join is cheaper than slicing many small parts.
            return self._add_fragmented([memoryview(b"".join(parts))], n)
        return self._add_fragmented([memoryview(p).cast("B") for p in parts if len(p)], n)

    def write_pending(self) -> None:
        """Write the deferred records with one syscall. On an error the file is cut back
        to its last whole record, the pending records are dropped, and the error
        propagates: the caller must treat them as never written."""
        if not self.pending:
            return
        buf = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        start = self.size - len(buf)
        self.pending = []
        self._pending_bytes = 0
        try:
            self._write(buf, start)
        except OSError:
            self.size = start
            self._block_offset = start % BLOCK_SIZE
            raise

    def _write(self, buf: bytes, start: int) -> None:
        """Append buf to the file, which ends at start; on an error cut it back there."""
        try:
            written = os.write(self.fd, buf)
        except OSError:
            self._truncate(start)
            raise
        while written != len(buf):  # a short write: go on until done or a real error
            try:
                k = os.write(self.fd, buf[written:])
            except OSError:
                self._truncate(start)
                raise
            if k == 0:
                self._truncate(start)
                raise OSError(errno.EIO, f"write to {self.path} made no progress")
            written += k

    def _truncate(self, size: int) -> None:
        try:
            os.ftruncate(self.fd, size)
        except OSError:
            pass

    def _add_fragmented(self, views: list[memoryview], n: int) -> int:
        out: list[bytes | memoryview] = []
        total = 0
        offset = self._block_offset
        done = 0
        vi = 0
        vpos = 0
        begin = True  # as LevelDB: an empty first fragment still makes the next non-first
        while True:
            left = BLOCK_SIZE - offset
            if left < HEADER_SIZE:
                if left:
                    out.append(_ZERO_PAD[:left])
                    total += left
                offset = 0
                left = BLOCK_SIZE
            want = min(left - HEADER_SIZE, n - done)
            pieces: list[memoryview] = []
            got = 0
            while got < want:
                v = views[vi]
                take = min(want - got, len(v) - vpos)
                pieces.append(v[vpos : vpos + take])
                got += take
                vpos += take
                if vpos == len(v):
                    vi += 1
                    vpos = 0
            done += want
            end = done >= n
            kind = FULL if begin and end else FIRST if begin else LAST if end else MIDDLE
            begin = False
            crc = _TYPE_CRC[kind]
            for piece in pieces:
                crc = checksum.extend(crc, piece)
            out.append(_HEADER.pack(checksum.mask(crc), want, kind))
            out.extend(pieces)
            total += HEADER_SIZE + want
            offset += HEADER_SIZE + want
            if end:
                break
        self._write_all(out, total)
        self._block_offset = offset
        return self.size

    def _write_all(self, parts: list[bytes | memoryview], total: int) -> None:
        start = self.size
        try:
            written = 0
            i = 0
            while i < len(parts):
                chunk = parts[i : i + _IOV_MAX]
                want = sum(len(p) for p in chunk)
                got = os.writev(self.fd, chunk)
                written += got
                if got < want:  # short write: finish this chunk byte by byte range
                    rest = b"".join(bytes(p) for p in chunk)[got:]
                    while rest:
                        k = os.write(self.fd, rest)
                        written += k
                        rest = rest[k:]
                i += _IOV_MAX
        except OSError:
            # Disk full or similar: cut the partial record so later appends (after
            # space is freed) do not follow a torn record in the middle of the log.
            self._truncate(start)
            raise
        self.size = start + total

    def sync(self) -> None:
        """Write what is pending, then fsync the file (data and size)."""
        self.write_pending()
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                self.write_pending()
            finally:
                os.close(self.fd)
                self.fd = -1


class LogReader:
    """Reads records back, checking every fragment's CRC.

    A record cut short by the end of the file (a crash mid-write) ends the log:
    `torn_offset` says where. A checksum mismatch anywhere else is corruption.
    """

    def __init__(self, path: str, *, paranoid: bool = True) -> None:
        self.path = path
        self.paranoid = paranoid
        self.torn_offset: int | None = None
        self.end_offset = 0

    def __iter__(self) -> Iterator[tuple[int, bytes | bytearray]]:
        """Yield (offset, record) in file order."""
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                yield from self._records(m, size)

    def _records(self, m: mmap.mmap, size: int) -> Iterator[tuple[int, bytes | bytearray]]:
        pos = 0
        # Fragments of the record being read, as (start, end) in the file: a large
        # record is copied once, into one buffer, when its LAST fragment arrives.
        frags: list[tuple[int, int]] = []
        rec_start = 0
        unpack = _HEADER.unpack_from
        while pos < size:
            left = BLOCK_SIZE - pos % BLOCK_SIZE
            if left < HEADER_SIZE:
                pos += left
                continue
            if pos + HEADER_SIZE > size:
                self._torn(rec_start if frags else pos)
                return
            crc, n, kind = unpack(m, pos)
            if kind == 0 and n == 0 and crc == 0:
                # Zero padding: legal only if the rest of the file is zeros too.
                if m[pos:size].count(0) != size - pos:
                    self._corrupt("non-zero bytes after zero padding", pos)
                    return
                if frags:
                    self._torn(rec_start)
                self.end_offset = pos
                return
            end = pos + HEADER_SIZE + n
            if kind < FULL or kind > LAST or n > left - HEADER_SIZE:
                self._corrupt(f"bad fragment header (type {kind}, length {n})", pos)
                return
            if end > size:
                # Cut short by the end of the file: a torn write, unless the length
                # field itself is damaged (the bytes there are complete, or valid
                # fragments follow), which must not pass for a clean end.
                if checksum.masked(m[pos + HEADER_SIZE : size], _TYPE_CRC[kind]) == crc:
                    self._corrupt("fragment length runs past the end of a complete payload", pos)
                    return
                if _valid_fragment_after(m, pos + HEADER_SIZE, size):
                    self._corrupt("complete fragments follow a record cut short", pos)
                    return
                self._torn(rec_start if frags else pos)
                return
            payload = m[pos + HEADER_SIZE : end]
            c = _crc32c(payload, _TYPE_CRC[kind])  # inlined checksum.masked: hot loop
            if (((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF != crc:
                self._corrupt("checksum mismatch", pos)
                return
            if kind == FULL:
                if frags:
                    self._corrupt("FULL fragment inside a record", pos)
                    return
                self.end_offset = end
                yield pos, payload
            elif kind == FIRST:
                if frags:
                    self._corrupt("FIRST fragment inside a record", pos)
                    return
                rec_start = pos
                frags.append((pos + HEADER_SIZE, end))
            elif kind == MIDDLE:
                if not frags:
                    self._corrupt("MIDDLE fragment without FIRST", pos)
                    return
                frags.append((pos + HEADER_SIZE, end))
            else:
                if not frags:
                    self._corrupt("LAST fragment without FIRST", pos)
                    return
                frags.append((pos + HEADER_SIZE, end))
                record = bytearray(sum(b - a for a, b in frags))
                at = 0
                for a, b in frags:
                    record[at : at + b - a] = m[a:b]
                    at += b - a
                frags.clear()
                self.end_offset = end
                yield rec_start, record
            pos = end
        if frags:
            self._torn(rec_start)

    def _torn(self, offset: int) -> None:
        """Remember where a record cut short by the end of the file began."""
        self.torn_offset = offset

    def _corrupt(self, message: str, offset: int) -> None:
        if self.paranoid:
            raise CorruptionError(message, self.path, offset)
        self.torn_offset = offset


def _valid_fragment_after(m: mmap.mmap, start: int, size: int) -> bool:
    """Is there a fragment with a good CRC anywhere in [start, size)? Fragments never
    cross a block boundary, so only the rest of this block needs a byte-by-byte scan;
    each later block must begin with a fragment header."""
    block_end = min(size, (start // BLOCK_SIZE + 1) * BLOCK_SIZE)
    candidates = list(range(start, block_end - HEADER_SIZE + 1))
    candidates += range(block_end, size - HEADER_SIZE + 1, BLOCK_SIZE)
    for p in candidates:
        left = BLOCK_SIZE - p % BLOCK_SIZE
        if left < HEADER_SIZE:
            continue
        crc, n, kind = _HEADER.unpack_from(m, p)
        if not FULL <= kind <= LAST or n > left - HEADER_SIZE or p + HEADER_SIZE + n > size:
            continue
        if checksum.masked(m[p + HEADER_SIZE : p + HEADER_SIZE + n], _TYPE_CRC[kind]) == crc:
            return True
    return False
