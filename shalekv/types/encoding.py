"""How Redis values map onto engine keys (docs/format/encoding.md is the byte layout).

Metadata key:  b"M" | db (u16 BE) | user key            -> metadata value
Element key:   b"E" | db | klen (u32 BE) | user key | version (u64 BE) | sub-key
Score index:   b"S" | db | klen | user key | version | score (8, order-preserving) | member
Reserved:      b"\\x00" ... (store-wide records, e.g. the version allocator)

A collection's elements carry the version of its metadata, so DEL, overwrite and
expiry drop only the metadata (O(1)); elements of a version no metadata names are
garbage the compaction filter reclaims, as in Apache Kvrocks.
"""

from __future__ import annotations

import struct

FORMAT_VERSION = 1

# Type bytes: on-disk enums, never renumbered (docs/format/encoding.md).
STRING = 1
HASH = 2
SET = 3
LIST = 4
ZSET = 5
TYPE_NAMES = {STRING: "string", HASH: "hash", SET: "set", LIST: "list", ZSET: "zset"}

META = b"M"
ELEM = b"E"
SCORE = b"S"
RESERVED = b"\x00"
VERSION_KEY = b"\x00version"
# Every engine key starts with a one-byte class (M, E, S, X or the reserved 0): the
# store opens its engine with tables partitioned by it (Options.partition_prefix_len),
# so that writes to one class never make compactions rewrite another's files.
KEY_CLASS_PREFIX = 1

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U64X2 = struct.Struct(">QQ")
_E_DB_KLEN = struct.Struct(">cHI").pack  # (ELEM, db, len(key)): an element key's head
_DOUBLE = struct.Struct(">d")
# type, format version, expire-at (ms since the epoch, 0 = none)
HEADER = struct.Struct(">BBq")
# HEADER + version + element count
COLL = struct.Struct(">BBqQQ")
# COLL + head + tail (list: elements live at indexes [head, tail))
LISTMETA = struct.Struct(">BBqQQQQ")
LIST_MID = 1 << 63  # a new list's head and tail: room to grow both ways

STRING_HEADER = HEADER.size


def meta_key(db: int, key: bytes) -> bytes:
    return META + _U16.pack(db) + key


def meta_range(db: int) -> tuple[bytes, bytes]:
    """[lower, upper) of every metadata key of one logical database."""
    return META + _U16.pack(db), META + _U16.pack(db + 1)


def db_range(db: int) -> list[tuple[bytes, bytes]]:
    """Every engine key range of one logical database (for FLUSHDB)."""
    lo, hi = _U16.pack(db), _U16.pack(db + 1)
    return [(p + lo, p + hi) for p in (META, ELEM, SCORE)]


def elem_prefix(db: int, key: bytes, version: int) -> bytes:
    """Every element key of one collection version starts with this."""
    return _E_DB_KLEN(ELEM, db, len(key)) + key + _U64.pack(version)


def list_elem_key(db: int, key: bytes, version: int, index: int) -> bytes:
    """elem_prefix(db, key, version) + the u64 index: a list element's key in one
    step (a pop's)."""
    return _E_DB_KLEN(ELEM, db, len(key)) + key + _U64X2.pack(version, index)


def score_prefix(db: int, key: bytes, version: int) -> bytes:
    return SCORE + _U16.pack(db) + _U32.pack(len(key)) + key + _U64.pack(version)


def parse_sub_key(k: bytes) -> tuple[int, bytes, int, int]:
    """(db, user key, version, offset of the sub-key) of an element or score key."""
    db = _U16.unpack_from(k, 1)[0]
    klen = _U32.unpack_from(k, 3)[0]
    end = 7 + klen
    return db, k[7:end], _U64.unpack_from(k, end)[0], end + 8


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with prefix."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        raise ValueError("no upper bound for an all-0xff prefix")
    p[-1] += 1
    return bytes(p)


# ------------------------------------------------------------------ metadata values


def encode_string(value: bytes, expire_at: int) -> bytes:
    return HEADER.pack(STRING, FORMAT_VERSION, expire_at) + value


def encode_coll(kind: int, expire_at: int, version: int, count: int) -> bytes:
    return COLL.pack(kind, FORMAT_VERSION, expire_at, version, count)


def encode_list(expire_at: int, version: int, count: int, head: int, tail: int) -> bytes:
    return LISTMETA.pack(LIST, FORMAT_VERSION, expire_at, version, count, head, tail)


def list_bounds(meta: bytes) -> tuple[int, int]:
    """A list's (head, tail) from its metadata: its elements are the indexes in
    [head, tail); element keys outside are garbage (pops, LTRIM, LREM)."""
    return _U64X2.unpack_from(meta, 26)  # type: ignore[return-value]


def expire_of(meta: bytes) -> int:
    return HEADER.unpack_from(meta)[2]


def with_expire(meta: bytes, expire_at: int) -> bytes:
    """The same metadata with another expire-at."""
    return meta[:2] + struct.pack(">q", expire_at) + meta[10:]


# ------------------------------------------------------------------ numbers

_SIGN = 1 << 63
_MASK = (1 << 64) - 1


def encode_score(score: float) -> bytes:
    """8 bytes that sort as the doubles do (IEEE-754 with the sign flipped, or all
    bits flipped for negatives). -0.0 sorts as 0.0, as Redis compares them."""
    if score == 0.0:
        score = 0.0
    bits = _U64.unpack(_DOUBLE.pack(score))[0]
    bits = (bits ^ _MASK) if bits & _SIGN else (bits | _SIGN)
    return _U64.pack(bits)


def decode_score(b: bytes, offset: int = 0) -> float:
    bits = _U64.unpack_from(b, offset)[0]
    bits = (bits ^ _SIGN) if bits & _SIGN else (bits ^ _MASK)
    return float(_DOUBLE.unpack(_U64.pack(bits))[0])


def pack_double(x: float) -> bytes:
    return _DOUBLE.pack(x)


def unpack_double(b: bytes) -> float:
    return float(_DOUBLE.unpack(b)[0])


def pack_u64(x: int) -> bytes:
    return _U64.pack(x)


def unpack_u64(b: bytes, offset: int = 0) -> int:
    return int(_U64.unpack_from(b, offset)[0])
