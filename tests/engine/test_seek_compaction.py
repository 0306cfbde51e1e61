"""Seek compaction: range reads that keep merging L0 files with other tables get L0
compacted into L1 once writes are idle, and not while writes go on. Waits are bounded;
nothing here times performance."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from shalekv.engine import DB
from shalekv.engine import db as dbmod


def _l0(db: DB) -> int:
    return len(db._sv[2].levels[0])


def _fill_two_l0_files(db: DB) -> dict[bytes, bytes]:
    model = {}
    for part in range(2):
        for i in range(part, 400, 2):  # both files span the whole key range
            k, v = b"k%04d" % i, b"v%d-%d" % (i, part)
            db.put(k, v)
            model[k] = v
        db.flush()
    assert _l0(db) == 2
    return model


def _wait_for(cond, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.fixture
def quick_idle(monkeypatch):
    monkeypatch.setattr(dbmod, "SEEK_COMPACTION_IDLE", 0.2)


@pytest.mark.parametrize("read", ["head", "items"])
def test_range_reads_compact_l0_once_writes_are_idle(db_path, quick_idle, read):
    with DB.open(db_path, compaction_workers=0) as db:
        model = _fill_two_l0_files(db)
        assert db.stats()["seek_compactions"] == 0
        for i in range(dbmod.MIN_ALLOWED_SEEKS + 5):
            lo = b"k%04d" % (i * 3 % 390)
            if read == "head":
                db.head(lo, None, 5)
            else:
                it = db.items(lo)
                next(it)
                it.close()
        assert _wait_for(lambda: db.stats()["seek_compactions"] == 1)
        assert _l0(db) == 0 and len(db._sv[2].levels[1]) >= 1
        assert dict(db.items()) == model
        assert db.head(b"k0100", b"k0104", 10) == (
            [b"k%04d" % i for i in range(100, 104)],
            [model[b"k%04d" % i] for i in range(100, 104)],
        )


def test_no_seek_compaction_while_writes_go_on(db_path, quick_idle):
    with DB.open(db_path, compaction_workers=0) as db:
        model = _fill_two_l0_files(db)
        for i in range(dbmod.MIN_ALLOWED_SEEKS + 5):
            db.head(b"k%04d" % (i % 390), None, 5)
        assert db._seek_file is not None  # the newest L0 file ran out of seeks
        # Writes every few ms for over a second: the idle check never passes.
        deadline = time.monotonic() + 1.2
        n = 0
        while time.monotonic() < deadline:
            db.put(b"w%06d" % n, b"x")
            model[b"w%06d" % n] = b"x"
            n += 1
            time.sleep(0.002)
        assert db.stats()["seek_compactions"] == 0 and _l0(db) == 2
        # Writes stop: it runs.
        assert _wait_for(lambda: db.stats()["seek_compactions"] == 1)
        assert _l0(db) == 0
        assert dict(db.items()) == model


def test_single_table_reads_and_point_reads_charge_nothing(db_path, quick_idle):
    with DB.open(db_path, compaction_workers=0) as db:
        for i in range(300):
            db.put(b"k%04d" % i, b"v")
        db.flush()  # one L0 file: nothing to merge it with
        for i in range(3 * dbmod.MIN_ALLOWED_SEEKS):
            db.head(b"k%04d" % (i % 300), None, 3)
        db.put(b"k0000", b"w")
        db.flush()  # now two L0 files; point reads still charge nothing
        for i in range(3 * dbmod.MIN_ALLOWED_SEEKS):
            db.get(b"k%04d" % (i % 300))
        assert db._seek_file is None and not _wait_for(
            lambda: db.stats()["seek_compactions"] > 0, 0.6
        )
        assert _l0(db) == 2


def test_disabled(db_path, quick_idle):
    with DB.open(db_path, compaction_workers=0, seek_compaction_bytes=0) as db:
        _fill_two_l0_files(db)
        for i in range(3 * dbmod.MIN_ALLOWED_SEEKS):
            db.head(b"k%04d" % (i % 390), None, 5)
        assert db._seek_file is None
        assert not _wait_for(lambda: db.stats()["seek_compactions"] > 0, 0.6)
        assert _l0(db) == 2


def test_a_file_out_of_seeks_asks_again_while_another_holds_the_slot(db_path):
    with DB.open(db_path, compaction_workers=0) as db:
        a = SimpleNamespace(number=10**6, size=0)
        b = SimpleNamespace(number=10**6 + 1, size=0)
        for _ in range(dbmod.MIN_ALLOWED_SEEKS):
            db._charge_seek(a)
        assert db._seek_file is a
        for _ in range(dbmod.MIN_ALLOWED_SEEKS + 50):
            db._charge_seek(b)  # out of seeks while a holds the slot
        assert db._seek_file is a and db._seeks_left[b.number] == 0
        db._seek_file = None  # a's compaction was picked
        db._charge_seek(b)
        assert db._seek_file is b
