"""Lists (Redis t_list.c) on the engine: metadata holds head and tail counters and the
elements live at element keys `elem_prefix + u64 index` for indexes [head, tail), so
the list order is the key order. An element key outside [head, tail) is garbage: pops,
LTRIM and LREM move head or tail and leave the elements they give up to the compaction
filter (no tombstone written: a pop is one metadata write), a push overwrites one, and
every read is bounded by head and tail.

Push and pop at either end are O(1) engine operations (a push: one metadata read, one
element write, one metadata write; a pop: one metadata read, one element read, one
metadata write); LTRIM is one metadata write; LINDEX/LSET are O(1) by index arithmetic;
LRANGE and the other range reads are one bounded scan, O(log N + M). LINSERT and LREM
shift elements, O(N) in the worst case, always moving the shorter side.

The pop and move primitives (`pop`, `move`, `mpop`) take parsed arguments and act only
when there is something to pop, so the blocking variants (BLPOP, BLMOVE, BLMPOP) can
call them when a key becomes ready.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator

from shalekv.errors import (
    INDEX_OUT_OF_RANGE,
    NO_SUCH_KEY,
    CorruptionError,
    ResponseError,
    WrongTypeError,
)
from shalekv.types import encoding as enc
from shalekv.types.collection import clamp_range
from shalekv.types.keyspace import Store, Txn

LIST = enc.LIST
U64_MAX = (1 << 64) - 1
_META = enc.LISTMETA
_pack_meta = _META.pack
_unpack_meta = _META.unpack
_pack_index = struct.Struct(">Q").pack
_pack_db = struct.Struct(">H").pack
_META_TAG = enc.META
_FMT = enc.FORMAT_VERSION
_MID = enc.LIST_MID

# Metadata fields: (type, format, expire_at, version, count, head, tail)


def _meta(t: Txn, db: int, key: bytes) -> tuple[bytes, int, int, int, int] | None:
    """(metadata, expire_at, version, head, tail) of a list key, None if absent."""
    m = t.lookup(db, key, LIST)
    if m is None:
        return None
    _, _, exp, version, _, head, tail = _unpack_meta(m)
    return m, exp, version, head, tail


def _write_meta(t: Txn, db: int, key: bytes, exp: int, version: int, head: int, tail: int) -> None:
    """Store an existing list's new version/head/tail (non-empty), keeping its
    expire-at."""
    t.update_meta(db, key, _pack_meta(LIST, _FMT, exp, version, tail - head, head, tail))


def _relocate(
    t: Txn, db: int, key: bytes, version: int, head: int, tail: int
) -> tuple[int, int, int]:
    """Copy the elements at [head, tail) to a new version, centred on LIST_MID:
    (version, head, tail) of the copy. The old version's keys become garbage for the
    compaction filter, as after DEL. O(tail - head), streaming (the new keys lie
    outside the range being read).

    Used when a list that never became empty drifted about 2**63 indexes to one side
    (head or tail would leave the u64 range)."""
    new_version = t.store.new_version()
    old_p = enc.elem_prefix(db, key, version)
    new_p = enc.elem_prefix(db, key, new_version)
    new_head = _MID - (tail - head) // 2
    i = new_head
    put = t.put
    for _, v in t.scan(old_p + _pack_index(head), old_p + _pack_index(tail)):
        put(new_p + _pack_index(i), v)
        i += 1
    return new_version, new_head, i


def _room(
    t: Txn, db: int, key: bytes, version: int, head: int, tail: int, left: int, right: int
) -> tuple[int, int, int]:
    """(version, head, tail) with room for `left` more indexes below head and `right`
    more above tail, relocating the list if the u64 range would not hold them."""
    if head < left or tail > U64_MAX - right:
        return _relocate(t, db, key, version, head, tail)
    return version, head, tail


def _iter(t: Txn, p: bytes, lo: int, hi: int, from_head: bool) -> Iterator[tuple[bytes, bytes]]:
    """(element key, value) at indexes [lo, hi), ascending or descending."""
    return t.scan(p + _pack_index(lo), p + _pack_index(hi), not from_head)


def _index_of(ek: bytes, off: int) -> int:
    return int.from_bytes(ek[off:], "big")


def _element(t: Txn, ek: bytes) -> bytes:
    """The element at an index inside [head, tail): it must exist."""
    v = t.get(ek)
    if v is None:
        raise CorruptionError(f"list element missing: {ek.hex()}")
    return v


def _norm_index(index: int, n: int) -> int | None:
    """A Redis list index (negative counts from the tail) as 0..n-1, None if outside."""
    if index < 0:
        index += n
    return index if 0 <= index < n else None


# ---------------------------------------------------------------- push / pop


def _push(t: Txn, db: int, key: bytes, m: bytes | None, values: list[bytes], left: bool) -> int:
    """Push onto the list whose metadata is m (None: create it); the new length."""
    if m is None:
        exp = 0
        version = t.store.new_version()
        head = tail = _MID
    else:
        _, _, exp, version, _, head, tail = _unpack_meta(m)
        n = len(values)
        if head < n or tail > U64_MAX - n:
            version, head, tail = _relocate(t, db, key, version, head, tail)
    p = enc.elem_prefix(db, key, version)
    put = t.put
    if left:
        for v in values:
            head -= 1
            put(p + _pack_index(head), v)
    else:
        for v in values:
            put(p + _pack_index(tail), v)
            tail += 1
    if m is None:
        t.set_meta(db, key, _pack_meta(LIST, _FMT, exp, version, tail - head, head, tail), None)
    else:
        _write_meta(t, db, key, exp, version, head, tail)
    return tail - head


def push(
    t: Txn, db: int, key: bytes, values: list[bytes], left: bool, only_existing: bool = False
) -> int:
    """LPUSH/RPUSH (LPUSHX/RPUSHX with only_existing): the new length, 0 when
    only_existing and the key is absent. O(1) engine operations per value."""
    m = t.lookup(db, key, LIST)
    if m is None and only_existing:
        return 0
    return _push(t, db, key, m, values, left)


def _pop_end(t: Txn, db: int, key: bytes, m: bytes, left: bool) -> bytes:
    """Remove and return the element at one end of the existing list whose metadata is
    m: one element read and one write, the new metadata (or the key's delete, when it
    was the last); the element key left outside [head, tail) is the compaction filter's.
    The path of every LPOP/RPOP without a count."""
    _, _, exp, version, _, head, tail = _unpack_meta(m)
    ek = enc.list_elem_key(db, key, version, head if left else tail - 1)
    value = t.get(ek)  # _element() and, below, _write_meta() inline: every pop's path
    if value is None:
        raise CorruptionError(f"list element missing: {ek.hex()}")
    if tail - head == 1:  # the whole version becomes garbage
        t.del_key(db, key, m)
        return value
    if left:
        head += 1
    else:
        tail -= 1
    t.update_meta(db, key, _pack_meta(LIST, _FMT, exp, version, tail - head, head, tail))
    return value


def _pop_from(
    t: Txn, db: int, key: bytes, st: tuple[bytes, int, int, int, int], left: bool, count: int
) -> list[bytes]:
    """Remove up to count (>= 1) elements from one end of an existing list."""
    m, exp, version, head, tail = st
    k = min(count, tail - head)
    if k == 1:
        return [_pop_end(t, db, key, m, left)]
    p = enc.elem_prefix(db, key, version)
    if left:
        items = list(_iter(t, p, head, head + k, True))
    else:
        items = list(_iter(t, p, tail - k, tail, False))
    if left:
        head += k
    else:
        tail -= k
    if head == tail:  # the whole version becomes garbage
        t.del_key(db, key, m)
    else:  # the popped indexes are outside [head, tail) now: garbage
        _write_meta(t, db, key, exp, version, head, tail)
    return [v for _, v in items]


def pop_one(t: Txn, db: int, key: bytes, left: bool) -> bytes | None:
    """LPOP/RPOP without a count: the element, None if the key is absent. O(1)."""
    m = t.lookup(db, key, LIST)
    return None if m is None else _pop_end(t, db, key, m, left)


SLOW = object()  # pop_direct's answer when a transaction has to do the pop


def pop_direct(store: Store, db: int, key: bytes, left: bool) -> bytes | None | object:
    """pop_one for a caller holding store.lock outside any transaction (the embedded
    LPOP/RPOP): the metadata and the element read from the engine and the new metadata
    put, with no Txn between (RPOP -18.7 % instructions), as embedded GET reads a string.
    SLOW when a Txn must do it, with what it keeps besides the write: the key has a
    deadline that passed (lazy expiry), the pop takes the last element (key counts), or
    a WATCH is live (its marking)."""
    engine = store.engine
    mk = _META_TAG + _pack_db(db) + key
    m = engine.get(mk)
    if m is None:
        return None
    if m[0] != LIST:
        raise WrongTypeError()
    _, _, exp, version, _, head, tail = _unpack_meta(m)
    if tail - head == 1 or store.watchers or (exp and exp < time.time_ns() // 1_000_000):
        return SLOW
    ek = enc.list_elem_key(db, key, version, head if left else tail - 1)
    value = engine.get(ek)
    if value is None:
        raise CorruptionError(f"list element missing: {ek.hex()}")
    if left:
        head += 1
    else:
        tail -= 1
    engine.put(mk, _pack_meta(LIST, _FMT, exp, version, tail - head, head, tail))
    return value


def pop(t: Txn, db: int, key: bytes, left: bool, count: int = 1) -> list[bytes] | None:
    """LPOP/RPOP: up to count (>= 1) elements from one end, None if the key is absent.
    O(1) engine operations for one element, O(log N + count) for more."""
    st = _meta(t, db, key)
    if st is None:
        return None
    return _pop_from(t, db, key, st, left, count)


def mpop(
    t: Txn, db: int, keys: list[bytes], left: bool, count: int
) -> tuple[bytes, list[bytes]] | None:
    """LMPOP: (key, up to count elements) from the first existing list of keys, None if
    none exists. A key of another type met first raises WRONGTYPE."""
    for key in keys:
        st = _meta(t, db, key)
        if st is not None:
            return key, _pop_from(t, db, key, st, left, count)
    return None


def move(t: Txn, db: int, src: bytes, dst: bytes, src_left: bool, dst_left: bool) -> bytes | None:
    """LMOVE/RPOPLPUSH: pop one end of src, push onto one end of dst; the element, or
    None if src is absent (dst is then not type-checked, as in Redis). O(1)."""
    st = _meta(t, db, src)
    if st is None:
        return None
    m, exp, version, head, tail = st
    if src != dst:
        dm = t.lookup(db, dst, LIST)  # WRONGTYPE before anything is popped
        value = _pop_end(t, db, src, m, src_left)
        _push(t, db, dst, dm, [value], dst_left)
        return value
    # Same list: a rotation, or no change when both ends are the same.
    if src_left == dst_left or tail - head == 1:
        i = head if src_left else tail - 1
        value = _element(t, enc.elem_prefix(db, src, version) + _pack_index(i))
        t.update_meta(db, src, m)  # still a write for WATCH, as Redis's pop + push
        return value
    if src_left:  # the head element goes to the tail
        version, head, tail = _room(t, db, src, version, head, tail, 0, 1)
        p = enc.elem_prefix(db, src, version)
        value = _element(t, p + _pack_index(head))
        t.put(p + _pack_index(tail), value)
        head += 1
        tail += 1
    else:  # the tail element goes to the head
        version, head, tail = _room(t, db, src, version, head, tail, 1, 0)
        p = enc.elem_prefix(db, src, version)
        value = _element(t, p + _pack_index(tail - 1))
        head -= 1
        tail -= 1
        t.put(p + _pack_index(head), value)
    _write_meta(t, db, src, exp, version, head, tail)
    return value


# ---------------------------------------------------------------- reads


def llen(t: Txn, db: int, key: bytes) -> int:
    """O(1): the count in the metadata."""
    st = _meta(t, db, key)
    return 0 if st is None else st[4] - st[3]


def lrange(t: Txn, db: int, key: bytes, start: int, stop: int) -> list[bytes]:
    """Elements start..stop (inclusive, negative counts from the tail). O(log N + M):
    one scan bounded to exactly those indexes."""
    st = _meta(t, db, key)
    if st is None:
        return []
    _, _, version, head, tail = st
    r = clamp_range(start, stop, tail - head)
    if r is None:
        return []
    start, stop = r
    p = enc.elem_prefix(db, key, version)
    return t.scan_values(
        p + _pack_index(head + start), p + _pack_index(head + stop + 1), expect=stop - start + 1
    )


def lindex(t: Txn, db: int, key: bytes, index: int) -> bytes | None:
    """O(1): one element lookup."""
    st = _meta(t, db, key)
    if st is None:
        return None
    _, _, version, head, tail = st
    i = _norm_index(index, tail - head)
    if i is None:
        return None
    return t.get(enc.elem_prefix(db, key, version) + _pack_index(head + i))


def lset(t: Txn, db: int, key: bytes, index: int, value: bytes) -> None:
    """O(1): one element write."""
    st = _meta(t, db, key)
    if st is None:
        raise ResponseError(NO_SUCH_KEY)
    _, _, version, head, tail = st
    i = _norm_index(index, tail - head)
    if i is None:
        raise ResponseError(INDEX_OUT_OF_RANGE)
    t.put(enc.elem_prefix(db, key, version) + _pack_index(head + i), value)


def lpos(
    t: Txn, db: int, key: bytes, element: bytes, rank: int, count: int | None, maxlen: int
) -> int | list[int] | None:
    """LPOS: the position (count None) or up to count positions (0: all) of element,
    skipping the first |rank|-1 matches; rank < 0 searches from the tail; maxlen > 0
    bounds the elements compared. O(log N + scanned)."""
    st = _meta(t, db, key)
    if st is None:
        return None if count is None else []
    _, _, version, head, tail = st
    from_head = rank > 0
    skip = abs(rank) - 1
    if rank == -(1 << 63):
        # As Redis 7.0: negating LLONG_MIN overflows and stays negative, so every match
        # qualifies, and `matches - rank + 1 >= count` overflows too: COUNT never stops.
        skip = 0
        if count:
            count = 0
    lo, hi = head, tail
    if maxlen and maxlen < tail - head:
        if from_head:
            hi = head + maxlen
        else:
            lo = tail - maxlen
    p = enc.elem_prefix(db, key, version)
    off = len(p)
    out: list[int] = []
    for ek, v in _iter(t, p, lo, hi, from_head):
        if v == element:
            if skip:
                skip -= 1
                continue
            out.append(_index_of(ek, off) - head)
            if count is None or len(out) == count:
                break
    if count is None:
        return out[0] if out else None
    return out


# ---------------------------------------------------------------- middle edits


def _shift(t: Txn, p: bytes, lo: int, hi: int, delta: int) -> None:
    """Move the elements at [lo, hi) by delta (-1 or +1), walking away from the side
    written to so every write lands on an index already read."""
    off = len(p)
    put = t.put
    for ek, v in _iter(t, p, lo, hi, delta < 0):
        put(p + _pack_index(_index_of(ek, off) + delta), v)


def linsert(t: Txn, db: int, key: bytes, before: bool, pivot: bytes, element: bytes) -> int:
    """LINSERT: the new length, -1 if pivot is absent, 0 if the key is. O(N): finds the
    first pivot from the head, then shifts the shorter side by one."""
    st = _meta(t, db, key)
    if st is None:
        return 0
    m, exp, version, head, tail = st
    p = enc.elem_prefix(db, key, version)
    off = len(p)
    r = -1  # the new element's position
    for ek, v in _iter(t, p, head, tail, True):
        if v == pivot:
            r = _index_of(ek, off) - head + (0 if before else 1)
            break
    if r < 0:
        return -1
    n = tail - head
    if r <= n - r:  # shift positions [0, r) towards the head
        version, head, tail = _room(t, db, key, version, head, tail, 1, 0)
        p = enc.elem_prefix(db, key, version)
        _shift(t, p, head, head + r, -1)
        head -= 1
    else:  # shift positions [r, n) towards the tail
        version, head, tail = _room(t, db, key, version, head, tail, 0, 1)
        p = enc.elem_prefix(db, key, version)
        _shift(t, p, head + r, tail, 1)
        tail += 1
    t.put(p + _pack_index(head + r), element)
    _write_meta(t, db, key, exp, version, head, tail)
    return n + 1


def lrem(t: Txn, db: int, key: bytes, count: int, element: bytes) -> int:
    """LREM: remove the first count matches from the head (count > 0), from the tail
    (count < 0) or all (0); how many went. O(N): one scan that stops after count
    matches, then the shorter side of the removals closes the gaps."""
    st = _meta(t, db, key)
    if st is None:
        return 0
    m, exp, version, head, tail = st
    p = enc.elem_prefix(db, key, version)
    off = len(p)
    from_head = count >= 0
    limit = abs(count)
    first = last = -1  # index range holding every match to remove, and nothing else
    k = 0
    for ek, v in _iter(t, p, head, tail, from_head):
        if v == element:
            j = _index_of(ek, off)
            if k == 0:
                first = last = j
            elif from_head:
                last = j
            else:
                first = j
            k += 1
            if k == limit:
                break
    if k == 0:
        return 0
    if k == tail - head:
        t.del_key(db, key, m)
        return k
    put = t.put
    if last - head < tail - first:
        # Pack the survivors of [head, last] against last, walking down; free the
        # first k indexes.
        w = last
        for ek, v in _iter(t, p, head, last + 1, False):
            j = _index_of(ek, off)
            if j >= first and v == element:
                continue
            if j != w:
                put(p + _pack_index(w), v)
            w -= 1
        head += k  # the first k indexes become garbage
    else:
        # Pack the survivors of [first, tail) against first, walking up; free the
        # last k indexes.
        w = first
        for ek, v in _iter(t, p, first, tail, True):
            j = _index_of(ek, off)
            if j <= last and v == element:
                continue
            if j != w:
                put(p + _pack_index(w), v)
            w += 1
        tail -= k  # the last k indexes become garbage
    _write_meta(t, db, key, exp, version, head, tail)
    return k


def ltrim(t: Txn, db: int, key: bytes, start: int, stop: int) -> None:
    """LTRIM: keep elements start..stop. O(1): one metadata write moving head and tail;
    the trimmed elements are garbage for the compaction filter."""
    st = _meta(t, db, key)
    if st is None:
        return
    m, exp, version, head, tail = st
    r = clamp_range(start, stop, tail - head)
    if r is None:
        t.del_key(db, key, m)
        return
    start, stop = r
    _write_meta(t, db, key, exp, version, head + start, head + stop + 1)
