"""The rank index of big sorted sets (shalekv/types/zrank.py): the structure against a
sorted-list model, and the commands that use it against a real redis-server with
buckets small enough that every test set splits and merges them."""

from __future__ import annotations

import random
from bisect import bisect_left
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shalekv
from shalekv.types import zrank
from shalekv.types.zrank import (
    GROUP,
    RIPE,
    STALE,
    Mismatch,
    OrderBuild,
    OrderIndex,
    RankIndex,
    RankIndexes,
    _entries,
)
from tests.types.differential import Pair

SP = b"S-prefix|"
END = b"S-prefix}"


class ListEngine:
    """The engine reads the index makes, over a sorted list of keys."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.scanned = 0
        self.runs = 1  # sorted runs a read merges (DB.runs_at)

    def runs_at(self, key: bytes) -> int:
        return self.runs

    def _range(self, lo: bytes, hi: bytes) -> list[bytes]:
        ks = self.keys[bisect_left(self.keys, lo) : bisect_left(self.keys, hi)]
        self.scanned += len(ks)
        return ks

    def collect(self, lo: bytes, hi: bytes) -> tuple[list[bytes], list[bytes]]:
        ks = self._range(lo, hi)
        return ks, [b""] * len(ks)

    def head(self, lo: bytes, hi: bytes, n: int) -> tuple[list[bytes], list[bytes]]:
        ks = self._range(lo, hi)[:n]
        return ks, [b""] * len(ks)

    def head_keys(self, lo: bytes, hi: bytes, n: int) -> list[bytes]:
        return self._range(lo, hi)[:n]

    def count_keys(self, lo: bytes, hi: bytes, expect: int) -> int:
        return len(self._range(lo, hi))

    def key_chunks(self, lo: bytes, hi: bytes) -> Any:
        ks = self._range(lo, hi)
        for i in range(0, len(ks), 7):  # uneven chunks: bounds must not follow them
            yield ks[i : i + 7]

    def key_step(self, lo: bytes, hi: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        ks = self._range(lo, hi)[: n + 3]  # more than n, as DB.key_step may give
        return ks, (ks[-1] + b"\x00" if len(ks) == n + 3 else None)


def _key(i: int) -> bytes:
    return SP + b"%06d" % i


def _check(idx: RankIndex, eng: ListEngine) -> None:
    keys = eng.keys
    assert idx.total == len(keys)
    assert idx.gfirst[0] == SP
    flat = [b for g in idx.gbounds for b in g]
    assert flat == sorted(set(flat)) and idx.buckets == len(flat)
    assert [g[0] for g in idx.gbounds] == idx.gfirst
    assert idx.gtotal == [sum(c) for c in idx.gcounts]
    assert all(len(g) <= 2 * GROUP for g in idx.gbounds)
    for i, b in enumerate(flat):  # every count is what the engine holds in the bucket
        nxt = flat[i + 1] if i + 1 < len(flat) else END
        assert [c for g in idx.gcounts for c in g][i] == len(eng._range(b, nxt))
    for r in random.Random(len(keys)).sample(range(len(keys)), min(len(keys), 40)):
        assert idx.rank_of(eng, keys[r]) == r
        lo, skip = idx.seek(r)
        assert eng._range(lo, END)[skip] == keys[r]
        assert idx.rank_of(eng, keys[r] + b"\x00") == r + 1


@pytest.mark.parametrize("order", [False, True])
@settings(max_examples=60, deadline=None)
@given(
    initial=st.integers(0, 300),
    bucket=st.sampled_from([1, 2, 3, 8]),
    batches=st.lists(
        st.lists(st.tuples(st.booleans(), st.integers(0, 2000)), max_size=60), max_size=25
    ),
)
def test_index_matches_sorted_list(
    order: bool, initial: int, bucket: int, batches: list[Any]
) -> None:
    eng = ListEngine()
    eng.keys = [_key(i) for i in range(0, 2 * initial, 2)]
    idx: RankIndex | None = RankIndex.build(eng, SP, END, bucket)
    check: Any = _check
    if order:  # the same buckets, each also holding its entries
        idx = OrderBuild(SP, END, bucket, 1 << 30).finish(eng)
        check = _check_order
    assert idx is not None
    check(idx, eng)
    for batch in batches:
        present = set(eng.keys)
        deltas: dict[bytes, int] = {}
        for add, i in batch:
            k = _key(i)
            if add and k not in present:
                present.add(k)
                deltas[k] = deltas.get(k, 0) + 1
            elif not add and k in present:
                present.discard(k)
                deltas[k] = deltas.get(k, 0) - 1
        eng.keys = sorted(present)  # the commit, then the index hears of it
        idx.apply(eng, deltas)
        check(idx, eng)


def _check_order(idx: OrderIndex, eng: ListEngine) -> None:
    """An OrderIndex is a RankIndex whose buckets hold exactly the engine's keys, and
    its reads (ranks, keys at a rank, keys from or before a key) read no engine."""
    _check(idx, eng)
    keys = eng.keys
    flat = [b for g in idx.gbounds for b in g]
    runs = [r for g in idx.gruns for r in g]
    assert len(runs) == len(flat) and [len(g) for g in idx.gruns] == list(map(len, idx.gbounds))
    for i, run in enumerate(runs):
        nxt = flat[i + 1] if i + 1 < len(flat) else END
        assert [SP + e for e in _entries(run, 0, len(run[1]) - 1)] == eng._range(flat[i], nxt)
    assert idx.payload == sum(len(k) - len(SP) for k in keys)
    eng.scanned = 0
    rng = random.Random(len(keys) * 7 + 1)
    for _ in range(30):
        k = _key(rng.randrange(2100)) + rng.choice([b"", b"\x00", b"x"])
        n = rng.randrange(1, 12)
        at = bisect_left(keys, k)
        assert idx.rank_of(None, k) == at
        assert idx.keys_from(k, n) == keys[at : at + n]
        assert idx.keys_before(k, n) == keys[max(0, at - n) : at][::-1]
        if keys:
            r = rng.randrange(len(keys))
            assert idx.keys_at(r, n) == keys[r : r + n]
            assert idx.seek(r) == (keys[r], 0)
    assert idx.keys_from(SP, len(keys) + 5) == keys
    assert idx.keys_before(END, len(keys) + 5) == keys[::-1]
    assert eng.scanned == 0


def test_order_index_mismatches_and_budget() -> None:
    """A change that does not fit the entries is a Mismatch (the index is dropped);
    a set too big for half the budget gets bucket counts and is remembered as such;
    an OrderIndex that grows past its share is dropped."""
    eng = ListEngine()
    eng.keys = [_key(i) for i in range(0, 400, 2)]
    idx = OrderBuild(SP, END, 4, 1 << 20).finish(eng)
    assert idx is not None
    for bad in ({_key(2): 1}, {_key(3): -1}, {_key(5): 2}):
        with pytest.raises(Mismatch):
            idx.apply(eng, bad)
        idx = OrderBuild(SP, END, 4, 1 << 20).finish(eng)
        assert idx is not None
    assert OrderBuild(SP, END, 4, 1000).finish(eng) is None  # past its limit
    ranks = RankIndexes(eng, max_bytes=60_000, bucket=2)
    early = -(-200 // RIPE) - 1  # range reads over one sorted run: ripe after 200 / RIPE
    assert early >= 1
    for _ in range(early):
        assert not ranks.ripe(SP, 200)
    assert ranks.ripe(SP, 200) and ranks.ripe(SP, 200)  # ripe until its build starts
    ranks._reads.clear()
    eng.runs = 3  # over more sorted runs a read costs more: ripe sooner
    for _ in range(-(-1000 // (3 * RIPE)) - 1):
        assert not ranks.ripe(SP, 1000)
    assert ranks.ripe(SP, 1000)
    ranks._reads.clear()
    eng.runs = 1
    for _ in range(early):
        assert ranks.advance(SP, END, 200) is None
    assert isinstance(ranks.advance(SP, END, 200), OrderIndex)  # one slice: all of it
    ranks.drop(SP)
    assert isinstance(ranks.get(SP, END, 200), OrderIndex)  # ZRANK: built at once
    size = ranks.nbytes
    assert 200 * (6 + 4) < size <= ranks.order_bytes
    grow = {_key(i) + b"-a-longer-member" * 8: 1 for i in range(0, 400, 2)}
    eng.keys = sorted([*eng.keys, *grow])
    ranks.apply({SP: grow})
    assert len(ranks) == 0  # grew past half the budget: dropped ...
    idx2 = ranks.get(SP, END, 400)
    assert type(idx2) is RankIndex  # ... and counted from then on
    ranks.drop(SP)
    eng.scanned = 0
    for _ in range(20):  # remembered: range reads start no build, scan nothing
        assert ranks.advance(SP, END, 400) is None
    assert eng.scanned == 0 and not ranks._building and len(ranks) == 0
    ranks._reads.clear()
    eng.keys = eng.keys[:200]  # shrunk to half: tried again once ripe
    for _ in range(early):
        assert ranks.advance(SP, END, 200) is None
    assert isinstance(ranks.advance(SP, END, 200), OrderIndex)


@pytest.mark.parametrize("step", [1, 7, 64])
def test_order_index_built_a_slice_per_read(step: int) -> None:
    """An OrderBuild reads `step` entries per range read; commits between the reads
    land below its cursor (applied to what it has read: additions, removals, a whole
    run emptied) or above it (read by later slices); the result is the engine's set.
    ZRANK finishes a build under way."""
    rng = random.Random(step)
    for finish_by_zrank in (False, True):
        eng = ListEngine()
        eng.keys = [_key(i) for i in range(0, 1000, 2)]
        ranks = RankIndexes(eng, max_bytes=1 << 20, bucket=2)
        ranks.build_step = step
        ranks._reads[SP] = 10**6  # ripe
        idx = None
        for n in range(10_000):
            idx = ranks.advance(SP, END, len(eng.keys))
            if idx is not None:
                break
            b = ranks._building[SP]
            present = set(eng.keys)
            deltas: dict[bytes, int] = {}
            for _ in range(rng.randrange(4)):  # a commit: below or above the cursor
                k = _key(rng.randrange(1000)) + rng.choice([b"", b"+"])
                if k in present and k not in deltas:
                    present.discard(k)
                    deltas[k] = -1
                elif k not in present and k not in deltas:
                    present.add(k)
                    deltas[k] = 1
            if n % 5 == 0:  # empty the first bucket read
                for k in eng.keys[:4]:
                    if k < b.cursor and k not in deltas:
                        present.discard(k)
                        deltas[k] = -1
            eng.keys = sorted(present)
            ranks.apply({SP: deltas})
            assert SP in ranks._building and ranks.mismatches == 0
            got = [SP + e for r in b.runs for e in _entries(r, 0, len(r[1]) - 1)]
            assert got + [SP + e for e in b.pend] == [k for k in eng.keys if k < b.cursor]
            if finish_by_zrank and n == 3:
                idx = ranks.get(SP, END, len(eng.keys))  # the rest in one scan
                break
        assert isinstance(idx, OrderIndex) and SP not in ranks._building
        _check_order(idx, eng)
        if not finish_by_zrank:
            assert n >= 500 // max(step, 7) // 2  # one slice (whole chunks of 7) per read


def test_one_order_build_at_a_time() -> None:
    """A second ripe set waits while the build under way is still being read; one no
    one reads gives way after STALE reads of others; a build's entries count against
    the budget as they grow (least recently used indexes make room)."""
    eng = ListEngine()
    sets = {p: p[:-1] + b"}" for p in (b"A|", b"B|", b"C|")}
    eng.keys = sorted(p + b"%05d" % i for p in sets for i in range(500))
    ranks = RankIndexes(eng, max_bytes=1 << 20, bucket=2)
    ranks.build_step = 10
    a, b, c = sets
    assert isinstance(ranks.get(c, sets[c], 500), OrderIndex)  # ZRANK built C's
    ranks.max_bytes = ranks.nbytes + 2000  # room for C and 2000 bytes of a build
    ranks._reads[a] = ranks._reads[b] = 10**6  # both ripe
    assert ranks.advance(a, sets[a], 500) is None and a in ranks._building
    for _ in range(2):
        for _ in range(STALE):  # B waits: A's build is read now and then
            assert ranks.advance(b, sets[b], 500) is None and b not in ranks._building
        assert ranks.advance(a, sets[a], 500) is None  # A advances: not idle
    assert ranks._building[a].size + ranks.nbytes <= ranks.max_bytes or len(ranks) == 0
    for _ in range(STALE):
        ranks.advance(b, sets[b], 500)
    assert ranks.advance(b, sets[b], 500) is None  # A, unread for STALE reads, gave way
    assert list(ranks._building) == [b]
    done = None
    while done is None:
        done = ranks.advance(b, sets[b], 500)
        if done is None:  # the build's entries and the indexes within the budget
            assert ranks._building[b].size + ranks.nbytes <= ranks.max_bytes or not len(ranks)
    assert isinstance(done, OrderIndex) and ranks.evictions >= 1 and c not in ranks._idx
    assert list(ranks._idx) == [b]  # C made room for B's build


def test_reads_scan_at_most_two_buckets() -> None:
    eng = ListEngine()
    eng.keys = [_key(i) for i in range(100_000)]
    idx = RankIndex.build(eng, SP, END, 32)
    eng.scanned = 0
    for r in range(0, 100_000, 997):
        assert idx.rank_of(eng, eng.keys[r]) == r
    assert eng.scanned <= 101 * 64
    grow = {_key(i) + b"x": 1 for i in range(0, 50_000, 3)}  # one batch, many splits
    eng.keys = sorted([*eng.keys, *grow])
    idx.apply(eng, grow)
    assert idx.total == len(eng.keys)
    eng.scanned = 0
    for r in range(0, len(eng.keys), 1999):
        lo, skip = idx.seek(r)
        assert skip < 64
        assert eng._range(lo, END)[skip] == eng.keys[r]


def test_budget_evicts_and_widens_buckets() -> None:
    eng = ListEngine()
    eng.keys = [_key(i) for i in range(20_000)]
    ranks = RankIndexes(eng, max_bytes=40_000, bucket=4)
    idx = ranks.get(SP, END, 20_000)
    assert idx is not None and idx.bucket > 4  # a quarter of the budget at most
    assert idx.nbytes() <= 10_000 + 200
    for n in range(10):  # other sets push the first one out
        eng2 = b"other%d|" % n
        ranks._idx[eng2] = RankIndex([eng2][0], eng2 + b"}", [eng2], [1], 4)
        ranks._account(eng2, ranks._idx[eng2])
    assert ranks.nbytes <= 40_000
    assert RankIndexes(eng, max_bytes=0).get(SP, END, 20_000) is None


# ---------------------------------------------------------------- through the commands


@pytest.fixture(scope="module", params=["order", "counts"])
def small_buckets(tmp_path_factory: pytest.TempPathFactory, request: Any) -> Any:
    db = shalekv.open(
        str(tmp_path_factory.mktemp("zrank")),
        compaction_workers=0,
        active_expiry=False,
        _rank_bucket=2,  # sets above 4 members use the index; 5+ members split buckets
    )
    if request.param == "counts":
        db.store.ranks.order_bytes = 0  # no set's order in memory: bucket counts only
    yield db
    db.close()


@pytest.fixture
def rpair(real: redis.Redis, small_buckets: Any) -> Pair:
    real.flushall()
    small_buckets.flushall()
    return Pair(small_buckets, real)


MEMBERS = st.sampled_from([f"m{i:02d}" for i in range(60)])
SCORES = st.sampled_from([0, 1, 1, 2, 3.5, -1, "inf", "-inf"])
RANKS = st.integers(-45, 45)
BOUNDS = st.sampled_from(["-inf", "+inf", "0", "(1", "1", "2", "(3.5", "-1"])
WRITE = st.one_of(
    st.tuples(st.just("zadd"), st.dictionaries(MEMBERS, SCORES, min_size=1, max_size=30)),
    st.tuples(st.just("zrem"), st.lists(MEMBERS, min_size=1, max_size=6)),
    st.tuples(st.just("zincrby"), SCORES, MEMBERS),
    st.tuples(st.just("zpopmin"), st.integers(1, 5)),
    st.tuples(st.just("zpopmax"), st.integers(1, 5)),
    st.tuples(st.just("zremrangebyrank"), RANKS, RANKS),
    st.tuples(st.just("zremrangebyscore"), BOUNDS, BOUNDS),
)
READ = st.one_of(
    st.tuples(st.just("zrank"), MEMBERS),
    st.tuples(st.just("zrevrank"), MEMBERS),
    st.tuples(st.just("zrange"), RANKS, RANKS),
    st.tuples(st.just("zrevrange"), RANKS, RANKS),
    st.tuples(st.just("zcount"), BOUNDS, BOUNDS),
    # zrangebyscore(name, min, max, start, num), zrevrangebyscore(name, max, min, ...)
    st.tuples(st.just("zrangebyscore"), BOUNDS, BOUNDS, st.integers(0, 6), st.integers(0, 9)),
    st.tuples(st.just("zrevrangebyscore"), BOUNDS, BOUNDS, st.integers(0, 6), st.integers(0, 9)),
)
STEP = st.one_of(
    st.tuples(st.just("one"), WRITE),
    st.tuples(st.just("one"), READ),
    st.tuples(st.just("multi"), st.lists(st.one_of(WRITE, READ), min_size=1, max_size=6)),
)


def _call(client: Any, op: tuple[Any, ...]) -> Any:
    name, *args = op
    if name == "zadd":
        return client.zadd("z", args[0])
    if name == "zincrby":
        return client.zincrby("z", float(args[0]), args[1])
    if name == "zrem":
        return client.zrem("z", *args[0])
    return getattr(client, name)("z", *args)


def _outcome(client: Any, step: tuple[Any, ...]) -> Any:
    kind, body = step
    try:
        if kind == "one":
            return _call(client, body)
        with client.pipeline(transaction=True) as p:
            for op in body:
                _call(p, op)
            return p.execute(raise_on_error=False)
    except redis.exceptions.ResponseError as e:
        return ("error", str(e))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=30))
def test_commands_against_redis(rpair: Pair, steps: list[Any]) -> None:
    ranks = rpair.shale.store.ranks
    builds, mismatches = ranks.builds, ranks.mismatches
    for step in steps:
        ours = _outcome(rpair.shale, step)
        theirs = _outcome(rpair.real, step)
        assert repr(ours) == repr(theirs), f"{step}: {ours!r} != {theirs!r}"
    rpair.same("zrange", "z", 0, -1, withscores=True)
    for m in (f"m{i:02d}" for i in range(60)):
        rpair.same("zrevrank", "z", m)
    assert ranks.mismatches == mismatches, "an index disagreed with the engine"
    assert ranks.builds >= builds


def test_index_is_used_and_kept(rpair: Pair) -> None:
    """A set built and changed through commands: one build, then kept exact by the
    commits (never rebuilt), across MULTI with reads of its own writes."""
    ranks = rpair.shale.store.ranks
    rng = random.Random(5)
    rpair.same("zadd", "z", {f"m{i:03d}": rng.randrange(50) for i in range(300)})
    before = ranks.builds
    rpair.same("zrank", "z", "m150")
    assert ranks.builds == before + 1
    for _ in range(200):
        m = f"m{rng.randrange(400):03d}"
        rpair.same("zadd", "z", {m: rng.randrange(50)})
        gone, incr = f"m{rng.randrange(400):03d}", rng.randrange(50)
        with rpair.shale.pipeline() as p, rpair.real.pipeline() as q:
            for x in (p, q):
                x.zrem("z", gone)
                x.zadd("z", {m: incr}, incr=True)
                x.zrevrank("z", m)
                x.zrange("z", 100, 104)
                x.zcount("z", 10, 30)
            assert p.execute() == q.execute()
        rpair.same("zrank", "z", m)
    assert ranks.builds == before + 1
    assert ranks.mismatches == 0
    kinds = {type(i) for i in ranks._idx.values()}
    assert kinds == ({RankIndex} if ranks.order_bytes == 0 else {OrderIndex})


def test_ranges_read_the_order_in_memory(rpair: Pair, monkeypatch: Any) -> None:
    """ZRANGEBYSCORE/ZREVRANGEBYSCORE/ZRANGEBYLEX ... LIMIT on a big set build its
    OrderIndex (when it may have one) and answer from it, no engine read, as Redis
    does, also inside MULTI after the transaction's own writes (then from the engine).
    The reads before a build are counted for RIPE = 64 (over one sorted run: the
    memtable)."""
    monkeypatch.setattr(zrank, "RIPE", 64)
    db = rpair.shale
    ranks = db.store.ranks
    rpair.same("zadd", "z", {f"m{i:03d}": i // 3 for i in range(300)})
    rpair.same("zadd", "lex", {f"m{i:03d}": 0 for i in range(300)})
    before = ranks.builds
    assert db.engine.runs_at(b"S") == 1  # each read weighs RIPE
    for _ in range(4):  # reads of a 300-member set find no index: ripe after 300 / 64
        rpair.same("zrangebyscore", "z", 0, "+inf", 0, 1)
        rpair.same("zrevrangebylex", "lex", "+", "-", 0, 1)  # checks first, last: 2 reads
    assert ranks.builds == before and len(ranks) == 0
    # The fifth starts each set's OrderIndex, read 64 entries per range read: five
    # more reads each (301 entries), while ZADDs land above and below the cursor.
    ranks.build_step = 64
    try:
        for i in range(12):
            rpair.same("zrangebyscore", "z", 0, "+inf", 0, 1)
            rpair.same("zrangebylex", "lex", "-", "+", 0, 1)
            if i == 1:  # above the builds' cursors: read by their later slices
                rpair.same("zadd", "z", {"x": 99.5})
                rpair.same("zadd", "lex", {"x": 0})
            if i == 3:  # below them: applied to what they have read
                rpair.same("zadd", "z", {"m001": 0.5, "a": -1})
                rpair.same("zrem", "lex", "m000", "m002")
            if i == 6:  # changes after they are done: applied to the indexes
                rpair.same("zadd", "z", {"m000": 50})
    finally:
        ranks.build_step = 2048
    assert ranks.builds == before + (2 if ranks.order_bytes else 0)
    assert ranks.ordered() == (2 if ranks.order_bytes else 0) and ranks.mismatches == 0
    rpair.same("zrank", "z", "x")
    rpair.same("zrangebyscore", "z", 99, "+inf", 0, 5, withscores=True)
    before = ranks.builds
    engine = db.store.engine
    ranged = 0

    def counting(method: Any) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            nonlocal ranged
            ranged += 1
            return method(*args, **kw)

        return call

    for name in ("head_keys", "head", "items", "collect", "chunks", "key_chunks"):
        setattr(engine, name, counting(getattr(engine, name)))
    for lo in ("-inf", "0", "(17", "40", "99", "(99", "+inf"):
        rpair.same("zrangebyscore", "z", lo, "+inf", 0, 10, withscores=True)
        rpair.same("zrangebyscore", "z", lo, "(60", 3, 10)
        rpair.same("zrevrangebyscore", "z", "+inf", lo, 0, 10, withscores=True)
        rpair.same("zrevrangebyscore", "z", "(60", lo, 2, 7)
    for lo, hi in (("-", "+"), ("[m100", "(m105"), ("(m298", "+"), ("[m5", "[m9")):
        rpair.same("zrangebylex", "lex", lo, hi, 0, 10)
        rpair.same("zrevrangebylex", "lex", hi, lo, 1, 10)
    for name in ("head_keys", "head", "items", "collect", "chunks", "key_chunks"):
        delattr(engine, name)
    # ... the others read no engine range; with counts only, every one scans.
    if ranks.order_bytes:
        assert ranks.builds == before and ranged == 0
    else:
        assert ranged >= 28 + 8
    with db.pipeline() as p, rpair.real.pipeline() as q:
        for x in (p, q):
            x.zadd("z", {"new": 10.5, "m031": 99})
            x.zrangebyscore("z", 10, "+inf", 0, 5, withscores=True)
            x.zrem("z", "new")
            x.zrevrangebyscore("z", "+inf", 98, 0, 5)
        assert p.execute() == q.execute()
    rpair.same("zrangebyscore", "z", 10, "+inf", 0, 5, withscores=True)
    rpair.same("zrange", "z", 95, 105, withscores=True)
    assert ranks.mismatches == 0
    assert ranks.builds == before or not ranks.order_bytes  # ZRANGE by rank builds counts


def test_writes_the_index_cannot_see(rpair: Pair) -> None:
    """COPY/RENAME write a new version's index keys raw: inside the same MULTI the
    ranks come from scanning, after it from the index."""
    rpair.same("zadd", "src", {f"m{i:03d}": i % 7 for i in range(60)})
    for cmds in (
        [("copy", "src", "dst"), ("zrank", "dst", "m030"), ("zrange", "dst", 20, 25)],
        [("rename", "dst", "d2"), ("zrevrank", "d2", "m059"), ("zcount", "d2", 2, 4)],
        [("zunionstore", "u", ["src", "d2"]), ("zrank", "u", "m010"), ("zrange", "u", 30, 33)],
    ):
        with rpair.shale.pipeline() as p, rpair.real.pipeline() as q:
            for x in (p, q):
                for name, *args in cmds:
                    getattr(x, name)(*args)
            assert p.execute() == q.execute()
    for k in ("src", "d2", "u"):
        for m in ("m000", "m031", "m059"):
            rpair.same("zrank", k, m)
    # Raw copies, then every copied member re-scored in the same transaction: all the
    # pending index keys are then known changes, but the removals are of keys never
    # committed (found by review: ranks came out negative).
    for first in (("copy", "src", "c2"), ("rename", "d2", "r2")):
        with rpair.shale.pipeline() as p, rpair.real.pipeline() as q:
            for x in (p, q):
                getattr(x, first[0])(*first[1:])
                x.zadd(first[2], {f"m{i:03d}": 1000 + i for i in range(100)})
                x.zrank(first[2], "m050")
                x.zrevrank(first[2], "m010")
                x.zcount(first[2], 1000, 1035)
                x.zlexcount(first[2], "-", "+")
            assert p.execute() == q.execute()
        rpair.same("zrank", first[2], "m050")
    assert rpair.shale.store.ranks.mismatches == 0


def test_ranks_after_reopen_and_compaction(tmp_path: Path) -> None:
    rng = random.Random(9)
    members = {f"k{i:05d}": float(rng.randrange(1000)) for i in range(5000)}
    model = sorted((s, m.encode()) for m, s in members.items())
    with shalekv.open(tmp_path / "db", compaction_workers=0, _rank_bucket=8) as db:
        db.zadd("z", members)
        assert db.zrank("z", model[2500][1]) == 2500
        db.zrem("z", *[m for _, m in model[:1000:2]])
        model = model[1:1000:2] + model[1000:]
        db.engine.flush()
        db.engine.compact()
        for r in range(0, len(model), 211):
            assert db.zrank("z", model[r][1]) == r
    with shalekv.open(tmp_path / "db", compaction_workers=0, _rank_bucket=8) as db:
        for r in range(0, len(model), 173):
            assert db.zrank("z", model[r][1]) == r
            assert db.zrevrank("z", model[r][1]) == len(model) - 1 - r
            assert db.zrange("z", r, r + 2) == [m for _, m in model[r : r + 3]]
        assert db.store.ranks.builds == 1


def test_disabled_index_still_answers(tmp_path: Path) -> None:
    with shalekv.open(tmp_path / "db", compaction_workers=0, zset_rank_index_size=0) as db:
        db.zadd("z", {f"k{i:04d}": i for i in range(3000)})
        assert db.zrank("z", "k1500") == 1500
        assert db.zrange("z", 1700, 1701) == [b"k1700", b"k1701"]
        assert db.zcount("z", 100, 2099) == 2000
        assert len(db.store.ranks) == 0


def test_deleted_sets_drop_their_index(rpair: Pair) -> None:
    """DEL, overwrite and FLUSHDB free the memory of the dead sets' indexes at once (and
    changes staged before a FLUSHDB in one MULTI never reach a dead index)."""
    db = rpair.shale
    ranks = db.store.ranks
    for k in ("a", "b", "c"):
        rpair.same("zadd", k, {f"m{i:03d}": i for i in range(100)})
        rpair.same("zrank", k, "m050")
    assert len(ranks) == 3
    rpair.same("delete", "a")
    rpair.same("zunionstore", "b", ["c"])  # overwrites b: a new version
    assert len(ranks) == 1
    with db.pipeline() as p, rpair.real.pipeline() as q:
        for x in (p, q):
            x.zadd("c", {"new": 50.5})
            x.flushdb()
            x.zadd("c", {"x": 1})
        assert p.execute() == q.execute()
    assert len(ranks) == 0 and ranks.mismatches == 0
