"""Durability over restarts: SIGTERM and SHUTDOWN keep everything (values of every type
and TTLs); with appendfsync always, every write acknowledged before a kill -9 is there
after restart, and nothing that was never sent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.shalekv_server import ServerProcess, start_server

# Sends SET/INCR/RPUSH one at a time; prints "sent i" before and "ack i" after each, so
# the test knows what was acknowledged when the server died. Exits at the first error.
WRITER = r"""
import sys, redis
c = redis.Redis(port=int(sys.argv[1]), socket_timeout=10, protocol=2, retry=None)
print("ready", flush=True)
i = 0
try:
    while i < 100000:
        print("sent", i, flush=True)
        op = i % 3
        if op == 0:
            c.set(f"w:{i}", f"v{i}")
        elif op == 1:
            c.incr("w:counter")
        else:
            c.rpush("w:list", i)
        print("ack", i, flush=True)
        i += 1
except (redis.ConnectionError, redis.TimeoutError, ConnectionError) as e:
    print("error", type(e).__name__, flush=True)
"""


def _restart(sp: ServerProcess, *extra: str) -> ServerProcess:
    return start_server(sp.dir, *extra, port=None)


def _populate(c: redis.Redis) -> dict[str, object]:
    """One value of each type, some with TTLs; returns what a reader must see."""
    c.set("gone", "v", px=1)  # expired well before the snapshot (2000 writes later)
    c.set("s", "string")
    c.set("s:ttl", "v", ex=1000)
    c.incrby("n", 41)
    c.rpush("l", *range(100))
    c.hset("h", mapping={f"f{i}": i for i in range(50)})
    c.sadd("set", *range(30))
    c.zadd("z", {f"m{i}": i / 2 for i in range(40)})
    c.rpush("l:ttl", "a")
    c.pexpire("l:ttl", 2_000_000)
    for i in range(0, 2000, 100):
        c.mset({f"bulk{j}": "x" * (j % 300) for j in range(i, i + 100)})
    deadline = time.monotonic() + 10
    while c.pttl("gone") != -2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return _snapshot(c)


def _snapshot(c: redis.Redis) -> dict[str, object]:
    return {
        "s": c.get("s"),
        "n": c.get("n"),
        "l": c.lrange("l", 0, -1),
        "h": c.hgetall("h"),
        "set": c.smembers("set"),
        "z": c.zrange("z", 0, -1, withscores=True),
        "bulk": c.mget([f"bulk{i}" for i in range(2000)]),
        "dbsize": c.dbsize(),
        "gone": c.get("gone"),
        "s:ttl": c.get("s:ttl"),
        "l:ttl": c.lrange("l:ttl", 0, -1),
    }


def _check_ttls(c: redis.Redis) -> None:
    assert 900 < c.ttl("s:ttl") <= 1000
    assert 1_900_000 < c.pttl("l:ttl") <= 2_000_000
    assert c.ttl("s") == -1 and c.ttl("gone") == -2


def test_sigterm_keeps_every_type_and_ttl(tmp_path: Path) -> None:
    sp = start_server(str(tmp_path / "data"))
    try:
        c = redis.Redis(port=sp.port, protocol=2)
        want = _populate(c)
        c.close()
    finally:
        assert sp.stop(signal.SIGTERM) == 0
    assert want["gone"] is None and want["dbsize"] == 2008
    sp2 = _restart(sp)
    try:
        c = redis.Redis(port=sp2.port, protocol=2)
        assert _snapshot(c) == want
        _check_ttls(c)
        c.close()
    finally:
        assert sp2.stop(signal.SIGTERM) == 0
    assert "Traceback" not in sp2.log_text()


def test_shutdown_command(tmp_path: Path) -> None:
    sp = start_server(str(tmp_path / "data"))
    try:
        c = redis.Redis(port=sp.port, protocol=2)
        want = _populate(c)
        try:
            c.shutdown()
        except redis.ConnectionError:
            pass  # the server closes the connection instead of replying, as Redis
        assert sp.proc.wait(20) == 0
        c.close()
    finally:
        if sp.proc.poll() is None:
            sp.stop(signal.SIGKILL)
    sp2 = _restart(sp)
    try:
        c = redis.Redis(port=sp2.port, protocol=2)
        assert _snapshot(c) == want
        _check_ttls(c)
        c.close()
    finally:
        assert sp2.stop(signal.SIGTERM) == 0


def test_kill9_keeps_acknowledged_writes(tmp_path: Path) -> None:
    sp = start_server(str(tmp_path / "data"), "--appendfsync", "always")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(sp.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert writer.stdout is not None
        while True:  # kill the server once enough writes went through
            line = writer.stdout.readline()
            assert line, f"the writer stopped early: {lines[-5:]}"
            lines.append(line.rstrip("\n"))
            if line == "ack 600\n":
                sp.proc.send_signal(signal.SIGKILL)
                break
        lines += writer.stdout.read().splitlines()  # the rest, up to the writer's exit
        writer.wait(60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        if sp.proc.poll() is None:
            sp.proc.kill()
        sp.proc.wait()
    assert sp.proc.returncode == -signal.SIGKILL
    sent = [int(x.split()[1]) for x in lines if x.startswith("sent ")]
    acked = [int(x.split()[1]) for x in lines if x.startswith("ack ")]
    last_sent, last_ack = sent[-1], acked[-1]
    assert acked == list(range(last_ack + 1)) and last_sent in (last_ack, last_ack + 1)
    assert last_ack >= 600 and lines[-1].startswith("error "), json.dumps(lines[-5:])

    sp2 = _restart(sp)
    try:
        c = redis.Redis(port=sp2.port, protocol=2)
        # every acknowledged SET is there; the one in flight may or may not be
        sets = [i for i in range(last_sent + 1) if i % 3 == 0]
        got = c.mget([f"w:{i}" for i in sets])
        for i, v in zip(sets, got, strict=True):
            if i <= last_ack:
                assert v == f"v{i}".encode(), i
            else:
                assert v in (None, f"v{i}".encode()), i
        incrs_acked = sum(1 for i in range(last_ack + 1) if i % 3 == 1)
        incrs_sent = sum(1 for i in range(last_sent + 1) if i % 3 == 1)
        assert incrs_acked <= int(c.get("w:counter") or 0) <= incrs_sent
        pushed = [int(x) for x in c.lrange("w:list", 0, -1)]
        pushes_acked = [i for i in range(last_ack + 1) if i % 3 == 2]
        pushes_sent = [i for i in range(last_sent + 1) if i % 3 == 2]
        assert pushed in (pushes_acked, pushes_sent)
        # and nothing else: no key from a write that was never sent
        keys = set(c.keys("*"))
        assert keys <= {f"w:{i}".encode() for i in sets} | {b"w:counter", b"w:list"}
        c.close()
    finally:
        assert sp2.stop(signal.SIGTERM) == 0
    assert "Traceback" not in sp2.log_text()
