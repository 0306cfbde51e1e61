"""Sets (Redis t_set.c) on the engine: metadata (type, expire, version, count) plus one
element key per member (`elem_prefix + member -> b""`), so members are kept sorted.

"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterator

from shalekv.errors import WrongTypeError
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

SET = enc.SET
_COLL = enc.COLL
_U64 = struct.Struct(">Q")

# A membership test walks the other set in order instead of point lookups when that set
# is at most this many times bigger than the number of questions.
WALK_RATIO = 8


# ---------------------------------------------------------------- element helpers


class _Members:
    """Membership tests for members asked in ascending order: point lookups, or a walk
    over the set in order when the set is small next to the number of questions."""

    __slots__ = ("t", "prefix", "it", "cur")

    def __init__(self, t: Txn, db: int, key: bytes, vc: tuple[int, int], questions: int) -> None:
        version, count = vc
        self.t = t
        self.prefix = enc.elem_prefix(db, key, version)
        self.it: Iterator[tuple[bytes, bytes]] | None = None
        self.cur: bytes | None = None
        if count <= WALK_RATIO * questions:
            self.it = t.scan(self.prefix, enc.prefix_end(self.prefix))
            self.cur = next(self.it, (None, b""))[0]

    def __contains__(self, member: bytes) -> bool:
        k = self.prefix + member
        if self.it is None:
            return self.t.get(k) is not None
        cur = self.cur
        while cur is not None and cur < k:
            cur = next(self.it, (None, b""))[0]
        self.cur = cur
        return cur == k


# ---------------------------------------------------------------- single-set commands


def _write_meta(t: Txn, db: int, key: bytes, m: bytes | None, version: int, count: int) -> None:
    write_count(t, db, key, SET, m, version, count)


def sadd(t: Txn, db: int, key: bytes, members: list[bytes]) -> int:
    """O(M): one lookup per member (none for a new set)."""
    m = t.lookup(db, key, SET)
    if m is None:
        version = t.store.new_version()
        p = enc.elem_prefix(db, key, version)
        fresh = set(members)
        for x in fresh:
            t.put(p + x, b"")
        _write_meta(t, db, key, None, version, len(fresh))
        return len(fresh)
    version, count = version_count(m)
    p = enc.elem_prefix(db, key, version)
    added = 0
    for x in members:
        k = p + x
        if t.get(k) is None:
            t.put(k, b"")
            added += 1
    if added:
        _write_meta(t, db, key, m, version, count + added)
    return added


def srem(t: Txn, db: int, key: bytes, members: list[bytes]) -> int:
    return remove_elements(t, db, key, SET, members)


def smembers(t: Txn, db: int, key: bytes) -> list[bytes]:
    """O(N)."""
    m = t.lookup(db, key, SET)
    if m is None:
        return []
    return [x for x, _ in elements(t, enc.elem_prefix(db, key, version_count(m)[0]))]


def smismember(t: Txn, db: int, key: bytes, members: list[bytes]) -> list[int]:
    """O(M) lookups (SISMEMBER is the one-member case)."""
    m = t.lookup(db, key, SET)
    if m is None:
        return [0] * len(members)
    p = enc.elem_prefix(db, key, version_count(m)[0])
    return [0 if t.get(p + x) is None else 1 for x in members]


def scard(t: Txn, db: int, key: bytes) -> int:
    """O(1): the count lives in the metadata."""
    m = t.lookup(db, key, SET)
    return 0 if m is None else version_count(m)[1]


def srandmember(t: Txn, db: int, key: bytes, count: int | None) -> bytes | None | list[bytes]:
    """One random member (count None), count distinct ones (count >= 0), or -count
    with repetition (count < 0). See random_elements for the non-uniformity."""
    m = t.lookup(db, key, SET)
    if count is None:
        if m is None:
            return None
        count = 1
        single = True
    else:
        if m is None or count == 0:
            return []
        single = False
    version, size = version_count(m)
    p = enc.elem_prefix(db, key, version)
    picks = random_elements(t, p, size, abs(count), count > 0)
    if single:
        return picks[0][0]
    return [x for x, _ in picks]


def spop(t: Txn, db: int, key: bytes, count: int | None) -> bytes | None | list[bytes]:
    """Remove and return one random member (count None) or up to count distinct ones."""
    m = t.lookup(db, key, SET)
    if m is None:
        return None if count is None else []
    if count == 0:
        return []
    version, size = version_count(m)
    p = enc.elem_prefix(db, key, version)
    n = 1 if count is None else count
    if n >= size:
        picks = list(elements(t, p))
        t.del_key(db, key, m)
    else:
        picks = random_elements(t, p, size, n, True)
        for x, _ in picks:
            t.delete(p + x)
        _write_meta(t, db, key, m, version, size - len(picks))
    if count is None:
        return picks[0][0]
    return [x for x, _ in picks]


def smove(t: Txn, db: int, src: bytes, dst: bytes, member: bytes) -> int:
    """Move member from src to dst (Redis checks both types only once src exists)."""
    sm = t.meta(db, src)
    if sm is None:
        return 0
    dm = t.meta(db, dst)
    if sm[0] != SET or (dm is not None and dm[0] != SET):
        raise WrongTypeError()
    sversion, scount = version_count(sm)
    sk = enc.elem_prefix(db, src, sversion) + member
    if t.get(sk) is None:
        return 0
    if src == dst:
        return 1
    t.delete(sk)
    _write_meta(t, db, src, sm, sversion, scount - 1)
    if dm is None:
        dversion, dcount = t.store.new_version(), 0
    else:
        dversion, dcount = version_count(dm)
    dk = enc.elem_prefix(db, dst, dversion) + member
    if dm is None or t.get(dk) is None:
        t.put(dk, b"")
        _write_meta(t, db, dst, dm, dversion, dcount + 1)
    return 1


# ---------------------------------------------------------------- multi-set commands


def _metas(t: Txn, db: int, keys: list[bytes]) -> list[bytes | None]:
    """Every key's metadata, WRONGTYPE if any holds another type (Redis checks all)."""
    return [t.lookup(db, k, SET) for k in keys]


def _sinter_iter(t: Txn, db: int, keys: list[bytes]) -> Iterator[bytes]:
    metas = _metas(t, db, keys)
    if any(m is None for m in metas):
        return
    # As Redis: walk the smallest set, test each member against the others.
    sets = sorted(
        ((version_count(m), k) for m, k in zip(metas, keys, strict=True) if m is not None),
        key=lambda s: s[0][1],
    )
    (v0, n0), k0 = sets[0]
    others = [_Members(t, db, k, vc, n0) for vc, k in sets[1:]]
    for x, _ in elements(t, enc.elem_prefix(db, k0, v0)):
        if all(x in o for o in others):
            yield x


def _sunion_iter(t: Txn, db: int, keys: list[bytes]) -> Iterator[bytes]:
    """Merge of the sorted member streams, without duplicates. O(sum N)."""
    streams = [
        (x for x, _ in elements(t, enc.elem_prefix(db, k, version_count(m)[0])))
        for m, k in zip(_metas(t, db, keys), keys, strict=True)
        if m is not None
    ]
    prev = None
    for x in heapq.merge(*streams):
        if x != prev:
            yield x
            prev = x


def _sdiff_iter(t: Txn, db: int, keys: list[bytes]) -> Iterator[bytes]:
    metas = _metas(t, db, keys)
    m0 = metas[0]
    if m0 is None:
        return
    v0, n0 = version_count(m0)
    others = [
        _Members(t, db, k, version_count(m), n0)
        for m, k in zip(metas[1:], keys[1:], strict=True)
        if m is not None
    ]
    for x, _ in elements(t, enc.elem_prefix(db, keys[0], v0)):
        if not any(x in o for o in others):
            yield x


_OPS = {"inter": _sinter_iter, "union": _sunion_iter, "diff": _sdiff_iter}


def combine(t: Txn, db: int, op: str, keys: list[bytes]) -> list[bytes]:
    """SINTER / SUNION / SDIFF (op "inter", "union", "diff"). O(result + lookups)."""
    it = _OPS[op](t, db, keys)
    return list(it)


def combine_store(t: Txn, db: int, op: str, dest: bytes, keys: list[bytes]) -> int:
    """S*STORE: replace dest (of any type, TTL dropped) with the result, written under
    a new version as it is computed; an empty result deletes dest."""
    it = _OPS[op](t, db, keys)
    version = t.store.new_version()
    p = enc.elem_prefix(db, dest, version)
    n = 0
    for x in it:
        t.put(p + x, b"")
        n += 1
    old = t.meta(db, dest)
    if n == 0:
        if old is not None:
            t.del_key(db, dest, old)
        return 0
    t.set_meta(db, dest, enc.encode_coll(SET, 0, version, n), old)
    return n


def sintercard(t: Txn, db: int, keys: list[bytes], limit: int) -> int:
    """Size of the intersection, stopping at limit (0: no limit)."""
    n = 0
    for _ in _sinter_iter(t, db, keys):
        n += 1
        if n == limit:
            break
    return n


def sscan(
    t: Txn, db: int, key: bytes, after: bytes | None, count: int, match: object = None
) -> tuple[bytes | None, list[bytes]]:
    m = t.lookup(db, key, SET)
    if m is None:
        return None, []
    p = enc.elem_prefix(db, key, version_count(m)[0])
    last, items = scan_elements(t, p, after, count, match)
    return last, [x for x, _ in items]
