"""Helpers shared by the collection types whose elements live under one version
prefix, sorted by sub-key (hashes, sets, sorted sets): element walks, cursor scans
(HSCAN/SSCAN/ZSCAN) and random picks (HRANDFIELD/SRANDMEMBER/SPOP/ZRANDMEMBER)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from shalekv.types import encoding as enc
from shalekv.types.keyspace import Txn

_COLL = enc.COLL

# A collection with at most this many elements is read whole for a random pick (exact
# uniform choice); bigger ones are sampled at random seek points (see random_elements).
SAMPLE_READ_ALL = 1000
# Random picks from a big collection use at most this many seeks; each seek takes a run
# of neighbours so that a large count stays O(count) engine steps.
SAMPLE_SEEKS = 64


def version_count(m: bytes) -> tuple[int, int]:
    """(version, element count) of collection metadata."""
    _, _, _, version, count = _COLL.unpack_from(m)
    return version, count


def elements(t: Txn, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(sub-key, value) of every element under prefix, in sub-key order. O(N)."""
    n = len(prefix)
    for k, v in t.scan(prefix, enc.prefix_end(prefix)):
        yield k[n:], v


def scan_elements(
    t: Txn, prefix: bytes, after: bytes | None, count: int, match: object = None
) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
    """HSCAN/SSCAN: examine up to count elements after the sub-key `after`; (last
    sub-key examined, or None at the end; the matching elements). O(log N + count)."""
    lo = prefix if after is None else prefix + after + b"\x00"
    n = len(prefix)
    out: list[tuple[bytes, bytes]] = []
    examined = 0
    for k, v in t.scan(lo, enc.prefix_end(prefix)):
        sub = k[n:]
        if match is None or match(sub):  # type: ignore[operator]
            out.append((sub, v))
        examined += 1
        if examined >= count:
            return sub, out
    return None, out


def _random_point(first: bytes, last: bytes) -> bytes:
    """A sub-key between first and last: their common prefix, then 8 random bytes drawn
    from the byte range their differing tails use (so "user:0000".."user:0059" yields
    digits), the first of them between first's and last's byte there."""
    c = 0
    while c < len(first) and c < len(last) and first[c] == last[c]:
        c += 1
    tail = first[c : c + 8] + last[c : c + 8]
    if not tail:
        return first
    lo, hi = min(tail), max(tail)
    start = first[c] if c < len(first) else lo
    end = last[c] if c < len(last) else hi
    head = random.randint(min(start, end), max(start, end))
    return first[:c] + bytes([head, *(random.randint(lo, hi) for _ in range(7))])


def random_elements(
    t: Txn, prefix: bytes, size: int, n: int, distinct: bool
) -> list[tuple[bytes, bytes]]:
    """n random (sub-key, value) of a collection with size elements: distinct ones
    (at most size) or with repetition. Order is random.

    Up to SAMPLE_READ_ALL elements the collection is read whole and the choice is
    exactly uniform. Bigger collections are never loaded: we seek to random points
    between the first and last sub-key and take the element there (and, for a big n, a
    run of its neighbours). That is NOT uniform: an element after a wide gap in the key
    space is likelier, and neighbours come together; every element can be chosen.
    O(min(n, SAMPLE_SEEKS) log N + n)."""
    if n <= 0 or size <= 0:
        return []
    hi = enc.prefix_end(prefix)
    if size <= SAMPLE_READ_ALL or (distinct and n >= size):
        items = list(elements(t, prefix))
        if distinct:
            return random.sample(items, min(n, len(items)))
        return random.choices(items, k=n)
    pl = len(prefix)
    first = next(t.scan(prefix, hi))[0][pl:]
    last = next(t.scan(prefix, hi, reverse=True))[0][pl:]
    run = max(1, math.ceil(n / SAMPLE_SEEKS))

    def from_point() -> Iterator[tuple[bytes, bytes]]:
        start = prefix + _random_point(first, last)
        yield from t.scan(start, hi)
        yield from t.scan(prefix, start)  # wrap around

    if distinct:
        chosen: dict[bytes, bytes] = {}
        while len(chosen) < n:
            want = min(run, n - len(chosen))
            for k, v in from_point():
                if k not in chosen:
                    chosen[k] = v
                    want -= 1
                    if not want:
                        break
        out = [(k[pl:], v) for k, v in chosen.items()]
    else:
        out = []
        while len(out) < n:
            want = min(run, n - len(out))
            for k, v in from_point():
                out.append((k[pl:], v))
                want -= 1
                if not want:
                    break
    random.shuffle(out)
    return out


def write_count(
    t: Txn, db: int, key: bytes, kind: int, m: bytes | None, version: int, count: int
) -> None:
    """Store a hash/set/zset's changed count: new metadata keeping the TTL, or delete
    the key once empty (Redis never keeps an empty collection)."""
    if count == 0:
        if m is not None:
            t.del_key(db, key, m)
        return
    exp = enc.expire_of(m) if m is not None else 0
    t.set_meta(db, key, enc.encode_coll(kind, exp, version, count), m)


def remove_elements(t: Txn, db: int, key: bytes, kind: int, subs: list[bytes]) -> int:
    """HDEL/SREM: delete the sub-keys present; how many were. O(M) lookups."""
    m = t.lookup(db, key, kind)
    if m is None:
        return 0
    version, count = version_count(m)
    p = enc.elem_prefix(db, key, version)
    removed = 0
    for sub in subs:
        k = p + sub
        if t.get(k) is not None:
            t.delete(k)
            removed += 1
    if removed:
        write_count(t, db, key, kind, m, version, count - removed)
    return removed


def clamp_range(start: int, end: int, n: int) -> tuple[int, int] | None:
    """Redis's inclusive rank/index range over n elements (negative counts from the
    end), clamped; None when empty (LRANGE, ZRANGE by rank, ZREMRANGEBYRANK)."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    if end >= n:
        end = n - 1
    return start, end
