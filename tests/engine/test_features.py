"""Engine features seen from outside: space reclaim, data_dirs, blobs and blob GC, huge
values, checkpoints, the two-tier block cache, tombstone-triggered compaction, write
amplification and group commit. Each test checks files on disk or stats(), not only
that reads still work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shalekv.engine import DB, WriteBatch
from shalekv.errors import InvalidArgumentError

REPO = Path(__file__).resolve().parents[2]


def k(i: int) -> bytes:
    return b"key%08d" % i


def disk_bytes(dirs: list[Path], sub: str) -> int:
    """Total size of the files under <dir>/<sub> for every dir (what the DB really uses)."""
    total = 0
    for d in dirs:
        folder = d / sub
        if folder.is_dir():
            total += sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return total


def files_in(d: Path, sub: str, ext: str) -> list[Path]:
    folder = d / sub
    return sorted(folder.glob(f"*{ext}")) if folder.is_dir() else []


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll cond() until true or timeout (background work has no completion hook)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


# ---------------------------------------------------------------------- space


def test_compact_reclaims_space_of_overwritten_and_deleted_keys(tmp_path: Path) -> None:
    n = 20_000
    rnd = os.urandom  # incompressible: the bound must come from dropping garbage
    live: dict[bytes, bytes] = {}
    path = tmp_path / "db"
    with DB.open(path, compaction_workers=0, memtable_size=256 << 10, fsync="no") as db:
        for i in range(n):
            db.put(k(i), rnd(100))
        for i in range(n):  # every key overwritten once: half the data is now garbage
            v = rnd(100)
            db.put(k(i), v)
            live[k(i)] = v
        for i in range(n):  # then 90 % deleted
            if i % 10:
                db.delete(k(i))
                del live[k(i)]
        db.flush()
        before = disk_bytes([path], "sst") + disk_bytes([path], "blob")
        db.compact()
        # Measured right after compact() returns, before any read: a reader finishing
        # would give the DB another chance to delete files, hiding a late cleanup.
        after = disk_bytes([path], "sst") + disk_bytes([path], "blob")
        s = db.stats()
        live_bytes = sum(len(key) + len(v) for key, v in live.items())
        print(f"space: before compact {before} B, after {after} B, live data {live_bytes} B")
        assert after <= 1.5 * live_bytes
        assert s["sst_bytes"] + s["blob_bytes"] == after  # no file left behind
        assert dict(db.items()) == live


# ---------------------------------------------------------------------- data_dirs


def test_data_dirs_spread_files_and_are_remembered(tmp_path: Path) -> None:
    path = tmp_path / "db"
    dirs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    expected = {k(i): b"v%d" % i * 20 for i in range(4000)}
    # Small output files: compaction may merge every flush, and which file numbers
    # survive depends on timing; with a dozen files, all landing in one of three dirs
    # (each placed by a hash of its number) is not a real outcome.
    opts: dict[str, Any] = dict(
        compaction_workers=0,
        memtable_size=16 << 10,
        target_file_size=16 << 10,
        fsync="no",
        blob_threshold=1024,
    )
    with DB.open(path, data_dirs=[str(d) for d in dirs], **opts) as db:
        for key, v in expected.items():
            db.put(key, v)
        db.put(b"big", b"B" * 5000)  # a blob file too
        db.flush()
        assert db.stats()["num_files"] >= 3
    expected[b"big"] = b"B" * 5000
    used = [d for d in dirs if files_in(d, "sst", ".sst")]
    assert len(used) >= 2, f"all tables landed in {used}"
    assert not files_in(path, "sst", ".sst"), "tables written to the DB dir, not data_dirs"
    assert sum(len(files_in(d, "blob", ".blob")) for d in dirs) >= 1

    for given in ([str(d) for d in dirs], []):  # same list, or none: OPTIONS remembers
        with DB.open(path, data_dirs=given, **opts) as db:
            assert dict(db.items()) == expected
            assert db.get(k(1234)) == expected[k(1234)]

    for wrong in (dirs[:2], [dirs[2], dirs[1], dirs[0]], [*dirs, tmp_path / "d"]):
        with pytest.raises(InvalidArgumentError):
            DB.open(path, data_dirs=[str(d) for d in wrong], **opts)
    with DB.open(path, **opts) as db:  # a refused open left the DB intact and unlocked
        assert dict(db.items()) == expected


# ---------------------------------------------------------------------- blobs


def test_blob_values_round_trip_and_are_garbage_collected(tmp_path: Path) -> None:
    path = tmp_path / "db"
    threshold = 1024
    opts: dict[str, Any] = dict(
        compaction_workers=0, memtable_size=64 << 10, fsync="no", blob_threshold=threshold
    )
    big = {k(i): os.urandom(threshold + 37 * i) for i in range(200)}
    small = {k(i): b"s%d" % i for i in range(200, 400)}
    with DB.open(path, **opts) as db:
        for key, v in {**big, **small}.items():
            db.put(key, v)
        db.put(k(999), os.urandom(threshold - 1))  # just under: stays inline
        db.flush()
        s = db.stats()
        assert s["blob_files"] > 0
        assert files_in(path, "blob", ".blob")
        blob_before = disk_bytes([path], "blob")
        assert s["blob_bytes"] == blob_before
        assert blob_before >= sum(len(v) for v in big.values())
        for key, v in big.items():
            assert db.get(key) == v
        assert dict(db.items(k(0), k(200))) == big
        assert dict(db.items(k(200), k(400))) == small

        keep = {key: v for i, (key, v) in enumerate(big.items()) if i % 10 == 0}
        for i, key in enumerate(big):
            if key in keep:
                continue
            if i % 2:
                db.delete(key)
            else:
                db.put(key, b"now small")
        db.compact()
        s = db.stats()
        blob_after = disk_bytes([path], "blob")
        print(f"blob GC: {blob_before} B on disk before, {blob_after} B after")
        assert s["blob_bytes"] <= 0.5 * blob_before
        assert blob_after <= 0.5 * blob_before
        for key, v in keep.items():
            assert db.get(key) == v
    with DB.open(path, **opts) as db:  # relocated values survive a reopen
        for key, v in keep.items():
            assert db.get(key) == v
        assert db.get(k(1)) is None
        assert db.get(k(2)) == b"now small"


HUGE_VALUE_CHILD = r"""
import json, os, resource, sys

from shalekv.engine import DB, workers

def peak(who=resource.RUSAGE_SELF):
    if who == resource.RUSAGE_SELF:
        # VmHWM: ru_maxrss keeps the forked copy of the test runner's RSS across exec
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    return resource.getrusage(who).ru_maxrss * 1024  # ru_maxrss is in KiB on Linux

path, size, nworkers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = dict(compaction_workers=nworkers, fsync="no")
out = {"baseline": peak()}
value = os.urandom(size)
key = b"huge"
with DB.open(path, **opts) as db:
    db.put(key, value)
    out["after_put"] = peak()
    got = db.get(key)
    assert got == value, "get before flush"
    del got
    db.flush()
    out["after_flush"] = peak()
    got = db.get(key)
    assert got == value, "get after flush"
    del got
    out["blob_bytes"] = db.stats()["blob_bytes"]
with DB.open(path, **opts) as db:
    got = db.get(key)
    assert got == value, "get after reopen"
    del got
out["peak"] = peak()
workers.shutdown()  # waits for the worker, so RUSAGE_CHILDREN covers it
out["worker_peak"] = peak(resource.RUSAGE_CHILDREN)
print(json.dumps(out))
"""


@pytest.mark.parametrize("nworkers", [0, 1], ids=["inline-jobs", "worker-process"])
def test_100_mib_value_round_trips_without_many_copies(tmp_path: Path, nworkers: int) -> None:
    """put, get, flush, get, reopen, get of one 100 MiB value in a fresh process whose
    peak RSS shows how many copies the engine made (with inline jobs the flush runs in
    that process too; with a worker process, the worker's peak is checked as well)."""
    size = 100 << 20
    proc = subprocess.run(
        [sys.executable, "-c", HUGE_VALUE_CHILD, str(tmp_path / "db"), str(size), str(nworkers)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,  # run() kills the child if it hangs
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    mib = 1 << 20
    growth = m["peak"] - m["baseline"]
    print(
        f"100 MiB value, {nworkers} workers: peak RSS growth {growth / mib:.0f} MiB "
        f"(after put {(m['after_put'] - m['baseline']) / mib:.0f}, after flush "
        f"{(m['after_flush'] - m['baseline']) / mib:.0f}); worker peak RSS "
        f"{m['worker_peak'] / mib:.0f} MiB"
    )
    assert m["blob_bytes"] >= size
    # The test holds one copy itself (the value it compares with); the engine may add
    # a transient one or two, not several.
    assert growth < 4 * size, f"peak RSS grew {growth / mib:.0f} MiB"
    assert m["worker_peak"] < 4 * size, f"worker peak RSS {m['worker_peak'] / mib:.0f} MiB"


# ---------------------------------------------------------------------- checkpoint


def test_checkpoint_under_concurrent_writes_is_a_consistent_prefix(tmp_path: Path) -> None:
    path = tmp_path / "db"
    opts: dict[str, Any] = dict(
        compaction_workers=0, memtable_size=32 << 10, fsync="no", blob_threshold=512
    )
    stop = threading.Event()
    written = 0
    errors: list[BaseException] = []

    def value(i: int) -> bytes:
        return b"v%d" % i * (80 if i % 7 else 1)  # every 7th is small, others go to blobs

    def writer(db: DB) -> None:
        nonlocal written
        try:
            i = 0
            while not stop.is_set() and i < 200_000:
                db.write(WriteBatch().put(k(i), value(i)).put(b"last", b"%d" % i))
                written = i = i + 1
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    with DB.open(path, **opts) as db:
        t = threading.Thread(target=writer, args=(db,))
        t.start()
        try:
            assert wait_until(lambda: written >= 2000)
            db.checkpoint(tmp_path / "cp1")
            assert wait_until(lambda: written >= 4000)
            db.checkpoint(tmp_path / "cp2")
        finally:
            stop.set()
            t.join(30)
        assert not t.is_alive() and not errors, errors
    for name in ("cp1", "cp2"):
        with DB.open(tmp_path / name, compaction_workers=0) as cp:
            got = dict(cp.items())
        # One writer, key i before i+1, each batch atomic: any consistent state is
        # exactly the first m batches, with "last" naming batch m-1.
        m = int(got.pop(b"last")) + 1
        assert m >= 1
        assert got == {k(i): value(i) for i in range(m)}, name


def test_checkpoint_equals_a_snapshot_and_uses_hard_links(tmp_path: Path) -> None:
    path = tmp_path / "db"
    # No background compaction can start (it would unlink originals and drop st_nlink).
    opts: dict[str, Any] = dict(
        compaction_workers=0,
        memtable_size=32 << 10,
        fsync="no",
        blob_threshold=256,
        l0_compaction_trigger=1000,
        l0_slowdown_trigger=1000,
        l0_stop_trigger=1000,
        level_base_size=1 << 30,
    )
    with DB.open(path, **opts) as db:
        for i in range(3000):
            db.put(k(i), b"x%d" % i * (100 if i % 3 == 0 else 1))
        db.delete_range(k(100), k(200))
        db.flush()
        for i in range(0, 3000, 2):
            db.put(k(i), b"second")  # some only in the memtable at checkpoint time
        with db.snapshot() as snap:
            expected = dict(snap.items())
            db.checkpoint(tmp_path / "cp")
        cp_dir = tmp_path / "cp"
        ssts = files_in(cp_dir, "sst", ".sst")
        blobs = files_in(cp_dir, "blob", ".blob")
        assert ssts and blobs
        for f in ssts + blobs:
            assert f.stat().st_nlink >= 2, f"{f} was copied, not linked"
            assert f.stat().st_ino == (path / f.parent.name / f.name).stat().st_ino
        with pytest.raises(InvalidArgumentError):
            db.checkpoint(cp_dir)  # target exists
        # The checkpoint opens while the original is still open, and matches it.
        with DB.open(cp_dir, **opts) as cp:
            assert dict(cp.items()) == expected
            cp.put(b"only-in-checkpoint", b"1")
        db.put(b"only-in-original", b"1")
        assert db.get(b"only-in-checkpoint") is None
        assert dict(db.items(k(0), k(3000))) == expected
    with DB.open(cp_dir, **opts) as cp:
        assert cp.get(b"only-in-original") is None
        assert cp.get(b"only-in-checkpoint") == b"1"
        assert cp.get(k(151)) is None
        assert cp.get(k(2)) == b"second"


# ---------------------------------------------------------------------- caches


def test_block_cache_stats_and_compressed_second_tier(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with DB.open(path, compaction_workers=0, fsync="no") as db:
        for i in range(20_000):
            db.put(k(i), b"value-%d-" % i * 8)
        db.compact()
    cap = 64 << 10
    with DB.open(
        path, compaction_workers=0, block_cache_size=cap, compressed_cache_size=4 << 20
    ) as db:
        s = db.stats()
        for name in (
            "block_cache_hits",
            "block_cache_misses",
            "block_cache_hit_ratio",
            "block_cache_usage",
            "block_cache_capacity",
            "compressed_cache_hits",
            "compressed_cache_misses",
            "compressed_cache_hit_ratio",
            "compressed_cache_usage",
        ):
            assert name in s, name
        assert s["block_cache_capacity"] == cap
        for _ in range(2):
            for i in range(0, 20_000, 7):
                assert db.get(k(i)) == b"value-%d-" % i * 8
        s = db.stats()
        print({n: v for n, v in s.items() if "cache" in n})
        assert s["block_cache_misses"] > 0
        assert s["compressed_cache_hits"] > 0  # the second pass found evicted blocks there
        assert s["block_cache_usage"] <= cap
        assert s["compressed_cache_usage"] <= 4 << 20
        h, m = s["block_cache_hits"], s["block_cache_misses"]
        assert s["block_cache_hit_ratio"] == pytest.approx(h / (h + m))
        ch, cm = s["compressed_cache_hits"], s["compressed_cache_misses"]
        assert s["compressed_cache_hit_ratio"] == pytest.approx(ch / (ch + cm))


@pytest.mark.parametrize("codec", ["lz4", "none"])
def test_second_tier_compresses_only_what_can_be(tmp_path: Path, monkeypatch, codec: str) -> None:
    """Blocks the table's codec stored raw (incompressible values) go to the second
    tier raw, without an LZ4 attempt per eviction; raw blocks of a table written
    without a codec are compressed there (if they compress)."""
    import random

    from shalekv.engine import block_cache, compression

    path = tmp_path / "db"
    rnd = random.Random(5)
    with DB.open(path, compaction_workers=0, compression=codec) as db:
        for i in range(3000):
            db.put(k(i), rnd.randbytes(300) if i < 1500 else b"text " * 60)  # blocks of one kind
        db.compact()
    calls = []
    real = compression.compress

    def counting(c: int, data: bytes) -> tuple[int, bytes]:
        calls.append(c)
        return real(c, data)

    monkeypatch.setattr(block_cache.compression, "compress", counting)
    with DB.open(path, compaction_workers=0, block_cache_size=16 << 10) as db:
        for i in range(3000):
            assert db.get(k(i)) is not None
        tier2 = list(db.cache._clru.values())
        s = db.stats()
    assert s["block_cache_misses"] > 100 and tier2
    mixed = {c for c, _ in tier2}
    if codec == "lz4":
        # random-value blocks stayed raw on disk: never retried; text blocks were LZ4
        assert calls == []
        assert mixed == {compression.NONE, compression.LZ4}
    else:
        # everything was raw on disk: each eviction tries, the text blocks compress
        assert len(calls) >= len(tier2)
        assert compression.LZ4 in mixed and compression.NONE in mixed


# ---------------------------------------------------------------------- tombstones


def test_tombstone_dense_file_is_compacted_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "db"
    opts: dict[str, Any] = dict(compaction_workers=0, fsync="no", deletion_min_entries=100)
    with DB.open(path, **opts) as db:
        for i in range(3000):
            db.put(k(i), b"v" * 50)
        db.compact()
        compactions = db.stats()["compactions"]
        deleted = range(1000, 2000)
        for i in deleted:
            db.delete(k(i))
        assert list(db.items(k(1000), k(2000))) == []
        assert list(db.items(k(1000), k(2000), reverse=True)) == []
        db.flush()
        assert list(db.items(k(1000), k(2000))) == []

        def tombstones() -> int:
            return sum(f.deletions for _, f in db.live_files())

        # The flush alone writes every tombstone; a compaction must then drop them.
        assert wait_until(
            lambda: db.stats()["compactions"] > compactions and tombstones() < len(deleted)
        ), f"tombstones still live: {tombstones()}, stats {db.stats()['compactions']}"
        assert list(db.items(k(1000), k(2000))) == []
        assert sum(1 for _ in db.items()) == 2000
        assert db.get(k(999)) == b"v" * 50 and db.get(k(1500)) is None


# ---------------------------------------------------------------------- write amp


def test_write_amplification_is_reported(tmp_path: Path) -> None:
    with DB.open(tmp_path / "db", compaction_workers=0, fsync="no") as db:
        assert db.stats()["write_amplification"] == 0.0  # nothing flushed yet
        for rnd in range(2):
            for i in range(2000):
                db.put(k(i), b"r%d-" % rnd * 20)
            db.flush()
        db.compact()
        s = db.stats()
        assert s["flush_bytes_written"] > 0 and s["compaction_bytes_written"] > 0
        assert s["write_amplification"] >= 1
        assert s["write_amplification"] == pytest.approx(
            (s["flush_bytes_written"] + s["compaction_bytes_written"]) / s["flush_bytes_written"]
        )


# ---------------------------------------------------------------------- group commit


def test_group_commit_with_fsync_always(tmp_path: Path) -> None:
    path = tmp_path / "db"
    threads_n, per_thread = 8, 150
    errors: list[BaseException] = []
    with DB.open(path, compaction_workers=0, fsync="always", memtable_size=32 << 10) as db:
        start = threading.Barrier(threads_n)

        def writer(t: int) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    key = b"t%d-%04d" % (t, i)
                    if i % 10 == 0:
                        db.write(WriteBatch().put(key, b"batch").put(key + b"!", b"x"))
                    else:
                        db.put(key, b"%d" % i)
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a writer never returned"
        assert not errors, errors

        def expected() -> dict[bytes, bytes]:
            out = {}
            for t in range(threads_n):
                for i in range(per_thread):
                    key = b"t%d-%04d" % (t, i)
                    if i % 10 == 0:
                        out[key] = b"batch"
                        out[key + b"!"] = b"x"
                    else:
                        out[key] = b"%d" % i
            return out

        assert dict(db.items()) == expected()
        assert db.stats()["background_error"] is None
    with DB.open(path, compaction_workers=0) as db:
        assert dict(db.items()) == expected()
