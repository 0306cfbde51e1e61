"""Pub/sub: replies compared byte for byte with redis-server (RESP2 and RESP3), redis-py
clients (sync, RESP3, asyncio), and the output-buffer limit on a slow subscriber."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess, shalekv_server


@pytest.fixture
def pairs(server: ServerProcess, redis_port: int) -> Iterator[list[tuple[RawClient, RawClient]]]:
    """(subscriber, publisher) on shalekv, then on redis-server."""
    conns = [(RawClient(p), RawClient(p)) for p in (server.port, redis_port)]
    for _, pub in conns:
        pub.call("FLUSHALL")
    try:
        yield conns
    finally:
        for a, b in conns:
            a.close()
            b.close()


# Each step: (who, args, replies to read from the subscriber after it). who is "s"
# (subscriber) or "p" (publisher, whose one reply is read at once).
Step = tuple[str, tuple[str, ...], int]

RESP2_SCRIPT: list[Step] = [
    ("s", ("UNSUBSCRIBE",), 1),
    ("s", ("PUNSUBSCRIBE",), 1),
    ("s", ("SUNSUBSCRIBE",), 1),
    ("s", ("SUBSCRIBE", "a", "b", "a"), 3),
    ("s", ("GET", "x"), 1),
    ("s", ("PING",), 1),
    ("s", ("PING", "hi"), 1),
    ("p", ("PUBLISH", "a", "hello"), 1),
    ("p", ("PUBLISH", "nobody", "hello"), 0),
    # one pattern matches each channel: Redis tries patterns in its dict's hash order
    ("s", ("PSUBSCRIBE", "a*", "h?llo", "[xy]"), 3),
    ("p", ("PUBLISH", "a", "twice"), 2),
    ("p", ("PUBLISH", "y", "x"), 1),
    ("p", ("PUBLISH", "hello", "x"), 1),
    ("p", ("PUBSUB", "NUMSUB", "a", "b", "zz"), 0),
    ("p", ("PUBSUB", "NUMSUB"), 0),
    ("p", ("PUBSUB", "NUMPAT"), 0),
    ("p", ("PUBSUB", "CHANNELS", "a"), 0),
    ("p", ("PUBSUB", "CHANNELS", "z*"), 0),
    ("p", ("PUBSUB", "CHANNELS", "a", "b"), 0),
    ("p", ("PUBSUB", "NUMPAT", "x"), 0),
    ("p", ("PUBSUB", "HELP"), 0),
    ("p", ("PUBSUB", "NOPE"), 0),
    ("p", ("PUBSUB",), 0),
    ("s", ("UNSUBSCRIBE", "b", "zz"), 2),
    ("s", ("PUNSUBSCRIBE", "a*"), 1),
    ("s", ("SSUBSCRIBE", "sh"), 1),
    ("p", ("SPUBLISH", "sh", "m"), 1),
    ("p", ("PUBLISH", "sh", "m"), 0),
    ("p", ("PUBSUB", "SHARDCHANNELS"), 0),
    ("p", ("PUBSUB", "SHARDNUMSUB", "sh", "x"), 0),
    ("s", ("SUNSUBSCRIBE", "sh"), 1),
    ("s", ("UNSUBSCRIBE", "a"), 1),
    ("s", ("PUNSUBSCRIBE", "h?llo"), 1),
    ("s", ("PUNSUBSCRIBE", "[xy]"), 1),
    ("s", ("GET", "x"), 1),  # out of the subscribed context again
    ("s", ("SUBSCRIBE",), 1),
    ("s", ("PUBLISH",), 1),
    ("s", ("SUBSCRIBE", "c"), 1),
    ("s", ("RESET",), 1),  # ends the subscriptions
    ("p", ("PUBLISH", "c", "after reset"), 0),
    ("s", ("MULTI",), 1),
    ("s", ("SUBSCRIBE", "d"), 1),
    ("s", ("EXEC",), 1),
    ("p", ("PUBLISH", "d", "m"), 1),
]

RESP3_SCRIPT: list[Step] = [
    ("s", ("HELLO", "3"), 0),
    ("s", ("UNSUBSCRIBE",), 1),
    ("s", ("SUBSCRIBE", "a"), 1),
    ("s", ("PSUBSCRIBE", "*"), 1),
    ("s", ("SET", "k", "v"), 1),  # RESP3: commands keep working while subscribed
    ("s", ("GET", "k"), 1),
    ("s", ("PING",), 1),
    ("p", ("PUBLISH", "a", "m"), 2),
    ("s", ("UNSUBSCRIBE",), 1),
    ("s", ("PUNSUBSCRIBE",), 1),
    ("s", ("PUNSUBSCRIBE",), 1),
    ("s", ("SSUBSCRIBE", "x"), 1),
    ("p", ("SPUBLISH", "x", "m"), 1),
    ("s", ("SUNSUBSCRIBE",), 1),
    ("s", ("DEL", "k"), 1),
]


def _play(pairs: list[tuple[RawClient, RawClient]], script: list[Step]) -> list[list[bytes]]:
    got: list[list[bytes]] = []
    for sub, pub in pairs:
        out: list[bytes] = []
        for who, args, n in script:
            if who == "s":
                sub.send(pack(*args))
                if args[0] == "HELLO":
                    out.append(sub.read_replies(1).split(b"id\r\n")[0])  # ids differ
            else:
                out.append(pub.call(*args))
            if n:
                out.append(sub.read_replies(n))
        got.append(out)
    return got


@pytest.mark.parametrize("script", [RESP2_SCRIPT, RESP3_SCRIPT], ids=["resp2", "resp3"])
def test_replies_match_redis(pairs: list[tuple[RawClient, RawClient]], script: list[Step]) -> None:
    ours, theirs = _play(pairs, script)
    for step, a, b in zip(script, ours, theirs, strict=False):
        assert a == b, step
    assert len(ours) == len(theirs)


def test_shard_only_subscriber_context(pairs: list[tuple[RawClient, RawClient]]) -> None:
    """RESP2 after SSUBSCRIBE only: the subscribed context applies (client.py decides)."""
    got = []
    for sub, _ in pairs:
        got.append([sub.call("SSUBSCRIBE", "s"), sub.call("PING"), sub.call("SUNSUBSCRIBE")])
    assert got[0] == got[1]


def test_publish_counts_receivers(server: ServerProcess) -> None:
    subs = [RawClient(server.port) for _ in range(3)]
    try:
        subs[0].call("SUBSCRIBE", "news")
        subs[1].call("SUBSCRIBE", "news")
        subs[1].call("PSUBSCRIBE", "n*")
        subs[2].call("PSUBSCRIBE", "n*", "*s")
        with RawClient(server.port) as pub:
            assert pub.call("PUBLISH", "news", "x") == b":5\r\n"
            assert pub.call("PUBSUB", "NUMPAT") == b":2\r\n"
        # each gets its messages in subscription order: channel first, then patterns
        assert subs[1].read_replies(2) == (
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$1\r\nx\r\n"
            b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n"
        )
    finally:
        for s in subs:
            s.close()
    # disconnected subscribers are forgotten
    with RawClient(server.port) as pub:
        deadline = time.monotonic() + 10
        while pub.call("PUBLISH", "news", "y") != b":0\r\n":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert pub.call("PUBSUB", "NUMPAT") == b":0\r\n"


# ---------------------------------------------------------------- redis-py


def test_redis_py_pubsub(server: ServerProcess) -> None:
    r = redis.Redis(port=server.port)
    p = r.pubsub()
    try:
        p.subscribe("ch")
        p.psubscribe("p.*")
        assert p.get_message(timeout=5) == {
            "type": "subscribe", "pattern": None, "channel": b"ch", "data": 1
        }  # fmt: skip
        assert p.get_message(timeout=5)["type"] == "psubscribe"
        assert p.get_message(timeout=0.05) is None  # nothing yet: returns after the timeout
        assert r.publish("ch", "hello") == 1
        assert r.publish("p.x", "world") == 1
        msg = p.get_message(timeout=5)
        assert msg is not None and (msg["type"], msg["data"]) == ("message", b"hello")
        msg = p.get_message(timeout=5)
        assert msg is not None
        assert (msg["type"], msg["pattern"], msg["channel"]) == ("pmessage", b"p.*", b"p.x")
        assert r.pubsub_channels() == [b"ch"]
        assert r.pubsub_numsub("ch") == [(b"ch", 1)]
        assert r.pubsub_numpat() == 1
        for i in range(3):
            r.publish("ch", str(i))
        got = []
        for m in p.listen():
            if m["type"] == "message":
                got.append(m["data"])
                if len(got) == 3:
                    break
        assert got == [b"0", b"1", b"2"]
        p.unsubscribe()
        p.punsubscribe()
        assert p.get_message(timeout=5)["type"] == "unsubscribe"
        assert p.get_message(timeout=5)["type"] == "punsubscribe"
        assert r.publish("ch", "x") == 0
    finally:
        p.close()
        r.close()


def test_redis_py_resp3(server: ServerProcess) -> None:
    r = redis.Redis(port=server.port, protocol=3)
    p = r.pubsub()
    try:
        p.subscribe("c3")
        assert p.get_message(timeout=5)["type"] == "subscribe"
        assert r.publish("c3", "m") == 1
        msg = p.get_message(timeout=5)
        assert msg is not None and (msg["channel"], msg["data"]) == (b"c3", b"m")
        p.unsubscribe("c3")
        assert p.get_message(timeout=5)["type"] == "unsubscribe"
        assert r.publish("c3", "m") == 0
    finally:
        p.close()
        r.close()


def test_redis_py_asyncio(server: ServerProcess) -> None:
    async def main() -> list[bytes]:
        r = redis.asyncio.Redis(port=server.port)
        p = r.pubsub()
        try:
            await p.subscribe("ac")
            await p.psubscribe("a*")
            for _ in range(2):
                assert await p.get_message(timeout=5) is not None  # confirmations
            assert await r.publish("ac", "hi") == 2
            got = []
            while len(got) < 2:
                m = await p.get_message(ignore_subscribe_messages=True, timeout=5)
                assert m is not None
                got.append(m["type"].encode() + b":" + m["data"])
            await p.unsubscribe()
            await p.punsubscribe()
            return got
        finally:
            await p.aclose()
            await r.aclose()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [b"message:hi", b"pmessage:hi"]


# ---------------------------------------------------------------- slow consumers


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_subscriber_is_disconnected(tmp_path: os.PathLike[str]) -> None:
    """A subscriber that stops reading is dropped once its output passes the hard
    limit; the server keeps serving and its memory stays bounded."""
    limits = "pubsub 1mb 512kb 60"
    with shalekv_server(str(tmp_path), "--client-output-buffer-limit", *limits.split()) as sp:
        pid = sp.proc.pid
        slow = RawClient(sp.port)
        slow.call("SUBSCRIBE", "flood")
        with RawClient(sp.port) as pub:
            base = _rss_kb(pid)
            payload = b"x" * 64 * 1024
            sent = 0
            dropped = False
            for _ in range(2000):  # 125 MiB at most, if the limit never acted
                n = pub.call("PUBLISH", "flood", payload)
                sent += 1
                if n == b":0\r\n":
                    dropped = True
                    break
            assert dropped, "the slow subscriber was never disconnected"
            assert pub.call("PUBSUB", "NUMSUB", "flood") == b"*2\r\n$5\r\nflood\r\n:0\r\n"
            assert pub.call("PING") == b"+PONG\r\n"
            # far less than what was published went to the server's buffers
            grown_mb = (_rss_kb(pid) - base) / 1024
            assert grown_mb < 64, (grown_mb, sent)
        # the dropped client sees its connection closed after what was written
        slow.sock.settimeout(10)
        data = slow.read_until_closed()
        assert len(data) < sent * len(payload)
        slow.close()
        assert sp.proc.poll() is None


def test_resp3_pipeline_order_like_redis(pairs: list[tuple[RawClient, RawClient]]) -> None:
    """Messages to the client that caused them come in execution order among its
    replies (a pipelined SUBSCRIBE + PUBLISH, keyspace events of its own SETs)."""
    script = [
        ("SUBSCRIBE", "me"),
        ("PUBLISH", "me", "hi"),
        ("PING",),
        ("SUBSCRIBE", "__keyspace@0__:a"),
        ("SET", "a", "1"),
        ("SET", "a", "2"),
        ("UNSUBSCRIBE", "me", "__keyspace@0__:a"),
    ]
    got = []
    for sub, other in pairs:
        other.call("FLUSHALL")
        other.call("CONFIG", "SET", "notify-keyspace-events", "K$")
        try:
            sub.call("HELLO", "3")
            sub.send(b"".join(pack(*args) for args in script))
            got.append(sub.read_replies(11))
        finally:
            other.call("CONFIG", "SET", "notify-keyspace-events", "")
    assert got[0] == got[1]
