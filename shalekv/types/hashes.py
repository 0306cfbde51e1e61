"""Hashes (Redis t_hash.c) on the engine: metadata (type, expire, version, count) plus
one element key per field (`elem_prefix + field -> value`), sorted by field.

HGET is two engine lookups (metadata, field); HSET adds one lookup per field to keep
the count exact, none when the hash is new.
"""

from __future__ import annotations

import struct

from shalekv.errors import (
    HASH_NOT_FLOAT,
    HASH_NOT_INTEGER,
    INCR_NAN,
    NAN_OR_INF,
    OVERFLOW,
    ResponseError,
)
from shalekv.types import encoding as enc
from shalekv.types.collection import (
    elements,
    random_elements,
    remove_elements,
    scan_elements,
    version_count,
    write_count,
)
from shalekv.types.keyspace import Txn
from shalekv.types.numbers import (
    INT64_MAX,
    INT64_MIN,
    add_long_double,
    format_long_double,
    parse_int,
    parse_long_double,
)

HASH = enc.HASH
_VERSION = struct.Struct(">Q")  # at offset 10 of collection metadata (enc.COLL)


def _prefix(db: int, key: bytes, m: bytes) -> bytes:
    return enc.elem_prefix(db, key, _VERSION.unpack_from(m, 10)[0])


def _write_meta(t: Txn, db: int, key: bytes, m: bytes | None, version: int, count: int) -> None:
    write_count(t, db, key, HASH, m, version, count)


def hset(t: Txn, db: int, key: bytes, pairs: list[tuple[bytes, bytes]], nx: bool = False) -> int:
    """Set fields (HSET/HMSET; HSETNX with nx: only absent fields). Returns how many
    fields are new. O(M)."""
    m = t.lookup(db, key, HASH)
    if m is None:
        version = t.store.new_version()
        p = enc.elem_prefix(db, key, version)
        fields: dict[bytes, bytes] = {}
        for f, v in pairs:  # a new version has no elements yet: no lookups
            if not (nx and f in fields):
                fields[f] = v
        for f, v in fields.items():
            t.put(p + f, v)
        _write_meta(t, db, key, None, version, len(fields))
        return len(fields)
    version, count = version_count(m)
    p = enc.elem_prefix(db, key, version)
    added = 0
    for f, v in pairs:
        k = p + f
        if t.get(k) is None:
            added += 1
        elif nx:
            continue
        t.put(k, v)
    if added:
        _write_meta(t, db, key, m, version, count + added)
    return added


def hget(t: Txn, db: int, key: bytes, field: bytes) -> bytes | None:
    """O(1): two engine lookups."""
    m = t.lookup(db, key, HASH)
    if m is None:
        return None
    return t.get(_prefix(db, key, m) + field)


def hmget(t: Txn, db: int, key: bytes, fields: list[bytes]) -> list[bytes | None]:
    m = t.lookup(db, key, HASH)
    if m is None:
        return [None] * len(fields)
    p = _prefix(db, key, m)
    return [t.get(p + f) for f in fields]


def hgetall(t: Txn, db: int, key: bytes) -> list[tuple[bytes, bytes]]:
    """(field, value) pairs in field order (HKEYS/HVALS use the same order). O(N)."""
    m = t.lookup(db, key, HASH)
    if m is None:
        return []
    return list(elements(t, _prefix(db, key, m)))


def hdel(t: Txn, db: int, key: bytes, fields: list[bytes]) -> int:
    return remove_elements(t, db, key, HASH, fields)


def hlen(t: Txn, db: int, key: bytes) -> int:
    """O(1): the count lives in the metadata."""
    m = t.lookup(db, key, HASH)
    return 0 if m is None else version_count(m)[1]


def hstrlen(t: Txn, db: int, key: bytes, field: bytes) -> int:
    v = hget(t, db, key, field)
    return 0 if v is None else len(v)


def _set_one(
    t: Txn, db: int, key: bytes, m: bytes | None, field: bytes, value: bytes, new: bool
) -> None:
    """Set one field (new: it was absent) of a hash whose metadata is m (None: create
    the hash)."""
    if m is None:
        version = t.store.new_version()
        t.put(enc.elem_prefix(db, key, version) + field, value)
        _write_meta(t, db, key, None, version, 1)
        return
    version, count = version_count(m)
    t.put(enc.elem_prefix(db, key, version) + field, value)
    if new:
        _write_meta(t, db, key, m, version, count + 1)


def hincrby(t: Txn, db: int, key: bytes, field: bytes, delta: int) -> int:
    m = t.lookup(db, key, HASH)
    cur = None if m is None else t.get(_prefix(db, key, m) + field)
    old = 0 if cur is None else parse_int(cur, HASH_NOT_INTEGER)
    new = old + delta
    if not INT64_MIN <= new <= INT64_MAX:
        raise ResponseError(OVERFLOW)
    _set_one(t, db, key, m, field, str(new).encode(), cur is None)
    return new


def hincrbyfloat(t: Txn, db: int, key: bytes, field: bytes, delta: bytes) -> bytes:
    """Long-double arithmetic as Redis; the reply is the new value as stored."""
    incr = parse_long_double(delta)
    if isinstance(incr, float):  # +-inf: Redis refuses the increment itself here
        raise ResponseError(NAN_OR_INF)
    m = t.lookup(db, key, HASH)
    cur = None if m is None else t.get(_prefix(db, key, m) + field)
    old = parse_long_double(b"0" if cur is None else cur, HASH_NOT_FLOAT)
    new = add_long_double(old, incr)
    if new is None:
        raise ResponseError(INCR_NAN)
    out = format_long_double(new)
    _set_one(t, db, key, m, field, out, cur is None)
    return out


def hrandfield(t: Txn, db: int, key: bytes, count: int | None) -> list[tuple[bytes, bytes]] | None:
    """count distinct random (field, value) pairs (count >= 0), -count with repetition
    (count < 0), or one pair (count None; None if there is no hash). See
    sets.random_elements for how big hashes are sampled (not uniformly)."""
    m = t.lookup(db, key, HASH)
    if m is None:
        return None if count is None else []
    if count == 0:
        return []
    version, size = version_count(m)
    n = 1 if count is None else abs(count)
    return random_elements(
        t, enc.elem_prefix(db, key, version), size, n, count is None or count > 0
    )


def hscan(
    t: Txn, db: int, key: bytes, after: bytes | None, count: int, match: object = None
) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
    """Up to count fields after the field `after`; (last field examined or None at the
    end, matching pairs). O(log N + count)."""
    m = t.lookup(db, key, HASH)
    if m is None:
        return None, []
    return scan_elements(t, _prefix(db, key, m), after, count, match)
