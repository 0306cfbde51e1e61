"""End-to-end basics over redis-py: the server runs the data commands, pipelines and
transactions, and stops cleanly on SIGTERM with everything written kept."""

from __future__ import annotations

import signal

import redis

from tests.shalekv_server import ServerProcess, start_server


def test_basic_commands(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.set("k", "v") is True and r.get("k") == b"v"
    assert r.incr("n") == 1 and r.incrby("n", 41) == 42
    r.rpush("l", "a", "b")
    assert r.lrange("l", 0, -1) == [b"a", b"b"]
    r.zadd("z", {"a": 1.5})
    assert r.zrange("z", 0, -1, withscores=True) == [(b"a", 1.5)]
    assert r.hset("h", mapping={"f": "v"}) == 1 and r.hgetall("h") == {b"f": b"v"}


def test_pipeline_and_transaction(r: redis.Redis) -> None:
    with r.pipeline(transaction=False) as p:
        for i in range(100):
            p.set(f"k{i}", i)
        p.mget([f"k{i}" for i in range(100)])
        res = p.execute()
    assert res[-1] == [str(i).encode() for i in range(100)]
    with r.pipeline() as p:
        p.incr("a").incr("a").get("a")
        assert p.execute() == [1, 2, b"2"]


def test_watch_aborts_on_change(r: redis.Redis, server: ServerProcess) -> None:
    other = redis.Redis(port=server.port)
    with r.pipeline() as p:
        p.watch("w")
        other.set("w", "changed")
        p.multi()
        p.set("w", "mine")
        try:
            p.execute()
            raise AssertionError("EXEC should have been aborted")
        except redis.WatchError:
            pass
    assert r.get("w") == b"changed"
    other.close()


def test_resp3_client(server: ServerProcess) -> None:
    c = redis.Redis(port=server.port, protocol=3)
    c.hset("h3", mapping={"a": "1"})
    assert c.hgetall("h3") == {b"a": b"1"}
    c.delete("h3")
    c.close()


def test_sigterm_keeps_data(tmp_path) -> None:
    sp = start_server(str(tmp_path / "data"))
    c = redis.Redis(port=sp.port)
    c.mset({f"k{i}": i for i in range(1000)})
    c.set("ttl", "v", ex=1000)
    c.close()
    assert sp.stop(signal.SIGTERM) == 0
    sp2 = start_server(str(tmp_path / "data"))
    try:
        c = redis.Redis(port=sp2.port)
        assert c.dbsize() == 1001
        assert c.get("k999") == b"999" and 990 <= c.ttl("ttl") <= 1000
        c.close()
    finally:
        assert sp2.stop(signal.SIGTERM) == 0
