"""`shalekv import` / `shalekv export` (shalekv/backup/transfer*.py, shalekv/cli/transfer.py)
against a real redis-server: 100k keys of all five types (binary and empty strings,
infinite scores, TTLs, 50k-element collections) arrive in a ShaleKV DB directory and in
a ShaleKV server exactly as Redis holds them; a dump file round-trips; a damaged dump
writes nothing; an interrupted import resumes to the full data set."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

import shalekv
from shalekv.backup.transfer_client import TMP_SUFFIX, ClientSource, ClientTarget, _scored
from shalekv.backup.transfer_conn import as_conn
from shalekv.backup.transfer_record import Entry, KeyType
from shalekv.cli.main import app
from tests.redis_server import redis_server
from tests.shalekv_server import shalekv_server

runner = CliRunner()
N_KEYS = 100_000
BIG = 50_000
N_SMALL_DB = 20_000  # db 1: the resume and dump-damage tests
N_DUMP_DB = 5_000  # db 2: the dump round trip (plus values of several dump frames)
HOUR_MS = 3_600_000

Snapshot = dict[bytes, tuple[str, int | None, Any]]


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def load(r: redis.Redis, n: int, seed: int, big: bool) -> None:
    """n keys of mixed types into r's database (deterministic for a seed); big: with
    50k-element collections of each type, a 3 MiB string and the empty key."""
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    p = r.pipeline(transaction=False)
    specials = [-math.inf, math.inf, 0.0, -0.0, 1e-300, -2.5, 1 / 3, 2**53 + 1.0]
    count = 0
    if big:
        p.rpush(b"big:list", *(b"e%d" % i for i in range(BIG)))
        p.hset(b"big:hash", mapping={b"f%d" % i: rnd.randbytes(8) for i in range(BIG)})
        p.sadd(b"big:set", *(b"m%d" % i for i in range(BIG)))
        p.zadd(b"big:zset", {b"m%d" % i: rnd.uniform(-1e6, 1e6) for i in range(BIG)})
        p.pexpireat(b"big:zset", now + 2 * HOUR_MS)
        p.set(b"big:string", rnd.randbytes(3 << 20))  # more than one dump frame
        p.set(b"", b"the empty key")
        count = 6
    for i in range(count, n):
        kind = i % 10
        key = b"k:%d:" % i + (rnd.randbytes(3) if i % 7 == 0 else b"")
        if kind < 3:
            p.set(key, b"" if i % 50 == 0 else rnd.randbytes(rnd.randrange(0, 60)))
        elif kind < 5:
            p.rpush(key, *(rnd.randbytes(rnd.randrange(0, 9)) for _ in range(rnd.randrange(1, 9))))
        elif kind < 7:
            p.hset(key, mapping={b"f%d" % j: rnd.randbytes(5) for j in range(rnd.randrange(1, 7))})
        elif kind < 8:
            p.sadd(key, *(rnd.randbytes(4) for _ in range(rnd.randrange(1, 7))))
        else:
            p.zadd(key, {b"z%d" % j: rnd.choice(specials) for j in range(rnd.randrange(1, 6))})
        if i % 9 == 0:
            p.pexpireat(key, now + HOUR_MS + rnd.randrange(HOUR_MS))
        if len(p) >= 10_000:
            p.execute()
    p.execute()
    assert r.dbsize() == n


_FULL_READ: dict[str, tuple[str, tuple[Any, ...]]] = {
    "string": ("get", ()),
    "list": ("lrange", (0, -1)),
    "hash": ("hgetall", ()),
    "set": ("smembers", ()),
    "zset": ("zrange", (0, -1, False, True)),  # withscores
}


def snapshot(c: Any) -> Snapshot:
    """Every key's type, PEXPIRETIME and whole value, read with plain commands (an
    oracle independent of the importer's chunked reads). c: redis-py or embedded."""
    out: Snapshot = {}
    keys = list(c.scan_iter(count=2000))
    for i in range(0, len(keys), 2000):
        batch = keys[i : i + 2000]
        p = c.pipeline(transaction=False)
        for k in batch:
            p.type(k)
            p.pexpiretime(k)
        meta = p.execute()
        types = [t.decode() if isinstance(t, bytes) else t for t in meta[0::2]]
        p = c.pipeline(transaction=False)
        for k, t in zip(batch, types, strict=True):
            name, args = _FULL_READ[t]
            getattr(p, name)(k, *args)
        values = p.execute()
        for k, t, exp, v in zip(batch, types, meta[1::2], values, strict=True):
            if t == "zset":
                v = [(m, float(s)) for m, s in v]
            out[k] = (t, None if exp == -1 else exp, v)
    return out


def assert_same(got: Snapshot, want: Snapshot) -> None:
    assert len(got) == len(want)
    assert got.keys() == want.keys()
    bad = [k for k in want if got[k] != want[k]]
    assert not bad, [(k, got[k], want[k]) for k in bad[:3]]


def load_multiframe(r: redis.Redis, n: int, seed: int) -> None:
    """n small keys plus values that take several dump frames (over 1 MiB each)."""
    load(r, n, seed, big=False)
    rnd = random.Random(seed)
    r.rpush(b"mf:list", *(rnd.randbytes(30) for _ in range(50_000)))
    r.hset(b"mf:hash", mapping={rnd.randbytes(20): rnd.randbytes(40) for _ in range(20_000)})
    r.set(b"mf:string", rnd.randbytes(2_500_000))
    r.pexpireat(b"mf:list", int(time.time() * 1000) + HOUR_MS)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Iterator[tuple[int, Snapshot, Snapshot, Snapshot]]:
    """A redis-server with 100k keys in db 0, 20k in db 1, 5k and three values of
    several dump frames in db 2; and their snapshots."""
    tmp = tmp_path_factory.mktemp("redis")
    with redis_server(str(tmp)) as port:
        rs = [redis.Redis(port=port, db=i) for i in range(3)]
        load(rs[0], N_KEYS, seed=1, big=True)
        load(rs[1], N_SMALL_DB, seed=2, big=False)
        load_multiframe(rs[2], N_DUMP_DB, seed=3)
        yield port, snapshot(rs[0]), snapshot(rs[1]), snapshot(rs[2])
        for r in rs:
            r.close()


@pytest.fixture(scope="module")
def imported_dir(source, tmp_path_factory) -> tuple[str, Any, dict[str, Any]]:
    port, *_ = source
    d = str(tmp_path_factory.mktemp("imp") / "db")
    res = cli("import", f"redis://127.0.0.1:{port}/0", "--dir", d, "--json")
    return d, res, json.loads(res.stdout) if res.exit_code == 0 else {}


def dir_snapshot(path: str, db: int = 0) -> Snapshot:
    with shalekv.open(path, db=db, active_expiry=False) as c:
        return raw_snapshot(c)


# ------------------------------------------------------------------ the 100k import


def test_import_redis_into_dir(source, imported_dir):
    _, want, *_ = source
    d, res, summary = imported_dir
    assert res.exit_code == 0, res.output
    assert summary["keys"] == N_KEYS
    assert summary["skipped_existing"] == summary["changed_during_read"] == 0
    assert summary["bytes"] > (3 << 20) + 4 * BIG * 8
    assert_same(dir_snapshot(d), want)
    # the types and TTLs the test means to cover are in the data set
    kinds = {t for t, _, _ in want.values()}
    assert kinds == {"string", "list", "hash", "set", "zset"}
    assert sum(1 for _, e, _ in want.values() if e is not None) > N_KEYS // 10
    assert want[b"big:zset"][1] is not None and len(want[b"big:hash"][2]) == BIG
    scores = {s for t, _, v in want.values() if t == "zset" for _, s in v}
    assert math.inf in scores and -math.inf in scores
    assert (b"") in want and any(v == b"" for t, _, v in want.values() if t == "string")


def test_import_redis_into_shalekv_server(source, tmp_path):
    port, want, *_ = source
    with shalekv_server(str(tmp_path / "srv")) as sp:
        res = cli(
            "import", f"redis://127.0.0.1:{port}", "--server", f"127.0.0.1:{sp.port}",
            "--state", str(tmp_path / "state.json"), "--json",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["keys"] == N_KEYS
        c = redis.Redis(port=sp.port)
        try:
            assert_same(raw_snapshot(c), want)
            assert not c.exists(b"big:list" + TMP_SUFFIX)
        finally:
            c.close()
    assert json.loads((tmp_path / "state.json").read_text())["done"] is True


def test_dump_round_trip_dir_file_dir(source, tmp_path):
    """redis -> dir -> dump file -> dir: equal, including values of several frames."""
    port, _, _, want2 = source
    d = str(tmp_path / "db")
    assert cli("import", f"redis://127.0.0.1:{port}/2", "--dir", d, "--db", "0").exit_code == 0
    out = str(tmp_path / "all.dump")
    res = cli("export", "--dir", d, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    exported = json.loads(res.stdout)
    assert exported["keys"] == N_DUMP_DB + 3 and exported["file_bytes"] == os.path.getsize(out)
    assert not os.path.exists(out + ".tmp")
    d2 = str(tmp_path / "db2")
    res = cli("import", out, "--dir", d2, "--db", "2", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["keys"] == N_DUMP_DB + 3
    assert_same(dir_snapshot(d2, db=2), want2)
    # an existing --out is not overwritten without --force
    assert cli("export", "--dir", d, "--out", out).exit_code == 2
    assert cli("export", "--dir", d, "--out", out, "--force").exit_code == 0


# ------------------------------------------------------------------ restart


def test_resume_after_stop(source, tmp_path):
    port, _, want1, _ = source
    d = str(tmp_path / "db")
    url = f"redis://127.0.0.1:{port}/1"
    res = cli("import", url, "--dir", d, "--chunk", "500", "--stop-after", "6000")
    assert res.exit_code == 3, res.output
    state_path = str(tmp_path / "db.import-state-1.json")
    state = json.loads(open(state_path).read())
    assert state["cursor"] != 0 and 6000 <= state["keys"] < N_SMALL_DB and not state["done"]
    with shalekv.open(d, db=1) as c:
        assert c.dbsize() == state["keys"]  # nothing half written, nothing lost
    res = cli("import", url, "--dir", d, "--chunk", "500", "--resume", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["resumed_from"] == state["keys"]
    assert summary["keys"] + state["keys"] >= N_SMALL_DB  # keys in flight written twice
    assert_same(dir_snapshot(d, db=1), want1)
    # a completed import resumes to nothing; another source is refused
    assert cli("import", url, "--dir", d, "--resume").exit_code == 0
    other = cli("import", f"redis://127.0.0.1:{port}/0", "--dir", d, "--db", "1", "--resume")
    assert other.exit_code == 2 and "not" in other.stderr


def test_resume_after_kill(source, tmp_path, python_exe):
    port, _, want1, _ = source
    d = str(tmp_path / "db")
    state_path = tmp_path / "st.json"
    args = [
        python_exe, "-m", "shalekv.cli.main", "import", f"redis://127.0.0.1:{port}/1",
        "--dir", d, "--chunk", "200", "--state", str(state_path),
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if state_path.exists() and json.loads(state_path.read_text())["keys"] >= 2000:
                break
            time.sleep(0.005)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert killed, "the import finished before it could be killed"
    state = json.loads(state_path.read_text())
    assert not state["done"] and state["keys"] >= 2000
    p = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert_same(dir_snapshot(d, db=1), want1)


# ------------------------------------------------------------------ damage and usage


def test_damaged_dump_is_refused_whole(source, tmp_path):
    port, *_ = source
    out = str(tmp_path / "db1.dump")
    res = cli("export", f"redis://127.0.0.1:{port}/1", "--out", out)
    assert res.exit_code == 0, res.output
    data = open(out, "rb").read()
    cases = {
        "flipped": data[: len(data) // 2]
        + bytes([data[len(data) // 2] ^ 0x40])
        + data[len(data) // 2 + 1 :],
        "truncated": data[: len(data) - 30],
    }
    for name, bad in cases.items():
        path = str(tmp_path / f"{name}.dump")
        with open(path, "wb") as f:
            f.write(bad)
        target = str(tmp_path / f"db-{name}")
        res = cli("import", path, "--dir", target)
        assert res.exit_code == 1, (name, res.output)
        assert path in res.stderr and "offset" in res.stderr
        assert not os.path.exists(target)  # verified before the target was touched
    # the intact file passes the same check
    res = cli("import", out, "--dir", str(tmp_path / "ok"), "--stop-after", "1")
    assert res.exit_code == 3, res.output


def test_usage_errors(tmp_path, source):
    port, *_ = source
    url = f"redis://127.0.0.1:{port}/1"
    assert cli("import", url).exit_code == 2  # no target
    assert cli("import", url, "--dir", "a", "--server", "b:1").exit_code == 2
    assert cli("import", str(tmp_path / "none.dump"), "--dir", str(tmp_path / "d")).exit_code == 2
    res = cli("import", url, "--dir", str(tmp_path / "d"), "--resume")
    assert res.exit_code == 2 and "no import state" in res.stderr
    assert cli("import", url, "--server", "nonsense").exit_code == 2
    assert cli("export", "--dir", str(tmp_path / "missing"), "--out", "x").exit_code == 2
    assert cli("export", "--dir", str(tmp_path)).exit_code == 2  # no --out
    for cmd in ("import", "export"):  # help texts render (no stray rich markup)
        res = cli(cmd, "--help")
        assert res.exit_code == 0 and "--server" in res.stdout


# ------------------------------------------------------------------ writer rules


def _entries() -> list[tuple[bytes, KeyType, list[Any]]]:
    return [
        (b"L", KeyType.LIST, [b"e%d" % i for i in range(3000)]),
        (b"H", KeyType.HASH, [(b"f%d" % i, b"v%d" % i) for i in range(3000)]),
        (b"S", KeyType.SET, [b"m%d" % i for i in range(3000)]),
        (b"Z", KeyType.ZSET, [(b"m%d" % i, float(i) - 0.5) for i in range(3000)]),
        (b"T", KeyType.STRING, [b"x" * 700 for _ in range(10)]),
    ]


def _chunked(items: list[Any], n: int = 250) -> Iterator[list[Any]]:
    return iter([items[i : i + n] for i in range(0, len(items), n)])


def test_large_keys_go_through_a_temporary_name(tmp_path):
    """Above atomic_bytes a key is built under key+TMP_SUFFIX and RENAMEd: TTL kept,
    the old value replaced (or kept with replace=False), no temporary key left."""
    exp = int(time.time() * 1000) + HOUR_MS
    with shalekv.open(str(tmp_path / "db"), active_expiry=False) as c:
        c.rpush(b"L", b"old")
        c.set(b"H", b"old")
        t = ClientTarget(c, replace=True, atomic_bytes=1000)
        for k, kind, items in _entries():
            t.write(Entry(k, kind, exp, _chunked(items)))
        t.finish()
        assert t.written == 5
        assert c.lrange(b"L", 0, -1) == [b"e%d" % i for i in range(3000)]
        assert c.hgetall(b"H") == {b"f%d" % i: b"v%d" % i for i in range(3000)}
        assert c.scard(b"S") == 3000 and c.zscore(b"Z", b"m7") == 6.5
        assert c.get(b"T") == b"x" * 7000
        assert all(c.pexpiretime(k) == exp for k in (b"L", b"H", b"S", b"Z", b"T"))
        assert not any(k.endswith(TMP_SUFFIX) for k in c.scan_iter())
        keep = ClientTarget(c, replace=False, atomic_bytes=1000)
        keep.write(Entry(b"L", KeyType.LIST, None, _chunked([b"new"] * 2000)))
        keep.write(Entry(b"new", KeyType.LIST, None, _chunked([b"n"] * 2000)))
        keep.finish()
        assert (keep.written, keep.existing) == (1, 1)
        assert c.lindex(b"L", 0) == b"e0" and c.llen(b"new") == 2000


def test_expired_keys_are_skipped_and_no_replace_keeps_existing(tmp_path):
    with shalekv.open(str(tmp_path / "db"), active_expiry=False) as c:
        c.set(b"a", b"mine")
        t = ClientTarget(c, replace=False)
        t.write(Entry(b"a", KeyType.STRING, None, iter([[b"theirs"]])))
        t.write(Entry(b"b", KeyType.STRING, None, iter([[b"theirs"]])))
        t.write(Entry(b"gone", KeyType.SET, int(time.time() * 1000) - 1, iter([[b"x"]])))
        t.finish()
        assert (t.written, t.existing, t.expired) == (1, 1, 1)
        assert c.get(b"a") == b"mine" and c.get(b"b") == b"theirs" and not c.exists(b"gone")


def test_source_reads_collections_in_chunks(tmp_path):
    """Chunked reads (LRANGE/HSCAN/SSCAN/ZRANGE pages) reassemble every element, in
    order for lists and sorted sets, from an embedded store."""
    with shalekv.open(str(tmp_path / "db"), active_expiry=False) as c:
        for k, kind, items in _entries():
            t = ClientTarget(c)
            t.write(Entry(k, kind, None, _chunked(items)))
            t.finish()
        src = ClientSource(c, chunk=128, scan_count=2)
        got = {}
        for batch in src.batches():
            for e in batch:
                chunks = list(e.chunks)
                assert all(len(ch) <= 128 for ch in chunks if e.type is not KeyType.STRING)
                got[e.key] = [x for ch in chunks for x in ch]
        for k, kind, items in _entries():
            if kind is KeyType.STRING:
                assert b"".join(got[k]) == b"".join(items)
            elif kind in (KeyType.LIST, KeyType.ZSET):
                want = (
                    sorted(items, key=lambda ms: (ms[1], ms[0])) if kind is KeyType.ZSET else items
                )
                assert got[k] == want
            else:
                assert sorted(got[k]) == sorted(items)


def raw_snapshot(c: Any) -> Snapshot:
    """snapshot() through the raw command batches of transfer_conn (faster); used for
    targets only, so the expected side never shares code with the importer."""
    conn = as_conn(c)
    out: Snapshot = {}
    keys: list[bytes] = []
    cursor = b"0"
    while True:
        cursor, got = conn.run([[b"SCAN", cursor, b"COUNT", b"2000"]])[0]
        keys.extend(got)
        if int(cursor) == 0:
            break
    full = {
        "string": lambda k: [b"GET", k],
        "list": lambda k: [b"LRANGE", k, b"0", b"-1"],
        "hash": lambda k: [b"HGETALL", k],
        "set": lambda k: [b"SMEMBERS", k],
        "zset": lambda k: [b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"],
    }
    for i in range(0, len(keys), 2000):
        batch = keys[i : i + 2000]
        meta = conn.run([[cmd, k] for k in batch for cmd in (b"TYPE", b"PEXPIRETIME")])
        types = [bytes(t).decode() for t in meta[0::2]]
        values = conn.run([full[t](k) for k, t in zip(batch, types, strict=True)])
        for k, t, exp, v in zip(batch, types, meta[1::2], values, strict=True):
            if t == "hash":
                v = dict(v) if isinstance(v, dict) else dict(zip(v[0::2], v[1::2], strict=True))
            elif t == "set":
                v = set(v)
            elif t == "zset":
                v = _scored(v)
            out[k] = (t, None if exp == -1 else exp, v)
    return out


def test_shalekv_server_as_source(source, tmp_path):
    """A ShaleKV server is read like Redis (its own SCAN/HSCAN cursors, PEXPIRETIME):
    redis db 2 -> ShaleKV server -> DB directory, equal to Redis."""
    port, _, _, want2 = source
    with shalekv_server(str(tmp_path / "srv")) as sp:
        res = cli(
            "import", f"redis://127.0.0.1:{port}/2", "--server", f"127.0.0.1:{sp.port}",
            "--db", "0", "--state", str(tmp_path / "s1.json"), "--chunk", "300",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        busy = cli("import", f"redis://127.0.0.1:{port}/2", "--dir", str(tmp_path / "srv"))
        assert busy.exit_code == 2  # the server holds the directory's LOCK
        d = str(tmp_path / "db")
        res = cli(
            "import", f"redis://127.0.0.1:{sp.port}/0", "--dir", d, "--chunk", "300", "--json"
        )
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["keys"] == N_DUMP_DB + 3
    assert_same(dir_snapshot(d), want2)


class _NoPexpiretime:
    """A Conn for a server without PEXPIRETIME (Redis < 7.0)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def run(self, cmds: list[list[bytes]], atomic: bool = False) -> list[Any]:
        out = self.inner.run(
            [[b"ECHO", b"x"] if c[0] == b"PEXPIRETIME" else c for c in cmds], atomic
        )
        return [
            redis.ResponseError("unknown command 'PEXPIRETIME'") if c[0] == b"PEXPIRETIME" else r
            for c, r in zip(cmds, out, strict=True)
        ]


def test_ttl_from_pttl_when_pexpiretime_is_missing(tmp_path, monkeypatch):
    from shalekv.backup import transfer_client

    exp = int(time.time() * 1000) + HOUR_MS
    with shalekv.open(str(tmp_path / "src"), active_expiry=False) as c:
        c.set(b"a", b"1")
        c.pexpireat(b"a", exp)
        c.rpush(b"b", b"x")
        monkeypatch.setattr(transfer_client, "as_conn", lambda cl: _NoPexpiretime(as_conn(cl)))
        src = ClientSource(c)
        got = {e.key: (e.expire_at_ms, list(e.chunks)) for b in src.batches() for e in b}
    assert src._expire_cmd == b"PTTL"
    assert got[b"b"] == (None, [[b"x"]])
    assert abs(got[b"a"][0] - exp) <= 1000  # now + PTTL: off by the time between
