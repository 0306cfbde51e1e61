"""Strings (Redis t_string.c): the value lives inline in the metadata record, so a GET
is one engine lookup. Functions take parsed arguments and return Python values."""

from __future__ import annotations

from shalekv.errors import (
    BIT_OFFSET,
    INCR_NAN,
    NOT_FLOAT,
    OVERFLOW,
    STRING_TOO_LONG,
    ResponseError,
    WrongTypeError,
)
from shalekv.types import encoding as enc
from shalekv.types.keyspace import Txn
from shalekv.types.numbers import (
    INT64_MAX,
    INT64_MIN,
    add_long_double,
    format_long_double,
    parse_int,
    parse_long_double,
)

H = enc.STRING_HEADER
MAX_STRING = 512 * 1024 * 1024  # proto-max-bulk-len
_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


def get(t: Txn, db: int, key: bytes) -> bytes | None:
    """O(1): one engine lookup."""
    m = t.lookup(db, key, enc.STRING)
    return None if m is None else m[H:]


def set_value(
    t: Txn,
    db: int,
    key: bytes,
    value: bytes,
    expire_at: int = 0,
    keepttl: bool = False,
    nx: bool = False,
    xx: bool = False,
    get_old: bool = False,
) -> tuple[bool, bytes | None]:
    """SET's one implementation (SETNX, SETEX, GETSET, MSET go through it): (was set,
    old value when get_old)."""
    m = t.meta(db, key)
    old = None
    if get_old and m is not None:
        if m[0] != enc.STRING:
            raise WrongTypeError()
        old = m[H:]
    if (nx and m is not None) or (xx and m is None):
        return False, old
    if keepttl and m is not None:
        expire_at = enc.expire_of(m)
    if expire_at and expire_at < t.now:
        # Already in the past: Redis deletes the key and still replies OK.
        if m is not None:
            t.del_key(db, key, m)
        return True, old
    t.set_meta(db, key, enc.encode_string(value, expire_at), m)
    return True, old


def getdel(t: Txn, db: int, key: bytes) -> bytes | None:
    m = t.lookup(db, key, enc.STRING)
    if m is None:
        return None
    t.del_key(db, key, m)
    return m[H:]


def getex(t: Txn, db: int, key: bytes, expire_at: int | None, persist: bool) -> bytes | None:
    m = t.lookup(db, key, enc.STRING)
    if m is None:
        return None
    if persist and enc.expire_of(m):
        t.set_meta(db, key, enc.with_expire(m, 0), m)
    elif expire_at is not None:
        if expire_at < t.now:
            t.del_key(db, key, m)
        else:
            t.set_meta(db, key, enc.with_expire(m, expire_at), m)
    return m[H:]


def _put(t: Txn, db: int, key: bytes, m: bytes | None, value: bytes) -> None:
    """Replace a string's value, keeping its TTL."""
    exp = enc.expire_of(m) if m is not None else 0
    t.set_meta(db, key, enc.encode_string(value, exp), m)


def append(t: Txn, db: int, key: bytes, value: bytes) -> int:
    m = t.lookup(db, key, enc.STRING)
    cur = m[H:] if m is not None else b""
    if len(cur) + len(value) > MAX_STRING:
        raise ResponseError(STRING_TOO_LONG)
    _put(t, db, key, m, cur + value)
    return len(cur) + len(value)


def strlen(t: Txn, db: int, key: bytes) -> int:
    v = get(t, db, key)
    return 0 if v is None else len(v)


def _range(start: int, end: int, n: int) -> tuple[int, int] | None:
    """Redis's inclusive [start, end] with negative indexes, clamped; None if empty."""
    if start < 0 and end < 0 and start > end:
        return None
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = max(start, 0)
    end = max(end, 0)
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return None
    return start, end


def getrange(t: Txn, db: int, key: bytes, start: int, end: int) -> bytes:
    v = get(t, db, key) or b""
    r = _range(start, end, len(v))
    return b"" if r is None else v[r[0] : r[1] + 1]


def setrange(t: Txn, db: int, key: bytes, offset: int, value: bytes) -> int:
    if offset < 0:
        raise ResponseError("offset is out of range")
    m = t.lookup(db, key, enc.STRING)
    cur = m[H:] if m is not None else b""
    if not value:
        return len(cur)
    if offset + len(value) > MAX_STRING:
        raise ResponseError(STRING_TOO_LONG)
    if len(cur) < offset:
        cur = cur + bytes(offset - len(cur))
    new = cur[:offset] + value + cur[offset + len(value) :]
    _put(t, db, key, m, new)
    return len(new)


def incrby(t: Txn, db: int, key: bytes, delta: int) -> int:
    m = t.lookup(db, key, enc.STRING)
    cur = parse_int(m[H:]) if m is not None else 0
    new = cur + delta
    if not INT64_MIN <= new <= INT64_MAX:
        raise ResponseError(OVERFLOW)
    _put(t, db, key, m, str(new).encode())
    return new


def incrbyfloat(t: Txn, db: int, key: bytes, delta: bytes) -> bytes:
    m = t.lookup(db, key, enc.STRING)
    incr = parse_long_double(delta)
    cur = parse_long_double(m[H:], NOT_FLOAT) if m is not None else parse_long_double(b"0")
    new = add_long_double(cur, incr)
    if new is None:
        raise ResponseError(INCR_NAN)
    out = format_long_double(new)
    _put(t, db, key, m, out)
    return out


def mget(t: Txn, db: int, keys: list[bytes]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for key in keys:
        m = t.meta(db, key)
        out.append(m[H:] if m is not None and m[0] == enc.STRING else None)
    return out


def mset(t: Txn, db: int, pairs: list[tuple[bytes, bytes]], nx: bool = False) -> bool:
    if nx and any(t.meta(db, k) is not None for k, _ in pairs):
        return False
    for k, v in pairs:
        set_value(t, db, k, v)
    return True


# ------------------------------------------------------------------ bits


def setbit(t: Txn, db: int, key: bytes, offset: int, bit: int) -> int:
    if not 0 <= offset < MAX_STRING * 8:
        raise ResponseError(BIT_OFFSET)
    m = t.lookup(db, key, enc.STRING)
    cur = bytearray(m[H:] if m is not None else b"")
    byte = offset >> 3
    if len(cur) <= byte:
        cur.extend(bytes(byte + 1 - len(cur)))
    mask = 0x80 >> (offset & 7)
    old = 1 if cur[byte] & mask else 0
    if bit:
        cur[byte] |= mask
    else:
        cur[byte] &= ~mask & 0xFF
    _put(t, db, key, m, bytes(cur))
    return old


def getbit(t: Txn, db: int, key: bytes, offset: int) -> int:
    if not 0 <= offset < MAX_STRING * 8:
        raise ResponseError(BIT_OFFSET)
    v = get(t, db, key) or b""
    byte = offset >> 3
    if byte >= len(v):
        return 0
    return 1 if v[byte] & (0x80 >> (offset & 7)) else 0


def _bit_range(v: bytes, start: int, end: int, bits: bool) -> tuple[int, int] | None:
    """Inclusive bit range [first, last] of v selected by start/end (bytes or bits)."""
    n = len(v) * 8 if bits else len(v)
    r = _range(start, end, n)
    if r is None:
        return None
    if bits:
        return r
    return r[0] * 8, r[1] * 8 + 7


def bitcount(
    t: Txn, db: int, key: bytes, start: int | None, end: int | None, bits: bool = False
) -> int:
    v = get(t, db, key) or b""
    if start is None or end is None:
        return sum(v.translate(_POPCOUNT)) if v else 0
    r = _bit_range(v, start, end, bits)
    if r is None:
        return 0
    first, last = r
    return (
        sum(1 for i in range(first, last + 1) if v[i >> 3] & (0x80 >> (i & 7)))
        if bits
        else (sum(v[first >> 3 : (last >> 3) + 1].translate(_POPCOUNT)))
    )


def bitpos(
    t: Txn,
    db: int,
    key: bytes,
    bit: int,
    start: int | None,
    end: int | None,
    bits: bool = False,
) -> int:
    v = get(t, db, key)
    if v is None:
        return -1 if bit else 0
    end_given = end is not None
    r = _bit_range(v, start or 0, end if end is not None else -1, bits)
    if r is None:
        return -1
    first, last = r
    want = 1 if bit else 0
    i = first
    # Skip whole bytes that cannot hold the bit, then test bit by bit.
    skip = 0x00 if want else 0xFF
    while i <= last:
        if i & 7 == 0 and i + 7 <= last and v[i >> 3] == skip:
            i += 8
            continue
        if (1 if v[i >> 3] & (0x80 >> (i & 7)) else 0) == want:
            return i
        i += 1
    if not want and not end_given:
        # Looking for a clear bit with no end: the string is padded with zeros.
        return len(v) * 8
    return -1


def bitop(t: Txn, db: int, op: str, dest: bytes, keys: list[bytes]) -> int:
    values = []
    for key in keys:
        m = t.lookup(db, key, enc.STRING)
        values.append(m[H:] if m is not None else b"")
    size = max((len(v) for v in values), default=0)
    if op == "NOT":
        out = bytes(b ^ 0xFF for b in values[0])
    else:
        ints = [int.from_bytes(v.ljust(size, b"\x00"), "big") for v in values]
        acc = ints[0]
        for x in ints[1:]:
            if op == "AND":
                acc &= x
            elif op == "OR":
                acc |= x
            else:
                acc ^= x
        out = acc.to_bytes(size, "big")
    old = t.meta(db, dest)
    if not out:
        if old is not None:
            t.del_key(db, dest, old)
        return 0
    t.set_meta(db, dest, enc.encode_string(out, 0), old)
    return len(out)
