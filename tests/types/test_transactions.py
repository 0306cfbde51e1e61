"""Pipelines, MULTI/EXEC atomicity, WATCH, and sharing one store between threads."""

from __future__ import annotations

import threading
import time

import pytest
import redis

import shalekv
import shalekv.embedded
import shalekv.errors
from shalekv.types.keyspace import Txn
from tests.types.differential import Pair


@pytest.fixture
def db(tmp_path):
    d = shalekv.open(tmp_path, compaction_workers=0)
    yield d
    d.close()


def test_pipeline_results_match_redis(pair: Pair) -> None:
    results = []
    for client in (pair.shale, pair.real):
        with client.pipeline(transaction=True) as p:
            p.set("a", 1).incr("a").get("a").incrby("a", "x").mget("a", "b")
            try:
                p.execute()
            except redis.ResponseError as e:
                results.append(str(e))
        with client.pipeline(transaction=True) as p:
            p.set("a", 1).incr("a").get("a").incrby("a", "x").mget("a", "b")
            results.append(p.execute(raise_on_error=False))
    ours, theirs = results[:2], results[2:]
    assert ours[0] == theirs[0]
    assert [str(x) if isinstance(x, Exception) else x for x in ours[1]] == [
        str(x) if isinstance(x, Exception) else x for x in theirs[1]
    ]


def test_queue_time_error_discards_the_transaction(pair: Pair) -> None:
    for client in (pair.shale, pair.real):
        with client.pipeline(transaction=True) as p:
            p.set("q", 1)
            p.execute_command("GET")  # wrong arity: Redis refuses it while queuing
            with pytest.raises(redis.ResponseError) as e:
                p.execute()
            assert "wrong number of arguments for 'get' command" in str(e.value)
    pair.same("exists", "q")


def test_transaction_is_one_atomic_batch(db, tmp_path) -> None:
    with db.pipeline(transaction=True) as p:
        for i in range(50):
            p.set(f"k{i}", i)
        p.execute()
    assert db.mget("k0", "k49") == [b"0", b"49"]
    # A transaction's writes are one WAL record: nothing of it is visible before execute.
    p = db.pipeline(transaction=True)
    p.set("late", 1)
    assert db.get("late") is None
    p.execute()
    assert db.get("late") == b"1"


def test_failed_commit_leaves_key_counts_as_on_disk(db, monkeypatch) -> None:
    """A transaction whose write fails changes nothing, the key counts (DBSIZE) in
    memory included; and a batch refused before the counts were touched does not
    take them back either."""
    db.set("a", 1)
    engine = db._store.engine

    def fail(batch: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine, "write", fail)
    with pytest.raises(OSError):
        db.mset({"b": 1, "c": 2})
    monkeypatch.undo()
    assert db.dbsize() == 1
    store = db._store
    with store.lock:
        t = Txn(store)
        t.set_meta(0, b"c", b"\0\0" + bytes(8) + b"x", None)  # a new key: counts +1
        t.put(b"junk", "not bytes")  # type: ignore[arg-type]  # refused at commit
        with pytest.raises(shalekv.errors.InvalidArgumentError):
            t.commit()
    assert db.dbsize() == 1
    db.set("d", 1)
    assert db.dbsize() == 2


def test_watch_aborts_on_change_from_another_client(db) -> None:
    other = shalekv.embedded.ShaleKV(None, _store=db._store)  # a second client, same store
    db.set("w", 1)
    with db.pipeline() as p:
        p.watch("w")
        assert p.get("w") == b"1"  # immediate mode after WATCH
        other.incr("w")
        p.multi()
        p.set("w", 100)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert db.get("w") == b"2"
    with db.pipeline() as p:
        p.watch("w")
        p.multi()
        p.set("w", 100)
        assert p.execute() == [True]
    assert db.get("w") == b"100"


def test_watched_key_expiring_fails_the_transaction(db) -> None:
    """As Redis 7.0 (and the server): a key alive at watch() that expires before
    execute() fails it, flushed or not; one already expired at watch() whose expiry
    deletes it (lazily, here) is no change."""
    other = shalekv.embedded.ShaleKV(None, _store=db._store)
    for flush in (False, True):
        db.set("k", 1, px=30)
        p = db.pipeline()
        p.watch("k")
        time.sleep(0.05)
        if flush:
            other.flushdb()
        p.multi()
        p.ping()
        with pytest.raises(redis.WatchError):
            p.execute()
    db.set("k", 1, px=1)
    time.sleep(0.01)
    p = db.pipeline()
    p.watch("k")
    assert other.get("k") is None  # lazy expiry deletes it
    p.multi()
    p.set("x", 1)
    assert p.execute() == [True]


def test_watch_unchanged_and_unrelated_keys(db) -> None:
    db.set("w", 1)
    with db.pipeline() as p:
        p.watch("w")
        db.set("unrelated", 1)
        p.multi()
        p.incr("w")
        assert p.execute() == [2]
    assert db._store.watchers == {}  # reset() forgets the watch


def test_transaction_helper_retries(db) -> None:
    db.set("ctr", 0)
    calls = []

    def bump(pipe) -> None:
        v = int(pipe.get("ctr"))
        if not calls:
            db.set("ctr", 10)  # a concurrent change: the first attempt must retry
        calls.append(v)
        pipe.multi()
        pipe.set("ctr", v + 1)

    db.transaction(bump, "ctr")
    assert calls == [0, 10]
    assert db.get("ctr") == b"11"


def test_threads_share_one_store(db) -> None:
    n_threads, n = 8, 300

    def work(t: int) -> None:
        for i in range(n):
            db.incr("shared")
            db.set(f"t{t}:{i}", i)
            with db.pipeline(transaction=True) as p:
                p.incr("pa").incr("pb")
                p.execute()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.get("shared") == str(n_threads * n).encode()
    assert db.get("pa") == db.get("pb") == str(n_threads * n).encode()
    assert db.dbsize() == n_threads * n + 3


def test_pipeline_without_transaction_and_decode(tmp_path) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0, decode_responses=True)
    p = db.pipeline(transaction=False)
    p.set("a", "x").get("a").append("a", "y").get("a")
    assert p.execute() == [True, "x", 2, "xy"]
    assert db.mget("a", "b") == ["xy", None]
    db.close()


def test_select_databases_are_separate(db) -> None:
    db.set("k", "zero")
    one = shalekv.embedded.ShaleKV(None, _store=db._store, db=1)
    assert one.get("k") is None
    one.set("k", "one")
    assert db.get("k") == b"zero"
    one.flushdb()
    assert db.get("k") == b"zero" and one.dbsize() == 0
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        shalekv.embedded.ShaleKV(None, _store=db._store, db=16)
    db.flushall()
    assert db.dbsize() == 0


def test_execute_command_direct_and_general_paths(db) -> None:
    """redis-py's upper-case names take the direct path, other spellings dispatch; both
    give the same replies, arity errors and reply callbacks."""
    db.rpush("l", "a", "b")
    assert db.execute_command("LLEN", "l") == db.execute_command("llen", "l") == 2
    assert db.execute_command("LRANGE", "l", 0, -1) == db.execute_command("lrange", b"l", 0, -1)
    for name in ("GET", "get"):
        with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get'"):
            db.execute_command(name)
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCH'"):
        db.execute_command("NOSUCH", "x")
    # a callback set on the client applies on both paths; redis-py's keys= hint is
    # dropped before it
    db.response_callbacks["LLEN"] = lambda r, **kw: ("len", r, kw)
    assert db.llen("l") == ("len", 2, {})
    assert db.execute_command("llen", "l") == ("len", 2, {})
    with pytest.raises(redis.DataError):
        db.execute_command("SET", "k", True)  # redis-py's Encoder rejects bools
    assert db.execute_command("SET", "k", 1.5) is True and db.get("k") == b"1.5"
    # several words: split and dispatched; no callback is named "LLEN l" (as redis-py)
    assert db.execute_command("LLEN l") == 2


def test_get_fast_path_key_types(db) -> None:
    """GET's lock-free path encodes keys as redis-py's Encoder does."""
    db.set("5", "five")
    db.set("1.5", "float")
    db.set("é", "accent")
    assert db.get(5) == db.get(b"5") == db.get("5") == db.get(memoryview(b"5")) == b"five"
    assert db.get(1.5) == b"float"
    assert db.get("é") == db.get("é".encode()) == b"accent"
    with pytest.raises(redis.DataError):
        db.get(True)
