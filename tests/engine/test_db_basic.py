"""Engine API basics: put/get/delete/ranges/batches/snapshots across flush and reopen."""

from __future__ import annotations

import os

import pytest

from shalekv.engine import DB, WriteBatch
from shalekv.errors import ClosedError, InvalidArgumentError, LockError


def k(i: int) -> bytes:
    return b"key%06d" % i


@pytest.fixture(params=[0, 1], ids=["inline-jobs", "worker-process"])
def workers(request):
    return request.param


def test_put_get_delete_across_flush_and_reopen(db_path, workers):
    with DB.open(db_path, compaction_workers=workers, memtable_size=64 << 10) as db:
        for i in range(3000):
            db.put(k(i), b"v%d" % i)
        for i in range(0, 3000, 3):
            db.delete(k(i))
        assert db.get(k(1)) == b"v1"
        assert db.get(k(3)) is None
        db.flush()
        assert db.get(k(2)) == b"v2"
        assert db.get(k(3)) is None
        assert db.stats()["flushes"] >= 1
    with DB.open(db_path, compaction_workers=workers) as db:
        assert db.get(k(2)) == b"v2"
        assert db.get(k(0)) is None
        assert sum(1 for _ in db.items()) == 2000


def test_items_bounds_and_reverse(db_path):
    with DB.open(db_path, compaction_workers=0) as db:
        for i in range(100):
            db.put(k(i), b"%d" % i)
        db.flush()
        for i in range(50, 150):
            db.put(k(i), b"new%d" % i)
        got = list(db.items(k(40), k(60)))
        assert [key for key, _ in got] == [k(i) for i in range(40, 60)]
        assert got[-1][1] == b"new59"
        rev = list(db.items(k(40), k(60), reverse=True))
        assert rev == list(reversed(got))
        assert list(db.items(k(200))) == []
        assert [key for key, _ in db.items(upper=k(3))] == [k(0), k(1), k(2)]


def test_write_batch_and_delete_range(db_path):
    with DB.open(db_path, compaction_workers=0) as db:
        b = WriteBatch()
        for i in range(10):
            b.put(k(i), b"x")
        b.delete(k(3))
        db.write(b)
        assert db.get(k(3)) is None
        db.delete_range(k(5), k(8))
        assert [key for key, _ in db.items()] == [k(i) for i in (0, 1, 2, 4, 8, 9)]
        db.flush()
        db.put(k(6), b"back")
        assert db.get(k(6)) == b"back"
        db.compact()
        assert [key for key, _ in db.items()] == [k(i) for i in (0, 1, 2, 4, 6, 8, 9)]
        with pytest.raises(InvalidArgumentError):
            db.delete_range(k(5), k(5))


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_write_items_as_a_batch_across_reopen(db_path, fsync):
    """DB.write_items (a transaction's {key: value or None}) writes the same WAL record
    as write(): replayed on reopen; fsync=always takes the group-commit queue; a live
    snapshot keeps the versions it overwrote; a large value stays whole."""
    big = b"L" * 5000
    with DB.open(db_path, compaction_workers=0, fsync=fsync) as db:
        db.write_items({k(i): b"v%d" % i for i in range(5)})
        with db.snapshot() as snap:
            db.write_items({k(1): None, k(2): b"new", k(9): big})
            assert snap.get(k(1)) == b"v1" and snap.get(k(2)) == b"v2"
            assert snap.get(k(9)) is None
        db.write_items({})
        assert db.get(k(1)) is None and db.get(k(2)) == b"new"
    with DB.open(db_path, compaction_workers=0, fsync=fsync) as db:
        assert [(key, v) for key, v in db.items()] == [
            (k(0), b"v0"),
            (k(2), b"new"),
            (k(3), b"v3"),
            (k(4), b"v4"),
            (k(9), big),
        ]


def test_snapshot_is_a_point_in_time(db_path):
    with DB.open(db_path, compaction_workers=0, memtable_size=32 << 10) as db:
        for i in range(500):
            db.put(k(i), b"old")
        with db.snapshot() as snap:
            for i in range(500):
                db.put(k(i), b"new")
            db.delete(k(7))
            db.flush()
            db.compact()
            assert snap.get(k(7)) == b"old"
            assert all(v == b"old" for _, v in snap.items())
            assert sum(1 for _ in snap.items()) == 500
        assert db.get(k(7)) is None
        assert db.get(k(8)) == b"new"


def test_second_open_fails_with_clear_error(db_path):
    with DB.open(db_path, compaction_workers=0):
        with pytest.raises(LockError, match="already open"):
            DB.open(db_path)


def test_rejects_non_bytes(db_path):
    with DB.open(db_path, compaction_workers=0) as db:
        with pytest.raises(InvalidArgumentError):
            db.put("str", b"v")  # type: ignore[arg-type]


def test_manifest_rolls_over_and_reopens(db_path, monkeypatch):
    import shalekv.engine.db as dbmod

    monkeypatch.setattr(dbmod, "MANIFEST_ROLL_BYTES", 2048)
    with DB.open(db_path, compaction_workers=0) as db:
        opened_with = db._manifest_number
        for round_ in range(30):
            for i in range(20):
                db.put(k(round_ * 20 + i), b"v%d" % round_)
            db.flush()
        manifests = [n for n in os.listdir(db_path) if n.startswith("MANIFEST-")]
        assert len(manifests) == 1
        first = db._manifest_number
        assert first != opened_with  # rolled over while open
    with DB.open(db_path, compaction_workers=0) as db:
        assert db._manifest_number != first
        assert sum(1 for _ in db.items()) == 600
        assert db.get(k(599)) == b"v29"


def test_stats_count_lookups_the_bloom_filter_spared(db_path):
    with DB.open(db_path, compaction_workers=0) as db:
        for i in range(0, 4000, 2):
            db.put(k(i), b"v")
        db.flush()
        before = db.stats()["bloom_useful"]
        for i in range(1, 4000, 2):
            assert db.get(k(i)) is None  # inside the table's key range, absent
        assert db.stats()["bloom_useful"] - before > 1800  # ~2 % false positives


def test_writes_slow_down_before_lagging_flushes_stop_them(db_path, monkeypatch):
    """With the flush queue one memtable short of full, writes are delayed at the
    pace flushes drain (RocksDB's delayed write rate) instead of running into a stop."""
    import threading

    import shalekv.engine.db as dbmod
    from shalekv.engine import jobs

    release = threading.Event()
    real_run = dbmod.workers.run

    def held_flush(fn, spec, n):
        if fn is jobs.run_flush:
            release.wait(20)
        return real_run(fn, spec, n)

    monkeypatch.setattr(dbmod.workers, "run", held_flush)
    db = DB.open(db_path, compaction_workers=0, memtable_size=8 << 10, max_immutable_memtables=3)
    try:
        i = 0
        while len(db._sv[1]) < 2:  # two sealed memtables wait: one short of the stop
            db.put(k(i), b"v" * 100)
            i += 1
        db._flush_rate = 100_000.0  # as if the last flush drained 100 kB/s
        before = db.stats()["stall_count"]
        for j in range(20):
            db.put(k(10_000 + j), b"v" * 100)
        assert len(db._sv[1]) == 2  # no stop was needed
        assert db.stats()["stall_count"] > before
    finally:
        release.set()
        db.close()
    with DB.open(db_path, compaction_workers=0) as db:
        assert db.get(k(10_019)) == b"v" * 100
        assert db.get(k(0)) == b"v" * 100


@pytest.mark.parametrize("big", [False, True])
def test_reads_after_close_raise_closed_error(db_path, big):
    """Every read of a closed DB is ClosedError: the calls, and iterators or scans left
    open across close(), once they need a file (a table block, a blob value) — not the
    EBADF of a read on a closed descriptor."""
    db = DB.open(
        db_path,
        compaction_workers=0,
        block_size=256,
        block_cache_size=0,
        compressed_cache_size=0,
        blob_threshold=64 if big else 1 << 20,
    )
    for i in range(2000):
        db.put(b"k%05d" % i, b"v" * (100 if big else 20))
    db.flush()
    its = [db.items(), db.items(reverse=True), db.chunks()]
    for it in its:
        next(it)
    db.close()
    for it in its:
        with pytest.raises(ClosedError):
            for _ in it:
                pass
    for read in (
        lambda: db.get(b"k00001"),
        lambda: list(db.items()),
        lambda: db.head_keys(b"k", b"l", 5),
        lambda: db.key_step(b"k", b"l", 5),
        lambda: next(db.key_chunks(b"k", b"l")),
    ):
        with pytest.raises(ClosedError):
            read()
