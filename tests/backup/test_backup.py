"""BackupEngine (shalekv/backup/engine.py): consistent under concurrent writes,
incremental, verified, purged by reference, restorable with data_dirs and blob files.

Consistency is checked exactly: a writer thread applies a deterministic sequence of
batches of a fixed size, so the model of the DB after n batches is known, and a
backup whose sequence number is S must restore to exactly the model after the batch
that ends at S (its "log" keys say how many batches it holds).
"""

from __future__ import annotations

import os
import random
import threading

import pytest

from shalekv.backup.engine import BackupEngine
from shalekv.backup.meta import BackupInfo
from shalekv.engine import DB
from shalekv.engine.write_batch import WriteBatch
from shalekv.errors import CorruptionError, InvalidArgumentError
from tests.dbfiles import SMALL, flip, k

OPS_PER_BATCH = 5  # 3 puts, 1 delete, 1 log put: one sequence number each
BLOBBY = 1500  # >= SMALL's blob_threshold: such values go to blob files


def batch_ops(i: int) -> list[tuple[bytes, bytes | None]]:
    """Batch i of the writer: deterministic, so the model at any batch count is known."""
    rnd = random.Random(i)
    ops: list[tuple[bytes, bytes | None]] = []
    for _ in range(3):
        j = rnd.randrange(400)
        size = BLOBBY if rnd.random() < 0.1 else 20
        ops.append((k(j), (b"%d:" % i).ljust(size, b"v")))
    ops.append((k(rnd.randrange(400)), None))
    ops.append((b"log:%08d" % i, b"%d" % i))
    return ops


def model_after(n: int) -> dict[bytes, bytes]:
    m: dict[bytes, bytes] = {}
    for i in range(n):
        for key, value in batch_ops(i):
            if value is None:
                m.pop(key, None)
            else:
                m[key] = value
    return m


def write_batch(db: DB, i: int) -> None:
    b = WriteBatch()
    for key, value in batch_ops(i):
        if value is None:
            b.delete(key)
        else:
            b.put(key, value)
    db.write(b)


def contents(path: str) -> dict[bytes, bytes]:
    with DB.open(path, compaction_workers=0) as db:
        return dict(db.items())


def check_restored(engine: BackupEngine, info: BackupInfo, target: str, base: int) -> int:
    """Restore info to target; it must equal the model at info.sequence. Returns n."""
    engine.restore(info.id, target)
    got = contents(target)
    n = sum(1 for key in got if key.startswith(b"log:"))
    assert info.sequence == base + n * OPS_PER_BATCH  # the sequence is that of batch n
    assert got == model_after(n)  # every write up to it, none after
    return n


def test_backup_under_concurrent_writes_restores_one_point_in_time(tmp_path):
    db = DB.open(str(tmp_path / "db"), **SMALL)
    base = db.stats()["last_sequence"]
    stop = threading.Event()
    written = [0]
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            while not stop.is_set() and written[0] < 20000:
                write_batch(db, written[0])
                written[0] += 1
        except BaseException as e:  # noqa: BLE001  # reported by the test
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    engine = BackupEngine(tmp_path / "bk")
    infos = []
    try:
        for _ in range(3):
            while written[0] < 300 * (len(infos) + 1) and t.is_alive():
                stop.wait(0.01)
            infos.append(engine.create(db))
    finally:
        stop.set()
        t.join()
    assert not errors
    # The arithmetic the check relies on: one sequence number per operation.
    assert db.stats()["last_sequence"] == base + written[0] * OPS_PER_BATCH
    db.close()
    seen = []
    for info in infos:
        seen.append(check_restored(engine, info, str(tmp_path / f"r{info.id}"), base))
    assert seen == sorted(seen) and seen[-1] > 0
    assert engine.verify().ok


def test_second_backup_copies_only_new_files(tmp_path):
    engine = BackupEngine(tmp_path / "bk")
    with DB.open(str(tmp_path / "db"), **SMALL) as db:
        for i in range(2000):
            db.put(k(i), b"x" * (BLOBBY if i % 40 == 0 else 50))
        first = engine.create(db)
        inodes = {f.path: os.stat(tmp_path / "bk" / f.path).st_ino for f in first.files if f.shared}
        for i in range(2000, 2100):  # ~1 % new data, to new tables only
            db.put(k(i), b"y" * 50)
        second = engine.create(db)
    old = {f.path for f in first.files}
    shared = [f for f in second.files if f.shared]
    private = [f for f in second.files if not f.shared]
    assert any(f.path in old for f in shared) and any(f.path not in old for f in shared)
    for f in shared:
        assert f.new == (f.path not in old)
    assert all(f.new for f in private)
    assert second.new_bytes == sum(f.size for f in shared if f.path not in old) + sum(
        f.size for f in private
    )
    assert second.new_bytes < second.size
    # Files the first backup had are neither copied again nor rewritten.
    for path, ino in inodes.items():
        if path in {f.path for f in shared}:
            assert os.stat(tmp_path / "bk" / path).st_ino == ino
    assert engine.get(2) == second  # the meta file says the same


@pytest.fixture
def backed_up(tmp_path):
    """A backup holding tables, blob files and the private files; the DB's contents."""
    with DB.open(str(tmp_path / "db"), **SMALL) as db:
        for i in range(1500):
            db.put(k(i), b"B" * BLOBBY if i % 30 == 0 else b"v%d" % i)
        engine = BackupEngine(tmp_path / "bk")
        info = engine.create(db)
        expected = dict(db.items())
    return engine, info, expected


def damaged_file(engine: BackupEngine, info: BackupInfo, kind: str) -> str:
    if kind == "meta":
        return engine.meta_path(info.id)
    pick = {
        "sst": lambda f: f.name.startswith("sst/"),
        "blob": lambda f: f.name.startswith("blob/"),
        "manifest": lambda f: f.name.startswith("MANIFEST-"),
    }[kind]
    f = next(f for f in info.files if pick(f))
    return os.path.join(engine.dir, f.path)


@pytest.mark.parametrize("kind", ["sst", "blob", "manifest", "meta"])
def test_flipped_byte_caught_by_verify_and_restore(backed_up, tmp_path, kind):
    engine, info, _ = backed_up
    assert engine.verify().ok
    path = damaged_file(engine, info, kind)
    flip(path, os.path.getsize(path) // 2)
    result = engine.check()
    assert not result.ok and [p.path for p in result.problems] == [path]
    with pytest.raises(CorruptionError) as e:
        engine.verify(info.id)
    assert e.value.path == path and path in str(e.value)
    target = tmp_path / "restored"
    with pytest.raises(CorruptionError) as e:
        engine.restore(info.id, target)
    assert e.value.path == path
    assert not target.exists() or os.listdir(target) == []  # nothing written


def test_missing_or_truncated_file_reported(backed_up):
    engine, info, _ = backed_up
    f1, f2 = [f for f in info.files if f.shared][:2]
    os.unlink(os.path.join(engine.dir, f1.path))
    with open(os.path.join(engine.dir, f2.path), "r+b") as f:
        f.truncate(f2.size - 1)
    problems = {p.path: p.message for p in engine.check().problems}
    assert "missing" in problems[os.path.join(engine.dir, f1.path)]
    assert "size" in problems[os.path.join(engine.dir, f2.path)]


def test_restore_refuses_non_empty_target_and_unknown_id(backed_up, tmp_path):
    engine, info, expected = backed_up
    target = tmp_path / "t"
    target.mkdir()
    (target / "something").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        engine.restore(info.id, target)
    assert os.listdir(target) == ["something"]
    with pytest.raises(InvalidArgumentError, match="no backup 7"):
        engine.restore(7, tmp_path / "u")
    empty = tmp_path / "empty"
    empty.mkdir()
    engine.restore(None, empty)  # an existing empty directory is fine; None: newest
    assert contents(str(empty)) == expected


def test_purge_deletes_only_unreferenced_files(tmp_path):
    engine = BackupEngine(tmp_path / "bk")
    infos = []
    with DB.open(str(tmp_path / "db"), **SMALL) as db:
        for round_ in range(3):
            for i in range(600):
                db.put(
                    k(i + 400 * round_), b"r%d" % round_ + b"B" * (BLOBBY if i % 60 == 0 else 30)
                )
            infos.append(engine.create(db))
            if round_ == 0:  # replace backup 1's tables now, not whenever compaction runs
                db.compact()
        expected_last = dict(db.items())
    shared_dir = tmp_path / "bk" / "shared"
    # Leftovers of an interrupted create: a temp dir, a meta temp file, a stray file.
    (tmp_path / "bk" / "tmp" / "000009").mkdir()
    (tmp_path / "bk" / "meta" / "000009.tmp").write_bytes(b"half")
    (shared_dir / "000999_00000000_4.sst").write_bytes(b"junk")
    result = engine.purge(keep=2)
    assert result.deleted_backups == [1]
    assert engine.ids() == [2, 3]
    kept = {f.path for i in infos[1:] for f in i.files if f.shared}
    only_first = {f.path for f in infos[0].files if f.shared} - kept
    assert only_first  # the compaction replaced backup 1's tables
    assert {f"shared/{n}" for n in os.listdir(shared_dir)} == kept
    assert not os.path.exists(tmp_path / "bk" / "private" / "000001")
    assert os.listdir(tmp_path / "bk" / "tmp") == []
    assert sorted(os.listdir(tmp_path / "bk" / "meta")) == ["000002", "000003"]
    assert engine.verify().ok
    engine.restore(3, tmp_path / "r3")
    assert contents(str(tmp_path / "r3")) == expected_last
    assert engine.purge(keep=5).deleted_backups == []


def test_purge_keeps_shared_files_when_a_meta_is_unreadable(tmp_path, backed_up):
    engine, info, _ = backed_up
    flip(engine.meta_path(info.id), 20)
    before = sorted(os.listdir(os.path.join(engine.dir, "shared")))
    engine.purge(keep=1)
    assert sorted(os.listdir(os.path.join(engine.dir, "shared"))) == before


def test_data_dirs_and_blob_files(tmp_path):
    dirs = [str(tmp_path / f"d{i}") for i in range(3)]
    engine = BackupEngine(tmp_path / "bk")
    with DB.open(str(tmp_path / "db"), data_dirs=dirs, **SMALL) as db:
        for i in range(3000):
            db.put(k(i), b"B" * BLOBBY if i % 25 == 0 else b"v%d" % i)
        for i in range(0, 3000, 7):
            db.delete(k(i))
        info = engine.create(db)
        expected = dict(db.items())
    used = {d for d in dirs if os.listdir(os.path.join(d, "sst"))}
    assert len(used) >= 2  # the tables really were spread
    names = [f.name for f in info.files]
    assert any(n.startswith("blob/") for n in names) and any(n.startswith("sst/") for n in names)
    engine.restore(info.id, tmp_path / "r")  # gathered into one directory
    assert contents(str(tmp_path / "r")) == expected


def test_offline_backup_of_a_closed_db_dir(tmp_path):
    path = str(tmp_path / "db")
    with DB.open(path, **SMALL) as db:
        for i in range(500):
            db.put(k(i), b"v%d" % i)
        expected = dict(db.items())
    engine = BackupEngine(tmp_path / "bk")
    info = engine.create(path)  # includes the writes still in the WAL
    assert info.source == path
    engine.restore(info.id, tmp_path / "r")
    assert contents(str(tmp_path / "r")) == expected
    with pytest.raises(InvalidArgumentError, match="not a ShaleKV DB"):
        engine.create(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()  # never created by a backup
