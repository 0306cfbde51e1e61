"""The portable dump file (docs/format/dump.md): every key of a database with its type,
expiry and value, written and read as a stream of checksummed frames.

No I/O of its own beyond `read`/`write` on a binary file object the caller opened
(as h11, the codec is testable with io.BytesIO). Every frame's CRC32C continues the
previous frame's, so a damaged, reordered, dropped or truncated frame is reported as a
CorruptionError naming the file and offset before any of its content is returned.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from crc32c import crc32c

from shalekv.backup.transfer_record import Chunk, Entry, KeyType
from shalekv.engine.checksum import mask
from shalekv.errors import CorruptionError

MAGIC = 0x53484C4B56444D50  # "SHLKVDMP"
FORMAT_VERSION = 1

FRAME_KEY = 0x01
FRAME_CHUNK = 0x02
FRAME_END = 0x03
FRAME_TRAILER = 0x7E

# A frame's payload is cut after it passes this size (an element larger than this
# still goes whole in one frame; a string value is cut into pieces of this size).
FRAME_TARGET = 1 << 20
# Anything larger cannot come from this writer: a Redis element is at most 512 MiB.
MAX_FRAME = (1 << 30) - 1

_HEADER = struct.Struct("<QIIQ")  # magic, version, flags, created_ms
_HEADER_SIZE = _HEADER.size + 4  # + crc
_FRAME_HEAD = struct.Struct("<BI")  # kind, payload length
_CRC = struct.Struct("<I")
_KEY = struct.Struct("<BBqI")  # type, flags, expire_at_ms, key length
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_TRAILER = struct.Struct("<QQ")  # keys, items
_SCORE_LEN = struct.Struct("<dI")
_HAS_EXPIRY = 0x01
_MORE = 0x02  # KEY flag: CHUNK frames and an END frame follow


@dataclass(frozen=True, slots=True)
class DumpInfo:
    """What a complete, intact dump holds (from its header and trailer)."""

    version: int
    created_ms: int
    keys: int
    items: int
    size: int


# ------------------------------------------------------------------ writer


class DumpWriter:
    """Writes a dump to f (opened "wb"): header now, one key per write(), trailer on
    finish(). Memory: one input chunk plus one frame (about FRAME_TARGET bytes)."""

    def __init__(self, f: BinaryIO, created_ms: int | None = None) -> None:
        self._f = f
        created = int(time.time() * 1000) if created_ms is None else created_ms
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, created)
        self._crc = crc32c(head)
        f.write(head + _CRC.pack(mask(self._crc)))
        self.keys = 0
        self.items = 0
        self.size = _HEADER_SIZE
        self._finished = False

    def _frame(self, kind: int, payload: bytes) -> None:
        head = _FRAME_HEAD.pack(kind, len(payload))
        crc = crc32c(payload, crc32c(head, self._crc))
        self._crc = crc
        self._f.write(head)
        self._f.write(payload)
        self._f.write(_CRC.pack(mask(crc)))
        self.size += _FRAME_HEAD.size + len(payload) + 4

    def write(self, entry: Entry) -> int:
        """Write one key, consuming entry.chunks; returns its item count. A key with
        no items (a collection that vanished while read) is written as nothing.

        A key whose items fit in one frame is that one KEY frame; a larger one is a
        KEY frame flagged MORE holding the first items, CHUNK frames, and an END."""
        kind = KeyType(entry.type)
        encode = _ENCODERS[kind]
        exp = entry.expire_at_ms
        key = bytes(entry.key)
        flags = 0 if exp is None else _HAS_EXPIRY
        items = 0
        parts: list[bytes] = []
        n = 0
        size = 0
        for chunk in entry.chunks:
            if kind is KeyType.STRING:
                chunk = _cut_pieces(chunk)
            for item in chunk:
                b = encode(item)
                parts.append(b)
                n += 1
                size += len(b)
                if size >= FRAME_TARGET:
                    body = _U32.pack(n) + b"".join(parts)
                    if items == 0:
                        head = _KEY.pack(kind, flags | _MORE, exp or 0, len(key)) + key
                        self._frame(FRAME_KEY, head + body)
                    else:
                        self._frame(FRAME_CHUNK, body)
                    items += n
                    parts, n, size = [], 0, 0
        if items == 0:
            if n == 0:
                return 0
            head = _KEY.pack(kind, flags, exp or 0, len(key)) + key
            self._frame(FRAME_KEY, head + _U32.pack(n) + b"".join(parts))
            items = n
        else:
            if n:
                self._frame(FRAME_CHUNK, _U32.pack(n) + b"".join(parts))
                items += n
            self._frame(FRAME_END, _U64.pack(items))
        self.keys += 1
        self.items += items
        return items

    def finish(self) -> None:
        """Write the trailer (key and item counts). The file is complete after this;
        the caller flushes, fsyncs and closes it."""
        if not self._finished:
            self._frame(FRAME_TRAILER, _TRAILER.pack(self.keys, self.items))
            self._finished = True


def _cut_pieces(chunk: Chunk) -> Chunk:
    if all(len(p) <= FRAME_TARGET for p in chunk):
        return chunk
    out: Chunk = []
    for p in chunk:
        mv = memoryview(p)
        out.extend(bytes(mv[i : i + FRAME_TARGET]) for i in range(0, len(p), FRAME_TARGET))
        if not p:
            out.append(b"")
    return out


def _enc_bytes(x: bytes) -> bytes:
    return _U32.pack(len(x)) + x


def _enc_pair(fv: tuple[bytes, bytes]) -> bytes:
    f, v = fv
    return _U32.pack(len(f)) + f + _U32.pack(len(v)) + v


def _enc_scored(ms: tuple[bytes, float]) -> bytes:
    m, s = ms
    s = float(s)
    if math.isnan(s):
        raise ValueError("a sorted-set score cannot be NaN")
    return _SCORE_LEN.pack(s, len(m)) + m


_ENCODERS: dict[KeyType, Callable[[Any], bytes]] = {
    KeyType.STRING: _enc_bytes,
    KeyType.LIST: _enc_bytes,
    KeyType.SET: _enc_bytes,
    KeyType.HASH: _enc_pair,
    KeyType.ZSET: _enc_scored,
}


# ------------------------------------------------------------------ reader


class DumpReader:
    """Reads a dump from f (opened "rb"). Iterating yields Entry objects; their chunks
    are read lazily from f, so at most one frame is in memory. Raises CorruptionError
    (path, offset) at the first damaged frame, before returning anything from it."""

    def __init__(self, f: BinaryIO, path: str = "<dump>") -> None:
        self._f = f
        self.path = path
        head = f.read(_HEADER_SIZE)
        if len(head) < _HEADER_SIZE:
            raise CorruptionError("truncated header: not a dump file", path, 0)
        magic, version, _flags, created = _HEADER.unpack_from(head)
        if magic != MAGIC:
            raise CorruptionError(f"bad magic {magic:#018x}: not a dump file", path, 0)
        crc = crc32c(head[: _HEADER.size])
        if mask(crc) != _CRC.unpack_from(head, _HEADER.size)[0]:
            raise CorruptionError("header checksum mismatch", path, 0)
        if version != FORMAT_VERSION:
            raise CorruptionError(
                f"unsupported dump format version {version} (this reader: {FORMAT_VERSION})",
                path,
                8,
            )
        self.version = version
        self.created_ms = created
        self._crc = crc
        self.offset = _HEADER_SIZE
        self.keys = 0
        self.items = 0
        self._done = False

    def _frame(self) -> tuple[int, memoryview, int]:
        """The next frame: (kind, payload, offset), its checksum verified."""
        at = self.offset
        head = self._f.read(_FRAME_HEAD.size)
        if len(head) < _FRAME_HEAD.size:
            raise CorruptionError("truncated: the file ends before its trailer", self.path, at)
        kind, length = _FRAME_HEAD.unpack(head)
        if kind not in (FRAME_KEY, FRAME_CHUNK, FRAME_END, FRAME_TRAILER):
            raise CorruptionError(f"unknown frame kind {kind:#04x}", self.path, at)
        if length > MAX_FRAME:
            raise CorruptionError(f"frame length {length} out of range", self.path, at)
        body = self._f.read(length + 4)
        if len(body) < length + 4:
            raise CorruptionError("truncated frame: the file ends inside it", self.path, at)
        mv = memoryview(body)
        payload = mv[:length]
        crc = crc32c(payload, crc32c(head, self._crc))
        if mask(crc) != _CRC.unpack_from(body, length)[0]:
            raise CorruptionError("frame checksum mismatch", self.path, at)
        self._crc = crc
        self.offset = at + _FRAME_HEAD.size + length + 4
        return kind, payload, at

    def __iter__(self) -> Iterator[Entry]:
        pending: Iterator[Chunk] | None = None
        while True:
            if pending is not None:
                for _ in pending:  # the consumer did not read all chunks: skip them
                    pass
                pending = None
            kind, payload, at = self._frame()
            if kind == FRAME_TRAILER:
                self._trailer(payload, at)
                return
            if kind != FRAME_KEY:
                raise CorruptionError(
                    f"frame kind {kind:#04x} where a key was expected", self.path, at
                )
            if len(payload) < _KEY.size:
                raise CorruptionError("key frame too short", self.path, at)
            t, flags, exp, klen = _KEY.unpack_from(payload)
            end = _KEY.size + klen
            if end > len(payload) or flags & ~(_HAS_EXPIRY | _MORE):
                raise CorruptionError("bad key frame header", self.path, at)
            try:
                kt = KeyType(t)
            except ValueError:
                raise CorruptionError(f"unknown key type {t}", self.path, at) from None
            first = _DECODERS[kt](payload[end:], self.path, at)
            expire_at = exp if flags & _HAS_EXPIRY else None
            if flags & _MORE:
                pending = self._chunks(kt, first)
            else:
                if not first:
                    raise CorruptionError("a key with no items", self.path, at)
                self.keys += 1
                self.items += len(first)
                pending = iter((first,))
            yield Entry(bytes(payload[_KEY.size : end]), kt, expire_at, pending)

    def _chunks(self, kt: KeyType, first: Chunk) -> Iterator[Chunk]:
        decode = _DECODERS[kt]
        items = len(first)
        if first:
            yield first
        while True:
            kind, payload, at = self._frame()
            if kind == FRAME_CHUNK:
                chunk = decode(payload, self.path, at)
                items += len(chunk)
                yield chunk
            elif kind == FRAME_END:
                if len(payload) != 8 or _U64.unpack(payload)[0] != items or items == 0:
                    raise CorruptionError("key end does not match its chunks", self.path, at)
                self.keys += 1
                self.items += items
                return
            else:
                raise CorruptionError(f"frame kind {kind:#04x} inside a key", self.path, at)

    def _trailer(self, payload: memoryview, at: int) -> None:
        if len(payload) != _TRAILER.size:
            raise CorruptionError("trailer has the wrong size", self.path, at)
        keys, items = _TRAILER.unpack(payload)
        if (keys, items) != (self.keys, self.items):
            raise CorruptionError(
                f"trailer counts {keys} keys/{items} items, the file holds "
                f"{self.keys}/{self.items}",
                self.path,
                at,
            )
        if self._f.read(1):
            raise CorruptionError("data after the trailer", self.path, self.offset)
        self._done = True

    def info(self) -> DumpInfo:
        """Header and trailer facts (after iterating to the end)."""
        if not self._done:
            raise ValueError("read the dump to its end first")
        return DumpInfo(self.version, self.created_ms, self.keys, self.items, self.offset)


def verify(f: BinaryIO, path: str = "<dump>") -> DumpInfo:
    """Read a whole dump checking every frame; CorruptionError at the first damage."""
    r = DumpReader(f, path)
    for _ in r:
        pass
    return r.info()


def _truncated(path: str, at: int) -> CorruptionError:
    return CorruptionError("chunk items overrun the frame", path, at)


def _dec_bytes(p: memoryview, path: str, at: int) -> Chunk:
    return _dec_bytes_n(p, path, at, 1)


def _dec_pairs(p: memoryview, path: str, at: int) -> Chunk:
    flat = _dec_bytes_n(p, path, at, 2)
    return list(zip(flat[0::2], flat[1::2], strict=True))


def _dec_bytes_n(p: memoryview, path: str, at: int, per: int) -> list[bytes]:
    if len(p) < 4:
        raise _truncated(path, at)
    (n,) = _U32.unpack_from(p)
    out: list[bytes] = []
    i = 4
    end = len(p)
    unpack = _U32.unpack_from
    for _ in range(n * per):
        if i + 4 > end:
            raise _truncated(path, at)
        (ln,) = unpack(p, i)
        i += 4
        if i + ln > end:
            raise _truncated(path, at)
        out.append(bytes(p[i : i + ln]))
        i += ln
    if i != end:
        raise _truncated(path, at)
    return out


def _dec_scored(p: memoryview, path: str, at: int) -> Chunk:
    if len(p) < 4:
        raise _truncated(path, at)
    (n,) = _U32.unpack_from(p)
    out: Chunk = []
    i = 4
    end = len(p)
    unpack = _SCORE_LEN.unpack_from
    for _ in range(n):
        if i + 12 > end:
            raise _truncated(path, at)
        s, ln = unpack(p, i)
        i += 12
        if i + ln > end or math.isnan(s):
            raise CorruptionError("bad sorted-set item", path, at)
        out.append((bytes(p[i : i + ln]), s))
        i += ln
    if i != end:
        raise _truncated(path, at)
    return out


_DECODERS: dict[KeyType, Callable[[memoryview, str, int], Chunk]] = {
    KeyType.STRING: _dec_bytes,
    KeyType.LIST: _dec_bytes,
    KeyType.SET: _dec_bytes,
    KeyType.HASH: _dec_pairs,
    KeyType.ZSET: _dec_scored,
}
