"""WriteBatch: a group of updates applied atomically, and its WAL record encoding.

Record layout (little-endian), see docs/format/wal.md:
  sequence u64 | count u32 | count x entry
  entry: kind u8 | key_len u32 | key | (PUT: value_len u32 | value)
                                     | (RANGE_DELETE: end_len u32 | end)
"""

from __future__ import annotations

import struct

from shalekv.errors import CorruptionError, InvalidArgumentError

DELETE = 0
PUT = 1
BLOB_INDEX = 2  # only inside SSTables: the value is a pointer into a blob file
RANGE_DELETE = 3

_HEADER = struct.Struct("<QI")
_PUT_HEAD = struct.Struct("<BI")
_LEN = struct.Struct("<I")
MAX_KEY_SIZE = (1 << 32) - 1
MAX_VALUE_SIZE = (1 << 32) - 1


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise InvalidArgumentError(f"{what} must be bytes, not {type(data).__name__}")


class WriteBatch:
    """Updates applied all-or-nothing by DB.write(). Not thread-safe; build then write."""

    __slots__ = ("ops", "byte_size")

    def __init__(self) -> None:
        self.ops: list[tuple[int, bytes, bytes | None]] = []
        self.byte_size = 0

    def put(self, key: bytes, value: bytes) -> WriteBatch:
        key = _as_bytes(key, "key")
        value = _as_bytes(value, "value")
        if len(value) > MAX_VALUE_SIZE:
            raise InvalidArgumentError("value larger than 4 GiB")
        self.ops.append((PUT, key, value))
        self.byte_size += len(key) + len(value) + 9
        return self

    def delete(self, key: bytes) -> WriteBatch:
        key = _as_bytes(key, "key")
        self.ops.append((DELETE, key, None))
        self.byte_size += len(key) + 5
        return self

    def delete_range(self, start: bytes, end: bytes) -> WriteBatch:
        """Delete every key in [start, end)."""
        start = _as_bytes(start, "start")
        end = _as_bytes(end, "end")
        self.ops.append((RANGE_DELETE, start, end))
        self.byte_size += len(start) + len(end) + 9
        return self

    def clear(self) -> None:
        self.ops.clear()
        self.byte_size = 0

    def __len__(self) -> int:
        return len(self.ops)

    def encode(self, sequence: int) -> list[bytes]:
        """The record as a list of parts (so large values are never copied)."""
        parts: list[bytes] = [_HEADER.pack(sequence, len(self.ops))]
        append = parts.append
        for kind, key, value in self.ops:
            if len(key) > MAX_KEY_SIZE:
                raise InvalidArgumentError("key larger than 4 GiB")
            append(_PUT_HEAD.pack(kind, len(key)))
            append(key)
            if value is not None:
                append(_LEN.pack(len(value)))
                append(value)
        return parts


_PUT_RECORD = struct.Struct("<QIBI")


def encode_put(sequence: int, key: bytes, value: bytes) -> bytes:
    """The record of a single put, without building a WriteBatch (the hot path)."""
    return _PUT_RECORD.pack(sequence, 1, PUT, len(key)) + key + _LEN.pack(len(value)) + value


def decode(
    record: bytes, path: str = "?", offset: int = 0
) -> tuple[int, list[tuple[int, bytes, bytes | None]]]:
    """Parse a record into (first sequence, ops). Each op i has sequence first + i."""
    try:
        seq, count = _HEADER.unpack_from(record, 0)
        pos = _HEADER.size
        ops: list[tuple[int, bytes, bytes | None]] = []
        mv = memoryview(record)
        for _ in range(count):
            kind, klen = _PUT_HEAD.unpack_from(record, pos)
            pos += 5
            key = bytes(mv[pos : pos + klen])
            pos += klen
            value: bytes | None = None
            if kind in (PUT, RANGE_DELETE):
                (vlen,) = _LEN.unpack_from(record, pos)
                pos += 4
                value = bytes(mv[pos : pos + vlen])
                pos += vlen
            elif kind != DELETE:
                raise CorruptionError(f"unknown batch entry kind {kind}", path, offset)
            if pos > len(record):
                raise CorruptionError("batch entry runs past the record", path, offset)
            ops.append((kind, key, value))
        if pos != len(record):
            raise CorruptionError("trailing bytes after batch entries", path, offset)
    except struct.error as e:
        raise CorruptionError(f"truncated batch record ({e})", path, offset) from None
    return seq, ops
