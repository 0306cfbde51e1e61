"""Keyspace notifications, differential: the same commands on shalekv and redis-server
with the same notify-keyspace-events, a subscriber to __key*__:* on each; the messages
received must be the same, in the same order."""

from __future__ import annotations

import time
from collections.abc import Iterator

import hiredis
import pytest

from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess

END = b"__keyspace@0__:~end"


def _messages(sub: RawClient) -> list[tuple[bytes, bytes]]:
    """pmessages received up to the END sentinel, as (channel, message)."""
    out: list[tuple[bytes, bytes]] = []
    reader = hiredis.Reader()
    while True:
        raw = sub.read_replies(1)
        reader.feed(raw)
        msg = reader.gets()
        assert msg[0] == b"pmessage", msg
        if msg[2] == END:
            return out
        out.append((msg[2], msg[3]))


@pytest.fixture
def pair(server: ServerProcess, redis_port: int) -> Iterator[list[tuple[RawClient, RawClient]]]:
    """(commands, subscriber) on shalekv and on redis-server, notifications reset after."""
    conns: list[tuple[RawClient, RawClient]] = []
    for port in (server.port, redis_port):
        cmd, sub = RawClient(port), RawClient(port)
        cmd.call("FLUSHALL")
        assert sub.call("PSUBSCRIBE", "__key*__:*").startswith(b"*3\r\n$10\r\npsubscribe")
        conns.append((cmd, sub))
    try:
        yield conns
    finally:
        for cmd, sub in conns:
            cmd.call("CONFIG", "SET", "notify-keyspace-events", "")
            cmd.close()
            sub.close()


def _run(
    pair: list[tuple[RawClient, RawClient]], flags: str, script: list[tuple[str, ...]]
) -> list[list[tuple[bytes, bytes]]]:
    got = []
    for cmd, sub in pair:
        assert cmd.call("CONFIG", "SET", "notify-keyspace-events", flags) == b"+OK\r\n"
        cmd.send(b"".join(pack(*args) for args in script))
        cmd.read_replies(len(script))
        cmd.call("PUBLISH", END, "x")
        got.append(_messages(sub))
    return got


def _same(
    pair: list[tuple[RawClient, RawClient]], flags: str, script: list[tuple[str, ...]]
) -> None:
    ours, theirs = _run(pair, flags, script)
    assert theirs, "the script should emit events"
    assert ours == theirs


STRINGS = [
    ("SET", "s", "1"),
    ("SET", "s", "2", "NX"),
    ("SET", "s", "3", "XX", "EX", "100"),
    ("SET", "t", "3", "XX"),
    ("SET", "t", "1", "GET"),
    ("SETNX", "s", "x"),
    ("SETNX", "u", "x"),
    ("SETEX", "e", "100", "v"),
    ("PSETEX", "e", "100000", "v"),
    ("GETSET", "s", "9"),
    ("MSET", "a", "1", "b", "2"),
    ("MSETNX", "a", "1", "c", "2"),
    ("MSETNX", "c", "1", "d", "2"),
    ("APPEND", "a", "xyz"),
    ("INCR", "n"),
    ("DECR", "n"),
    ("INCRBY", "n", "5"),
    ("DECRBY", "n", "2"),
    ("INCRBYFLOAT", "n", "1.5"),
    ("SETRANGE", "r", "2", "ab"),
    ("SETRANGE", "r", "0", ""),
    ("SETRANGE", "missing", "0", ""),
    ("GETDEL", "r"),
    ("GETDEL", "r"),
    ("GETEX", "s", "EX", "100"),
    ("GETEX", "s", "PERSIST"),
    ("GETEX", "s", "PERSIST"),
    ("GETEX", "s"),
    ("GETEX", "s", "PXAT", "1"),
    ("INCR", "a"),  # an error: no event
]

KEYS = [
    ("SET", "k1", "v"),
    ("SET", "k2", "v"),
    ("DEL", "k1", "k1", "nope", "k2"),
    ("SET", "k", "v"),
    ("EXPIRE", "k", "100"),
    ("EXPIRE", "k", "50", "GT"),
    ("PEXPIRE", "k", "200000", "GT"),
    ("PERSIST", "k"),
    ("PERSIST", "k"),
    ("EXPIREAT", "k", "99999999999"),
    ("PEXPIREAT", "k", "1"),
    ("EXPIRE", "gone", "10"),
    ("SET", "k", "v"),
    ("RENAME", "k", "k"),
    ("RENAME", "k", "j"),
    ("SET", "x", "1"),
    ("RENAMENX", "j", "x"),
    ("RENAMENX", "j", "y"),
    ("COPY", "y", "z"),
    ("COPY", "y", "z"),
    ("COPY", "y", "z", "REPLACE"),
    ("COPY", "y", "z", "DB", "2"),
    ("MOVE", "y", "3"),
    ("MOVE", "y", "3"),  # gone: no event
    ("MOVE", "x", "0"),  # an error: no event
    ("UNLINK", "y", "z"),
    ("FLUSHDB",),
]

LISTS = [
    ("LPUSH", "l", "a", "b"),
    ("RPUSH", "l", "c"),
    ("LPUSHX", "nol", "a"),
    ("RPUSHX", "l", "d"),
    ("LINSERT", "l", "BEFORE", "c", "x"),
    ("LINSERT", "l", "BEFORE", "zz", "x"),
    ("LSET", "l", "0", "y"),
    ("LREM", "l", "0", "nothing"),
    ("LREM", "l", "1", "x"),
    ("LPOP", "l"),
    ("RPOP", "l", "2"),
    ("LPOP", "nol"),
    ("RPUSH", "m", "1", "2", "3"),
    ("LMOVE", "m", "n", "LEFT", "RIGHT"),
    ("RPOPLPUSH", "m", "n"),
    ("LMOVE", "m", "n", "RIGHT", "LEFT"),
    ("LMOVE", "m", "n", "RIGHT", "LEFT"),
    ("LMPOP", "2", "m", "n", "RIGHT", "COUNT", "2"),
    ("LTRIM", "n", "0", "0"),
    ("LTRIM", "n", "5", "10"),
    ("LTRIM", "n", "5", "10"),
    ("RPUSH", "o", "a"),
    ("LPOP", "o", "5"),
]

BLOCKING = [
    ("RPUSH", "p", "a", "b", "c"),
    ("BRPOP", "nol", "p", "1"),
    ("BLMOVE", "p", "q", "LEFT", "LEFT", "1"),
    ("BLMPOP", "1", "2", "nol", "p", "LEFT"),
    ("BLPOP", "q", "1"),
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"),
    ("BZPOPMAX", "x", "z", "1"),
    ("BZMPOP", "1", "1", "z", "MIN", "COUNT", "5"),
]

HASHES = [
    ("HSET", "h", "a", "1", "b", "2"),
    ("HSET", "h", "a", "1"),
    ("HMSET", "h", "c", "3"),
    ("HSETNX", "h", "a", "9"),
    ("HSETNX", "h", "z", "9"),
    ("HINCRBY", "h", "n", "2"),
    ("HINCRBYFLOAT", "h", "f", "2.5"),
    ("HDEL", "h", "nothing"),
    ("HDEL", "h", "a", "b"),
    ("HDEL", "h", "c", "z", "n", "f"),
]

SETS = [
    ("SADD", "s", "a", "b", "c"),
    ("SADD", "s", "a"),
    ("SREM", "s", "zz"),
    ("SREM", "s", "a"),
    ("SMOVE", "s", "t", "b"),
    ("SADD", "t", "c"),
    ("SMOVE", "s", "t", "c"),
    ("SMOVE", "s", "t", "c"),
    ("SADD", "u", "1", "2"),
    ("SINTERSTORE", "dst", "t", "u"),
    ("SUNIONSTORE", "dst", "t", "u"),
    ("SDIFFSTORE", "dst", "t", "t"),
    ("SDIFFSTORE", "dst", "t", "t"),
    ("SPOP", "u"),
    ("SPOP", "u", "0"),
    ("SPOP", "u", "5"),
    ("SPOP", "t"),
    ("SPOP", "t", "1"),
]

ZSETS = [
    ("ZADD", "z", "1", "a", "2", "b"),
    ("ZADD", "z", "1", "a"),
    ("ZADD", "z", "5", "a"),
    ("ZADD", "z", "NX", "9", "a"),
    ("ZADD", "z", "XX", "INCR", "1", "a"),
    ("ZADD", "z", "XX", "INCR", "1", "nope"),
    ("ZINCRBY", "z", "1", "c"),
    ("ZREM", "z", "nope"),
    ("ZREM", "z", "c"),
    ("ZADD", "z", "3", "c", "4", "d", "5", "e"),
    ("ZREMRANGEBYSCORE", "z", "100", "200"),
    ("ZREMRANGEBYSCORE", "z", "3", "3"),
    ("ZREMRANGEBYRANK", "z", "0", "0"),
    ("ZREMRANGEBYLEX", "z", "-", "+"),
    ("ZADD", "y", "1", "a", "2", "b", "3", "c"),
    ("ZPOPMIN", "y"),
    ("ZPOPMAX", "y", "1"),
    ("ZADD", "x", "1", "x"),
    ("ZUNIONSTORE", "d", "2", "x", "y"),
    ("ZINTERSTORE", "d", "2", "x", "y"),
    ("ZDIFFSTORE", "d", "1", "y"),
    ("ZRANGESTORE", "d2", "y", "0", "-1"),
    ("ZRANGESTORE", "d2", "y", "5", "10"),
    ("ZMPOP", "2", "nope", "y", "MIN"),
]
GEO = [
    ("GEOADD", "g", "13.36", "38.11", "a", "15.08", "37.50", "b"),
    ("GEOADD", "g", "13.36", "38.11", "a"),
    ("GEOADD", "g", "CH", "13.5", "38.2", "a"),
    ("GEORADIUS", "g", "15", "37", "200", "km"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d"),
    ("GEORADIUS", "g", "15", "37", "1", "m", "STOREDIST", "d"),
    ("GEORADIUS", "g", "15", "37", "1", "m", "STORE", "d"),
    ("GEORADIUSBYMEMBER", "g", "a", "300", "km", "COUNT", "1", "STOREDIST", "d"),
    ("GEOSEARCHSTORE", "d2", "g", "FROMMEMBER", "b", "BYRADIUS", "300", "km"),
    ("GEOSEARCHSTORE", "d2", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m"),
    ("GEORADIUS", "nope", "15", "37", "200", "km", "STORE", "d"),
]


@pytest.mark.parametrize(
    "script",
    [STRINGS, KEYS, LISTS, HASHES, SETS, ZSETS, GEO],
    ids=["strings", "keys", "lists", "hashes", "sets", "zsets", "geo"],
)
def test_events_match_redis(
    pair: list[tuple[RawClient, RawClient]], script: list[tuple[str, ...]]
) -> None:
    _same(pair, "KEA", script)


def test_blocking_pops_served_at_once(pair: list[tuple[RawClient, RawClient]]) -> None:
    """Blocking pops that find data pop at once, with the events of the plain pops."""
    ours = pair[0][0]
    for name in ("BLPOP", "BLMOVE", "BLMPOP", "BZMPOP"):
        if ours.call(name).startswith(b"-ERR unknown command"):
            pytest.skip(f"{name} is not implemented yet")
    _same(pair, "KEA", BLOCKING)


@pytest.mark.parametrize("flags", ["Kg", "E$", "Kl", "Ehs", "KEz", "AK", "KEg$lshzxetd"])
def test_classes_filter_like_redis(pair: list[tuple[RawClient, RawClient]], flags: str) -> None:
    script = [("SET", "a", "1"), ("LPUSH", "l", "x"), ("HSET", "h", "f", "v"), ("SADD", "s", "m")]
    script += [("ZADD", "z", "1", "m"), ("DEL", "a", "l", "h", "s", "z")]
    ours, theirs = _run(pair, flags, script)
    assert ours == theirs


def test_new_key_events(pair: list[tuple[RawClient, RawClient]]) -> None:
    script = [("SET", "a", "1"), ("SET", "a", "2"), ("RPUSH", "l", "x"), ("RPUSH", "l", "y")]
    script += [("SADD", "s", "1"), ("ZADD", "z", "1", "m"), ("INCR", "n")]
    _same(pair, "KEn", script)


def test_new_in_another_db(pair: list[tuple[RawClient, RawClient]]) -> None:
    """MOVE and COPY ... DB add the key to the target db ("new" there, dbAdd), and COPY
    REPLACE over an existing key deletes then adds it ("new" again)."""
    script = [("SET", "k", "v"), ("MOVE", "k", "2"), ("SET", "a", "1"), ("SET", "b", "2")]
    script += [("COPY", "a", "b", "REPLACE"), ("COPY", "a", "c"), ("COPY", "a", "c", "DB", "4")]
    script += [("COPY", "a", "c", "DB", "4", "REPLACE"), ("COPY", "a", "c", "DB", "4")]
    script += [("MULTI",), ("MOVE", "a", "5"), ("MOVE", "b", "5"), ("EXEC",)]
    _same(pair, "KEAn", script)


def test_move_onto_expired_key(pair: list[tuple[RawClient, RawClient]]) -> None:
    """A copy in the target db that expired is deleted by the lookup: "expired" there,
    then the move's (or COPY ... DB's) events. Nothing else happens between the expiring
    SET and the MOVE, so an active expiry deleting it first sends the same stream."""
    got = []
    for cmd, sub in pair:
        cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # redis: only lazy expiry; ours: error
        cmd.call("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        for command in (("MOVE", "k", "2"), ("COPY", "k", "c", "DB", "2")):
            cmd.call("SET", "k", "v")
            cmd.call("SELECT", "2")
            cmd.call("SET", command[2] if command[0] == "COPY" else "k", "old", "PX", "1")
            cmd.call("SELECT", "0")
            time.sleep(0.01)
            cmd.call(*command)
        cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        cmd.call("PUBLISH", END, "x")
        got.append(_messages(sub))
    ours, theirs = got
    assert ours == theirs
    assert sum(1 for m in ours if b"expired" in m[-1] or b"expired" in m[-2]) == 4  # k, c


def test_in_multi_exec(pair: list[tuple[RawClient, RawClient]]) -> None:
    script = [("MULTI",), ("SET", "a", "1"), ("LPUSH", "a", "x"), ("RPUSH", "l", "y")]
    script += [("EXEC",), ("SELECT", "3"), ("SET", "a", "1"), ("SELECT", "0")]
    _same(pair, "KEA", script)


def test_no_events_when_off(pair: list[tuple[RawClient, RawClient]]) -> None:
    for flags in ("", "A", "g$lshz"):  # a class alone, without K or E, sends nothing
        ours, theirs = _run(pair, flags, [("SET", "a", "1"), ("DEL", "a")])
        assert ours == theirs == []


def test_config_get_normalizes(pair: list[tuple[RawClient, RawClient]]) -> None:
    for flags in ("KEA", "Eg$lshzxetd", "gK", "AKEmn", "x$E"):
        got = []
        for cmd, _ in pair:
            cmd.call("CONFIG", "SET", "notify-keyspace-events", flags)
            got.append(cmd.call("CONFIG", "GET", "notify-keyspace-events"))
        assert got[0] == got[1], flags
    bad = [cmd.call("CONFIG", "SET", "notify-keyspace-events", "KEQ") for cmd, _ in pair]
    assert bad[0] == bad[1]


def test_active_expiry_emits_expired(pair: list[tuple[RawClient, RawClient]]) -> None:
    script = [("SET", "a", "1", "PX", "50"), ("SET", "b", "2", "PX", "60")]
    script += [("HSET", "h", "f", "v"), ("PEXPIRE", "h", "70")]
    got = []
    for cmd, sub in pair:
        cmd.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        for args in script:
            cmd.call(*args)
        deadline = time.monotonic() + 10
        while cmd.call("DBSIZE") != b":0\r\n" and time.monotonic() < deadline:
            time.sleep(0.05)  # expiry is the server's own doing: poll, bounded
        cmd.call("PUBLISH", END, "x")
        got.append(_messages(sub))
    ours, theirs = got

    def expired(msgs: list[tuple[bytes, bytes]]) -> set[tuple[bytes, bytes]]:
        return {m for m in msgs if b"expired" in m[0] + m[1]}

    # The order the keys expire in is the expiry cycle's: compare as sets
    assert expired(ours) == expired(theirs) and len(expired(theirs)) == 6
    assert [m for m in ours if m not in expired(ours)] == [
        m for m in theirs if m not in expired(theirs)
    ]


def test_lazy_expiry_emits_expired(pair: list[tuple[RawClient, RawClient]]) -> None:
    got = []
    for cmd, sub in pair:
        cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # redis: only lazy expiry; ours: error
        cmd.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        cmd.call("SET", "a", "1", "PX", "1")
        time.sleep(0.01)
        cmd.call("LPUSH", "a", "x")  # finds a expired on access: expired, then lpush
        cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        cmd.call("PUBLISH", END, "x")
        got.append(_messages(sub))
    ours, theirs = got
    # our active expiry may delete a first: the events are the same either way
    assert ours == theirs


def test_blocked_pop_served_later(pair: list[tuple[RawClient, RawClient]]) -> None:
    """A pop served to a blocked client emits the pop (and "del") after the push."""
    got = []
    for cmd, sub in pair:
        if cmd.call("BLPOP").startswith(b"-ERR unknown command"):
            pytest.skip("BLPOP is not implemented yet")
        cmd.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        port = cmd.sock.getpeername()[1]
        with RawClient(port) as waiter, RawClient(port) as zwaiter:
            waiter.send(pack("BLPOP", "l", "10"))
            zwaiter.send(pack("BZPOPMAX", "z", "10"))
            deadline = time.monotonic() + 10
            while b"blocked_clients:2" not in cmd.call("INFO", "clients"):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            cmd.call("RPUSH", "l", "a")
            cmd.call("ZADD", "z", "1", "a", "2", "b")
            waiter.read_replies(1)
            zwaiter.read_replies(1)
        cmd.call("PUBLISH", END, "x")
        got.append(_messages(sub))
    ours, theirs = got
    assert len(theirs) == 10
    assert ours == theirs


READS = [
    ("SET", "x", "1"),
    ("RPUSH", "l", "a"),
    ("GET", "x"),
    ("GET", "a"),
    ("MGET", "a", "x", "b", "a"),
    ("EXISTS", "a", "x"),
    ("TYPE", "a"),
    ("TTL", "a"),
    ("STRLEN", "a"),
    ("LRANGE", "l", "0", "1"),
    ("LRANGE", "a", "0", "1"),
    ("HGET", "a", "f"),
    ("SMEMBERS", "a"),
    ("ZSCORE", "a", "m"),
    ("SINTER", "a", "b"),
    ("SINTERCARD", "2", "a", "b"),
    ("ZUNION", "2", "a", "b"),
    ("ZINTERCARD", "1", "a"),
    ("SSCAN", "a", "0"),
    ("DBSIZE",),
    ("GET", "l"),  # WRONGTYPE: found, so no keymiss
    ("LPOP", "nope"),  # a write: never keymiss
]


def test_keymiss_like_redis(pair: list[tuple[RawClient, RawClient]]) -> None:
    _same(pair, "KEm", READS)


def test_read_of_expired_key(pair: list[tuple[RawClient, RawClient]]) -> None:
    got = []
    for cmd, sub in pair:
        cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        cmd.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        cmd.call("SET", "a", "1", "PX", "1")
        cmd.call("SET", "b", "1", "PX", "1")
        time.sleep(0.01)
        cmd.call("CONFIG", "SET", "notify-keyspace-events", "KExm")
        cmd.call("MGET", "b", "a", "c")
        cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        cmd.call("PUBLISH", END, "x")
        got.append(_messages(sub))
    ours, theirs = got
    assert len([m for m in theirs if b"keymiss" in m[0] + m[1]]) == 6
    if ours != theirs:
        # our active expiry (it cannot be paused) may have taken a and b first: the
        # same events, the expiries earlier
        assert sorted(ours) == sorted(theirs)


def test_active_expiry_reports_keys_due_since_its_listing(tmp_path, monkeypatch) -> None:
    """The notifying expiry cycle lists the due keys, then runs the cycle, whose own
    transactions start later: a key whose deadline falls in between is deleted by it
    and must be reported "expired" too (it was not: a rare flake of
    test_read_of_expired_key). In process, with the clock stepped between the two."""
    from shalekv.types import keyspace
    from tests.server.inproc import connect, open_server
    from tests.server.raw import pack

    server = open_server(tmp_path)
    try:
        c, ct = connect(server)
        s, st = connect(server)
        c.data_received(pack("CONFIG", "SET", "notify-keyspace-events", "KEA"))
        s.data_received(pack("PSUBSCRIBE", "__keyevent@*"))
        deadline_ms = time.time_ns() // 1_000_000 + 60_000
        c.data_received(pack("SET", "a", "1", "PXAT", str(deadline_ms)))
        for hook in server.cron_hooks:
            hook()  # installs the notifying cycle
        st.take()
        calls = iter([deadline_ms - 1])  # the listing sees a not yet due; then it is

        def clock() -> int:
            return next(calls, deadline_ms + 1) * 1_000_000

        monkeypatch.setattr(keyspace.time, "time_ns", clock)
        assert server.expiry is not None and server.expiry.run_once() == 1
        monkeypatch.undo()
        assert b"__keyevent@0__:expired" in st.take()
        c.data_received(pack("EXISTS", "a"))
        assert ct.take().endswith(b":0\r\n")
    finally:
        server.store.engine.close()
