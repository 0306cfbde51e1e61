"""Blocking pops (shalekv/server/blocking.py, shalekv/server/commands/blocking.py).

Most tests are differential: the same scenario (several raw connections, some of them
blocked, others writing) runs against ShaleKV and a real redis-server 7.0, and every
reply is compared byte for byte, in RESP2 and RESP3. A step that needs a client to be
blocked first waits (bounded) until CLIENT LIST shows it with flag `b`; no test asserts
on durations beyond "the reply eventually came".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
import redis.asyncio

from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess

WAIT = 10.0  # seconds: the bound of every wait in this module


def _client_flags(ctl: RawClient) -> dict[int, str]:
    """id -> flags of every connection, from CLIENT LIST."""
    raw = ctl.call("CLIENT", "LIST")
    text = raw.split(b"\r\n", 1)[1].decode()  # $len / =len + txt: ... either way
    if text.startswith("txt:"):
        text = text[4:]
    out = {}
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        if "id" in fields:
            out[int(fields["id"])] = fields.get("flags", "")
    return out


def _wait(ctl: RawClient, cid: int, blocked: bool | None) -> None:
    """Until client cid is blocked (True), not blocked (False) or gone (None)."""
    deadline = time.monotonic() + WAIT
    while True:
        flags = _client_flags(ctl)
        if blocked is None and cid not in flags:
            return
        if blocked is not None and cid in flags and ("b" in flags[cid]) == blocked:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"client {cid} never reached blocked={blocked}: {flags}")
        time.sleep(0.01)


def _id(c: RawClient) -> int:
    return int(c.call("CLIENT", "ID")[1:-2])


# A step: (op, connection index, *args). Ops: "call" (send and read the reply), "send"
# (send only), "blocked" (wait until blocked), "read" (read one reply), "close" (close
# and wait until the server forgot it), "unblock" (CLIENT UNBLOCK from a control
# connection, args: the reason if any).
Step = tuple[Any, ...]


def run(port: int, proto: int, steps: Sequence[Step], conns: int = 4) -> list[bytes]:
    """Run a scenario on one server; the replies, in step order."""
    ctl = RawClient(port, timeout=WAIT)
    cs = [RawClient(port, timeout=WAIT) for _ in range(conns)]
    try:
        ctl.call("FLUSHALL")
        ids = []
        for c in cs:
            if proto == 3:
                c.call("HELLO", "3")
            ids.append(_id(c))
        out: list[bytes] = []
        for op, i, *args in steps:
            if op == "call":
                out.append(cs[i].call(*args))
            elif op == "send":
                cs[i].send(b"".join(pack(*a) for a in args))
            elif op == "blocked":
                _wait(ctl, ids[i], True)
            elif op == "read":
                out.append(cs[i].read_replies(1))
            elif op == "close":
                cs[i].close()
                _wait(ctl, ids[i], None)
            elif op == "unblock":
                out.append(ctl.call("CLIENT", "UNBLOCK", ids[i], *args))
            else:
                raise ValueError(op)
        return out
    finally:
        for c in (*cs, ctl):
            c.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def proto(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def same(server: ServerProcess, redis_port: int, proto: int, steps: Sequence[Step]) -> None:
    theirs = run(redis_port, proto, steps)
    ours = run(server.port, proto, steps)
    assert ours == theirs
    assert len(ours) == sum(1 for s in steps if s[0] in ("call", "read", "unblock"))


# ---------------------------------------------------------------- immediate replies


def _setup() -> list[Step]:
    return [
        ("call", 0, "SET", "s", "x"),
        ("call", 0, "RPUSH", "l", "a", "b", "c", "d"),
        ("call", 0, "ZADD", "z", "1", "m1", "2", "m2", "3.5", "m3", "inf", "m4"),
    ]


IMMEDIATE = [
    ("BLPOP", "l", "0"),
    ("BLPOP", "missing", "l", "0"),
    ("BRPOP", "l", "missing", "1.5"),
    ("BLPOP", "l", "l", "0"),
    ("BLMOVE", "l", "d", "LEFT", "RIGHT", "0"),
    ("BLMOVE", "l", "l", "RIGHT", "LEFT", "0"),
    ("BLMOVE", "l", "d", "left", "left", "10"),
    ("BRPOPLPUSH", "l", "d", "0"),
    ("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "3"),
    ("BLMPOP", "0", "2", "missing", "l", "RIGHT"),
    ("BLMPOP", "0", "1", "l", "right", "count", "100"),
    ("BZPOPMIN", "z", "0"),
    ("BZPOPMAX", "missing", "z", "0"),
    ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "2"),
    ("BZMPOP", "0", "2", "missing", "z", "max", "COUNT", "10"),
]

ERRORS = [
    # wrong types, at the first key met that exists
    ("BLPOP", "s", "0"),
    ("BLPOP", "missing", "s", "l", "0"),
    ("BRPOP", "z", "0"),
    ("BLMOVE", "s", "d", "LEFT", "RIGHT", "0"),
    ("BLMOVE", "l", "s", "LEFT", "RIGHT", "0"),
    ("BRPOPLPUSH", "l", "z", "0"),
    ("BLMPOP", "0", "2", "s", "l", "LEFT"),
    ("BZPOPMIN", "l", "0"),
    ("BZMPOP", "0", "2", "missing", "s", "MIN"),
    # timeouts
    ("BLPOP", "l", "abc"),
    ("BLPOP", "l", "-1"),
    ("BLPOP", "l", ""),
    ("BLPOP", "l", " 1"),
    ("BLPOP", "l", "1 "),
    ("BLPOP", "l", "nan"),
    ("BLPOP", "l", "inf"),
    ("BLPOP", "l", "-inf"),
    ("BLPOP", "l", "1e300"),
    ("BLPOP", "l", "1e4000"),
    ("BLPOP", "l", "1e5000"),
    ("BLPOP", "l", "1e-5000"),
    ("BLPOP", "l", "9.3e15"),
    ("BLPOP", "l", "1e"),
    ("BLPOP", "l", "0x"),
    ("BLPOP", "s", "abc"),  # the timeout is parsed before the keys are looked at
    ("BZPOPMAX", "z", "-0.5"),
    ("BLMOVE", "l", "d", "LEFT", "RIGHT", "x"),
    ("BLMOVE", "l", "d", "UP", "RIGHT", "x"),  # the directions first
    ("BLMOVE", "l", "d", "LEFT", "DOWN", "0"),
    ("BRPOPLPUSH", "l", "d", "-0.001"),  # not an error: rounds up to 0
    ("BLPOP", "l", "-0.9999"),
    ("BLPOP", "l", "-0.0009999999999999999999"),
    # BLMPOP/BZMPOP: numkeys, direction and COUNT before the timeout
    ("BLMPOP", "abc", "0", "l", "LEFT"),
    ("BLMPOP", "abc", "1", "l", "LEFT"),
    ("BLMPOP", "abc", "1", "l", "LEFT", "COUNT", "0"),
    ("BLMPOP", "0", "-1", "l", "LEFT"),
    ("BLMPOP", "0", "x", "l", "LEFT"),
    ("BLMPOP", "0", "2", "l", "LEFT"),
    ("BLMPOP", "0", "9223372036854775807", "l", "LEFT"),
    ("BLMPOP", "0", "1", "l", "UP"),
    ("BLMPOP", "0", "1", "l", "LEFT", "COUNT"),
    ("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "-1"),
    ("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "1", "COUNT", "1"),
    ("BLMPOP", "0", "1", "l", "LEFT", "FOO"),
    ("BZMPOP", "x", "0", "z", "MIN"),
    ("BZMPOP", "x", "1", "z", "MIN"),
    ("BZMPOP", "0", "1", "z", "MIDDLE"),
    ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "abc"),
    ("BZMPOP", "-2", "1", "z", "MIN"),
    # arity
    ("BLPOP", "l"),
    ("BZPOPMIN", "z"),
    ("BLMOVE", "l", "d", "LEFT", "RIGHT"),
    ("BRPOPLPUSH", "l", "d"),
    ("BLMPOP", "0", "1", "l"),
    ("BZMPOP", "0", "1", "z"),
    # CLIENT UNBLOCK
    ("CLIENT", "UNBLOCK"),
    ("CLIENT", "UNBLOCK", "abc"),
    ("CLIENT", "UNBLOCK", "abc", "foo"),
    ("CLIENT", "UNBLOCK", "999999", "foo"),
    ("CLIENT", "UNBLOCK", "999999"),
    ("CLIENT", "UNBLOCK", "999999", "ERROR"),
    ("CLIENT", "UNBLOCK", "-1", "timeout"),
    ("CLIENT", "UNBLOCK", "1", "ERROR", "x"),
]


@pytest.mark.parametrize("cmd", IMMEDIATE, ids=lambda c: " ".join(c))
def test_immediate_reply(server: ServerProcess, redis_port: int, proto: int, cmd: tuple) -> None:
    """With data there, the pop happens at once; the state after is the same too."""
    after = [
        ("call", 0, "LRANGE", "l", "0", "-1"),
        ("call", 0, "LRANGE", "d", "0", "-1"),
        ("call", 0, "ZRANGE", "z", "0", "-1", "WITHSCORES"),
    ]
    same(server, redis_port, proto, [*_setup(), ("call", 0, *cmd), *after])


@pytest.mark.parametrize("cmd", ERRORS, ids=lambda c: " ".join(c))
def test_errors(server: ServerProcess, redis_port: int, proto: int, cmd: tuple) -> None:
    same(server, redis_port, proto, [*_setup(), ("call", 0, *cmd), ("call", 0, "LLEN", "l")])


# ---------------------------------------------------------------- no blocking in EXEC


def test_multi_never_blocks(server: ServerProcess, redis_port: int, proto: int) -> None:
    queued = [
        ("BLPOP", "k", "0"),
        ("BRPOP", "k", "k2", "0"),
        ("BLMOVE", "k", "d", "LEFT", "LEFT", "0"),
        ("BRPOPLPUSH", "k", "d", "0"),
        ("BLMPOP", "0", "1", "k", "LEFT"),
        ("BZPOPMIN", "k", "0"),
        ("BZPOPMAX", "k", "0"),
        ("BZMPOP", "0", "1", "k", "MIN"),
        ("BLPOP", "l", "0"),  # data there: popped as usual
        ("BLPOP", "k", "-1"),  # the timeout error, inside EXEC's array
        ("BLPOP", "s", "0"),
    ]
    steps: list[Step] = [
        ("call", 0, "RPUSH", "l", "a"),
        ("call", 0, "SET", "s", "v"),
        ("call", 0, "MULTI"),
    ]
    steps += [("call", 0, *q) for q in queued]
    steps += [("call", 0, "EXEC"), ("call", 0, "PING")]
    same(server, redis_port, proto, steps)


# ---------------------------------------------------------------- timeouts


@pytest.mark.parametrize(
    "cmd",
    [
        ("BLPOP", "k", "0.05"),
        ("BRPOP", "k", "k2", "0.01"),
        ("BLMOVE", "k", "d", "LEFT", "RIGHT", "0.02"),
        ("BRPOPLPUSH", "k", "d", "0.02"),
        ("BLMPOP", "0.01", "2", "k", "k2", "LEFT", "COUNT", "2"),
        ("BZPOPMIN", "k", "0.01"),
        ("BZPOPMAX", "k", "0.01"),
        ("BZMPOP", "0.01", "1", "k", "MAX"),
        ("BLPOP", "k", "0x1p-6"),  # strtold reads hex floats
        ("BLPOP", "k", "0.0001"),  # ceill: any positive timeout is at least 1 ms
        ("BLPOP", "k", "1e-5"),
        ("BLPOP", "k", "1e-4940"),
    ],
    ids=lambda c: c[0],
)
def test_timeout_replies_null(
    server: ServerProcess, redis_port: int, proto: int, cmd: tuple
) -> None:
    same(server, redis_port, proto, [("call", 0, *cmd), ("call", 0, "PING")])


@pytest.mark.parametrize("timeout", ["0", "-0.0001", "-0.001", "-0", "9e15"])
def test_timeouts_that_mean_forever(
    server: ServerProcess, redis_port: int, proto: int, timeout: str
) -> None:
    """ceill(seconds * 1000) rounds a small negative timeout up to 0, forever; a
    timeout too far away never fires. The client stays blocked until CLIENT UNBLOCK."""
    steps: list[Step] = [
        ("send", 0, ("BLPOP", "k", timeout)),
        ("blocked", 0),
        ("unblock", 0),
        ("read", 0),
        ("call", 0, "PING"),
    ]
    same(server, redis_port, proto, steps)


def _unblocked_errors(info: bytes) -> int:
    for line in info.decode().splitlines():
        if line.startswith("errorstat_UNBLOCKED:"):
            return int(line.split("count=")[1].split(",")[0])
    return 0


def test_client_unblock(server: ServerProcess, redis_port: int, proto: int) -> None:
    steps: list[Step] = [
        ("call", 1, "INFO", "errorstats"),
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("unblock", 0, "ERROR"),
        ("read", 0),
        ("send", 0, ("BLMOVE", "k", "d", "LEFT", "LEFT", "0")),
        ("blocked", 0),
        ("unblock", 0, "TIMEOUT"),
        ("read", 0),
        ("send", 0, ("BZMPOP", "100", "1", "k", "MIN")),
        ("blocked", 0),
        ("unblock", 0),
        ("read", 0),
        ("unblock", 0),  # not blocked any more: 0
        ("call", 1, "RPUSH", "k", "v"),  # nobody waits: the element stays
        ("call", 1, "LLEN", "k"),
        ("call", 0, "INFO", "errorstats"),
    ]
    theirs = run(redis_port, proto, steps)
    ours = run(server.port, proto, steps)
    assert ours[1:-1] == theirs[1:-1]
    # the ERROR reply counts as an error reply of its own code, as in Redis
    assert _unblocked_errors(ours[-1]) - _unblocked_errors(ours[0]) == 1
    assert _unblocked_errors(theirs[-1]) - _unblocked_errors(theirs[0]) == 1


# ---------------------------------------------------------------- wake-ups

WAKE_SCENARIOS: dict[str, list[Step]] = {
    "rpush wakes blpop": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "k", "v"),
        ("read", 0),
        ("call", 1, "EXISTS", "k"),
    ],
    "lpush several, brpop takes one": [
        ("send", 0, ("BRPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "LPUSH", "k", "a", "b", "c"),
        ("read", 0),
        ("call", 1, "LRANGE", "k", "0", "-1"),
    ],
    "fifo: first blocked, first served": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("send", 1, ("BLPOP", "k", "other", "0")),
        ("blocked", 1),
        ("send", 2, ("BRPOP", "other", "k", "0")),
        ("blocked", 2),
        ("call", 3, "RPUSH", "k", "1", "2", "3", "4"),
        ("read", 0),
        ("read", 1),
        ("read", 2),
        ("call", 3, "LRANGE", "k", "0", "-1"),
    ],
    "fifo: fewer elements than waiters": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("send", 1, ("BLPOP", "k", "0")),
        ("blocked", 1),
        ("send", 2, ("BLPOP", "k", "0")),
        ("blocked", 2),
        ("call", 3, "RPUSH", "k", "1"),
        ("read", 0),
        ("call", 3, "RPUSH", "k", "2"),
        ("read", 1),
        ("unblock", 2),
        ("read", 2),
    ],
    "one of several keys": [
        ("send", 0, ("BLPOP", "k1", "k2", "k3", "0")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "k2", "x", "y"),
        ("read", 0),
        ("call", 1, "RPUSH", "k1", "z"),  # served once: k1 keeps its element
        ("call", 1, "LLEN", "k1"),
    ],
    "duplicate keys": [
        ("send", 0, ("BLPOP", "k", "k", "0")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "k", "a", "b"),
        ("read", 0),
        ("call", 1, "LLEN", "k"),
    ],
    "blmove chain": [
        ("send", 0, ("BLMOVE", "src", "mid", "LEFT", "RIGHT", "0")),
        ("blocked", 0),
        ("send", 1, ("BLMOVE", "mid", "dst", "RIGHT", "LEFT", "0")),
        ("blocked", 1),
        ("send", 2, ("BLPOP", "dst", "0")),
        ("blocked", 2),
        ("call", 3, "RPUSH", "src", "x"),
        ("read", 0),
        ("read", 1),
        ("read", 2),
        ("call", 3, "EXISTS", "src", "mid", "dst"),
    ],
    "brpoplpush onto itself": [
        ("send", 0, ("BRPOPLPUSH", "k", "k", "0")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "k", "a", "b"),
        ("read", 0),
        ("call", 1, "LRANGE", "k", "0", "-1"),
    ],
    "blmove served onto a wrong type": [
        ("call", 1, "SET", "s", "str"),
        ("send", 0, ("BLMOVE", "src", "s", "LEFT", "LEFT", "0")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "src", "x"),
        ("read", 0),
        ("call", 1, "LRANGE", "src", "0", "-1"),
        ("call", 0, "PING"),
    ],
    "blmpop count": [
        ("send", 0, ("BLMPOP", "0", "2", "k1", "k2", "RIGHT", "COUNT", "2")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "k2", "a", "b", "c"),
        ("read", 0),
        ("call", 1, "LRANGE", "k2", "0", "-1"),
    ],
    "bzpopmin and bzpopmax": [
        ("send", 0, ("BZPOPMIN", "z1", "z2", "0")),
        ("blocked", 0),
        ("send", 1, ("BZPOPMAX", "z2", "0")),
        ("blocked", 1),
        ("call", 2, "ZADD", "z2", "1.5", "a", "2", "b", "3", "c"),
        ("read", 0),
        ("read", 1),
        ("call", 2, "ZRANGE", "z2", "0", "-1", "WITHSCORES"),
    ],
    "bzmpop count": [
        ("send", 0, ("BZMPOP", "0", "1", "z", "MAX", "COUNT", "5")),
        ("blocked", 0),
        ("call", 1, "ZADD", "z", "1", "a", "-inf", "b"),
        ("read", 0),
        ("call", 1, "EXISTS", "z"),
    ],
    "a zset waiter ignores a list": [
        ("send", 0, ("BZPOPMIN", "k", "0")),
        ("blocked", 0),
        ("send", 1, ("BLPOP", "k", "0")),
        ("blocked", 1),
        ("call", 2, "RPUSH", "k", "x", "y"),
        ("read", 1),
        ("call", 2, "LLEN", "k"),
        ("unblock", 0),
        ("read", 0),
    ],
    "a string set on the key wakes nobody": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "SET", "k", "str"),
        ("call", 1, "DEL", "k"),
        ("call", 1, "RPUSH", "k", "v"),
        ("read", 0),
    ],
    "exec wakes once it committed": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "MULTI"),
        ("call", 1, "RPUSH", "k", "a"),
        ("call", 1, "RPUSH", "k", "b"),
        ("call", 1, "EXEC"),
        ("read", 0),
        ("call", 1, "LRANGE", "k", "0", "-1"),
    ],
    "exec that leaves the key empty": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "MULTI"),
        ("call", 1, "RPUSH", "k", "a"),
        ("call", 1, "LPOP", "k"),
        ("call", 1, "EXEC"),
        ("call", 1, "RPUSH", "k", "z"),
        ("read", 0),
    ],
    "rename wakes": [
        ("call", 1, "RPUSH", "tmp", "x"),
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "RENAME", "tmp", "k"),
        ("read", 0),
    ],
    "lmove wakes": [
        ("call", 1, "RPUSH", "s", "x"),
        ("send", 0, ("BLPOP", "d", "0")),
        ("blocked", 0),
        ("call", 1, "LMOVE", "s", "d", "LEFT", "LEFT"),
        ("read", 0),
        ("call", 1, "EXISTS", "s", "d"),
    ],
    "copy wakes": [
        ("call", 1, "RPUSH", "s", "x"),
        ("send", 0, ("BLPOP", "d", "0")),
        ("blocked", 0),
        ("call", 1, "COPY", "s", "d"),
        ("read", 0),
        ("call", 1, "LLEN", "s"),
    ],
    "move to the waiter's database wakes": [
        ("call", 0, "SELECT", "1"),
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "k", "x", "y"),
        ("call", 1, "MOVE", "k", "1"),
        ("read", 0),
        ("call", 1, "EXISTS", "k"),
        ("call", 1, "SELECT", "1"),
        ("call", 1, "LRANGE", "k", "0", "-1"),
    ],
    "zunionstore wakes": [
        ("call", 1, "ZADD", "a", "1", "m"),
        ("send", 0, ("BZPOPMAX", "z", "0")),
        ("blocked", 0),
        ("call", 1, "ZUNIONSTORE", "z", "1", "a"),
        ("read", 0),
    ],
    "another database": [
        ("call", 0, "SELECT", "1"),
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("call", 1, "RPUSH", "k", "db0"),
        ("call", 1, "SELECT", "1"),
        ("call", 1, "RPUSH", "k", "db1"),
        ("read", 0),
        ("call", 1, "SELECT", "0"),
        ("call", 1, "LLEN", "k"),
    ],
    "pipelined requests wait, and queue behind older waiters": [
        ("send", 0, ("BLPOP", "k", "0"), ("PING",), ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("send", 1, ("BLPOP", "k", "0")),
        ("blocked", 1),
        ("call", 2, "RPUSH", "k", "1", "2"),
        ("read", 0),
        ("read", 0),
        ("read", 1),
        ("blocked", 0),
        ("call", 2, "RPUSH", "k", "3"),
        ("read", 0),
    ],
    "pusher's own pipeline sees the waiter served first": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("send", 1, ("RPUSH", "k", "a"), ("LPOP", "k")),
        ("read", 1),
        ("read", 1),
        ("read", 0),
    ],
    "disconnect while blocked": [
        ("send", 0, ("BLPOP", "k", "0")),
        ("blocked", 0),
        ("send", 1, ("BLPOP", "k", "0")),
        ("blocked", 1),
        ("close", 0),
        ("call", 2, "RPUSH", "k", "v1", "v2"),
        ("read", 1),
        ("call", 2, "LRANGE", "k", "0", "-1"),
    ],
}


@pytest.mark.parametrize("name", list(WAKE_SCENARIOS))
def test_wake_up(server: ServerProcess, redis_port: int, proto: int, name: str) -> None:
    same(server, redis_port, proto, WAKE_SCENARIOS[name])


def test_nobody_left_blocked(server: ServerProcess) -> None:
    """After the scenarios (each closes its connections) the registry is empty."""
    deadline = time.monotonic() + WAIT
    with RawClient(server.port) as c:
        while b"blocked_clients:0\r\n" not in c.call("INFO", "clients"):
            assert time.monotonic() < deadline, "a closed client is still blocked"
            time.sleep(0.01)


# ---------------------------------------------------------------- keyspace events


def test_served_pops_notify(server: ServerProcess, redis_port: int) -> None:
    """A pop served later emits what the same pop emits at once (lpush on the
    destination, then rpop/lpop on the source, then del), after the push's events."""

    def events(port: int) -> list[bytes]:
        with RawClient(port, timeout=WAIT) as sub, RawClient(port, timeout=WAIT) as ctl:
            ctl.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
            try:
                sub.call("PSUBSCRIBE", "__key*__:*")
                out = run(
                    port,
                    2,
                    [
                        ("send", 0, ("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")),
                        ("blocked", 0),
                        ("send", 1, ("BZPOPMIN", "z", "0")),
                        ("blocked", 1),
                        ("call", 2, "RPUSH", "src", "x"),
                        ("call", 2, "ZADD", "z", "1", "m"),
                        ("read", 0),
                        ("read", 1),
                        ("call", 2, "SET", "sentinel", "1"),
                    ],
                )
                got = []
                while True:
                    msg = sub.read_replies(1)
                    got.append(msg)
                    if b"sentinel" in msg and b"keyevent" in msg:
                        sub.call("PUNSUBSCRIBE")  # gone before the next test looks
                        return out + got
            finally:
                ctl.call("CONFIG", "SET", "notify-keyspace-events", "")

    ours, theirs = events(server.port), events(redis_port)
    assert ours == theirs
    assert sum(b"rpop" in m or b"zpopmin" in m for m in ours) >= 2


# ---------------------------------------------------------------- redis-py


@pytest.fixture
def pusher(server: ServerProcess) -> Iterator[redis.Redis]:
    c = redis.Redis(port=server.port, socket_timeout=WAIT)
    yield c
    c.close()


def _until_blocked(c: redis.Redis, n: int = 1) -> None:
    deadline = time.monotonic() + WAIT
    while sum("b" in x["flags"] for x in c.client_list()) < n:
        if time.monotonic() > deadline:
            raise AssertionError("nobody blocked")
        time.sleep(0.01)


def test_redis_py_sync(server: ServerProcess, pusher: redis.Redis) -> None:
    r = redis.Redis(port=server.port, socket_timeout=WAIT)
    r.flushall()
    assert r.blpop(["k"], timeout=0.05) is None
    assert r.bzpopmin("z", timeout=0.05) is None
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(r.blpop(["k1", "k"], timeout=0)), daemon=True)
    t.start()
    _until_blocked(pusher)
    pusher.rpush("k", "v")
    t.join(WAIT)
    assert got == [(b"k", b"v")]
    t = threading.Thread(target=lambda: got.append(r.bzpopmax("z", timeout=5)), daemon=True)
    t.start()
    _until_blocked(pusher)
    pusher.zadd("z", {"a": 1, "b": 2})
    t.join(WAIT)
    assert got[1] == (b"z", b"b", 2.0)
    pusher.rpush("src", "e")
    assert r.blmove("src", "dst", 1, "RIGHT", "LEFT") == b"e"
    assert r.lrange("dst", 0, -1) == [b"e"]
    r.close()


def test_redis_py_asyncio(server: ServerProcess) -> None:
    async def main() -> None:
        a = redis.asyncio.Redis(port=server.port, socket_timeout=WAIT)
        b = redis.asyncio.Redis(port=server.port, socket_timeout=WAIT)
        try:
            await a.flushall()
            assert await a.blpop(["k"], timeout=0.05) is None
            waiter = asyncio.ensure_future(a.blpop(["k"], timeout=0))
            deadline = time.monotonic() + WAIT
            while not any("b" in x["flags"] for x in await b.client_list()):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            await b.lpush("k", "v")
            assert await asyncio.wait_for(waiter, WAIT) == (b"k", b"v")
            res = await asyncio.wait_for(
                asyncio.gather(a.brpop(["q"], timeout=5), _push_later(b, "q", "w")), WAIT
            )
            assert res[0] == (b"q", b"w")
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(main())


async def _push_later(c: redis.asyncio.Redis, key: str, value: str) -> None:
    deadline = time.monotonic() + WAIT
    while not any("b" in x["flags"] for x in await c.client_list()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await c.rpush(key, value)
