"""Lists, differentially against a real redis-server, plus the encoding's invariants
(head/tail counters, every index of [head, tail) present, u64 bounds) and persistence."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shalekv
from shalekv.types import encoding as enc
from shalekv.types import lists as ls
from shalekv.types.keyspace import Txn
from tests.types.differential import Pair, decoding_pair

KEYS = ["a", "b", b"\x00bin\xff"]
BIG = ["9223372036854775807", "-9223372036854775808", "9223372036854775808", "abc", "1.5", ""]


def check_encoding(db: Any, key: bytes | str, dbnum: int = 0) -> None:
    """A live list's version holds an element key at every index of [head, tail); keys
    outside it are garbage (given up by pops, LTRIM, LREM) for the compaction filter."""
    k = key.encode() if isinstance(key, str) else key
    m = db._store.engine.get(enc.meta_key(dbnum, k))
    if m is None or m[0] != enc.LIST:
        return
    _, _, _, version, count, head, tail = enc.LISTMETA.unpack(m)
    assert count == tail - head > 0
    assert 0 <= head <= tail <= ls.U64_MAX
    p = enc.elem_prefix(dbnum, k, version)
    idx = [enc.unpack_u64(ek, len(p)) for ek, _ in db._store.engine.items(p, enc.prefix_end(p))]
    assert [i for i in idx if head <= i < tail] == list(range(head, tail))


# ---------------------------------------------------------------- push / pop


def test_push_and_pushx(pair: Pair) -> None:
    s = pair.same
    s("lpush", "l", "a", "b", "c")
    s("rpush", "l", "d", "", b"\x00\xff")
    s("lrange", "l", 0, -1)
    s("lpushx", "l", "x", "y")
    s("rpushx", "l", "z")
    s("lpushx", "nokey", "x")
    s("rpushx", "nokey", "x")
    s("exists", "nokey")
    s("lrange", "l", 0, -1)
    s("llen", "l")
    s("llen", "nokey")
    s("set", "str", "v")
    for cmd in ("lpush", "rpush", "lpushx", "rpushx"):
        s(cmd, "str", "x")
    s("execute_command", "LPUSH", "l")
    s("execute_command", "RPUSHX", "l")
    s("llen", "str")
    s("type", "l")
    pair.check_all_keys()
    check_encoding(pair.shale, "l")


def test_pop_and_counts(pair: Pair) -> None:
    s = pair.same
    s("rpush", "l", *"abcdefg")
    s("lpop", "l")
    s("rpop", "l")
    s("lpop", "l", 2)
    s("rpop", "l", 1)
    s("lpop", "l", 0)
    s("rpop", "l", 0)
    s("lpop", "nokey")
    s("lpop", "nokey", 0)
    s("rpop", "nokey", 3)
    for bad in ["-1", "abc", "1.5", "", "9223372036854775808", "-9223372036854775808"]:
        s("execute_command", "LPOP", "l", bad)
        s("execute_command", "RPOP", "nokey", bad)
    s("execute_command", "LPOP", "l", "1", "2")
    s("execute_command", "RPOP")
    s("lpop", "l", 9223372036854775807)  # more than there is: everything, key gone
    s("exists", "l")
    s("rpush", "l", "x")
    s("rpop", "l")
    s("exists", "l")
    s("set", "str", "v")
    s("lpop", "str")
    s("rpop", "str", 0)
    s("execute_command", "LPOP", "str", "-1")
    pair.check_all_keys()


def test_lmpop(pair: Pair) -> None:
    s = pair.same
    s("rpush", "l1", *"abcde")
    s("rpush", "l2", "x", "y")
    s("lmpop", 2, "nokey", "l1", direction="LEFT")
    s("lmpop", 2, "l2", "l1", direction="RIGHT", count=10)
    s("lmpop", 1, "nokey", direction="left")
    s("lmpop", 2, "l1", "l1", direction="right", count=2)
    s("set", "str", "v")
    s("lmpop", 2, "str", "l1", direction="LEFT")
    s("lmpop", 2, "l1", "str", direction="LEFT")  # the first list answers first
    s("lmpop", 2, "nokey", "str", direction="LEFT")
    e = "execute_command"
    for args in [
        ("0", "l1", "LEFT"),
        ("-1", "l1", "LEFT"),
        ("abc", "l1", "LEFT"),
        ("2", "l1", "LEFT"),
        ("1", "l1", "UP"),
        ("1", "l1", "LEFT", "COUNT"),
        ("1", "l1", "LEFT", "COUNT", "0"),
        ("1", "l1", "LEFT", "COUNT", "-1"),
        ("1", "l1", "LEFT", "COUNT", "x"),
        ("1", "l1", "LEFT", "COUNT", "1", "COUNT", "1"),
        ("1", "l1", "LEFT", "FOO"),
        ("1", "str", "LEFT", "COUNT", "0"),
        ("9223372036854775807", "l1", "LEFT"),
        ("1", "l1", "left", "count", "1"),
    ]:
        s(e, "LMPOP", *args)
    s(e, "LMPOP", "1", "l1")
    pair.check_all_keys()


def test_lmove_and_rpoplpush(pair: Pair) -> None:
    s = pair.same
    s("rpush", "src", *"abcdef")
    for src_end in ("LEFT", "RIGHT"):
        for dst_end in ("LEFT", "RIGHT"):
            s("lmove", "src", "dst", src_end, dst_end)
            s("lmove", "src", "src", src_end, dst_end)
            s("lrange", "src", 0, -1)
            s("lrange", "dst", 0, -1)
    s("rpoplpush", "src", "dst")
    s("rpoplpush", "src", "src")
    s("rpoplpush", "nokey", "dst")
    s("lmove", "nokey", "dst", "left", "right")
    s("execute_command", "LMOVE", "src", "dst", "UP", "LEFT")
    s("execute_command", "LMOVE", "src", "dst", "LEFT", "DOWN")
    s("execute_command", "LMOVE", "nokey", "dst", "LEFT", "DOWN")
    s("set", "str", "v")
    s("lmove", "src", "str", "LEFT", "LEFT")
    s("lmove", "str", "dst", "LEFT", "LEFT")
    s("lmove", "nokey", "str", "LEFT", "LEFT")  # source absent: no type check
    s("rpoplpush", "src", "str")
    s("lrange", "src", 0, -1)
    # move the last element away, and a one-element list onto itself
    s("delete", "one")
    s("rpush", "one", "x")
    s("lmove", "one", "one", "LEFT", "RIGHT")
    s("lmove", "one", "one", "RIGHT", "RIGHT")
    s("lrange", "one", 0, -1)
    s("lmove", "one", "other", "RIGHT", "LEFT")
    s("exists", "one")
    s("lrange", "other", 0, -1)
    pair.check_all_keys()
    for k in ("src", "dst", "other"):
        check_encoding(pair.shale, k)


def test_destination_keeps_ttl(pair: Pair) -> None:
    s = pair.same
    s("rpush", "src", "a", "b")
    s("rpush", "dst", "x")
    s("expire", "dst", 1000)
    s("lmove", "src", "dst", "LEFT", "LEFT")
    s("ttl", "dst")
    s("expire", "src", 1000)
    s("rpush", "src", "c")
    s("lpop", "src")
    s("ttl", "src")
    s("linsert", "src", "BEFORE", "c", "z")
    s("lrem", "src", 0, "z")
    s("ltrim", "src", 0, 0)
    s("ttl", "src")


# ---------------------------------------------------------------- reads


def test_lrange_lindex(pair: Pair) -> None:
    s = pair.same
    s("rpush", "l", *"abcdefghij")
    idx = [0, 1, 5, 9, 10, 11, 100, -1, -2, -10, -11, -100, 2**63 - 1, -(2**63)]
    for a in idx:
        s("lindex", "l", a)
        for b in idx:
            s("lrange", "l", a, b)
    s("lrange", "nokey", 0, -1)
    s("lindex", "nokey", 0)
    s("set", "str", "v")
    s("lrange", "str", 0, -1)
    s("lindex", "str", 0)
    for bad in BIG:
        s("execute_command", "LRANGE", "l", bad, "1")
        s("execute_command", "LRANGE", "l", "0", bad)
        s("execute_command", "LRANGE", "str", bad, "1")
        s("execute_command", "LINDEX", "l", bad)
        s("execute_command", "LINDEX", "nokey", bad)
        s("execute_command", "LINDEX", "str", bad)


def test_lpos(pair: Pair) -> None:
    s = pair.same
    s("rpush", "l", *"abcabcaxa")
    s("rpush", "l", "", b"\xff")
    for el in ["a", "b", "x", "zz", "", b"\xff"]:
        s("lpos", "l", el)
        for rank in [None, 1, 2, 3, 10, -1, -2, -4, -5, 2**63 - 1, -(2**63) + 1, -(2**63)]:
            for count in [None, 0, 1, 2, 10]:
                for maxlen in [None, 0, 1, 3, 7, 100]:
                    s("lpos", "l", el, rank=rank, count=count, maxlen=maxlen)
    s("lpos", "nokey", "a")
    s("lpos", "nokey", "a", count=0)
    s("lpos", "nokey", "a", count=2, rank=-1)
    s("set", "str", "v")
    s("lpos", "str", "a")
    e = "execute_command"
    for args in [
        ("RANK", "0"),
        ("RANK", "abc"),
        ("RANK", "9223372036854775808"),
        ("COUNT", "-1"),
        ("COUNT", "abc"),
        ("COUNT", "9223372036854775808"),
        ("MAXLEN", "-1"),
        ("MAXLEN", "x"),
        ("RANK",),
        ("COUNT",),
        ("FOO", "1"),
        ("FOO",),
        ("rank", "2", "rank", "-1"),
        ("count", "1", "count", "0"),
        ("maxlen", "1", "MAXLEN", "0", "COUNT", "0"),
        ("RANK", "0", "COUNT", "-1"),
        ("COUNT", "-1", "RANK", "0"),
    ]:
        s(e, "LPOS", "l", "a", *args)
        s(e, "LPOS", "nokey", "a", *args)
        s(e, "LPOS", "str", "a", *args)


# ---------------------------------------------------------------- edits


def test_lset(pair: Pair) -> None:
    s = pair.same
    s("rpush", "l", *"abcde")
    for i in [0, 4, -1, -5, 5, -6, 100, 2**63 - 1, -(2**63)]:
        s("lset", "l", i, f"v{i}")
    s("lset", "l", 2, "")
    s("lset", "l", 1, b"\x00\xff")
    s("lrange", "l", 0, -1)
    s("lset", "nokey", 0, "x")
    s("set", "str", "v")
    s("lset", "str", 0, "x")
    for bad in BIG:
        s("execute_command", "LSET", "l", bad, "x")
        s("execute_command", "LSET", "nokey", bad, "x")
        s("execute_command", "LSET", "str", bad, "x")
    check_encoding(pair.shale, "l")


def test_linsert(pair: Pair) -> None:
    s = pair.same
    s("rpush", "l", *"abcdefab")
    for where in ("BEFORE", "AFTER", "before", "after"):
        for pivot in ["a", "b", "d", "f", "zz"]:
            s("linsert", "l", where, pivot, f"{where}-{pivot}")
            s("lrange", "l", 0, -1)
            check_encoding(pair.shale, "l")
    s("linsert", "nokey", "BEFORE", "a", "x")
    s("exists", "nokey")
    s("execute_command", "LINSERT", "l", "MIDDLE", "a", "x")
    s("execute_command", "LINSERT", "nokey", "MIDDLE", "a", "x")
    s("set", "str", "v")
    s("linsert", "str", "BEFORE", "a", "x")
    s("execute_command", "LINSERT", "str", "MIDDLE", "a", "x")
    s("rpush", "one", "p")
    s("linsert", "one", "BEFORE", "p", "x")
    s("linsert", "one", "AFTER", "p", "y")
    s("linsert", "one", "AFTER", "", "y")
    s("lrange", "one", 0, -1)
    check_encoding(pair.shale, "one")


@pytest.mark.parametrize("count", [0, 1, 2, 3, 100, -1, -2, -3, -100])
def test_lrem(pair: Pair, count: int) -> None:
    s = pair.same
    for layout in ["aXbXcXXd", "XXXXabcd", "abcdXXXX", "XaaaaaaX", "XXXX", "aXa", "abc"]:
        s("delete", "l")
        s("rpush", "l", *layout)
        s("lrem", "l", count, "X")
        s("lrange", "l", 0, -1)
        s("exists", "l")
        check_encoding(pair.shale, "l")
    s("lrem", "nokey", count, "X")
    s("set", "str", "v")
    s("lrem", "str", count, "X")
    for bad in BIG:
        s("execute_command", "LREM", "l", bad, "X")
        s("execute_command", "LREM", "str", bad, "X")


def test_ltrim(pair: Pair) -> None:
    s = pair.same
    idx = [0, 1, 3, 9, 10, 50, -1, -3, -10, -11, -50, 2**63 - 1, -(2**63)]
    for a in idx:
        for b in idx:
            s("delete", "l")
            s("rpush", "l", *"abcdefghij")
            s("ltrim", "l", a, b)
            s("lrange", "l", 0, -1)
            check_encoding(pair.shale, "l")
    s("ltrim", "nokey", 0, 1)
    s("set", "str", "v")
    s("ltrim", "str", 0, 1)
    for bad in BIG:
        s("execute_command", "LTRIM", "l", bad, "1")
        s("execute_command", "LTRIM", "nokey", "0", bad)
        s("execute_command", "LTRIM", "str", "0", bad)
    pair.check_all_keys()


def test_capped_list_idiom(pair: Pair) -> None:
    """LPUSH + LTRIM keeps a bounded window; the trimmed elements' keys are deleted."""
    s = pair.same
    for i in range(40):
        s("lpush", "cap", i)
        s("ltrim", "cap", 0, 9)
        check_encoding(pair.shale, "cap")
    s("lrange", "cap", 0, -1)


def test_expired_list_is_absent(pair: Pair) -> None:
    s = pair.same
    s("rpush", "l", "a", "b")
    s("pexpire", "l", 1)
    import time

    time.sleep(0.01)
    s("llen", "l")
    s("lrange", "l", 0, -1)
    s("rpushx", "l", "x")
    s("rpush", "l", "c")
    s("lrange", "l", 0, -1)
    s("ttl", "l")
    check_encoding(pair.shale, "l")


def test_transaction_pipeline(pair: Pair) -> None:
    for client in (pair.shale, pair.real):
        with client.pipeline(transaction=True) as p:
            p.rpush("q", "a", "b", "c")
            p.lmove("q", "q", "LEFT", "RIGHT")
            p.linsert("q", "BEFORE", "c", "x")
            p.lrem("q", 1, "b")
            p.lpop("q", 2)
            p.lrange("q", 0, -1)
            r = p.execute()
        if client is pair.shale:
            ours = r
    assert ours == r
    check_encoding(pair.shale, "q")


# ---------------------------------------------------------------- random programs

ELEMS = st.sampled_from(["a", "b", "c", "", b"\x00\xff"])
IDX = st.one_of(st.integers(-8, 8), st.sampled_from([2**63 - 1, -(2**63), 100, -100]))
KEY = st.sampled_from(KEYS + ["str"])
END = st.sampled_from(["LEFT", "RIGHT", "left"])


def _op() -> st.SearchStrategy[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    vals = st.lists(ELEMS, min_size=1, max_size=4)
    cnt = st.one_of(st.none(), st.integers(0, 5))
    return st.one_of(
        st.tuples(
            st.sampled_from(["lpush", "rpush", "lpushx", "rpushx"]), st.tuples(KEY), vals
        ).map(lambda x: (x[0], (*x[1], *x[2]), {})),
        st.tuples(st.sampled_from(["lpop", "rpop"]), KEY, cnt).map(
            lambda x: (x[0], (x[1],) if x[2] is None else (x[1], x[2]), {})
        ),
        st.tuples(KEY, IDX, IDX).map(lambda x: ("lrange", x, {})),
        st.tuples(KEY, IDX).map(lambda x: ("lindex", x, {})),
        st.tuples(KEY, IDX, ELEMS).map(lambda x: ("lset", x, {})),
        st.tuples(KEY, st.sampled_from(["BEFORE", "AFTER"]), ELEMS, ELEMS).map(
            lambda x: ("linsert", x, {})
        ),
        st.tuples(KEY, st.integers(-3, 3), ELEMS).map(lambda x: ("lrem", x, {})),
        st.tuples(KEY, IDX, IDX).map(lambda x: ("ltrim", x, {})),
        st.tuples(KEY, ELEMS, st.sampled_from([None, 1, 2, -1, -2]), cnt, cnt).map(
            lambda x: ("lpos", (x[0], x[1]), {"rank": x[2], "count": x[3], "maxlen": x[4]})
        ),
        st.tuples(KEY, KEY, END, END).map(lambda x: ("lmove", x, {})),
        st.tuples(KEY, KEY).map(lambda x: ("rpoplpush", x, {})),
        st.tuples(st.lists(KEY, min_size=1, max_size=3), END, st.integers(1, 4)).map(
            lambda x: ("lmpop", (len(x[0]), *x[0]), {"direction": x[1], "count": x[2]})
        ),
        st.tuples(KEY).map(lambda x: ("llen", x, {})),
        st.tuples(KEY).map(lambda x: ("delete", x, {})),
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(_op(), min_size=1, max_size=30))
def test_random_list_programs(
    pair: Pair, ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]]
) -> None:
    pair.real.flushall()
    pair.shale.flushall()
    pair.log.clear()
    pair.same("set", "str", "v")
    for method, args, kwargs in ops:
        pair.same(method, *args, **kwargs)
    for k in KEYS:
        pair.same("lrange", k, 0, -1)
        check_encoding(pair.shale, k)
    pair.check_all_keys()


# ---------------------------------------------------------------- encoding and engine


def test_u64_bounds_relocate(tmp_path: Any) -> None:
    """A list whose head or tail reached the end of the u64 range moves to a new version
    centred on LIST_MID instead of wrapping around."""
    db = shalekv.open(tmp_path, compaction_workers=0)
    store = db._store

    def build(key: bytes, head: int, values: list[bytes]) -> None:
        with store.lock:
            t = Txn(store)
            v = store.new_version()
            p = enc.elem_prefix(0, key, v)
            for i, x in enumerate(values):
                t.put(p + enc.pack_u64(head + i), x)
            tail = head + len(values)
            t.set_meta(0, key, enc.encode_list(0, v, len(values), head, tail), None)
            t.commit()

    build(b"low", 1, [b"a", b"b"])
    assert db.lpush("low", "x", "y") == 4
    assert db.lrange("low", 0, -1) == [b"y", b"x", b"a", b"b"]
    check_encoding(db, "low")
    build(b"low2", 0, [b"a", b"b", b"c"])
    assert db.rpoplpush("low2", "low2") == b"c"
    assert db.linsert("low2", "BEFORE", "a", "z") == 4
    assert db.lrange("low2", 0, -1) == [b"c", b"z", b"a", b"b"]
    check_encoding(db, "low2")
    top = ls.U64_MAX - 2
    build(b"high", top, [b"a", b"b"])  # tail == U64_MAX: no room above
    assert db.rpush("high", "c") == 3
    assert db.lrange("high", 0, -1) == [b"a", b"b", b"c"]
    check_encoding(db, "high")
    build(b"high2", top, [b"a", b"b"])
    assert db.lmove("high2", "high2", "LEFT", "RIGHT") == b"a"
    assert db.linsert("high2", "AFTER", "a", "z") == 3
    assert db.lrange("high2", 0, -1) == [b"b", b"a", b"z"]
    check_encoding(db, "high2")
    build(b"ins_low", 0, [b"a", b"b", b"c"])
    assert db.linsert("ins_low", "AFTER", "a", "z") == 4  # shifts the head side
    assert db.lrange("ins_low", 0, -1) == [b"a", b"z", b"b", b"c"]
    check_encoding(db, "ins_low")
    build(b"ins_high", top, [b"a", b"b"])
    assert db.linsert("ins_high", "AFTER", "b", "z") == 3  # shifts the tail side
    assert db.lrange("ins_high", 0, -1) == [b"a", b"b", b"z"]
    check_encoding(db, "ins_high")
    build(b"edge", top, [b"a", b"b"])
    assert db.lpop("edge") == b"a"
    assert db.lpush("edge", "q") == 2
    assert db.lrange("edge", 0, -1) == [b"q", b"b"]
    check_encoding(db, "edge")
    for relocated in (b"low", b"ins_low", b"ins_high", b"high"):
        m = db.engine.get(enc.meta_key(0, relocated))
        assert m is not None
        head = enc.LISTMETA.unpack(m)[5]
        assert abs(head - enc.LIST_MID) < 10, relocated
    db.close()


def test_push_pop_engine_operations(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Push/pop at either end: one metadata read, one element read, no scans."""
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.rpush("l", *range(1000))
    engine = db._store.engine
    calls: list[str] = []
    real_get, real_items = engine.get, engine.items
    real_collect, real_head = engine.collect, engine.head
    monkeypatch.setattr(engine, "get", lambda *a, **k: calls.append("get") or real_get(*a, **k))
    monkeypatch.setattr(
        engine, "items", lambda *a, **k: calls.append("scan") or real_items(*a, **k)
    )
    monkeypatch.setattr(  # a bounded range read as one call (LRANGE)
        engine, "collect", lambda *a, **k: calls.append("scan") or real_collect(*a, **k)
    )
    monkeypatch.setattr(  # the same through the short-scan path
        engine, "head", lambda *a, **k: calls.append("scan") or real_head(*a, **k)
    )
    for op in (lambda: db.rpop("l"), lambda: db.lpop("l")):
        calls.clear()
        op()
        assert calls == ["get", "get"]
    for op in (lambda: db.lpush("l", "x"), lambda: db.rpush("l", "x"), lambda: db.lindex("l", 500)):
        calls.clear()
        op()
        assert calls.count("scan") == 0 and len(calls) <= 2
    calls.clear()
    assert db.lrange("l", 100, 104) == [b"100", b"101", b"102", b"103", b"104"]
    assert calls == ["get", "scan"]
    monkeypatch.undo()
    db.close()


def test_persistence_flush_and_compaction(tmp_path: Any) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.rpush("l", *[f"v{i}" for i in range(300)])
    db.lpush("l", "first")
    db.linsert("l", "AFTER", "v150", "mid")
    db.lrem("l", 0, "v7")
    db.ltrim("l", 0, 250)
    db.rpush("ttl", "x")
    db.expire("ttl", 1000)
    db.rpush("gone", "x")
    db.delete("gone")
    expected = db.lrange("l", 0, -1)
    assert expected[:3] == [b"first", b"v0", b"v1"] and b"mid" in expected
    db.close()

    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.lrange("l", 0, -1) == expected
    assert db.llen("l") == len(expected)
    assert 0 < db.ttl("ttl") <= 1000
    assert db.exists("gone") == 0
    check_encoding(db, "l")
    db.engine.flush()
    assert db.lrange("l", 0, -1) == expected
    db.rpop("l")
    db.lpush("l", "new")
    expected = [b"new", *expected[:-1]]
    db.engine.flush()
    db.engine.compact()
    assert db.lrange("l", 0, -1) == expected
    assert db.lindex("l", -1) == expected[-1]
    check_encoding(db, "l")
    db.close()

    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.lrange("l", 0, -1) == expected
    db.close()


def test_delete_reclaims_elements(tmp_path: Any) -> None:
    """DEL is O(1); compaction drops the old version's element keys afterwards."""
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.rpush("big", *range(2000))
    m = db._store.engine.get(enc.meta_key(0, b"big"))
    assert m is not None
    version = enc.LISTMETA.unpack(m)[3]
    p = enc.elem_prefix(0, b"big", version)
    db.engine.flush()
    db.delete("big")
    db.rpush("big", "again")
    db.engine.flush()
    db.engine.compact()
    assert list(db.engine.items(p, enc.prefix_end(p))) == []
    assert db.lrange("big", 0, -1) == [b"again"]
    db.close()


def _pipeline_outcomes(
    client: Any, ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]]
) -> list[Any]:
    with client.pipeline(transaction=True) as p:
        for method, args, kwargs in ops:
            getattr(p, method)(*args, **kwargs)
        results = p.execute(raise_on_error=False)
    return [("error", str(r)) if isinstance(r, Exception) else r for r in results]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(_op(), min_size=1, max_size=30))
def test_random_list_transactions(
    pair: Pair, ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]]
) -> None:
    """The same programs as one MULTI/EXEC: every read sees the transaction's own
    pending writes (the scans merge them), and the commit leaves a clean encoding."""
    pair.real.flushall()
    pair.shale.flushall()
    pair.real.set("str", "v")
    pair.shale.set("str", "v")
    pair.real.rpush("a", "a", "b", "c", "a")
    pair.shale.rpush("a", "a", "b", "c", "a")
    ours = _pipeline_outcomes(pair.shale, ops)
    theirs = _pipeline_outcomes(pair.real, ops)
    assert ours == theirs, "\n".join(f"{m}{a}{k}" for m, a, k in ops)
    for k in KEYS:
        pair.same("lrange", k, 0, -1)
        check_encoding(pair.shale, k)
    pair.check_all_keys()


def test_watch_sees_list_writes(pair: Pair) -> None:
    """Every list write, also one that leaves the list as it was (LMOVE onto the same
    end, LTRIM keeping everything, LSET to the same value), breaks a WATCH."""
    writes = [
        ("lmove", ("w", "w", "LEFT", "LEFT")),
        ("ltrim", ("w", 0, -1)),
        ("lset", ("w", 0, "a")),
        ("rpoplpush", ("w", "w")),
        ("lpush", ("w", "x")),
        ("lrem", ("w", 1, "b")),
        ("linsert", ("w", "BEFORE", "a", "q")),
        ("rpop", ("w",)),  # inline pops take the transaction path while a WATCH is live
        ("lpop", ("w",)),
    ]
    for method, args in writes:
        outcomes = []
        for client in (pair.shale, pair.real):
            client.delete("w")
            client.rpush("w", "a", "b")
            with client.pipeline(transaction=True) as p:
                p.watch("w")
                getattr(client, method)(*args)
                p.multi()
                p.llen("w")
                try:
                    outcomes.append(p.execute())
                except redis.WatchError:  # ours subclasses redis-py's
                    outcomes.append("watch-error")
        assert outcomes[0] == outcomes[1], (method, outcomes)


def test_pops_inline_match_redis(
    pair: Pair, redis_port: int, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LPOP/RPOP without count run inline, straight on the engine (`pop_direct`), or in
    a transaction when it says SLOW: missing keys, the last element (the key goes), an
    expired key, binary values, WRONGTYPE, keys of other types (the command path),
    counts, and a client that decodes replies give what redis-server gives."""
    s = pair.same
    direct: list[object] = []
    pop_direct = ls.pop_direct

    def spy(*a: Any) -> object:
        r = pop_direct(*a)
        direct.append(r)
        return r

    monkeypatch.setattr(ls, "pop_direct", spy)
    s("rpop", "l")
    s("lpop", b"l")
    s("rpush", "l", "a", b"\x00\xff", "", "d", "e", "f", "g")
    for pop in ("rpop", "lpop", "rpop", "lpop"):
        s(pop, "l")
    s("rpop", "l", 0)
    s("lpop", "l", 2)
    s("llen", "l")
    s("rpop", "l")  # the last one: the key goes (SLOW: the key counts)
    s("exists", "l")
    s("rpush", 7, "x")
    s("rpop", 7)  # an int key: the command path
    s("rpush", "t", "a", "b")
    s("pexpire", "t", 1)
    time.sleep(0.01)
    s("rpop", "t")  # expired (SLOW: lazy expiry deletes it)
    s("exists", "t")
    s("dbsize")
    s("set", "str", "v")
    s("rpop", "str")
    s("lpop", "str")
    assert [r is ls.SLOW for r in direct] == [False] * 6 + [True, True]
    assert pair.shale.engine.get(enc.meta_key(0, b"t")) is None  # deleted, not only hidden
    with decoding_pair(redis_port, str(tmp_path / "d")) as dp:
        dp.same("rpush", "l", "é", "b")
        dp.same("rpop", "l")
        dp.same("lpop", "l")
        dp.same("lpop", "l")
