"""Sets, differentially against a real redis-server (random commands by properties)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shalekv
from shalekv.types import collection as set_types
from tests.types.differential import Pair

KEYS = ["s", "t", b"\x00bin\xff", ""]
MEMBERS = st.one_of(
    st.sampled_from(["a", "b", "c", "", "1", "-1", "10", b"\xff\x00", "x" * 30]),
    st.binary(max_size=3),
)
INTS = st.one_of(st.integers(-6, 12), st.sampled_from([2**63 - 1, -(2**63), 2**40]))


def _exec(pair: Pair, *args: Any) -> Any:
    return pair.same("execute_command", *args)


def test_basic_commands(pair: Pair) -> None:
    s = pair.same
    s("sadd", "s", "a", "b", "a", "", b"\x00\xff", 1, -1)
    s("sadd", "s", "a", "c")
    s("sadd", "n", *range(100))  # integers (an intset in Redis)
    s("smembers", "s")
    s("smembers", "n")
    s("smembers", "nokey")
    s("scard", "s")
    s("scard", "nokey")
    s("sismember", "s", "a")
    s("sismember", "s", "zz")
    s("sismember", "s", "")
    s("sismember", "nokey", "a")
    s("smismember", "s", ["a", "zz", "", "a"])
    s("smismember", "nokey", ["a", "b"])
    s("srem", "s", "a", "a", "zz")
    s("srem", "nokey", "a")
    s("scard", "s")
    s("srem", "s", "b", "c", "", b"\x00\xff", 1, -1)
    s("exists", "s")
    s("type", "s")
    s("sadd", "s", "again")
    s("smembers", "s")
    _exec(pair, "SADD", "s")
    _exec(pair, "SREM", "s")
    _exec(pair, "SMEMBERS")
    _exec(pair, "SMEMBERS", "s", "t")
    _exec(pair, "SISMEMBER", "s")
    _exec(pair, "SMISMEMBER", "s")
    _exec(pair, "SCARD", "s", "t")


def test_wrong_types(pair: Pair) -> None:
    s = pair.same
    s("set", "str", "x")
    s("hset", "h", "f", "v")
    s("sadd", "s", "a", "b")
    for k in ("str", "h"):
        s("sadd", k, "a")
        s("srem", k, "a")
        s("smembers", k)
        s("sismember", k, "a")
        s("smismember", k, ["a"])
        s("scard", k)
        s("spop", k)
        s("spop", k, 0)
        s("spop", k, 3)
        s("srandmember", k)
        s("srandmember", k, 0)
        s("srandmember", k, -3)
        s("smove", k, "s", "a")
        s("smove", "s", k, "a")
        s("smove", "nokey", k, "a")  # a missing source answers 0 before type checks
        s("sinter", "s", k)
        s("sinter", "nokey", k)
        s("sunion", "nokey", k)
        s("sdiff", "nokey", k)
        s("sdiff", "s", k)
        s("sinterstore", "dst", "s", k)
        s("sunionstore", "dst", k)
        s("sdiffstore", "dst", "nokey", k)
        s("sintercard", 2, ["nokey", k])
        _exec(pair, "SSCAN", k, "0")
        _exec(pair, "SSCAN", k, "0", "BOGUS")
        _exec(pair, "SPOP", k, "x")  # the count is checked first
        _exec(pair, "SRANDMEMBER", k, "x")
    s("exists", "dst")
    s("smembers", "s")


def test_smove(pair: Pair) -> None:
    s = pair.same
    s("sadd", "src", "a", "b", "c")
    s("sadd", "dst", "c", "z")
    s("smove", "src", "dst", "a")
    s("smove", "src", "dst", "a")
    s("smove", "src", "dst", "c")  # already in dst: still removed from src
    s("smembers", "src")
    s("smembers", "dst")
    s("smove", "src", "src", "b")
    s("smove", "src", "src", "zz")
    s("smove", "src", "new", "b")  # src becomes empty, new is created
    s("exists", "src")
    s("smembers", "new")
    s("smove", "nokey", "dst", "a")
    s("expire", "dst", 1000)
    s("smove", "new", "dst", "b")
    s("ttl", "dst")
    s("scard", "dst")
    _exec(pair, "SMOVE", "a", "b")


def test_combinations(pair: Pair) -> None:
    s = pair.same
    s("sadd", "a", *[f"m{i}" for i in range(0, 60)])
    s("sadd", "b", *[f"m{i}" for i in range(0, 60, 2)], "only-b")
    s("sadd", "c", *[f"m{i}" for i in range(0, 60, 3)], "")
    s("sadd", "tiny", "m0", "m30", "zz")
    for keys in (
        ["a"],
        ["a", "b"],
        ["a", "b", "c"],
        ["c", "b", "a"],
        ["tiny", "a"],
        ["a", "tiny"],
        ["a", "a"],
        ["a", "nokey"],
        ["nokey", "a"],
        ["nokey"],
        ["b", "c", "tiny", "nokey"],
    ):
        s("sinter", *keys)
        s("sunion", *keys)
        s("sdiff", *keys)
        s("sintercard", len(keys), keys)
        for limit in (0, 1, 5, 1000):
            s("sintercard", len(keys), keys, limit=limit)
        for op in ("sinterstore", "sunionstore", "sdiffstore"):
            s(op, "out", *keys)
            s("smembers", "out")
            s("exists", "out")
    # the destination may be a source, may have a TTL or another type
    s("sunionstore", "a", "a", "b")
    s("smembers", "a")
    s("set", "str", "x", ex=100)
    s("sinterstore", "str", "b", "c")
    s("ttl", "str")
    s("type", "str")
    s("set", "str", "x")
    s("sdiffstore", "str", "nokey")
    s("exists", "str")
    s("sadd", "e", "x")
    s("expire", "e", 100)
    s("sdiffstore", "e", "b", "c")
    s("ttl", "e")
    s("sinterstore", "e", "e", "nokey")
    s("exists", "e")


def test_big_combinations(pair: Pair) -> None:
    """Walk and point-lookup membership paths (WALK_RATIO) on uneven sizes."""
    s = pair.same
    s("sadd", "big", *[f"k{i}" for i in range(3000)])
    s("sadd", "mid", *[f"k{i}" for i in range(0, 3000, 7)], "x", "y")
    s("sadd", "small", "k1", "k14", "k2999", "nope")
    for keys in (["big", "small"], ["small", "big"], ["mid", "big"], ["big", "mid", "small"]):
        s("sinter", *keys)
        s("sdiff", *keys)
        s("sunionstore", "u", *keys)
        s("scard", "u")
        s("sintercard", len(keys), keys, limit=3)
        s("sdiffstore", "d", *keys)
        s("scard", "d")


def test_sintercard_arguments(pair: Pair) -> None:
    s = pair.same
    s("sadd", "a", 1, 2, 3)
    for args in (
        ["0", "a"],
        ["-1", "a"],
        ["x", "a"],
        ["2", "a"],
        ["1", "a", "LIMIT"],
        ["1", "a", "LIMIT", "-1"],
        ["1", "a", "LIMIT", "x"],
        ["1", "a", "LIMIT", "1", "LIMIT", "2"],
        ["1", "a", "limit", "0"],
        ["1", "a", "BOGUS", "1"],
        ["1", "a", "a"],
        ["2", "a", "a", "LIMIT", "2"],
    ):
        _exec(pair, "SINTERCARD", *args)


def test_spop_srandmember_arguments(pair: Pair) -> None:
    s = pair.same
    s("spop", "nokey")
    s("spop", "nokey", 3)
    s("spop", "nokey", 0)
    s("srandmember", "nokey")
    s("srandmember", "nokey", 3)
    s("srandmember", "nokey", -3)
    s("sadd", "s", "a", "b", "c")
    s("spop", "s", 0)
    s("srandmember", "s", 0)
    for args in (
        ["SPOP", "s", "-1"],
        ["SPOP", "s", "x"],
        ["SPOP", "s", "1", "2"],
        ["SPOP", "nokey", "-1"],
        ["SRANDMEMBER", "s", "x"],
        ["SRANDMEMBER", "s", "1", "2"],
        ["SRANDMEMBER", "s", "-9223372036854775808"],
        ["SRANDMEMBER", "nokey", "1.5"],
        ["SPOP"],
    ):
        _exec(pair, *args)
    # whole-set answers are deterministic up to order
    for n in (3, 4, 2**62):
        for db in (pair.shale, pair.real):
            assert sorted(db.srandmember("s", n)) == [b"a", b"b", b"c"]
    for db in (pair.shale, pair.real):
        assert sorted(db.spop("s", 10)) == [b"a", b"b", b"c"]
    s("exists", "s")


def check_random(db: Any, key: str) -> None:
    """The properties Redis guarantees for SRANDMEMBER and SPOP on set `key`."""
    whole = db.smembers(key)
    size = len(whole)
    assert db.srandmember(key) in whole
    for n in (1, 2, 5, size - 1, size, size + 3):
        got = db.srandmember(key, n)
        assert len(got) == min(n, size) and len(set(got)) == len(got) and set(got) <= whole
    for n in (1, 3, 40):
        got = db.srandmember(key, -n)
        assert len(got) == n and set(got) <= whole
    popped = db.spop(key)
    assert popped in whole and db.sismember(key, popped) == 0
    got = db.spop(key, 4)
    assert len(got) == 4 and len(set(got)) == 4 and set(got) <= whole - {popped}
    assert db.scard(key) == size - 5
    assert db.smembers(key) == whole - {popped} - set(got)
    rest = db.spop(key, size)
    assert set(rest) == whole - {popped} - set(got)
    assert db.exists(key) == 0


def test_random_properties(pair: Pair) -> None:
    for db in (pair.shale, pair.real):
        db.sadd("s", *[f"member:{i}" for i in range(40)])
        check_random(db, "s")
        db.sadd("one", "x")
        assert db.spop("one") == b"x" and db.exists("one") == 0


def test_random_sampling_big_sets(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seek-based sampler used above SAMPLE_READ_ALL, on a small scale."""
    monkeypatch.setattr(set_types, "SAMPLE_READ_ALL", 8)
    monkeypatch.setattr(set_types, "SAMPLE_SEEKS", 3)
    db = pair.shale
    db.sadd("s", *[f"user:{i:05}" for i in range(80)])
    check_random(db, "s")
    db.sadd("b", *[bytes([i, j]) for i in range(0, 256, 16) for j in (0, 255)])
    check_random(db, "b")
    db.sadd("p", *[f"p{i}" for i in range(60)])
    seen = Counter(db.srandmember("p") for _ in range(600))
    assert len(seen) > 30
    assert len(db.srandmember("p", 59)) == 59
    got = db.spop("p", 50)
    assert len(set(got)) == 50 and db.scard("p") == 10


def test_default_sampler_threshold(pair: Pair) -> None:
    db = pair.shale
    db.sadd("big", *range(2500))
    check_random(db, "big")


def test_sscan(pair: Pair) -> None:
    members = [f"m{i}" for i in range(150)] + ["", "\x00", "other"]
    pair.same("sadd", "s", *members)
    pair.same("sadd", "ints", *range(50))
    for key in ("s", "ints"):
        for kwargs in ({}, {"count": 1}, {"count": 7}, {"match": "m1*"}, {"match": "*3"}):
            ours = sorted(pair.shale.sscan_iter(key, **kwargs))
            theirs = sorted(pair.real.sscan_iter(key, **kwargs))
            assert ours == theirs, (key, kwargs)
            assert len(ours) == len(set(ours))
    ours = pair.shale.sscan("s", 0, count=1000)
    assert ours[0] == 0 and sorted(ours[1]) == sorted(pair.real.smembers("s"))
    _exec(pair, "SSCAN", "s", "abc")
    _exec(pair, "SSCAN", "s", "0", "COUNT", "0")
    _exec(pair, "SSCAN", "s", "0", "COUNT", "x")
    _exec(pair, "SSCAN", "s", "0", "MATCH")
    _exec(pair, "SSCAN", "s", "0", "FOO", "bar")
    _exec(pair, "SSCAN", "nokey", "0", "FOO", "bar")
    _exec(pair, "SSCAN", "nokey", "x")
    _exec(pair, "SSCAN", "s")


@st.composite
def set_ops(draw: st.DrawFn) -> list[tuple[str, tuple, dict]]:
    ops = []
    for _ in range(draw(st.integers(1, 30))):
        k = draw(st.sampled_from(KEYS))
        k2 = draw(st.sampled_from(KEYS))
        k3 = draw(st.sampled_from(KEYS))
        m = draw(MEMBERS)
        m2 = draw(MEMBERS)
        n = draw(INTS)
        op = draw(
            st.sampled_from(
                [
                    ("sadd", (k, m, m2), {}),
                    ("sadd", (k, m), {}),
                    ("srem", (k, m, m2), {}),
                    ("smembers", (k,), {}),
                    ("sismember", (k, m), {}),
                    ("smismember", (k, [m, m2]), {}),
                    ("scard", (k,), {}),
                    ("smove", (k, k2, m), {}),
                    ("sinter", (k, k2, k3), {}),
                    ("sunion", (k, k2), {}),
                    ("sdiff", (k, k2, k3), {}),
                    ("sinterstore", (k, k2, k3), {}),
                    ("sunionstore", (k, k2, k3), {}),
                    ("sdiffstore", (k, k2, k3), {}),
                    ("sintercard", (2, [k, k2]), {"limit": max(n, 0)}),
                    ("spop", (k, 0), {}),
                    ("spop", (k, 2**40), {}),  # the whole set: sorted below
                    ("srandmember", (k, 2**40), {}),
                    ("srandmember", (k, 0), {}),
                    ("delete", (k,), {}),
                    ("set", (k, m), {}),
                    ("hset", (k, m, m2), {}),
                    ("rename", (k, k2), {}),
                    ("expire", (k, 1000), {}),
                ]
            )
        )
        ops.append(op)
    return ops


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=set_ops())
def test_random_set_programs(pair: Pair, ops: list[tuple[str, tuple, dict]]) -> None:
    pair.real.flushall()
    pair.shale.flushall()
    for method, args, kwargs in ops:
        if method in ("spop", "srandmember") and args[1]:
            ours, theirs = pair.both(method, *args, **kwargs)
            norm = sorted if isinstance(ours, list) and isinstance(theirs, list) else list
            assert norm(ours) == norm(theirs), (method, args)  # type: ignore[operator]
        else:
            pair.same(method, *args, **kwargs)
    for k in KEYS:
        pair.same("type", k)
        pair.same("ttl", k)
        if pair.real.type(k) == b"set":
            pair.same("smembers", k)
            pair.same("scard", k)
    pair.check_all_keys()


def test_persistence_flush_and_compaction(tmp_path: Any) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0)
    big = {f"member:{i}".encode() for i in range(3000)}
    db.sadd("big", *big)
    db.sadd("small", "a", b"\x00\xff")
    db.sadd("ttl", "a")
    db.expire("ttl", 1000)
    db.sadd("gone", "a")
    db.srem("gone", "a")
    db.close()
    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.smembers("big") == big
    assert db.smembers("small") == {b"a", b"\x00\xff"}
    assert db.exists("gone") == 0
    assert 990 <= db.ttl("ttl") <= 1000
    assert db.scard("big") == 3000
    db.srem("big", "member:1")
    db.sadd("big", "new")
    big = (big - {b"member:1"}) | {b"new"}
    db.engine.flush()
    assert db.smembers("big") == big
    db.delete("small")
    db.sadd("small", "fresh")  # a new version: the old members must not come back
    db.sinterstore("inter", "big", "small")
    db.sunionstore("union", "small", "big")
    db.engine.compact()
    assert db.smembers("big") == big
    assert db.smembers("small") == {b"fresh"}
    assert db.exists("inter") == 0
    assert db.scard("union") == 3001
    assert db.sismember("big", "member:2999") == 1
    assert set(db.sscan_iter("big", match="member:1?")) == {
        m for m in big if len(m) == 9 and m.startswith(b"member:1")
    }
    db.close()
    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.smembers("union") == big | {b"fresh"}
    assert db.scard("union") == 3001
    check_random(db, "union")
    db.close()


def test_sets_in_transaction(pair: Pair) -> None:
    with pair.shale.pipeline(transaction=True) as p:
        p.sadd("a", 1, 2, 3).sadd("b", 2, 3, 4).sinterstore("c", "a", "b").srem("c", 2)
        p.smembers("c").smove("a", "c", 1).scard("c")
        assert p.execute() == [3, 3, 2, 1, {b"3"}, 1, 2]


def test_expired_set_is_absent(pair: Pair) -> None:
    db = pair.shale
    db.sadd("s", "old1", "old2")
    db.pexpire("s", 20)
    time.sleep(0.03)
    assert db.scard("s") == 0 and db.smembers("s") == set()
    assert db.sadd("s", "new") == 1
    assert db.smembers("s") == {b"new"} and db.ttl("s") == -1
    db.sadd("t", "x")
    db.pexpire("t", 20)
    time.sleep(0.03)
    assert db.smove("s", "t", "new") == 1
    assert db.smembers("t") == {b"new"} and db.exists("s") == 0
