"""WriteBatch: a group of updates applied atomically, and its WAL record encoding.

Record layout (little-endian), see docs/format/wal.md:
  sequence u64 | count u32 | count x entry
  entry: PUT / RANGE_DELETE: kind u8 | key_len u32 | value_len u32 | key | value
         DELETE:             kind u8 | key_len u32 | key
  (a range deletion's "value" is the end of its range)
"""

from __future__ import annotations

import struct

from shalekv.errors import CorruptionError, InvalidArgumentError

# Values shorter than this are joined into their record; longer ones stay a part of
# their own, which the WAL writer never copies.
JOIN_VALUE_LIMIT = 4096

DELETE = 0
PUT = 1
BLOB_INDEX = 2  # only inside SSTables: the value is a pointer into a blob file
RANGE_DELETE = 3

_HEADER = struct.Struct("<QI")
_DEL_HEAD = struct.Struct("<BI")
_PUT_HEAD = struct.Struct("<BII")
_pack_del = _DEL_HEAD.pack
_pack_put = _PUT_HEAD.pack
MAX_KEY_SIZE = (1 << 32) - 1
MAX_VALUE_SIZE = (1 << 32) - 1


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise InvalidArgumentError(f"{what} must be bytes, not {type(data).__name__}")


class WriteBatch:
    """Updates applied all-or-nothing by DB.write(). Not thread-safe; build then write.

    Encoded as ops are added (as LevelDB's WriteBatch rep), so writing it costs one
    join; values of 4 KiB and more are kept as separate parts, never copied."""

    __slots__ = ("ops", "parts", "byte_size", "deletions", "range_deletions")

    def __init__(self) -> None:
        self.ops: list[tuple[int, bytes, bytes | None]] = []
        self.parts: list[bytes] = []
        self.byte_size = 0
        self.deletions = 0
        self.range_deletions = 0

    def put(self, key: bytes, value: bytes) -> WriteBatch:
        if type(key) is not bytes:
            key = _as_bytes(key, "key")
        if type(value) is not bytes:
            value = _as_bytes(value, "value")
        klen = len(key)
        vlen = len(value)
        if klen > MAX_KEY_SIZE or vlen > MAX_VALUE_SIZE:
            raise InvalidArgumentError("key or value larger than 4 GiB")
        self.ops.append((PUT, key, value))
        if vlen < JOIN_VALUE_LIMIT:
            self.parts.append(_PUT_HEAD.pack(PUT, klen, vlen) + key + value)
        else:
            self.parts += (_PUT_HEAD.pack(PUT, klen, vlen) + key, value)
        self.byte_size += klen + vlen + 9
        return self

    def delete(self, key: bytes) -> WriteBatch:
        if type(key) is not bytes:
            key = _as_bytes(key, "key")
        if len(key) > MAX_KEY_SIZE:
            raise InvalidArgumentError("key larger than 4 GiB")
        self.ops.append((DELETE, key, None))
        self.parts.append(_DEL_HEAD.pack(DELETE, len(key)) + key)
        self.byte_size += len(key) + 5
        self.deletions += 1
        return self

    def delete_range(self, start: bytes, end: bytes) -> WriteBatch:
        """Delete every key in [start, end)."""
        start = _as_bytes(start, "start")
        end = _as_bytes(end, "end")
        if start >= end:
            raise InvalidArgumentError("delete_range needs start < end")
        if len(start) > MAX_KEY_SIZE or len(end) > MAX_KEY_SIZE:
            raise InvalidArgumentError("key larger than 4 GiB")
        self.ops.append((RANGE_DELETE, start, end))
        self.range_deletions += 1
        self.parts.append(_PUT_HEAD.pack(RANGE_DELETE, len(start), len(end)) + start + end)
        self.byte_size += len(start) + len(end) + 9
        return self

    def put_items(self, items: dict[bytes, bytes | None]) -> WriteBatch:
        """put() each key of items with its value, delete() those mapped to None."""
        for k, v in items.items():
            if v is None:
                self.delete(k)
            else:
                self.put(k, v)
        return self

    def extend(self, other: WriteBatch) -> None:
        """Append other's updates (group commit merges a group into one record)."""
        self.ops += other.ops
        self.parts += other.parts
        self.byte_size += other.byte_size
        self.deletions += other.deletions
        self.range_deletions += other.range_deletions

    def clear(self) -> None:
        self.ops.clear()
        self.parts.clear()
        self.byte_size = 0
        self.deletions = 0
        self.range_deletions = 0

    def __len__(self) -> int:
        return len(self.ops)

    def encode(self, sequence: int) -> list[bytes]:
        """The WAL record as a list of parts: header, then the entries."""
        return [_HEADER.pack(sequence, len(self.ops)), *self.parts]


def encode_items(items: dict[bytes, bytes | None]) -> tuple[list[bytes], int, int]:
    """The WAL record of a batch given as {key: value, or None to delete} (each key
    once, bytes only: a transaction's writes), built without a WriteBatch: (parts,
    byte_size, deletions) as WriteBatch counts them; parts[0], the header, is left
    empty for `header(sequence, len(items))`, set once the sequence is known."""
    parts = [b""]
    dels = 0
    append = parts.append
    for k, v in items.items():
        if v is None:
            append(_pack_del(DELETE, len(k)) + k)
            dels += 1
        elif len(v) < JOIN_VALUE_LIMIT:
            append(_pack_put(PUT, len(k), len(v)) + k + v)
        else:  # a large value stays a part of its own: the WAL writer never copies it
            parts += (_pack_put(PUT, len(k), len(v)) + k, v)
    # byte_size counts an op's header, key and value: exactly its parts' lengths
    return parts, sum(map(len, parts)), dels


header = _HEADER.pack  # header(sequence, count): a record's first bytes


SINGLE_PUT = struct.Struct("<QIBII")  # record header of a batch of one put


def encode_put(sequence: int, key: bytes, value: bytes) -> list[bytes]:
    """The record of a single put, without building a WriteBatch (the hot path).
    A large value stays a separate part: the WAL writer never copies it."""
    head = SINGLE_PUT.pack(sequence, 1, PUT, len(key), len(value)) + key
    if len(value) >= JOIN_VALUE_LIMIT:
        return [head, value]
    return [head + value]


def decode(
    record: bytes | bytearray, path: str = "?", offset: int = 0, view_from: int = 0
) -> tuple[int, list[tuple[int, bytes, bytes | None]]]:
    """Parse a record into (first sequence, ops). Each op i has sequence first + i.
    With view_from > 0, values of at least that many bytes come back as memoryviews
    into the record instead of copies (a flush writing them to a blob file)."""
    try:
        seq, count = _HEADER.unpack_from(record, 0)
        pos = _HEADER.size
        ops: list[tuple[int, bytes, bytes | None]] = []
        mv = memoryview(record)
        for _ in range(count):
            kind, klen = _DEL_HEAD.unpack_from(record, pos)
            pos += 5
            value: bytes | None = None
            if kind == DELETE:
                key = bytes(mv[pos : pos + klen])
                pos += klen
            elif kind == PUT or kind == RANGE_DELETE:
                (vlen,) = struct.unpack_from("<I", record, pos)
                pos += 4
                key = bytes(mv[pos : pos + klen])
                pos += klen
                if view_from and vlen >= view_from:
                    value = mv[pos : pos + vlen]  # type: ignore[assignment]
                else:
                    value = bytes(mv[pos : pos + vlen])
                pos += vlen
            else:
                raise CorruptionError(f"unknown batch entry kind {kind}", path, offset)
            if pos > len(record):
                raise CorruptionError("batch entry runs past the record", path, offset)
            ops.append((kind, key, value))
        if pos != len(record):
            raise CorruptionError("trailing bytes after batch entries", path, offset)
    except struct.error as e:
        raise CorruptionError(f"truncated batch record ({e})", path, offset) from None
    return seq, ops
