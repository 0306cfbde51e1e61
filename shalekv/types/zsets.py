"""Sorted sets (Redis t_zset.c) on the engine: functions take parsed arguments and
return Python values.

Layout (docs/format/encoding.md): metadata `encode_coll(ZSET, expire, version, count)`;
one element key per member, `elem_prefix + member -> pack_double(score)` (ZSCORE is one
lookup); and a score index, `score_prefix + encode_score(score) + member -> b""`, whose
key order is Redis's zset order (score, then member bytes), so ranges by score or rank
are bounded engine scans: O(log N + M). Scores are stored with -0.0 turned into 0.0, as
Redis's listpack encoding does (double2ll), so a score decoded from the index is exact.

Ranks: a big set gets an in-memory order-statistics index over its score index
(types/zrank.py), so ZRANK, ZCOUNT, ZLEXCOUNT and ranges by rank cost O(log N) plus one
scan of at most two buckets; a set whose order fits in half the index budget keeps it
all in memory (OrderIndex: ranks and short ranges by score, lex or rank read no
engine). Every score-index key added or removed here is counted in the transaction
(`Txn.index_deltas`), which keeps the index exact at commit; a small set, or one this
transaction wrote otherwise (COPY, RENAME), is counted by scanning the range and its
complement side by side, stopping at the shorter one (O(min(M, N - M))).
Thread-safety: callers hold the store lock (one `Txn`).
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterator
from itertools import chain, islice

from shalekv.errors import ZSET_NAN, ResponseError, WrongTypeError
from shalekv.types import encoding as enc
from shalekv.types.collection import clamp_range
from shalekv.types.keyspace import Txn
from shalekv.types.zrank import OrderIndex, RankIndex

ZSET = enc.ZSET
_COLL = enc.COLL
_encode_score = enc.encode_score
_decode_score = enc.decode_score
_pack = enc.pack_double
_unpack = enc.unpack_double

# A score range: (min, min exclusive, max, max exclusive), as Redis's zrangespec.
ScoreRange = tuple[float, bool, float, bool]
# A lex range item: bytes, or LEX_MIN ("-") / LEX_MAX ("+"); with its exclusive flag.
LexItem = bytes | int
LexRange = tuple[LexItem, bool, LexItem, bool]
LEX_MIN = -1
LEX_MAX = 1

Pairs = list[tuple[bytes, float]]
_SHORT = 128  # a range this short is read through the engine's short-scan path (head)


# ---------------------------------------------------------------- metadata


class _Z:
    """A live sorted set's metadata, decoded once per command."""

    __slots__ = ("meta", "version", "count", "ep", "sp")

    def __init__(self, db: int, key: bytes, meta: bytes) -> None:
        self.meta = meta
        _, _, _, self.version, self.count = _COLL.unpack(meta)
        self.ep = ep = enc.elem_prefix(db, key, self.version)
        self.sp = enc.SCORE + ep[1:]  # score_prefix(db, key, version): the same but its class


def _load(t: Txn, db: int, key: bytes) -> _Z | None:
    m = t.lookup(db, key, ZSET)
    return None if m is None else _Z(db, key, m)


def _recount(t: Txn, db: int, key: bytes, z: _Z, count: int) -> None:
    """Write the new element count, or delete the key once empty (as Redis does)."""
    if count == z.count:
        return
    if count == 0:
        t.del_key(db, key, z.meta)
    else:
        t.set_meta(db, key, enc.encode_coll(ZSET, enc.expire_of(z.meta), z.version, count), z.meta)


def _end(sp: bytes) -> bytes:
    return enc.prefix_end(sp)


# ---------------------------------------------------------------- point operations


def add(
    t: Txn,
    db: int,
    key: bytes,
    pairs: list[tuple[float, bytes]],
    nx: bool = False,
    xx: bool = False,
    gt: bool = False,
    lt: bool = False,
    incr: bool = False,
) -> tuple[int, int, float | None]:
    """ZADD/ZINCRBY (zsetAdd): (added, updated, score of the last pair processed or
    None when none was). O(log N) per pair; scores are never NaN on input."""
    m = t.lookup(db, key, ZSET)
    if m is None:
        if xx:
            return 0, 0, None
        version, count, exp = t.store.new_version(), 0, 0
    else:
        _, _, exp, version, count = _COLL.unpack(m)
    ep = enc.elem_prefix(db, key, version)
    sp = enc.SCORE + ep[1:]  # score_prefix(db, key, version), as in _Z
    get, put, delete = t.get, t.put, t.delete
    deltas = t.index_deltas(sp)
    added = updated = 0
    last: float | None = None
    for score, member in pairs:
        ek = ep + member
        old = get(ek)
        if old is not None:
            if nx:
                continue
            cur = _unpack(old)
            if incr:
                score += cur
                if score != score:
                    raise ResponseError(ZSET_NAN)
            if (lt and score >= cur) or (gt and score <= cur):
                continue
            last = score
            if score != cur:
                if score == 0.0:
                    score = 0.0
                sk = sp + _encode_score(cur) + member
                delete(sk)
                deltas[sk] = deltas.get(sk, 0) - 1
                sk = sp + _encode_score(score) + member
                put(sk, b"")
                deltas[sk] = deltas.get(sk, 0) + 1
                put(ek, _pack(score))
                updated += 1
        elif not xx:
            if score == 0.0:
                score = 0.0
            put(ek, _pack(score))
            sk = sp + _encode_score(score) + member
            put(sk, b"")
            deltas[sk] = deltas.get(sk, 0) + 1
            added += 1
            last = score
    if added:
        t.set_meta(db, key, enc.encode_coll(ZSET, exp, version, count + added), m)
    return added, updated, last


def rem(t: Txn, db: int, key: bytes, members: list[bytes]) -> int:
    """ZREM: how many were removed. O(log N) per member."""
    z = _load(t, db, key)
    if z is None:
        return 0
    n = 0
    deltas = t.index_deltas(z.sp)
    for member in members:
        ek = z.ep + member
        old = t.get(ek)
        if old is not None:
            t.delete(ek)
            sk = z.sp + _encode_score(_unpack(old)) + member
            t.delete(sk)
            deltas[sk] = deltas.get(sk, 0) - 1
            n += 1
    _recount(t, db, key, z, z.count - n)
    return n


def score(t: Txn, db: int, key: bytes, member: bytes) -> float | None:
    """ZSCORE: two engine lookups (metadata, element)."""
    z = _load(t, db, key)
    if z is None:
        return None
    v = t.get(z.ep + member)
    return None if v is None else _unpack(v)


def mscore(t: Txn, db: int, key: bytes, members: list[bytes]) -> list[float | None]:
    z = _load(t, db, key)
    if z is None:
        return [None] * len(members)
    out: list[float | None] = []
    for member in members:
        v = t.get(z.ep + member)
        out.append(None if v is None else _unpack(v))
    return out


def card(t: Txn, db: int, key: bytes) -> int:
    """ZCARD: O(1), the count kept in the metadata."""
    z = _load(t, db, key)
    return 0 if z is None else z.count


# ---------------------------------------------------------------- counting


def _ranks(t: Txn, z: _Z, build: bool) -> tuple[RankIndex, dict[bytes, int]] | None:
    """z's rank index (built if missing and build) and this transaction's live changes
    to its score index, which callers add on top; None for a small set, a disabled
    index, or when this transaction wrote the index in a way it cannot account for."""
    ranks = t.store.ranks
    if z.count < ranks.min_count():
        return None
    sp = z.sp
    end = _end(sp)
    zd = t.zdeltas
    d = zd.get(sp) if zd else None
    if t.pending:
        for k in t.pending:
            if sp <= k < end and (d is None or k not in d):
                return None
    if t.rdels and any(a < end and b > sp for a, b in t.rdels):
        return None
    live = {k: v for k, v in d.items() if v} if d else {}
    committed = z.count - sum(live.values())
    idx = ranks.get(sp, end, committed) if build else ranks.peek(sp, committed)
    return None if idx is None else (idx, live)


def _ordered(
    t: Txn, z: _Z, lo: bytes, hi: bytes, n: int, reverse: bool, build: bool = True
) -> list[bytes] | None:
    """Up to n index keys of [lo, hi) (the last n, nearest first, with reverse) from
    the set's order in memory, no engine read; None when it has no OrderIndex this
    transaction can use (a small or too big set, one not read often enough yet, or
    changes of its own to the set). build: this read counts towards building one
    (never inside a transaction that has written)."""
    ranks = t.store.ranks
    sp = z.sp
    idx: RankIndex | None = None
    if t.pending or t.rdels or t.zdeltas:  # only an index this transaction can use
        r = _ranks(t, z, False)
        if r is not None and not r[1]:
            idx = r[0]
    else:  # nothing written yet: the committed set is z
        idx = ranks.peek(sp, z.count)
        if idx is None and build:
            idx = ranks.advance(sp, _end(sp), z.count)
    if not isinstance(idx, OrderIndex):
        return None
    if reverse:
        keys = idx.keys_before(hi, n)
        while keys and keys[-1] < lo:
            keys.pop()
        return keys
    keys = idx.keys_from(lo, n)
    return keys if not keys or keys[-1] < hi else keys[: bisect_left(keys, hi)]


def _before(live: dict[bytes, int], key: bytes) -> int:
    return sum(v for k, v in live.items() if k < key) if live else 0


def _take(t: Txn, ranges: list[list[bytes]], n: int) -> int:
    """Step over up to n keys of the ranges [lo, hi) in order (short scans, no
    iterators); each range's start moves past what was taken. How many were taken."""
    got = 0
    while ranges and got < n:
        want = n - got
        keys = t.head(ranges[0][0], ranges[0][1], want)
        got += len(keys)
        if len(keys) < want:
            del ranges[0]  # exhausted
        else:
            ranges[0][0] = keys[-1] + b"\x00"
    return got


def _count_in(t: Txn, z: _Z, lo: bytes, hi: bytes) -> int:
    """Index entries in [lo, hi). Near either end of the set (or in a small set) they
    are counted by scanning the range and its complement alternately in growing steps,
    O(min(M, N - M)); past a few buckets' worth the rank index answers, O(log N)."""
    if lo >= hi:
        return 0
    r = _ranks(t, z, False)
    if r is None:
        inside = [[lo, hi]]
        outside = [[z.sp, lo], [hi, _end(z.sp)]]
        limit = 4 * t.store.ranks.bucket
        if z.count <= limit:
            return len(t.head(lo, hi, z.count + 1))  # a small set: one short scan
        step = max(1, min(16, limit // 2))
        a = b = 0
        while True:
            c = _take(t, inside, step)
            a += c
            if c < step:
                return a
            c = _take(t, outside, step)
            b += c
            if c < step:
                return z.count - b
            step *= 2
            if a >= limit and limit:
                limit = 0  # try the index once
                r = _ranks(t, z, True)
                if r is not None:
                    break
    idx, live = r
    e = t.engine
    below_lo = 0 if lo == z.sp else idx.rank_of(e, lo)  # ZRANK counts from the start
    return idx.rank_of(e, hi) - below_lo + _before(live, hi) - _before(live, lo)


def rank(t: Txn, db: int, key: bytes, member: bytes, reverse: bool = False) -> int | None:
    """ZRANK/ZREVRANK: O(log N) with the rank index, or the entries before the
    member counted from the nearer end of the set."""
    z = _load(t, db, key)
    if z is None:
        return None
    v = t.get(z.ep + member)
    if v is None:
        return None
    target = z.sp + _encode_score(_unpack(v)) + member
    r = _count_in(t, z, z.sp, target)
    return z.count - 1 - r if reverse else r


def _score_bounds(sp: bytes, r: ScoreRange) -> tuple[bytes, bytes] | None:
    """[lo, hi) of the index keys whose score is in r, None if r is empty
    (zslIsInRange's first test)."""
    mn, minex, mx, maxex = r
    if mn > mx or (mn == mx and (minex or maxex)):
        return None
    lo = sp + _encode_score(mn)
    if minex:
        lo = _end(lo)
    hi = sp + _encode_score(mx)
    if not maxex:
        hi = _end(hi)
    return lo, hi


def count(t: Txn, db: int, key: bytes, r: ScoreRange) -> int:
    """ZCOUNT: O(log N + min(M, N - M))."""
    z = _load(t, db, key)
    if z is None:
        return 0
    b = _score_bounds(z.sp, r)
    return 0 if b is None else _count_in(t, z, b[0], b[1])


# ---------------------------------------------------------------- lex ranges


def _lex_empty(r: LexRange) -> bool:
    """sdscmplex(min, max) > 0, or equal with an exclusive end: nothing can match."""
    mn, minex, mx, maxex = r
    if isinstance(mn, int) and isinstance(mx, int) and mn == mx:
        cmp = 0
    elif mn == LEX_MIN or mx == LEX_MAX:
        cmp = -1
    elif mn == LEX_MAX or mx == LEX_MIN:
        cmp = 1
    else:
        assert isinstance(mn, bytes) and isinstance(mx, bytes)
        cmp = -1 if mn < mx else (1 if mn > mx else 0)
    return cmp > 0 or (cmp == 0 and (minex or maxex))


def _gte_min(v: bytes, r: LexRange) -> bool:
    mn = r[0]
    if isinstance(mn, int):
        return mn == LEX_MIN
    return v > mn if r[1] else v >= mn


def _lte_max(v: bytes, r: LexRange) -> bool:
    mx = r[2]
    if isinstance(mx, int):
        return mx == LEX_MAX
    return v < mx if r[3] else v <= mx


def _uniform_score(t: Txn, z: _Z) -> bytes | None:
    """The encoded score every member shares, or None if they differ."""
    sp = z.sp
    end = _end(sp)
    first = _ordered(t, z, sp, end, 1, False, False)
    if first is not None:
        last = _ordered(t, z, sp, end, 1, True, False)
    else:
        first, last = t.head(sp, end, 1), t.head(sp, end, 1, True)
    if not first or not last:
        return None
    n = len(sp)
    s = first[0][n : n + 8]
    return s if last[0][n : n + 8] == s else None


def _lex_keys(
    t: Txn, z: _Z, r: LexRange, reverse: bool, offset: int = 0, limit: int = -1
) -> list[bytes]:
    """Index keys of a lex range with LIMIT, in Redis's order (genericZrangebylexCommand).

    Redis defines lex ranges for members of equal score; then this is a seek and a
    bounded scan, O(log N + M). With mixed scores it walks the set as Redis's listpack
    code does (the first member >= min, then on while <= max): O(N)."""
    if _lex_empty(r) or offset < 0:
        return []
    sp = z.sp
    n = len(sp)
    stop = None if limit < 0 else offset + limit
    s = _uniform_score(t, z)
    if s is not None:
        base = sp + s
        mn, minex, mx, maxex = r
        if mn == LEX_MAX or mx == LEX_MIN:
            return []
        lo = base if isinstance(mn, int) else base + mn + (b"\x00" if minex else b"")
        hi = _end(base) if isinstance(mx, int) else base + mx + (b"" if maxex else b"\x00")
        if lo >= hi:
            return []
        if 0 <= limit <= _SHORT and offset <= _SHORT:
            keys = _ordered(t, z, lo, hi, offset + limit, reverse)
            if keys is not None:
                return keys[offset:]
        return [k for k, _ in islice(t.scan(lo, hi, reverse), offset, stop)]
    # Mixed scores: zzlIsInLexRange, then zzl{First,Last}InLexRange and the walk.
    end = _end(sp)
    first = next(t.scan(sp, end), None)
    last = next(t.scan(sp, end, True), None)
    if first is None or last is None:
        return []
    if not _gte_min(last[0][n + 8 :], r) or not _lte_max(first[0][n + 8 :], r):
        return []
    it: Iterator[bytes] = (k for k, _ in t.scan(sp, end, reverse))
    enter, stay = (_lte_max, _gte_min) if reverse else (_gte_min, _lte_max)
    for k in it:
        if enter(k[n + 8 :], r):
            if not stay(k[n + 8 :], r):
                return []
            it = chain((k,), it)
            break
    else:
        return []
    out = []
    for k in islice(it, offset, stop):
        if not stay(k[n + 8 :], r):
            break
        out.append(k)
    return out


def lexcount(t: Txn, db: int, key: bytes, r: LexRange) -> int:
    """ZLEXCOUNT: O(log N + min(M, N - M)) for members of equal score."""
    z = _load(t, db, key)
    if z is None or _lex_empty(r):
        return 0
    s = _uniform_score(t, z)
    if s is None:
        return len(_lex_keys(t, z, r, False))
    base = z.sp + s
    mn, minex, mx, maxex = r
    if mn == LEX_MAX or mx == LEX_MIN:
        return 0
    lo = base if isinstance(mn, int) else base + mn + (b"\x00" if minex else b"")
    hi = _end(base) if isinstance(mx, int) else base + mx + (b"" if maxex else b"\x00")
    return _count_in(t, z, lo, hi)


# ---------------------------------------------------------------- ranges


def _rank_keys(t: Txn, z: _Z, start: int, end: int, reverse: bool) -> list[bytes]:
    """Index keys of ranks [start, end] (negative counts from the end, clamped as
    Redis's genericZrangebyrankCommand): from the rank index's bucket for start
    (O(log N + M)), or near an end of the set, scanning from that end."""
    n = z.count
    r = clamp_range(start, end, n)
    if r is None:
        return []
    start, end = r
    fs, fe = (n - 1 - end, n - 1 - start) if reverse else (start, end)
    sp = z.sp
    ri = _ranks(t, z, min(fs, n - 1 - fe) > 4 * t.store.ranks.bucket)
    if ri is not None and not ri[1] and isinstance(ri[0], OrderIndex) and fe - fs < _SHORT:
        keys = ri[0].keys_at(fs, fe - fs + 1)
        if reverse:
            keys.reverse()
    elif ri is not None and not ri[1]:
        lo, skip = ri[0].seek(fs)
        if fe - fs < _SHORT:
            keys = t.head(lo, _end(sp), skip + fe - fs + 1)[skip:]
        else:
            keys = [k for k, _ in islice(t.scan(lo, _end(sp)), skip, skip + fe - fs + 1)]
        if reverse:
            keys.reverse()
    elif fs <= n - 1 - fe:
        if fe < _SHORT:
            keys = t.head(sp, _end(sp), fe + 1)[fs:]
        else:
            keys = [k for k, _ in islice(t.scan(sp, _end(sp)), fs, fe + 1)]
        if reverse:
            keys.reverse()
    else:
        if n - fs <= _SHORT:
            keys = t.head(sp, _end(sp), n - fs, True)[n - 1 - fe :]
        else:
            keys = [k for k, _ in islice(t.scan(sp, _end(sp), True), n - 1 - fe, n - fs)]
        if not reverse:
            keys.reverse()
    return keys


def _score_keys(
    t: Txn, z: _Z, r: ScoreRange, reverse: bool, offset: int = 0, limit: int = -1
) -> list[bytes]:
    """Index keys of a score range with LIMIT: a seek and a bounded scan,
    O(log N + offset + M)."""
    if offset < 0 or (offset > 0 and offset >= z.count):
        return []
    b = _score_bounds(z.sp, r)
    if b is None:
        return []
    if 0 <= limit <= _SHORT and offset <= _SHORT:
        keys = _ordered(t, z, b[0], b[1], offset + limit, reverse)
        if keys is None:
            keys = t.head(b[0], b[1], offset + limit, reverse)
        return keys[offset:]
    stop = None if limit < 0 else offset + limit
    return [k for k, _ in islice(t.scan(b[0], b[1], reverse), offset, stop)]


def _members(keys: list[bytes], n: int) -> list[bytes]:
    n += 8
    return [k[n:] for k in keys]


def _pairs(keys: list[bytes], n: int) -> Pairs:
    m = n + 8
    return [(k[m:], _decode_score(k, n)) for k in keys]


RANK, SCORE, LEX = 0, 1, 2


def _range_keys(
    t: Txn,
    z: _Z,
    kind: int,
    lo: object,
    hi: object,
    reverse: bool,
    offset: int,
    limit: int,
) -> list[bytes]:
    if kind == RANK:
        assert isinstance(lo, int) and isinstance(hi, int)
        return _rank_keys(t, z, lo, hi, reverse)
    if kind == SCORE:
        return _score_keys(t, z, lo, reverse, offset, limit)  # type: ignore[arg-type]
    return _lex_keys(t, z, lo, reverse, offset, limit)  # type: ignore[arg-type]


def range_(
    t: Txn,
    db: int,
    key: bytes,
    kind: int,
    lo: object,
    hi: object = None,
    reverse: bool = False,
    offset: int = 0,
    limit: int = -1,
    withscores: bool = False,
) -> list[bytes] | Pairs:
    """The Z*RANGE* family's one implementation (zrangeGenericCommand). kind RANK: lo,
    hi are start, end; SCORE: lo is a ScoreRange; LEX: lo is a LexRange. Members, or
    (member, score) pairs with withscores. O(log N + M) (+ offset)."""
    z = _load(t, db, key)
    if z is None:
        return []
    keys = _range_keys(t, z, kind, lo, hi, reverse, offset, limit)
    n = len(z.sp)
    return _pairs(keys, n) if withscores else _members(keys, n)


def rangestore(
    t: Txn,
    db: int,
    dst: bytes,
    key: bytes,
    kind: int,
    lo: object,
    hi: object = None,
    reverse: bool = False,
    offset: int = 0,
    limit: int = -1,
) -> int:
    """ZRANGESTORE: the range written to dst (replacing it; deleting it if empty)."""
    z = _load(t, db, key)
    pairs: Pairs = []
    if z is not None:
        pairs = _pairs(_range_keys(t, z, kind, lo, hi, reverse, offset, limit), len(z.sp))
    return _store(t, db, dst, pairs)


def remrange(t: Txn, db: int, key: bytes, kind: int, lo: object, hi: object = None) -> int:
    """ZREMRANGEBYRANK/BYSCORE/BYLEX: how many were removed. O(log N + M)."""
    z = _load(t, db, key)
    if z is None:
        return 0
    keys = _range_keys(t, z, kind, lo, hi, False, 0, -1)
    _delete_keys(t, z, keys)
    _recount(t, db, key, z, z.count - len(keys))
    return len(keys)


def _delete_keys(t: Txn, z: _Z, keys: list[bytes]) -> None:
    m = len(z.sp) + 8
    ep = z.ep
    deltas = t.index_deltas(z.sp)
    for k in keys:
        t.delete(k)
        t.delete(ep + k[m:])
        deltas[k] = deltas.get(k, 0) - 1


def pop(t: Txn, db: int, key: bytes, count: int, highest: bool) -> Pairs:
    """ZPOPMIN/ZPOPMAX: up to count (member, score) pairs, lowest (highest) first.
    O(log N + count)."""
    z = _load(t, db, key)
    if z is None or count <= 0:
        return []
    keys = [k for k, _ in islice(t.scan(z.sp, _end(z.sp), highest), count)]
    _delete_keys(t, z, keys)
    _recount(t, db, key, z, z.count - len(keys))
    return _pairs(keys, len(z.sp))


def mpop(
    t: Txn, db: int, keys: list[bytes], count: int, highest: bool
) -> tuple[bytes, Pairs] | None:
    """ZMPOP: pop from the first non-empty key (WRONGTYPE stops at the first key of
    another type), or None."""
    for key in keys:
        if _load(t, db, key) is not None:
            return key, pop(t, db, key, count, highest)
    return None


def check_type(t: Txn, db: int, key: bytes) -> bool:
    """True if key holds a sorted set, False if absent, WRONGTYPE otherwise."""
    return _load(t, db, key) is not None


# ---------------------------------------------------------------- whole-set operations


def _store(t: Txn, db: int, dst: bytes, pairs: Pairs) -> int:
    """Replace dst (of any type) with a new sorted set of pairs (deleting it when
    pairs is empty); returns len(pairs). O(M)."""
    old = t.meta(db, dst)
    if old is not None:
        t.del_key(db, dst, old)
    if not pairs:
        return 0
    version = t.store.new_version()
    ep = enc.elem_prefix(db, dst, version)
    sp = enc.score_prefix(db, dst, version)
    put = t.put
    deltas = t.index_deltas(sp)
    for member, s in pairs:
        if s == 0.0:
            s = 0.0
        put(ep + member, _pack(s))
        sk = sp + _encode_score(s) + member
        put(sk, b"")
        deltas[sk] = 1
    t.set_meta(db, dst, enc.encode_coll(ZSET, 0, version, len(pairs)), None)
    return len(pairs)


class _Source:
    """One input of ZUNION/ZINTER/ZDIFF: a sorted set, a set (every score 1.0), or a
    missing key (empty), with its weight."""

    __slots__ = ("key", "zset", "prefix", "count", "weight")

    def __init__(self, t: Txn, db: int, key: bytes) -> None:
        self.key = key
        self.weight = 1.0
        m = t.meta(db, key)
        self.prefix = b""
        self.count = 0
        self.zset = True
        if m is None:
            return
        if m[0] not in (ZSET, enc.SET):
            raise WrongTypeError()
        self.zset = m[0] == ZSET
        _, _, _, version, self.count = _COLL.unpack_from(m)
        self.prefix = enc.elem_prefix(db, key, version)

    def items(self, t: Txn) -> Iterator[tuple[bytes, float]]:
        if not self.count:
            return iter(())
        n = len(self.prefix)
        it = t.scan(self.prefix, _end(self.prefix))
        if self.zset:
            return ((k[n:], _unpack(v)) for k, v in it)
        return ((k[n:], 1.0) for k, _ in it)

    def find(self, t: Txn, member: bytes) -> float | None:
        if not self.count:
            return None
        v = t.get(self.prefix + member)
        if v is None:
            return None
        return _unpack(v) if self.zset else 1.0


def sources(t: Txn, db: int, keys: list[bytes]) -> list[_Source]:
    """Look the inputs up (WRONGTYPE unless each is a sorted set, a set or absent),
    as Redis does before it parses WEIGHTS/AGGREGATE."""
    return [_Source(t, db, k) for k in keys]


SUM, MIN, MAX = 0, 1, 2
UNION, INTER, DIFF = 0, 1, 2


def _aggregate(target: float, val: float, agg: int) -> float:
    """zunionInterAggregate: +inf + -inf gives 0.0, NaN never wins MIN/MAX."""
    if agg == SUM:
        target = target + val
        return 0.0 if target != target else target
    if agg == MIN:
        return val if val < target else target
    return val if val > target else target


def combine(
    t: Txn,
    srcs: list[_Source],
    op: int,
    weights: list[float] | None = None,
    agg: int = SUM,
    card_limit: int | None = None,
) -> Pairs | int:
    """zunionInterDiffGenericCommand: the result as (member, score) pairs in zset
    order, or its size when card_limit is given (ZINTERCARD; 0 = no limit).
    O(sum of the inputs) for union, O(smallest * inputs) lookups for inter."""
    if weights is not None:
        for s, w in zip(srcs, weights, strict=True):
            s.weight = w
    if op != DIFF:
        srcs = sorted(srcs, key=lambda s: s.count)  # stable, as glibc's qsort here
    acc: dict[bytes, float] = {}
    if op == INTER:
        first = srcs[0]
        n = 0
        if first.count:
            rest = srcs[1:]
            for member, sc in first.items(t):
                total = first.weight * sc
                if total != total:
                    total = 0.0
                for s in rest:
                    v = s.find(t, member)
                    if v is None:
                        break
                    total = _aggregate(total, v * s.weight, agg)
                else:
                    if card_limit is not None:
                        n += 1
                        if card_limit and n >= card_limit:
                            break
                    else:
                        acc[member] = total
        if card_limit is not None:
            return n
    elif op == UNION:
        for s in srcs:
            w = s.weight
            for member, sc in s.items(t):
                v = w * sc
                if v != v:
                    v = 0.0
                cur = acc.get(member)
                acc[member] = v if cur is None else _aggregate(cur, v, agg)
    else:
        first = srcs[0]
        rest = [s for s in srcs[1:] if s.count]
        for member, sc in first.items(t):
            if not any(s.find(t, member) is not None for s in rest):
                acc[member] = sc
    return sorted(acc.items(), key=lambda p: (p[1], p[0]))


def store(t: Txn, db: int, dst: bytes, pairs: Pairs) -> int:
    """Z*STORE: write pairs at dst, replacing it (deleting it if pairs is empty)."""
    return _store(t, db, dst, pairs)


# ---------------------------------------------------------------- random and scan


def _at_ranks(t: Txn, z: _Z, ranks: list[int]) -> dict[int, tuple[bytes, float]]:
    """Members at the given ranks: a seek each through the rank index when they are
    sparse, else one forward pass up to the highest, O(max rank)."""
    want = sorted(set(ranks))
    if len(want) * 8 * t.store.ranks.bucket < want[-1]:
        ri = _ranks(t, z, True)
        if ri is not None and not ri[1]:
            return {r: _pair_at(t, z, r) for r in want}
    out: dict[int, tuple[bytes, float]] = {}
    n = len(z.sp)
    it = t.scan(z.sp, _end(z.sp))
    pos = 0
    for r in want:
        k, _ = next(islice(it, r - pos, None))
        pos = r + 1
        out[r] = (k[n + 8 :], _decode_score(k, n))
    return out


def randmember(t: Txn, db: int, key: bytes, count: int | None) -> Pairs | None:
    """ZRANDMEMBER: one pair (count None; None if the key is absent), count distinct
    pairs (count >= 0) or -count pairs with repetitions. Uniform; O(N) worst case,
    as the index has no random access by rank."""
    z = _load(t, db, key)
    if z is None:
        return None if count is None else []
    n = z.count
    if count is None:
        r = random.randrange(n)
        return [_pair_at(t, z, r)]
    if count == 0:
        return []
    if count >= n:
        keys = [k for k, _ in t.scan(z.sp, _end(z.sp))]
        pairs = _pairs(keys, len(z.sp))
        random.shuffle(pairs)
        return pairs
    if count > 0:
        ranks = random.sample(range(n), count)
    else:
        ranks = [random.randrange(n) for _ in range(-count)]
    found = _at_ranks(t, z, ranks)
    return [found[r] for r in ranks]


def _pair_at(t: Txn, z: _Z, r: int) -> tuple[bytes, float]:
    keys = _rank_keys(t, z, r, r, False)
    return _pairs(keys, len(z.sp))[0]


def scan(
    t: Txn, db: int, key: bytes, after: bytes | None, count: int, match: object = None
) -> tuple[bytes | None, Pairs]:
    """ZSCAN: examine up to count members (in member order) after `after`; (the last
    member examined, or None at the end; the matching pairs)."""
    z = _load(t, db, key)
    if z is None:
        return None, []
    n = len(z.ep)
    lo = z.ep if after is None else z.ep + after + b"\x00"
    out: Pairs = []
    last = None
    seen = 0
    for k, v in t.scan(lo, _end(z.ep)):
        member = k[n:]
        last = member
        seen += 1
        if match is None or match(member):  # type: ignore[operator]
            out.append((member, _unpack(v)))
        if seen >= count:
            return last, out
    return None, out
