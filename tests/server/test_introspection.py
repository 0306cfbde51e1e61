"""INFO, CONFIG, CLIENT LIST/INFO/KILL/PAUSE, COMMAND, SLOWLOG, LATENCY and OBJECT:
byte-for-byte against redis-server where the reply is deterministic, behaviour tests
against our server elsewhere."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import hiredis
import pytest
import redis

from shalekv.server.latency import Histogram, bucket_of, bucket_upper
from shalekv.server.slowlog import trim_args
from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess, shalekv_server

Pair = tuple[RawClient, RawClient]


def parse(raw: bytes) -> object:
    r = hiredis.Reader()
    r.feed(raw)
    return r.gets()


def same(pair: Pair, *args: str | bytes | int) -> bytes:
    ours, theirs = pair
    a, b = ours.call(*args), theirs.call(*args)
    assert a == b, args
    return a


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(raw_pair: Pair, request: pytest.FixtureRequest) -> Iterator[Pair]:
    for c in raw_pair:
        c.call("HELLO", request.param)
    yield raw_pair


@pytest.fixture
def restore_config(server: ServerProcess, redis_port: int) -> Iterator[None]:
    """Options a test changes go back to their values on both servers."""
    names = ["slowlog-log-slower-than", "slowlog-max-len", "hz", "maxclients",
             "latency-monitor-threshold", "maxmemory-policy"]  # fmt: skip
    saved = {}
    for port in (server.port, redis_port):
        c = redis.Redis(port=port)
        saved[port] = {n: c.config_get(n)[n] for n in names}
        c.close()
    yield
    for port, values in saved.items():
        c = redis.Redis(port=port)
        for n, v in values.items():
            c.config_set(n, str(v))
        c.close()


# ---------------------------------------------------------------- pure parts


def test_histogram_buckets_cover_every_value() -> None:
    for usec in [*range(2000), 10**6, 10**9]:
        i = bucket_of(usec)
        assert bucket_upper(i) >= usec
        assert i == 0 or bucket_upper(i - 1) < usec


def test_histogram_percentiles() -> None:
    h = Histogram()
    for usec in range(1, 1001):
        h.add(usec)
    p50, p99 = h.percentile(50), h.percentile(99)
    assert 500 <= p50 <= 625 and 990 <= p99 <= 1250  # within a bucket (25%)
    assert h.cumulative([10, 10**6]) == [9, 1000]


def test_slowlog_trims_as_redis() -> None:
    args = [b"x" * 200, *[b"a"] * 40]
    out = trim_args(args)
    assert len(out) == 32
    assert out[0] == b"x" * 128 + b"... (72 more bytes)"
    assert out[-1] == b"... (10 more arguments)"
    assert trim_args([b"get", b"k"]) == [b"get", b"k"]


# ---------------------------------------------------------------- differential


def test_config_get_and_set_errors(pair: Pair, restore_config: None) -> None:
    for name in ("maxclients", "slowlog-max-len", "timeout", "databases"):
        same(pair, "CONFIG", "GET", name)
    same(pair, "CONFIG", "GET", "no-such-option*")
    same(pair, "CONFIG", "GET")
    same(pair, "CONFIG", "SET", "x", "1")
    same(pair, "CONFIG", "SET", "maxclients", "abc")
    same(pair, "CONFIG", "SET", "protected-mode", "maybe")
    same(pair, "CONFIG", "SET", "hz", "5", "hz", "6")
    same(pair, "CONFIG", "SET", "hz", "5", "maxclients")
    same(pair, "CONFIG", "SET", "hz")
    same(pair, "CONFIG", "SET", "databases", "4")
    same(pair, "CONFIG", "SET", "hz", "12", "slowlog-max-len", "64")
    same(pair, "CONFIG", "GET", "hz")
    same(pair, "CONFIG", "HELP")


def test_command_info_shapes(pair: Pair) -> None:
    same(pair, "COMMAND", "INFO", "get", "zadd", "nope", "client|kill")
    for name in ("geoadd", "geopos", "geodist", "geohash", "georadius_ro",
                 "georadiusbymember_ro", "geosearch"):  # fmt: skip
        same(pair, "COMMAND", "INFO", name)
    ours, theirs = pair
    # SET, MOVE: Redis's key specs have finer flags (OW/variable_flags, access, notes)
    # than the table knows; everything before the key specs is the same.
    for name in ("set", "move"):
        a = parse(ours.call("COMMAND", "INFO", name))
        b = parse(theirs.call("COMMAND", "INFO", name))
        assert isinstance(a, list) and isinstance(b, list)
        assert a[0][:8] == b[0][:8] and len(a[0]) == len(b[0]) == 10, name
    count = ours.call("COMMAND", "COUNT")
    assert count.startswith(b":") and int(count[1:]) >= 100
    listed = parse(ours.call("COMMAND", "LIST"))
    assert isinstance(listed, list) and b"client|kill" in listed and b"get" in listed


def test_command_getkeys(pair: Pair) -> None:
    same(pair, "COMMAND", "GETKEYS", "mset", "a", "b", "c", "d")
    same(pair, "COMMAND", "GETKEYS", "get", "k")
    same(pair, "COMMAND", "GETKEYS", "nope", "x")
    same(pair, "COMMAND", "GETKEYS", "ping", "x")
    same(pair, "COMMAND", "GETKEYS", "get", "a", "b")
    same(pair, "COMMAND", "GETKEYS", "get")
    same(pair, "COMMAND", "LIST", "FILTERBY", "foo", "x")
    same(pair, "COMMAND", "HELP")
    # Keys counted by a numkeys argument (Redis's keynum key specs).
    for args in ("lmpop 2 a b LEFT", "lmpop x a LEFT", "zunionstore d 2 a b", "zunion 0 a",
                 "zunionstore d 5 a b", "blmpop 0 2 a b LEFT", "sintercard 2 a b"):  # fmt: skip
        same(pair, "COMMAND", "GETKEYS", *args.split())
    same(pair, "COMMAND", "GETKEYSANDFLAGS", "get", "k")
    same(
        pair,
        "COMMAND",
        "GETKEYS",
        "geosearchstore",
        "d",
        "g",
        "FROMMEMBER",
        "m",
        "BYRADIUS",
        "1",
        "m",
    )
    for args in ("georadius g 1 2 3 km", "georadius g 1 2 3 km STORE a STOREDIST b",
                 "georadius g 1 2 3 km storedist b", "georadiusbymember g m 3 km STORE a"):  # fmt: skip
        same(pair, "COMMAND", "GETKEYS", *args.split())


def test_client_info_fields(pair: Pair) -> None:
    ours, theirs = pair

    def fields(c: RawClient) -> list[bytes]:
        line = parse(c.call("CLIENT", "INFO"))
        assert isinstance(line, bytes) and line.endswith(b"\n")
        return [kv.split(b"=")[0] for kv in line.split()]

    assert fields(ours) == fields(theirs)
    for c in pair:
        c.call("CLIENT", "SETNAME", "probe")
    a, b = parse(ours.call("CLIENT", "INFO")), parse(theirs.call("CLIENT", "INFO"))
    assert isinstance(a, bytes) and isinstance(b, bytes)
    keep = (b"name", b"flags", b"db", b"sub", b"psub", b"multi", b"cmd", b"user", b"resp")
    assert [kv for kv in a.split() if kv.split(b"=")[0] in keep] == [
        kv for kv in b.split() if kv.split(b"=")[0] in keep
    ]


def test_client_errors(pair: Pair) -> None:
    for args in [
        ("CLIENT", "KILL", "1.2.3.4:5"),
        ("CLIENT", "KILL", "ID", "99999"),
        ("CLIENT", "KILL", "ID", "x"),
        ("CLIENT", "KILL", "foo", "bar"),
        ("CLIENT", "KILL", "SKIPME", "maybe"),
        ("CLIENT", "KILL", "TYPE", "x"),
        ("CLIENT", "KILL", "USER", "nobody"),
        ("CLIENT", "PAUSE", "abc"),
        ("CLIENT", "PAUSE", "-1"),
        ("CLIENT", "PAUSE", "10", "X"),
        ("CLIENT", "LIST", "TYPE", "x"),
        ("CLIENT", "LIST", "ID", "x"),
        ("CLIENT", "LIST", "foo"),
    ]:
        same(pair, *args)


def test_slowlog_entries(pair: Pair, restore_config: None) -> None:
    same(pair, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    same(pair, "SLOWLOG", "RESET")
    same(pair, "SET", "k", "v" * 200)
    same(pair, "RPUSH", "l", *[str(i) for i in range(40)])
    ours, theirs = pair
    a = parse(ours.call("SLOWLOG", "GET", "3"))
    b = parse(theirs.call("SLOWLOG", "GET", "3"))
    assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 3
    for ea, eb in zip(a, b, strict=True):
        assert len(ea) == len(eb) == 6
        assert ea[3] == eb[3]  # the arguments, trimmed alike
        assert ea[5] == eb[5] == b""  # client name
        assert all(isinstance(x, int) for x in ea[:3])
    assert a[0][0] > a[1][0] > a[2][0]  # newest first
    same(pair, "SLOWLOG", "GET", "x")
    same(pair, "SLOWLOG", "nope")
    same(pair, "SLOWLOG", "HELP")
    same(pair, "CONFIG", "SET", "slowlog-log-slower-than", "-1")
    same(pair, "SLOWLOG", "RESET")
    same(pair, "SLOWLOG", "LEN")
    same(pair, "SLOWLOG", "GET")


def test_object(pair: Pair, restore_config: None) -> None:
    same(pair, "SET", "int", "12345")
    same(pair, "SET", "small", "hello")
    same(pair, "SET", "big", "x" * 100)
    same(pair, "RPUSH", "list", "a")
    same(pair, "HSET", "hash", "f", "v")
    same(pair, "HSET", "bighash", "f", "v" * 100)
    same(pair, "SADD", "ints", "1", "2")
    same(pair, "SADD", "strs", "a")
    same(pair, "ZADD", "z", "1", "a")
    for key in ("int", "small", "big", "list", "hash", "bighash", "ints", "strs", "z", "nokey"):
        same(pair, "OBJECT", "ENCODING", key)
    same(pair, "OBJECT", "REFCOUNT", "int")
    same(pair, "OBJECT", "REFCOUNT", "nokey")
    same(pair, "OBJECT", "FREQ", "int")
    same(pair, "OBJECT", "FREQ", "nokey")
    same(pair, "OBJECT", "IDLETIME", "nokey")
    same(pair, "OBJECT", "ENCODING")
    same(pair, "OBJECT", "HELP")
    same(pair, "CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    same(pair, "OBJECT", "IDLETIME", "int")


def test_latency_replies(pair: Pair) -> None:
    same(pair, "LATENCY", "HISTORY", "no-such-event")
    same(pair, "LATENCY", "RESET", "no-such-event")
    same(pair, "LATENCY", "nope")


def test_info_keyspace_matches(pair: Pair) -> None:
    same(pair, "MSET", "a", "1", "b", "2", "c", "3")
    same(pair, "INFO", "keyspace")
    same(pair, "FLUSHALL")
    same(pair, "INFO", "keyspace")
    same(pair, "INFO", "no-such-section")


# ---------------------------------------------------------------- behaviour


def info(r: redis.Redis, section: str) -> dict[str, object]:
    return r.info(section)  # type: ignore[no-any-return]


def test_info_sections(server: ServerProcess, r: redis.Redis) -> None:
    with RawClient(server.port) as c:
        raw = parse(c.call("INFO"))
        both = parse(c.call("INFO", "stats", "clients"))
    assert isinstance(raw, bytes) and isinstance(both, bytes)
    text = raw.decode()
    titles = [line for line in text.split("\r\n") if line.startswith("# ")]
    assert titles[:7] == ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats",
                          "# Replication", "# CPU"]  # fmt: skip
    assert "# Commandstats" not in titles and "# Engine" in titles
    everything = r.info("everything")
    assert "cmdstat_info" in everything or any(k.startswith("cmdstat_") for k in everything)
    fields = info(r, "server")
    assert fields["redis_version"] == "7.0.15" and "shalekv_version" in fields
    assert fields["process_id"] != os.getpid() and isinstance(fields["tcp_port"], int)
    several = r.info("stats")
    assert "keyspace_hits" in several and "connected_clients" not in several
    assert b"# Stats" in both and b"# Clients" in both and b"# Server" not in both
    persistence = info(r, "persistence")
    assert persistence["loading"] == 0 and persistence["aof_enabled"] == 1
    engine = info(r, "engine")
    assert {"engine_files", "write_amplification", "block_cache_hit_ratio"} <= set(engine)
    assert {"compressed_cache_hit_ratio", "bloom_useful", "pending_compaction_bytes"} <= set(engine)
    assert info(r, "replication")["role"] == "master"
    assert "used_cpu_user" in info(r, "cpu")


def test_info_resp3_is_verbatim(server: ServerProcess) -> None:
    with RawClient(server.port) as c:
        c.call("HELLO", "3")
        assert c.call("INFO", "server").startswith(b"=")
        assert c.call("CLIENT", "INFO").startswith(b"=")


def test_info_keyspace_and_stats_move(r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2"})
    r.set("c", "3", ex=100)
    assert info(r, "keyspace")["db0"] == {"keys": 3, "expires": 1, "avg_ttl": 0}
    before = info(r, "stats")
    r.get("a")
    r.get("missing")
    after = info(r, "stats")
    assert after["keyspace_hits"] == before["keyspace_hits"] + 1  # type: ignore[operator]
    assert after["keyspace_misses"] == before["keyspace_misses"] + 1  # type: ignore[operator]
    assert after["total_commands_processed"] > before["total_commands_processed"]  # type: ignore[operator]


def test_info_memory_rank_indexes(r: redis.Redis) -> None:
    """A rank in the middle of a big sorted set builds its index once; later ranks
    and writes use and keep it."""
    r.delete("lb")
    r.zadd("lb", {f"p{i:05d}": i for i in range(3000)})
    before = info(r, "memory")
    assert r.zrank("lb", "p01500") == 1500
    r.zadd("lb", {"p99999": 1500.5})
    assert r.zrank("lb", "p01600") == 1601
    after = info(r, "memory")
    assert after["zset_rank_index_builds"] == before["zset_rank_index_builds"] + 1  # type: ignore[operator]
    assert after["zset_rank_index_mismatches"] == 0
    assert after["zset_rank_indexes"] >= 1 and after["zset_rank_index_bytes"] > 0  # type: ignore[operator]
    # 3000 members fit the default budget: the set's whole order is kept
    assert after["zset_order_indexes"] >= 1  # type: ignore[operator]
    # the wait for the build is counted (a sum of durations: it moved, whatever its size)
    assert float(after["zset_rank_index_build_seconds"]) > float(  # type: ignore[arg-type]
        before["zset_rank_index_build_seconds"]  # type: ignore[arg-type]
    )


def test_info_persistence_after_save(r: redis.Redis) -> None:
    r.set("k", "v")
    r.save()
    p = info(r, "persistence")
    assert p["checkpoint_last_status"] == "ok" and str(p["checkpoint_last_path"])
    last = r.lastsave()
    assert p["rdb_last_save_time"] == int(last.timestamp())
    assert p["loading"] == 0 and p["aof_enabled"] == 1


def test_commandstats_and_errorstats_move(r: redis.Redis) -> None:
    def calls(name: str) -> int:
        s = info(r, "commandstats").get(f"cmdstat_{name}")
        return int(s["calls"]) if isinstance(s, dict) else 0

    n = calls("incrby")  # redis-py's incr() sends INCRBY
    for _ in range(3):
        r.incr("n")
    assert calls("incrby") == n + 3
    r.set("s", "x")
    errors = info(r, "errorstats").get("errorstat_ERR", {"count": 0})
    with pytest.raises(redis.ResponseError):
        r.incr("s")
    stats = info(r, "commandstats")["cmdstat_incrby"]
    assert isinstance(stats, dict) and stats["failed_calls"] >= 1
    assert info(r, "errorstats")["errorstat_ERR"]["count"] == errors["count"] + 1  # type: ignore[index]
    lat = info(r, "latencystats")
    assert "latency_percentiles_usec_incrby" in lat


def test_config_set_then_get_and_atomic(r: redis.Redis, restore_config: None) -> None:
    r.config_set("hz", 7)
    assert r.config_get("hz") == {"hz": "7"}
    with pytest.raises(redis.ResponseError, match="maxclients"):
        r.execute_command("CONFIG", "SET", "hz", "9", "maxclients", "abc")
    assert r.config_get("hz") == {"hz": "7"}  # nothing of a failed CONFIG SET applies
    got = r.config_get("slowlog*")
    assert set(got) == {"slowlog-log-slower-than", "slowlog-max-len"}


def test_config_resetstat(r: redis.Redis) -> None:
    r.get("x")
    assert info(r, "commandstats")
    r.config_resetstat()
    stats = info(r, "commandstats")
    assert "cmdstat_get" not in stats
    assert info(r, "stats")["keyspace_misses"] == 0


def test_config_rewrite(tmp_path: object) -> None:
    base = str(tmp_path)
    conf = os.path.join(base, "shalekv.conf")
    with open(conf, "w") as f:
        f.write("hz 11\n")
    with shalekv_server(os.path.join(base, "data"), "--config", conf) as sp:
        c = redis.Redis(port=sp.port)
        assert c.info("server")["config_file"] == conf
        c.config_set("slowlog-max-len", "77")
        assert c.config_rewrite()
        c.close()
    with open(conf) as f:
        text = f.read()
    assert "slowlog-max-len 77" in text and "hz 11" in text


def test_config_rewrite_without_file(r: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="without a config file"):
        r.config_rewrite()


def test_client_list_shows_names(server: ServerProcess, r: redis.Redis) -> None:
    with RawClient(server.port) as a:
        a.call("CLIENT", "SETNAME", "alpha")
        my_id = int(a.call("CLIENT", "ID")[1:-2])
        listing = r.client_list()
        mine = [c for c in listing if c["name"] == "alpha"]
        assert len(mine) == 1 and int(mine[0]["id"]) == my_id
        assert mine[0]["cmd"] == "client|id" and mine[0]["flags"] == "N"
        only = r.execute_command("CLIENT", "LIST", "ID", str(my_id))
        assert only.count(b"\n") == 1 and b"name=alpha" in only
        own = r.client_info()
        assert own["cmd"] == "client|info" and own["user"] == "default"
        a.call("MULTI")
        again = [c for c in r.client_list() if c["name"] == "alpha"]
        assert again[0]["flags"] == "x" and again[0]["multi"] == "0"


def test_client_kill_closes(server: ServerProcess, r: redis.Redis) -> None:
    with RawClient(server.port) as a, RawClient(server.port) as b:
        a_id = int(a.call("CLIENT", "ID")[1:-2])
        assert r.execute_command("CLIENT", "KILL", "ID", str(a_id)) == 1
        assert a.read_until_closed() == b""
        b_addr = parse(b.call("CLIENT", "INFO"))
        assert isinstance(b_addr, bytes)
        addr = b_addr.split(b" addr=")[1].split(b" ")[0]
        assert r.execute_command("CLIENT", "KILL", addr) == b"OK"
        assert b.read_until_closed() == b""
    with RawClient(server.port) as me:
        # SKIPME no kills the caller too, after its reply.
        my_id = int(me.call("CLIENT", "ID")[1:-2])
        reply = me.call("CLIENT", "KILL", "ID", str(my_id), "SKIPME", "no")
        assert reply == b":1\r\n"
        assert me.read_until_closed() == b""


def test_pubsub_clients(server: ServerProcess, r: redis.Redis) -> None:
    with RawClient(server.port) as sub:
        sub.call("CLIENT", "SETNAME", "listener")
        sub.call("SUBSCRIBE", "news")
        sub.call("PSUBSCRIBE", "n*")
        stats = info(r, "stats")
        assert stats["pubsub_channels"] >= 1 and stats["pubsub_patterns"] >= 1  # type: ignore[operator]
        listed = r.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
        line = [x for x in listed.split(b"\n") if b"name=listener" in x]
        assert len(line) == 1 and b" flags=P " in line[0] and b" sub=1 psub=1 " in line[0]
        assert b"name=listener" not in r.execute_command("CLIENT", "LIST", "TYPE", "normal")
        assert r.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        assert sub.read_until_closed() == b""


def test_client_pause_write(server: ServerProcess, r: redis.Redis) -> None:
    def set_calls() -> int:
        s = info(r, "commandstats").get("cmdstat_set")
        return int(s["calls"]) if isinstance(s, dict) else 0

    calls = set_calls()
    with RawClient(server.port) as a, RawClient(server.port) as b:
        assert a.call("CLIENT", "PAUSE", "20000", "WRITE") == b"+OK\r\n"
        try:
            assert b.call("GET", "k") == b"$-1\r\n"  # reads go on
            b.send(pack("SET", "k", "v"))
            b.sock.settimeout(0.3)
            with pytest.raises(socket.timeout):  # the write is parked
                b.read_replies(1)
            b.sock.settimeout(10)
        finally:
            assert a.call("CLIENT", "UNPAUSE") == b"+OK\r\n"
        assert b.read_replies(1) == b"+OK\r\n"
        assert b.call("GET", "k") == b"$1\r\nv\r\n"
    assert set_calls() == calls + 1  # the parked call counts once, when it runs


def test_client_pause_write_parks_exec(server: ServerProcess, r: redis.Redis) -> None:
    with RawClient(server.port) as a, RawClient(server.port) as b:
        b.call("MULTI")
        b.call("SET", "k", "1")
        assert a.call("CLIENT", "PAUSE", "20000", "WRITE") == b"+OK\r\n"
        try:
            b.send(pack("EXEC"))
            b.sock.settimeout(0.3)
            with pytest.raises(socket.timeout):  # EXEC of a writing transaction waits
                b.read_replies(1)
            b.sock.settimeout(10)
            with RawClient(server.port) as c:  # a read-only transaction does not
                c.call("MULTI")
                c.call("GET", "k")
                assert c.call("EXEC") == b"*1\r\n$-1\r\n"
        finally:
            a.call("CLIENT", "UNPAUSE")
        assert b.read_replies(1) == b"*1\r\n+OK\r\n"


def test_client_pause_all_ends_by_itself(server: ServerProcess) -> None:
    with RawClient(server.port) as a, RawClient(server.port) as b:
        assert a.call("CLIENT", "PAUSE", "300", "ALL") == b"+OK\r\n"
        assert b.call("PING") == b"+PONG\r\n"  # answered once the pause is over


def test_slowlog_records_name_and_addr(server: ServerProcess, restore_config: None) -> None:
    with RawClient(server.port) as c:
        c.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        c.call("SLOWLOG", "RESET")
        c.call("CLIENT", "SETNAME", "slowpoke")
        c.call("AUTH", "secret-pw")  # fails; the password must not be logged
        entries = parse(c.call("SLOWLOG", "GET", "-1"))
        assert isinstance(entries, list)
        auth = [e for e in entries if e[3][0] == b"AUTH"]
        assert auth and auth[0][3] == [b"AUTH", b"(redacted)"]
        assert auth[0][5] == b"slowpoke" and auth[0][4].startswith(b"127.0.0.1:")
        c.call("CONFIG", "SET", "slowlog-max-len", "2")
        assert c.call("SLOWLOG", "LEN") == b":2\r\n"


def test_latency_monitor(r: redis.Redis, restore_config: None) -> None:
    r.execute_command("LATENCY", "RESET")
    r.config_set("latency-monitor-threshold", 1)
    # Far more than a millisecond of work in any Python server.
    r.mset({f"k{i}": "v" for i in range(20000)})
    latest = r.execute_command("LATENCY", "LATEST")
    events = {e[0]: e for e in latest}
    assert b"command" in events and events[b"command"][2] >= 1
    history = r.execute_command("LATENCY", "HISTORY", "command")
    assert history and all(len(h) == 2 for h in history)
    assert r.execute_command("LATENCY", "RESET") == 1
    assert r.execute_command("LATENCY", "LATEST") == []


def test_latency_histogram(server: ServerProcess, r: redis.Redis) -> None:
    r.config_resetstat()
    for _ in range(3):
        r.ping()
    with RawClient(server.port) as c:
        reply = parse(c.call("LATENCY", "HISTOGRAM", "ping", "nope"))
        assert isinstance(reply, list) and reply[0] == b"ping"
        entry = dict(zip(reply[1][::2], reply[1][1::2], strict=True))
        assert entry[b"calls"] == 3
        cdf = entry[b"histogram_usec"]
        bounds, counts = cdf[::2], cdf[1::2]
        assert counts == sorted(counts) and counts[-1] == 3
        assert all(b & (b - 1) == 0 for b in bounds)  # powers of two, as Redis's


def test_command_docs_and_filters(server: ServerProcess) -> None:
    with RawClient(server.port) as c:  # redis-py would parse these as COMMAND's reply

        def call(*args: str) -> list[Any]:
            reply = parse(c.call(*args))
            assert isinstance(reply, list)
            return reply

        docs = call("COMMAND", "DOCS", "get", "client")
        flat = dict(zip(docs[::2], docs[1::2], strict=True))
        assert set(flat) == {b"get", b"client"}
        get = dict(zip(flat[b"get"][::2], flat[b"get"][1::2], strict=True))
        assert get[b"group"] == b"string" and get[b"arity"] == 2 and b"summary" in get
        client = dict(zip(flat[b"client"][::2], flat[b"client"][1::2], strict=True))
        assert client[b"group"] == b"connection" and b"subcommands" in client
        strings = call("COMMAND", "LIST", "FILTERBY", "ACLCAT", "string")
        assert b"get" in strings and b"lpush" not in strings
        clients = call("COMMAND", "LIST", "FILTERBY", "PATTERN", "client*")
        assert b"client|kill" in clients and b"get" not in clients
        assert call("COMMAND", "LIST", "FILTERBY", "MODULE", "x") == []
        assert len(call("COMMAND")) == int(c.call("COMMAND", "COUNT")[1:])


def test_object_freq_with_lfu(r: redis.Redis, restore_config: None) -> None:
    r.set("k", "v")
    r.config_set("maxmemory-policy", "allkeys-lfu")
    assert r.object("freq", "k") == 0
    assert r.object("idletime", "missing") is None


def test_geo_reads_count_one_keyspace_lookup(r: redis.Redis) -> None:
    """Each GEO read counts one hit or miss, as Redis's single lookupKeyRead (checked
    against redis-server 7.0: 1/0 for each below on a set, 0/1 on a missing key)."""
    r.geoadd("g", [13.36, 38.11, "a", 15.08, 37.5, "b"])
    for cmd, hit in [
        (("GEOPOS", "g", "a", "b"), 1),
        (("GEOHASH", "g", "a"), 1),
        (("GEODIST", "g", "a", "b"), 1),
        (("GEOSEARCH", "g", "FROMMEMBER", "a", "BYRADIUS", 300, "km"), 1),
        (("GEOPOS", "nope", "a"), 0),
        (("GEOSEARCH", "nope", "FROMMEMBER", "a", "BYRADIUS", 300, "km"), 0),
    ]:
        before = info(r, "stats")
        r.execute_command(*cmd)
        after = info(r, "stats")
        got = (
            after["keyspace_hits"] - before["keyspace_hits"],  # type: ignore[operator]
            after["keyspace_misses"] - before["keyspace_misses"],  # type: ignore[operator]
        )
        assert got == (hit, 1 - hit), (cmd, got)
