"""MONITOR: the lines shalekv sends compared with redis-server's for the same commands
(timestamps and client ports masked), and the MONITOR command's own replies."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis

from shalekv.server.monitor import quote
from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess

LINE = re.compile(rb"^\+(\d+)\.(\d{6}) \[(\d+) 127\.0\.0\.1:\d+\] (.*)\r\n$", re.DOTALL)
END = ("ECHO", "~end~")

ALL_BYTES = bytes(range(256))

SCRIPT: list[tuple[str | bytes, ...]] = [
    ("SET", "k", 'a"b\\c\n\r\t\x07\x08\x01 \x7f'),
    ("SET", b"bin", ALL_BYTES),
    ("GET", "k"),
    ("GET", "missing"),
    ("INCR", "k"),  # an error reply: still shown
    ("NOSUCH", "a"),  # rejected before running: not shown
    ("GET",),  # arity error: not shown
    ("AUTH", "secret"),
    ("AUTH", "user", "secret"),
    ("HELLO", "2", "AUTH", "default", "pw", "SETNAME", "me"),
    ("HELLO", "2"),
    ("CONFIG", "GET", "maxclients"),  # admin: hidden
    ("CONFIG", "SET", "maxclients", "10000"),
    ("CLIENT", "LIST"),  # admin: hidden
    ("CLIENT", "ID"),
    ("CLIENT", "SETNAME", "x"),
    ("SLOWLOG", "GET"),
    ("SELECT", "3"),
    ("SET", "in3", "v"),
    ("SELECT", "0"),
    ("MULTI",),
    ("SET", "q", "1"),
    ("LPUSH", "q", "x"),
    ("EXEC",),
    ("LPUSH", "l", "a", "b"),
    ("LRANGE", "l", "0", "-1"),
    ("PING",),
    ("ECHO", ""),
    ("PUBLISH", "ch", "msg"),
    ("DEL", "k", "bin", "l", "q"),
]


@pytest.fixture
def monitors(server: ServerProcess, redis_port: int) -> Iterator[list[tuple[RawClient, RawClient]]]:
    """(monitor, client) on shalekv, then on redis-server."""
    conns = [(RawClient(p), RawClient(p)) for p in (server.port, redis_port)]
    try:
        for mon, cli in conns:
            cli.call("FLUSHALL")
            assert mon.call("MONITOR") == b"+OK\r\n"
        yield conns
    finally:
        for mon, cli in conns:
            mon.close()
            cli.close()


def _lines(mon: RawClient) -> list[tuple[bytes, bytes]]:
    """(db, command text) of each line up to the END echo; checks the time format."""
    out = []
    while True:
        raw = mon.read_replies(1)
        m = LINE.match(raw)
        assert m is not None, raw
        if m.group(4) == b'"ECHO" "~end~"':
            return out
        out.append((m.group(3), m.group(4)))


def test_lines_match_redis(monitors: list[tuple[RawClient, RawClient]]) -> None:
    got = []
    for mon, cli in monitors:
        cli.send(b"".join(pack(*args) for args in SCRIPT))
        cli.read_replies(len(SCRIPT))
        cli.call(*END)
        got.append(_lines(mon))
    ours, theirs = got
    assert len(theirs) > 20
    for a, b in zip(ours, theirs, strict=False):
        assert a == b
    assert len(ours) == len(theirs)


def test_quote_is_sdscatrepr(monitors: list[tuple[RawClient, RawClient]]) -> None:
    """Every byte value, quoted: the same text as Redis's line for it."""
    (mon, cli), (rmon, rcli) = monitors
    for c in (cli, rcli):
        c.call("ECHO", ALL_BYTES)
        c.call(*END)
    theirs = _lines(rmon)
    assert theirs == [(b"0", b'"ECHO" ' + quote(ALL_BYTES))]
    assert _lines(mon) == theirs


def test_monitor_commands_like_redis(monitors: list[tuple[RawClient, RawClient]]) -> None:
    got = []
    for mon, cli in monitors:
        out = []
        mon.send(pack("MONITOR"))  # already monitoring: no reply at all
        out.append(mon.call("PING"))  # the reply first, then the line of its own PING
        out.append(_mask(mon.read_replies(1)))
        out.append(cli.call("MULTI"))
        out.append(cli.call("MONITOR"))
        out.append(cli.call("EXEC"))
        cli.call(*END)
        out += [db + b" " + text for db, text in _lines(mon)]
        out.append(mon.call("RESET"))  # ends monitoring
        cli.call("SET", "after", "reset")
        out.append(mon.call("PING"))
        got.append(out)
    assert got[0] == got[1]


def _mask(line: bytes) -> bytes:
    m = LINE.match(line)
    assert m is not None, line
    return m.group(3) + b" " + m.group(4)


def test_every_client_sees_every_command(server: ServerProcess) -> None:
    with RawClient(server.port) as m1, RawClient(server.port) as m2:
        for m in (m1, m2):
            assert m.call("MONITOR") == b"+OK\r\n"
        with RawClient(server.port) as a, RawClient(server.port) as b:
            a.call("SET", "x", "1")
            b.call("GET", "x")
            a.call(*END)
        for m in (m1, m2):
            assert _lines(m) == [(b"0", b'"SET" "x" "1"'), (b"0", b'"GET" "x"')]
        # CLIENT LIST shows the monitors' flag
        with RawClient(server.port) as c:
            listing = c.call("CLIENT", "LIST")
        assert listing.count(b"flags=O") == 2


def test_redis_py_monitor(server: ServerProcess) -> None:
    r = redis.Redis(port=server.port)
    try:
        with r.monitor() as m:
            other = redis.Redis(port=server.port)
            other.set("mk", 'with "quotes"')
            other.close()
            seen = []
            for info in m.listen():
                seen.append(info["command"])
                if info["command"].startswith("SET"):
                    break
        assert seen[-1] == 'SET mk with "quotes"'
        assert info["db"] == 0 and info["client_type"] == "tcp"
    finally:
        r.close()
