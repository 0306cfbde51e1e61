"""Running out of space: the failing write raises a clear error, nothing acknowledged is
lost, nothing unacknowledged is half applied, and once space is back the same DB
object takes writes again, flushes, compacts and reopens intact.

The real thing is a small tmpfs mounted for the test (ENOSPC from the kernel, in the
WAL append or in a flush/compaction, whichever comes first). Where mounting is not
permitted those tests skip, and the RLIMIT_FSIZE test still drives the same scenario
with EFBIG (writes past the limit fail; "freeing space" raises the limit again).

Each scenario runs in a child process (`python -m tests.engine.test_disk_full`), so a
hang is bounded by a timeout that kills the child's whole process group, and worker
processes it starts never outlive it.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shalekv.engine import DB, WriteBatch
from shalekv.errors import ShaleError

REPO_ROOT = Path(__file__).resolve().parents[2]
FS_SIZE = 8 << 20
HEADROOM = 1536 << 10  # room the DB gets before the disk is full
# RLIMIT_FSIZE variant: the largest file a write may produce. Not a multiple of the
# 32 KiB log block, so the failing WAL append is a one-fragment (single write) record.
FSIZE_LIMIT = 90 << 10
CHILD_TIMEOUT = 50
RESUME_SECONDS = 15.0  # how long the DB may keep refusing writes after space is freed


# ---------------------------------------------------------------------- the scenario


class Model:
    """What the DB must hold: acknowledged writes, and the batches that raised."""

    def __init__(self) -> None:
        self.acked: dict[bytes, bytes] = {}
        self.failed: list[list[bytes]] = []
        self.rng = random.Random(1234)
        self.n = 0

    def batch(self) -> tuple[WriteBatch, dict[bytes, bytes]]:
        # Three fresh keys per batch: one small, one medium, one past blob_threshold.
        # Incompressible values, so they take the space they claim.
        self.n += 1
        sizes = (self.rng.randrange(20, 200), self.rng.randrange(300, 900), 1500 + self.n % 4000)
        kv = {b"b%06d-%d" % (self.n, j): self.rng.randbytes(s) for j, s in enumerate(sizes)}
        b = WriteBatch()
        for key, v in kv.items():
            b.put(key, v)
        return b, kv

    def write(self, db: DB) -> BaseException | None:
        """One batch; returns the error it raised (after recording it), or None."""
        b, kv = self.batch()
        try:
            db.write(b)
        except (OSError, ShaleError) as e:
            self.failed.append(list(kv))
            return e
        self.acked.update(kv)
        return None

    def verify(self, db: DB, when: str) -> None:
        for keys in self.failed:
            seen = [db.get(key) is not None for key in keys]
            assert not any(seen) or all(seen), f"{when}: failed batch half applied: {keys}"
            assert not any(seen), f"{when}: a write that raised is visible: {keys}"
        for key, v in self.acked.items():
            got = db.get(key)
            assert got == v, f"{when}: acknowledged {key!r} {'lost' if got is None else 'wrong'}"
        scanned = list(db.items())
        assert scanned == sorted(self.acked.items()), (
            f"{when}: scan has {len(scanned)} entries, {len(self.acked)} acknowledged"
        )


def _clear_error(e: BaseException, expect: str) -> None:
    """The error says what happened: an OSError with the errno, or a ShaleError whose
    text carries it (a background flush that hit the same condition)."""
    code = getattr(errno, expect)
    assert isinstance(e, OSError | ShaleError), f"{type(e).__name__}: {e}"
    text = str(e)
    assert (isinstance(e, OSError) and e.errno == code) or os.strerror(code) in text, (
        f"unclear error for {expect}: {type(e).__name__}: {text}"
    )


def _write_until_failure(db: DB, model: Model, limit: int = 5000) -> BaseException:
    for _ in range(limit):
        e = model.write(db)
        if e is not None:
            return e
    raise AssertionError(f"no write failed after {limit} batches: the disk never filled")


def _write_until_recovered(db: DB, model: Model) -> list[str]:
    """Once space is freed the DB may refuse writes (with the error it still holds)
    until a background retry of the failed flush or compaction succeeds; within
    RESUME_SECONDS it must take writes again with no background error left."""
    refusals: list[str] = []
    deadline = time.monotonic() + RESUME_SECONDS
    while True:
        e = model.write(db)
        if e is None and db.stats()["background_error"] is None:
            return refusals
        if e is not None:
            refusals.append(f"{type(e).__name__}: {e}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not recovered {RESUME_SECONDS:.0f} s after space was freed "
                f"({len(refusals)} writes refused), last refusal: "
                f"{refusals[-1] if refusals else None}, background error: "
                f"{db.stats()['background_error']}"
            )
        time.sleep(0.05)


def scenario(cfg: dict[str, Any]) -> dict[str, Any]:
    """Fill, fail, check while full, free, write on (or reopen), check after reopen."""
    path = cfg["db"]
    opts = {
        "compaction_workers": cfg["workers"],
        "fsync": cfg["fsync"],
        "memtable_size": cfg.get("memtable_size", 128 << 10),
        "blob_threshold": 1024,
        "target_file_size": 128 << 10,
        "level_base_size": 512 << 10,
        "compaction_rate_limit": 0,
    }
    free_space = _prepare_full_disk(cfg)
    model = Model()
    db = DB.open(path, **opts)
    try:
        if cfg["mechanism"] == "rlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, resource.RLIM_INFINITY))
        first = _write_until_failure(db, model)
        _clear_error(first, cfg["expect"])
        model.verify(db, "right after the failure")
        more = [model.write(db) for _ in range(10)]  # still full: each fails or not
        model.verify(db, "after more writes on a full disk")
        if cfg["reopen_while_full"]:
            db.close()
            _fill_completely(cfg["filler"] + "-2")
            try:
                with DB.open(path, **opts) as again:
                    model.verify(again, "reopened while full")
            except (OSError, ShaleError) as e:
                _clear_error(e, cfg["expect"])
            free_space()
            db = DB.open(path, **opts)
            model.verify(db, "reopened after freeing space")
            refusals: list[str] = []
        else:
            free_space()
            refusals = _write_until_recovered(db, model)
        for _ in range(150):
            refused = model.write(db)
            assert refused is None, (
                f"write refused with space available: {type(refused).__name__}: {refused}"
            )
        db.flush()
        db.compact()
        stats = db.stats()
        assert stats["background_error"] is None, stats["background_error"]
        model.verify(db, "after writing on")
    finally:
        db.close()
    with DB.open(path, **opts) as db:
        model.verify(db, "after reopen")
    return {
        "first_error": f"{type(first).__name__}: {first}",
        "acked_batches": len(model.acked) // 3,
        "failed_batches": len(model.failed),
        "errors_while_full": sum(e is not None for e in more),
        "refusals_after_free": refusals,
        "flushes": stats["flushes"],
        "compactions": stats["compactions"],
    }


def _prepare_full_disk(cfg: dict[str, Any]) -> Callable[[], None]:
    """Leave HEADROOM free on the small filesystem (a filler file takes the rest), or
    ignore SIGXFSZ for the RLIMIT_FSIZE variant; return how to give space back."""
    if cfg["mechanism"] == "rlimit":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill

        def raise_limit() -> None:
            resource.setrlimit(
                resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            )

        return raise_limit
    filler = cfg["filler"]
    st = os.statvfs(os.path.dirname(filler))
    left = st.f_bavail * st.f_frsize - HEADROOM
    chunk = bytes(1 << 16)
    with open(filler, "wb") as f:
        while left > 0:
            left -= f.write(chunk[: min(len(chunk), left)])

    def unlink_fillers() -> None:
        os.unlink(filler)
        if os.path.exists(filler + "-2"):
            os.unlink(filler + "-2")

    return unlink_fillers


def _fill_completely(filler: str) -> None:
    """Take every last byte (unbuffered writes, so nothing is left to flush at close)."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        while os.write(fd, bytes(4096)):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def _main() -> None:
    cfg = json.loads(sys.argv[1])
    print(json.dumps(scenario(cfg)), flush=True)


# ---------------------------------------------------------------------- the tests


def run_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run scenario(cfg) in a fresh process group; kill the group if it overruns."""
    p = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.test_disk_full", json.dumps(cfg)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(
            f"scenario hung for {CHILD_TIMEOUT} s:\n{out}\n{err[-3000:]}"
        ) from None
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 0, f"scenario failed (exit {p.returncode}):\n{err[-4000:]}"
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A FS_SIZE tmpfs, unmounted afterwards (lazily if something still holds it)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("no mount command; test_file_size_limit covers the failure path")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({r.stderr.strip()}); test_file_size_limit runs")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


@pytest.mark.parametrize(
    "workers,fsync,memtable_size",
    [
        (0, "everysec", 64 << 20),
        (0, "everysec", 128 << 10),
        (0, "always", 128 << 10),
        (1, "everysec", 128 << 10),
    ],
    ids=["wal-append", "inline-jobs", "inline-fsync-always", "worker-process"],
)
def test_disk_full_raises_then_db_recovers_when_space_is_freed(
    small_fs: Path, workers: int, fsync: str, memtable_size: int
) -> None:
    """wal-append: the memtable never fills, so the failing write is the WAL append
    itself; the others flush and compact while filling, so the first failure may be
    a background job's, surfacing to writers as a BackgroundError."""
    cfg = {
        "memtable_size": memtable_size,
        "mechanism": "tmpfs",
        "expect": "ENOSPC",
        "db": str(small_fs / "db"),
        "filler": str(small_fs / "filler"),
        "workers": workers,
        "fsync": fsync,
        "reopen_while_full": False,
    }
    report = run_child(cfg)
    assert report["failed_batches"] >= 1 and report["acked_batches"] > 100, report
    assert report["flushes"] >= 1, report
    assert not (small_fs / "filler").exists()


def test_close_and_reopen_on_a_full_disk_lose_nothing(small_fs: Path) -> None:
    """Closing while full works; reopening on a disk with no byte left either works or
    fails cleanly (it must write a new MANIFEST); once space is freed the DB opens
    intact, so a failed open must leave nothing behind that a later open trips on."""
    cfg = {
        "mechanism": "tmpfs",
        "expect": "ENOSPC",
        "db": str(small_fs / "db"),
        "filler": str(small_fs / "filler"),
        "workers": 0,
        "fsync": "everysec",
        "reopen_while_full": True,
    }
    report = run_child(cfg)
    assert report["failed_batches"] >= 1, report


def test_file_size_limit_raises_then_db_recovers(tmp_path: Path) -> None:
    """Same scenario with RLIMIT_FSIZE: needs no privileges, so it runs everywhere."""
    cfg = {
        "mechanism": "rlimit",
        "expect": "EFBIG",
        "db": str(tmp_path / "db"),
        "workers": 0,
        "fsync": "everysec",
        "reopen_while_full": False,
    }
    report = run_child(cfg)
    assert report["failed_batches"] >= 1 and report["acked_batches"] > 10, report


if __name__ == "__main__":
    _main()
