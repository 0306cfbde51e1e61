"""Strings and generic key commands, differentially against a real redis-server."""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shalekv
from tests.types.differential import Pair

KEYS = ["a", "b", b"\x00bin\xff", ""]
VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "10",
            "9223372036854775807",
            "-9223372036854775808",
            "3.5",
            "1e3",
            " 1",
            "+1",
            "abc",
            "inf",
            "nan",
            "007",
        ]
    ),
    st.binary(max_size=12),
)
INTS = st.one_of(st.integers(-5, 40), st.sampled_from([2**63 - 1, -(2**63), 2**62]))


def test_set_get_options(pair: Pair) -> None:
    s = pair.same
    s("set", "k", "v")
    s("get", "k")
    s("set", "k", "w", nx=True)
    s("set", "k", "w", xx=True)
    s("set", "new", "w", xx=True)
    s("set", "k", "x", get=True)
    s("set", "k", "y", nx=True, get=True)
    s("set", "k", "z", ex=100)
    s("ttl", "k")
    s("set", "k", "z2", keepttl=True)
    s("ttl", "k")
    s("set", "k", "z3")
    s("ttl", "k")
    s("set", "k", "v", ex=0)
    s("set", "k", "v", ex=-1)
    s("set", "k", "v", px=0)
    s("execute_command", "SET", "k", "v", "EX", "abc")
    s("execute_command", "SET", "k", "v", "EX")
    s("execute_command", "SET", "k", "v", "NX", "XX")
    s("execute_command", "SET", "k", "v", "EX", "10", "PX", "100")
    s("execute_command", "SET", "k", "v", "KEEPTTL", "EX", "10")
    s("execute_command", "SET", "k", "v", "BOGUS")
    s("execute_command", "SET", "k", "v", "EX", "9223372036854775807")
    s("execute_command", "SET", "k")
    s("set", "past", "v", exat=1)
    s("exists", "past")
    s("set", "k", "v", pxat=int(time.time() * 1000) + 100_000)
    pair.near("pttl", "k", within=50)  # both tick with the clock between the two calls
    s("rpush", "list", "x")
    s("set", "list", "v", get=True)
    s("set", "list", "v")
    s("type", "list")


def test_numbers(pair: Pair) -> None:
    s = pair.same
    s("incr", "n")
    s("incrby", "n", 41)
    s("decrby", "n", 2)
    s("decr", "n")
    s("incrby", "n", "abc")
    s("incrby", "n", 1.5)
    s("set", "big", 2**63 - 1)
    s("incr", "big")
    s("set", "small", -(2**63))
    s("decr", "small")
    s("decrby", "n", -(2**63))
    for v in ["", " 1", "1 ", "+1", "01", "-0", "0x1", "1e2", "99999999999999999999"]:
        s("set", "x", v)
        s("incr", "x")
    s("set", "f", "10.5")
    s("incrbyfloat", "f", 0.1)
    s("incrbyfloat", "f", -5)
    s("incrbyfloat", "f", "1e2")
    s("incrbyfloat", "f", "inf")
    s("incrbyfloat", "f", "nan")
    s("incrbyfloat", "f", "abc")
    s("incrbyfloat", "nf", "0.1")
    s("incrbyfloat", "nf", "0.2")
    s("set", "bad", "abc")
    s("incrbyfloat", "bad", 1)
    s("hset", "h", "f", "v")
    s("incr", "h")
    s("incrbyfloat", "h", 1)


def test_ranges_and_bits(pair: Pair) -> None:
    s = pair.same
    s("set", "s", "Hello World")
    for a, b in [(0, 4), (-5, -1), (5, 2), (-100, 100), (0, -1), (20, 30), (-1, -5), (3, 3)]:
        s("getrange", "s", a, b)
    s("getrange", "missing", 0, -1)
    s("setrange", "s", 6, "Redis")
    s("setrange", "s", 20, "X")
    s("get", "s")
    s("setrange", "s", -1, "X")
    s("setrange", "new", 3, "")
    s("exists", "new")
    s("setrange", "new", 3, "abc")
    s("get", "new")
    s("append", "s", "!")
    s("append", "fresh", "x")
    s("strlen", "s")
    s("strlen", "nope")
    s("setbit", "b", 7, 1)
    s("setbit", "b", 7, 0)
    s("setbit", "b", 100, 1)
    s("setbit", "b", -1, 1)
    s("setbit", "b", 1, 2)
    s("getbit", "b", 100)
    s("getbit", "b", 10000)
    s("get", "b")
    s("set", "bc", "foobar")
    s("bitcount", "bc")
    for a, b in [(1, 1), (0, 0), (-2, -1), (5, 30), (3, 1)]:
        s("bitcount", "bc", a, b)
        s("bitcount", "bc", a, b, "BIT")
    s("execute_command", "BITCOUNT", "bc", "1")
    s("execute_command", "BITCOUNT", "bc", "1", "2", "NOPE")
    s("set", "bp", b"\xff\xf0\x00")
    for bit in (0, 1):
        s("bitpos", "bp", bit)
        s("bitpos", "bp", bit, 1)
        s("bitpos", "bp", bit, 1, -1)
        s("bitpos", "bp", bit, 2, 3, "BIT")
        s("bitpos", "bp", bit, -3, -1, "BIT")
        s("bitpos", "missing", bit)
    s("set", "ones", b"\xff\xff")
    s("bitpos", "ones", 0)
    s("bitpos", "ones", 0, 0, -1)
    s("execute_command", "BITPOS", "bp", "2")
    s("set", "x1", b"\x0f\xf0")
    s("set", "x2", b"\xff")
    for op in ("AND", "OR", "XOR"):
        s("bitop", op, "dest", "x1", "x2", "missing")
        s("get", "dest")
    s("bitop", "NOT", "dest", "x1")
    s("get", "dest")
    s("bitop", "NOT", "dest", "x1", "x2")
    s("bitop", "AND", "dest", "missing")
    s("exists", "dest")
    s("execute_command", "BITOP", "NAND", "dest", "x1")


def test_multi_key_and_getex(pair: Pair) -> None:
    s = pair.same
    s("mset", {"a": 1, "b": 2})
    s("mget", "a", "b", "c")
    s("msetnx", {"c": 3, "a": 9})
    s("msetnx", {"c": 3, "d": 4})
    s("mget", ["a", "c", "d"])
    s("execute_command", "MSET", "a")
    s("execute_command", "MSET", "a", "1", "b")
    s("getset", "a", "new")
    s("getdel", "a")
    s("getdel", "a")
    s("setnx", "a", 1)
    s("setnx", "a", 2)
    s("setex", "e", 100, "v")
    s("ttl", "e")
    s("setex", "e", 0, "v")
    s("psetex", "e", -5, "v")
    s("getex", "e", persist=True)
    s("ttl", "e")
    s("getex", "e", ex=50)
    s("ttl", "e")
    s("execute_command", "GETEX", "e", "EX", "10", "PERSIST")
    s("execute_command", "GETEX", "e", "EX", "0")
    s("execute_command", "GETEX", "e", "FOO")
    s("getex", "missing", ex=10)
    s("lpush", "l", 1)
    s("getex", "l")
    s("getdel", "l")
    s("mget", "l", "b")


def test_key_commands(pair: Pair) -> None:
    s = pair.same
    s("mset", {"k1": 1, "k2": 2, "k3": 3, "other": 4})
    s("rpush", "l", "a", "b")
    s("exists", "k1", "k1", "nope")
    s("delete", "k1", "nope")
    s("unlink", "k2")
    s("touch", "k3", "nope", "k3")
    s("type", "l")
    s("type", "nope")
    s("expire", "k3", 100)
    s("expire", "k3", 50, nx=True)
    s("expire", "k3", 200, gt=True)
    s("expire", "k3", 100, lt=True)
    s("expire", "other", 100, xx=True)
    s("expire", "other", 100, gt=True)
    s("expire", "other", 100, lt=True)
    s("ttl", "k3")
    s("ttl", "other")
    s("ttl", "nope")
    s("pttl", "nope")
    s("expiretime", "other")
    s("pexpiretime", "nope")
    s("execute_command", "EXPIRE", "k3", "10", "NX", "XX")
    s("execute_command", "EXPIRE", "k3", "10", "GT", "LT")
    s("execute_command", "EXPIRE", "k3", "10", "FOO")
    s("execute_command", "EXPIRE", "k3", "abc")
    s("execute_command", "EXPIRE", "k3", "9223372036854775807")
    s("execute_command", "PEXPIRE", "k3", "9223372036854775807")
    s("persist", "k3")
    s("persist", "k3")
    s("ttl", "k3")
    s("expireat", "other", int(time.time()) + 1000)
    s("ttl", "other")
    s("pexpireat", "other", 1)
    s("exists", "other")
    s("expire", "k3", -1)
    s("exists", "k3")
    s("mset", {"r1": "v1", "r2": "v2"})
    s("expire", "r1", 1000)
    s("rename", "r1", "r3")
    s("ttl", "r3")
    s("rename", "nope", "x")
    s("renamenx", "r3", "r2")
    s("renamenx", "r3", "r4")
    s("rename", "r4", "r4")
    s("renamenx", "r4", "r4")
    s("rename", "l", "l2")
    s("lrange", "l2", 0, -1)
    s("copy", "l2", "l3")
    s("copy", "l2", "l3")
    s("copy", "r2", "l3", replace=True)
    s("get", "l3")
    s("lrange", "l2", 0, -1)
    s("copy", "nope", "x")
    s("copy", "r2", "r2")
    s("copy", "r2", "z", destination_db=3)
    s("execute_command", "COPY", "r2", "z", "DB", "99")
    s("execute_command", "COPY", "r2", "z", "FOO")
    s("move", "l2", 4)  # a list: its elements go along
    s("move", "l2", 4)
    s("move", "z", 3)
    s("select", 3)
    s("set", "r2", "taken")
    s("select", 0)
    s("move", "r2", 3)  # db 3 holds r2: nothing moves
    s("get", "r2")
    s("execute_command", "MOVE", "r2", "0")
    s("execute_command", "MOVE", "r2", "99")
    s("execute_command", "MOVE", "r2", "x")
    s("select", 4)
    s("lrange", "l2", 0, -1)
    s("select", 0)
    s("dbsize")
    pair.same_unordered("keys", "*")
    pair.same_unordered("keys", "r*")
    pair.same_unordered("keys", "l?")
    pair.same_unordered("keys", "[lr][2-3]")
    pair.same_unordered("keys", "[^l]*")
    pair.same_unordered("keys", "nomatch*")
    s("flushdb")
    s("dbsize")
    s("randomkey")
    s("set", "only", 1)
    s("randomkey")
    s("select", 16)
    s("execute_command", "SELECT", "abc")
    s("execute_command", "NOSUCHCMD", "a", "b")
    s("execute_command", "GET")
    s("execute_command", "GET", "a", "b")


def test_scan_walks_everything(pair: Pair) -> None:
    for i in range(120):
        pair.same("set", f"key:{i}", i)
    pair.same("rpush", "alist", 1)
    for client in (pair.shale, pair.real):
        assert sorted(client.scan_iter()) == sorted(pair.real.keys("*"))
        assert sorted(client.scan_iter(match="key:1*")) == sorted(pair.real.keys("key:1*"))
        assert list(client.scan_iter(_type="list")) == [b"alist"]
        assert len(list(client.scan_iter(count=7))) == 121
    pair.same("execute_command", "SCAN", "abc")
    pair.same("execute_command", "SCAN", "0", "COUNT", "0")
    pair.same("execute_command", "SCAN", "0", "MATCH")
    pair.same("execute_command", "SCAN", "0", "FOO", "1")


@st.composite
def string_ops(draw: st.DrawFn) -> list[tuple[str, tuple, dict]]:
    ops = []
    for _ in range(draw(st.integers(1, 25))):
        k = draw(st.sampled_from(KEYS))
        k2 = draw(st.sampled_from(KEYS))
        v = draw(VALUES)
        n = draw(INTS)
        op = draw(
            st.sampled_from(
                [
                    ("set", (k, v), {}),
                    ("set", (k, v), {"nx": True}),
                    ("set", (k, v), {"xx": True}),
                    ("set", (k, v), {"get": True}),
                    ("get", (k,), {}),
                    ("append", (k, v), {}),
                    ("incrby", (k, n), {}),
                    ("decrby", (k, n), {}),
                    ("incrbyfloat", (k, v), {}),
                    ("strlen", (k,), {}),
                    ("getrange", (k, n, -n), {}),
                    ("setrange", (k, n, v), {}),
                    ("getdel", (k,), {}),
                    ("delete", (k, k2), {}),
                    ("exists", (k, k2), {}),
                    ("mset", ({k: v, k2: n},), {}),
                    ("mget", (k, k2), {}),
                    ("msetnx", ({k: v},), {}),
                    ("setbit", (k, n, n & 1), {}),
                    ("getbit", (k, n), {}),
                    ("bitcount", (k,), {}),
                    ("bitpos", (k, n & 1), {}),
                    ("bitop", ("XOR", k, k2, k), {}),
                    ("rename", (k, k2), {}),
                    ("renamenx", (k, k2), {}),
                    ("copy", (k, k2), {}),
                    ("type", (k,), {}),
                    ("lpush", (k, v), {}),
                    ("persist", (k,), {}),
                    ("expire", (k, 1000), {}),
                    ("ttl", (k,), {}),
                    ("dbsize", (), {}),
                ]
            )
        )
        ops.append(op)
    return ops


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=string_ops())
def test_random_string_programs(pair: Pair, ops: list[tuple[str, tuple, dict]]) -> None:
    pair.real.flushall()
    pair.shale.flushall()
    for method, args, kwargs in ops:
        pair.same(method, *args, **kwargs)
    pair.check_all_keys()


def test_ttl_and_values_survive_reopen(tmp_path) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.set("plain", "v")
    db.set("ttl", "v", ex=1000)
    db.set("short", "v", px=100)
    db.mset({f"m{i}": i for i in range(100)})
    db.close()
    time.sleep(0.2)
    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.get("plain") == b"v"
    assert 990 <= db.ttl("ttl") <= 1000
    assert db.get("short") is None
    assert db.dbsize() == 102  # 'short' may still be counted until expired: Redis does too
    db.engine.flush()
    db.engine.compact()
    assert db.mget("m0", "m99") == [b"0", b"99"]
    db.close()


def test_lazy_and_active_expiry(tmp_path) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.set("a", 1, px=30)
    db.set("b", 1, px=30)
    db.set("keep", 1)
    time.sleep(0.05)
    assert db.get("a") is None  # lazy: gone on access
    deadline = time.monotonic() + 5
    while db.dbsize() != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.dbsize() == 1  # active: 'b' was never touched
    assert db.keys() == [b"keep"]
    db.close()


def test_unknown_command_text_is_cut_like_redis(pair: Pair) -> None:
    pair.same("execute_command", "NOPE", "a" * 200, "b")
    pair.same("execute_command", "NOPE", *(["abc"] * 60))


def test_get_fast_path_keeps_redis_semantics(tmp_path) -> None:
    """GET reads a live string without the command path; every other case (expired,
    wrong type, pipelines, another database) must behave as the command does."""
    db = shalekv.open(tmp_path, compaction_workers=0, active_expiry=False)
    db.set("s", "v", px=300)  # margin: a loaded machine must still read it live first
    db.rpush("l", "x")
    assert db.get("s") == b"v"
    time.sleep(0.35)
    assert db.dbsize() == 2
    assert db.get("s") is None
    assert db.dbsize() == 1  # the expired key was deleted on access, as Redis does
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        db.get("l")
    p = db.pipeline()
    assert p.set("k", "1").get("k") is p  # queued, not read
    assert p.execute() == [True, b"1"]
    db.select(3)
    assert db.get("k") is None
    db.close()
    db = shalekv.open(tmp_path, compaction_workers=0, decode_responses=True)
    assert db.get("k") == "1"
    db.close()


ARGS = st.one_of(
    st.binary(max_size=8),
    st.text(max_size=8),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=8).map(memoryview),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=st.lists(ARGS, min_size=1, max_size=5), charset=st.sampled_from(["utf-8", "latin-1"]))
def test_arguments_encode_as_redis_py_does(tmp_path_factory, args: list, charset: str) -> None:
    """The embedded client's inline argument encoding (bytes, str, int) gives what
    redis-py's Encoder gives for every argument type, and its errors."""
    from redis.connection import Encoder

    db = shalekv.open(tmp_path_factory.mktemp("enc"), compaction_workers=0, encoding=charset)
    try:
        ref = Encoder(charset, "strict", False)
        try:
            want: object = [bytes(ref.encode(a)) for a in ["SET", *args]]
        except (redis.DataError, UnicodeEncodeError) as e:
            want = type(e)
        try:
            got: object = [bytes(a) for a in db._args(("SET", *args))]
        except (redis.DataError, UnicodeEncodeError) as e:
            got = type(e)
        assert got == want
    finally:
        db.close()
