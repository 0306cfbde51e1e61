"""Hashes, differentially against a real redis-server (random commands by properties)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shalekv
from shalekv.types import collection as set_types
from tests.types.differential import Pair, decoding_pair, inline_calls

pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated hmset")

KEYS = ["h", "g", b"\x00bin\xff", ""]
FIELDS = st.one_of(
    st.sampled_from(["f", "g", "", "n", b"\xff\x00", "x" * 30]), st.binary(max_size=4)
)
VALUES = st.one_of(
    st.sampled_from(
        ["", "0", "1", "-1", "10", "9223372036854775807", "-9223372036854775808", "3.5", "1e3"]
        + [" 1", "abc", "inf", "-inf", "nan", "007", "-0", "1.5e18"]
    ),
    st.binary(max_size=8),
)
INTS = st.one_of(st.integers(-5, 40), st.sampled_from([2**63 - 1, -(2**63), 2**62]))


def _exec(pair: Pair, *args: Any) -> Any:
    return pair.same("execute_command", *args)


def test_hset_family(pair: Pair) -> None:
    s = pair.same
    s("hset", "h", "f", "v")
    s("hset", "h", mapping={"f": "w", "g": "x", "": "empty", b"\x00\xff": b"\xff\x00"})
    s("hset", "h", "f", "v", mapping={"f": "z", "n": ""})
    s("hgetall", "h")
    s("hlen", "h")
    s("hmset", "h", {"a": 1, "b": 2})
    s("hsetnx", "h", "a", "new")
    s("hsetnx", "h", "c", "new")
    s("hsetnx", "h2", "c", "new")
    s("hget", "h", "a")
    s("hget", "h", "missing")
    s("hget", "nokey", "a")
    s("hmget", "h", ["a", "missing", "", "c"])
    s("hmget", "nokey", ["a", "b"])
    s("hexists", "h", "a")
    s("hexists", "h", "nope")
    s("hexists", "nokey", "a")
    s("hstrlen", "h", "a")
    s("hstrlen", "h", "")
    s("hstrlen", "h", "nope")
    s("hstrlen", "nokey", "a")
    s("hgetall", "nokey")
    s("hkeys", "nokey")
    s("hvals", "nokey")
    s("hlen", "nokey")
    # duplicate fields in one call
    _exec(pair, "HSET", "d", "x", "1", "x", "2", "y", "3")
    s("hgetall", "d")
    _exec(pair, "HSET", "d", "x", "9", "z", "1", "z", "2")
    s("hgetall", "d")
    s("hlen", "d")
    # arity / syntax
    _exec(pair, "HSET", "h", "f")
    _exec(pair, "HSET", "h", "f", "v", "g")
    _exec(pair, "HMSET", "h", "f", "v", "g")
    _exec(pair, "HSET", "h")
    _exec(pair, "HSETNX", "h", "f")
    _exec(pair, "HGET", "h")
    _exec(pair, "HMGET", "h")
    _exec(pair, "HGETALL")
    _exec(pair, "HDEL", "h")


def test_hkeys_hvals_consistent(pair: Pair) -> None:
    fields = {f"field:{i}": f"value:{i * 7 % 13}" for i in range(300)}
    pair.same("hset", "big", mapping=fields)
    pair.same_unordered("hkeys", "big")
    pair.same_unordered("hvals", "big")
    pair.same("hgetall", "big")
    keys = pair.shale.hkeys("big")
    vals = pair.shale.hvals("big")
    assert dict(zip(keys, vals, strict=True)) == pair.shale.hgetall("big")


def test_hdel(pair: Pair) -> None:
    s = pair.same
    s("hset", "h", mapping={"a": 1, "b": 2, "c": 3})
    s("hdel", "h", "a", "a", "zz")
    s("hdel", "nokey", "a")
    s("hlen", "h")
    s("hdel", "h", "b", "c")
    s("exists", "h")
    s("hlen", "h")
    s("type", "h")
    s("hset", "h", "a", 1)  # recreated after becoming empty
    s("hgetall", "h")


def test_wrong_types(pair: Pair) -> None:
    s = pair.same
    s("set", "str", "x")
    s("sadd", "set", "x")
    for k in ("str", "set"):
        s("hset", k, "f", "v")
        s("hsetnx", k, "f", "v")
        s("hmset", k, {"f": "v"})
        s("hget", k, "f")
        s("hmget", k, ["f"])
        s("hgetall", k)
        s("hkeys", k)
        s("hvals", k)
        s("hdel", k, "f")
        s("hexists", k, "f")
        s("hlen", k)
        s("hstrlen", k, "f")
        s("hincrby", k, "f", 1)
        s("hincrbyfloat", k, "f", 1)
        s("hrandfield", k)
        s("hrandfield", k, 0)
        s("hrandfield", k, 2, withvalues=True)
        _exec(pair, "HSCAN", k, "0")
        _exec(pair, "HSCAN", k, "0", "BOGUS")
        _exec(pair, "HINCRBY", k, "f", "x")  # the number is checked first
        _exec(pair, "HINCRBYFLOAT", k, "f", "x")
    s("hset", "h", "f", "v")
    s("get", "h")
    s("type", "h")


def test_hincrby(pair: Pair) -> None:
    s = pair.same
    s("hincrby", "h", "n", 5)
    s("hincrby", "h", "n", -12)
    s("hincrby", "h", "n", 0)
    s("hincrby", "h", "new", 1)
    s("hset", "h", mapping={"big": 2**63 - 2, "small": -(2**63) + 1, "s": "abc", "sp": " 1"})
    s("hincrby", "h", "big", 1)
    s("hincrby", "h", "big", 1)
    s("hincrby", "h", "small", -1)
    s("hincrby", "h", "small", -1)
    s("hincrby", "h", "s", 1)
    s("hincrby", "h", "sp", 1)
    for v in ("007", "-0", "+1", "1.0", "", "99999999999999999999"):
        s("hset", "h", "v", v)
        s("hincrby", "h", "v", 1)
    _exec(pair, "HINCRBY", "h", "n", "1.5")
    _exec(pair, "HINCRBY", "h", "n", "abc")
    _exec(pair, "HINCRBY", "h", "n", "9223372036854775808")
    _exec(pair, "HINCRBY", "h", "n")
    s("hgetall", "h")


def test_hincrbyfloat(pair: Pair) -> None:
    s = pair.same
    s("hincrbyfloat", "h", "x", 1.5)
    s("hincrbyfloat", "h", "x", "-0.25")
    s("hincrbyfloat", "h", "x", "1e3")
    s("hincrbyfloat", "h", "x", 0)
    s("hincrbyfloat", "h", "y", "5.0e3")
    s("hincrbyfloat", "h", "y", "0.1")
    s("hincrbyfloat", "h", "y", "-5000.1")
    s("hset", "h", mapping={"i": 10, "s": "abc", "inf": "inf", "sp": "1 "})
    s("hincrbyfloat", "h", "i", "0.5")
    s("hincrbyfloat", "h", "s", "1")
    s("hincrbyfloat", "h", "inf", "1")
    s("hincrbyfloat", "h", "sp", "1")
    for incr in ("inf", "-inf", "+inf", "nan", "abc", "", " 1", "1e", "infinity"):
        _exec(pair, "HINCRBYFLOAT", "h", "x", incr)
    _exec(pair, "HINCRBYFLOAT", "nokey", "x", "inf")
    s("exists", "nokey")
    s("hincrbyfloat", "h", "big", "1e30")  # x87 long doubles print their exact binary value
    s("hincrbyfloat", "h", "big", "0.1")
    s("hgetall", "h")


def test_hrandfield(pair: Pair) -> None:
    s = pair.same
    s("hrandfield", "nokey")
    s("hrandfield", "nokey", 5)
    s("hrandfield", "nokey", -5, withvalues=True)
    s("hset", "h", mapping={f"f{i}": f"v{i}" for i in range(5)})
    s("hrandfield", "h", 0)
    s("hrandfield", "h", 0, withvalues=True)
    _exec(pair, "HRANDFIELD", "h", "abc")
    _exec(pair, "HRANDFIELD", "h", "1", "WITHSCORES")
    _exec(pair, "HRANDFIELD", "h", "1", "WITHVALUES", "x")
    _exec(pair, "HRANDFIELD", "h", "-9223372036854775808")
    _exec(pair, "HRANDFIELD", "h", "9223372036854775807", "WITHVALUES")
    _exec(pair, "HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES")
    _exec(pair, "HRANDFIELD", "nokey", "abc")
    whole = pair.shale.hgetall("h")
    # the whole hash for count >= size, in any order
    for n in (5, 6, 100, 2**62):
        for db in (pair.shale, pair.real):
            assert sorted(db.hrandfield("h", n)) == sorted(whole)
    check_hrandfield(pair.shale, "h", whole)


def check_hrandfield(db: Any, key: str, whole: dict[bytes, bytes]) -> None:
    """The properties Redis guarantees (HRANDFIELD is random: no equality)."""
    assert db.hrandfield(key) in whole
    for n in (1, 2, 3, len(whole) - 1):
        got = db.hrandfield(key, n)
        assert len(got) == n and len(set(got)) == n and set(got) <= set(whole)
        flat = db.hrandfield(key, n, withvalues=True)
        pairs = list(zip(flat[::2], flat[1::2], strict=True))
        assert len(pairs) == n and len({f for f, _ in pairs}) == n
        assert all(whole[f] == v for f, v in pairs)
    for n in (1, 7, 50):
        got = db.hrandfield(key, -n)
        assert len(got) == n and set(got) <= set(whole)
        flat = db.hrandfield(key, -n, withvalues=True)
        assert len(flat) == 2 * n
        assert all(whole[f] == v for f, v in zip(flat[::2], flat[1::2], strict=True))


def test_hrandfield_sampling_big_hash(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seek-based sampler for hashes above the read-all bound."""
    monkeypatch.setattr(set_types, "SAMPLE_READ_ALL", 8)
    monkeypatch.setattr(set_types, "SAMPLE_SEEKS", 3)
    whole = {f"user:{i:04}".encode(): str(i).encode() for i in range(60)}
    pair.shale.hset("h", mapping=whole)
    check_hrandfield(pair.shale, "h", whole)
    seen = Counter(pair.shale.hrandfield("h") for _ in range(600))
    assert len(seen) > 30  # shared prefixes do not pin the sampler to one field
    got = pair.shale.hrandfield("h", 59)
    assert len(got) == 59 and len(set(got)) == 59 and set(got) <= set(whole)


def test_hscan(pair: Pair) -> None:
    fields = {f"f{i}": f"v{i}" for i in range(150)} | {"": "e", "\x00": "z", "other": "x"}
    pair.same("hset", "h", mapping=fields)
    for kwargs in ({}, {"count": 1}, {"count": 7}, {"match": "f1*"}, {"match": "f?"}):
        ours = dict(pair.shale.hscan_iter("h", **kwargs))
        theirs = dict(pair.real.hscan_iter("h", **kwargs))
        assert ours == theirs, kwargs
    # one call with a big count returns everything and cursor 0
    assert pair.shale.hscan("h", 0, count=1000) == pair.real.hscan("h", 0, count=1000)
    _exec(pair, "HSCAN", "h", "abc")
    _exec(pair, "HSCAN", "h", " 1")
    _exec(pair, "HSCAN", "h", "0", "COUNT", "0")
    _exec(pair, "HSCAN", "h", "0", "COUNT", "-1")
    _exec(pair, "HSCAN", "h", "0", "COUNT", "x")
    _exec(pair, "HSCAN", "h", "0", "MATCH")
    _exec(pair, "HSCAN", "h", "0", "FOO", "bar")
    _exec(pair, "HSCAN", "nokey", "0", "FOO", "bar")
    _exec(pair, "HSCAN", "nokey", "0")
    _exec(pair, "HSCAN", "nokey", "abc")
    _exec(pair, "HSCAN", "h")


@st.composite
def hash_ops(draw: st.DrawFn) -> list[tuple[str, tuple, dict]]:
    ops = []
    for _ in range(draw(st.integers(1, 30))):
        k = draw(st.sampled_from(KEYS))
        f = draw(FIELDS)
        f2 = draw(FIELDS)
        v = draw(VALUES)
        n = draw(INTS)
        op = draw(
            st.sampled_from(
                [
                    ("hset", (k, f, v), {}),
                    ("hset", (k,), {"mapping": {f: v, f2: n}}),
                    ("hmset", (k, {f: v}), {}),
                    ("hsetnx", (k, f, v), {}),
                    ("hget", (k, f), {}),
                    ("hmget", (k, [f, f2]), {}),
                    ("hgetall", (k,), {}),
                    ("hdel", (k, f, f2), {}),
                    ("hexists", (k, f), {}),
                    ("hlen", (k,), {}),
                    ("hstrlen", (k, f), {}),
                    ("hincrby", (k, f, n), {}),
                    ("hincrbyfloat", (k, f, v), {}),
                    ("hrandfield", (k, 0), {}),
                    ("hrandfield", (k, 2**40), {}),  # whole hash: sorted below
                    ("delete", (k,), {}),
                    ("set", (k, v), {}),
                    ("sadd", (k, v), {}),
                    ("rename", (k, f), {}),
                    ("copy", (k, "dst"), {"replace": True}),  # COPY k k: a keys.py issue
                    ("expire", (k, 1000), {}),
                ]
            )
        )
        ops.append(op)
    return ops


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=hash_ops())
def test_random_hash_programs(pair: Pair, ops: list[tuple[str, tuple, dict]]) -> None:
    pair.real.flushall()
    pair.shale.flushall()
    for method, args, kwargs in ops:
        if method == "hrandfield" and args[1]:
            ours, theirs = pair.both(method, *args, **kwargs)
            norm = sorted if isinstance(ours, list) and isinstance(theirs, list) else list
            assert norm(ours) == norm(theirs)  # type: ignore[operator]
        else:
            pair.same(method, *args, **kwargs)
    for k in KEYS:
        pair.same("type", k)
        if pair.real.type(k) == b"hash":
            pair.same("hgetall", k)
            pair.same_unordered("hkeys", k)
            pair.same_unordered("hvals", k)
            pair.same("hlen", k)
    pair.check_all_keys()


def test_persistence_flush_and_compaction(tmp_path: Any) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0)
    big = {f"field:{i}".encode(): f"v{i}".encode() for i in range(3000)}
    db.hset("big", mapping=big)
    db.hset("small", mapping={"a": 1, "b": b"\x00\xff"})
    db.hset("gone", "a", 1)
    db.hset("ttl", "a", 1)
    db.expire("ttl", 1000)
    db.hdel("gone", "a")
    db.close()
    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.hgetall("big") == big
    assert db.hgetall("small") == {b"a": b"1", b"b": b"\x00\xff"}
    assert db.exists("gone") == 0
    assert 990 <= db.ttl("ttl") <= 1000
    assert db.hlen("big") == 3000
    db.hset("big", "field:1", "changed")
    db.hdel("big", "field:2")
    big[b"field:1"] = b"changed"
    del big[b"field:2"]
    db.engine.flush()
    assert db.hgetall("big") == big
    db.delete("small")
    db.hset("small", "new", "x")  # a new version: the old fields must not come back
    db.engine.compact()
    assert db.hgetall("big") == big
    assert db.hgetall("small") == {b"new": b"x"}
    assert db.hget("big", "field:2999") == b"v2999"
    assert db.hincrby("big", "counter", 3) == 3
    big[b"counter"] = b"3"
    check_hrandfield(db, "big", big)  # above SAMPLE_READ_ALL: the seek sampler
    assert dict(db.hscan_iter("big", match="field:1?")) == {
        k: v for k, v in big.items() if len(k) == 8 and k.startswith(b"field:1")
    }
    db.close()
    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.hlen("big") == 3000
    assert db.hget("big", "counter") == b"3"
    db.close()


def test_hash_in_transaction(pair: Pair) -> None:
    with pair.shale.pipeline(transaction=True) as p:
        p.hset("h", "a", 1).hincrby("h", "a", 2).hdel("h", "a").hset("h", "b", 1)
        p.hgetall("h")
        assert p.execute() == [1, 3, 1, 1, {b"b": b"1"}]
    assert pair.shale.hlen("h") == 1


def test_expired_hash_is_absent(pair: Pair) -> None:
    db = pair.shale
    db.hset("h", mapping={"a": 1, "b": 2})
    db.pexpire("h", 20)
    time.sleep(0.03)
    assert db.hlen("h") == 0 and db.hgetall("h") == {}
    assert db.hincrby("h", "a", 5) == 5
    assert db.hgetall("h") == {b"a": b"5"} and db.ttl("h") == -1
    db.expire("h", 100)
    db.hset("h", "c", 1)
    db.hdel("h", "a")
    assert db.ttl("h") > 90  # field writes keep the key's TTL


def test_hset_inline_matches_redis(
    pair: Pair, redis_port: int, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hset() of one field given as key and value runs inline: values of every type
    redis-py encodes (str, bytes, ints, floats incl. inf/NaN text, empty), new and
    existing fields, an int field, mappings and items (the command path),
    WRONGTYPE and a decoding client give what redis-server gives."""
    s = pair.same
    inline = inline_calls(pair, monkeypatch)
    values: list[Any] = ["v", b"\x00\xff", "", 0, -7, 2**70, 1.5, -0.0, float("inf"), float("nan")]
    for i, v in enumerate(values):
        s("hset", "h", f"f{i}", v)
        s("hset", "h", f"f{i}".encode(), v)  # again: not a new field
        s("hget", "h", f"f{i}")
    s("hset", "h", 5, "int field")  # the command path
    s("hset", "h", mapping={"m": 1, "n": b"2"})
    s("hset", "h", "k", "v", mapping={"m2": 3}, items=["i1", "v1"])
    s("hgetall", "h")
    s("set", "str", "v")
    s("hset", "str", "f", "v")
    assert len(inline) == 2 * len(values) + 1
    with decoding_pair(redis_port, str(tmp_path / "d")) as dp:
        dp.same("hset", "h", "é", "ü")
        dp.same("hgetall", "h")
