"""Crash safety: a writer process (tests/engine/crash_writer.py) is killed with SIGKILL,
at random moments over many rounds and at chosen crash points (mid-flush,
mid-compaction, mid-MANIFEST write, mid-open). After every kill the reopened DB must
hold every acknowledged write, and the one write that may have been in flight must be
there entirely or not at all: the recovered contents equal the reference model after
the last acknowledged step, or after the step that followed it.

Each round continues on the crashed files themselves (the next writer recovers them);
the check runs on a copy, so crashes pile up the way they would in production.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shalekv.engine import DB
from tests.engine import crash_writer as cw

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses process groups and /proc"
)

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(cw.__file__).resolve()
Model = dict[bytes, bytes]


# ---------------------------------------------------------------------- the writer


def _group_alive(pgid: int) -> list[int]:
    """Pids of live (not zombie) processes in process group pgid."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(name))
    return pids


class Writer:
    """One crash_writer.py process, leader of its own process group (its flush and
    compaction worker joins the group), stdout collected line by line."""

    def __init__(self, db_path: Path, log_path: Path, seed: int, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self.log_path = log_path
        self.seed = seed
        self.args = args
        self.lines: list[str] = []
        self.returncode: int | None = None
        self._eof = False
        self._cv = threading.Condition()
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(WRITER), str(db_path), "--seed", str(seed), *args],
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO,
                env=env,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):
                break  # a line the kill cut short is not an acknowledgment
            with self._cv:
                self.lines.append(raw.decode().rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    def wait_for(self, pred: Callable[[list[str]], bool], timeout: float) -> bool:
        """Wait until pred(lines) holds or the writer's output ends; return pred."""
        with self._cv:
            self._cv.wait_for(lambda: self._eof or pred(self.lines), timeout)
            return pred(self.lines)

    def kill(self) -> None:
        """SIGKILL the whole group (writer and worker), then reap. No-op once reaped."""
        if self.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.finish()

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the writer to exit and its whole group to be gone."""
        if self.returncode is None:
            try:
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.returncode = self.proc.wait()
                raise AssertionError(
                    f"writer did not exit within {timeout}s{self.context()}"
                ) from None
            finally:
                self._reader.join(10)
                if self.proc.stdout is not None:
                    self.proc.stdout.close()
            deadline = time.monotonic() + 10
            while (left := _group_alive(self.proc.pid)) and time.monotonic() < deadline:
                time.sleep(0.02)
            if left:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise AssertionError(f"processes {left} of the writer's group outlived it")
        return self.returncode

    @property
    def acked(self) -> int:
        """Index of the last acknowledged step (-1: none). Steps run one at a time."""
        acks = [int(line[2:]) for line in self.lines if line.startswith("A ")]
        assert acks == list(range(len(acks))), "acknowledgments out of order"
        return len(acks) - 1

    def count(self, line: str) -> int:
        return sum(1 for x in self.lines if x == line)

    def context(self) -> str:
        with open(self.log_path, errors="replace") as f:
            err = f.read()[-3000:]
        return (
            f"\nwriter seed={self.seed} args={list(self.args)} rc={self.returncode} "
            f"acked={sum(1 for x in self.lines if x.startswith('A '))} "
            f"tail={self.lines[-3:]}\nstderr tail:\n{err}"
        )

    def assert_no_errors(self) -> None:
        errors = [x for x in self.lines if x.startswith("E ")]
        assert not errors, f"a write or compaction raised in the writer: {errors}{self.context()}"


# ---------------------------------------------------------------------- the model


def expected_states(model: Model, seed: int, acked: int, in_flight: int = 1) -> list[Model]:
    """[model after every acknowledged step, then after 1 .. in_flight more steps]: a
    crash keeps a prefix of the steps not yet acknowledged (one, or with a deferred WAL
    up to a group's worth)."""
    gen = cw.steps(seed)
    done = dict(model)
    for _ in range(acked + 1):
        cw.apply_ops(done, next(gen)[1])
    states = [dict(done)]
    for _ in range(in_flight):
        cw.apply_ops(done, next(gen)[1])
        states.append(dict(done))
    return states


def _tag(value: bytes | None) -> str:
    return "absent" if value is None else value.split(b":", 1)[0].decode()


def _diff(state: Model, want: Model) -> str:
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    wrong = [k for k in want if k in state and state[k] != want[k]]
    lines = [f"{len(missing)} missing, {len(extra)} unexpected, {len(wrong)} wrong values"]
    for k in (missing[:5] + extra[:5] + wrong[:5])[:12]:
        lines.append(f"  {k.decode()}: DB has {_tag(state.get(k))}, expected {_tag(want.get(k))}")
    return "\n".join(lines)


def check_db(db_path: Path, candidates: list[Model], context: str) -> Model:
    """Open db_path and require its contents to equal one candidate (by iteration in
    both directions and by point reads), then flush and require no background error.
    Returns the candidate found."""
    with DB.open(db_path, compaction_workers=0, **cw.DB_OPTIONS) as db:
        items = list(db.items())
        keys = [k for k, _ in items]
        assert keys == sorted(set(keys)), f"iteration out of order or repeated{context}"
        state = dict(items)
        match = next((c for c in candidates if c == state), None)
        if match is None:
            pytest.fail(
                "recovered DB matches neither the acknowledged state nor that plus the "
                f"write in flight; against the acknowledged state: {_diff(state, candidates[0])}"
                f"{context}"
            )
        assert list(db.items(reverse=True)) == items[::-1], f"reverse iteration differs{context}"
        wrong = [i for i in range(cw.NUM_KEYS) if db.get(cw.key(i)) != match.get(cw.key(i))]
        assert not wrong, f"get() disagrees with items() for {wrong[:5]}{context}"
        db.flush()
        assert db.stats()["background_error"] is None, context
        assert dict(db.items()) == match, f"contents changed by a flush{context}"
    return match


def check_crashed(db_path: Path, scratch: Path, candidates: list[Model], context: str) -> Model:
    """check_db on a copy of the crashed files: the original is left for the next
    writer to recover by itself. (A writer killed early may not have created it yet.)"""
    if db_path.exists():
        shutil.copytree(db_path, scratch)
    try:
        return check_db(scratch, candidates, context)
    finally:
        shutil.rmtree(scratch)


def _kill_rounds(
    tmp_path: Path, seed: int, rounds: list[tuple[str, ...]], wait: Callable[[Writer, int], object]
) -> list[Writer]:
    """Run one writer per round on the same DB; wait(writer, round) returns when it is
    time to SIGKILL it. After each kill check the recovered contents."""
    db_path = tmp_path / "db"
    model: Model = {}
    done: list[Writer] = []
    for r, args in enumerate(rounds):
        w = Writer(db_path, tmp_path / f"writer{r}.log", seed * 100 + r, *args)
        try:
            wait(w, r)
        finally:
            w.kill()
        done.append(w)
        context = f"\nround {r}, step {w.acked + 1} was in flight{w.context()}"
        w.assert_no_errors()
        assert w.returncode == -signal.SIGKILL, f"writer exited by itself{context}"
        in_flight = int(args[args.index("--defer") + 1]) if "--defer" in args else 1
        candidates = expected_states(model, w.seed, w.acked, in_flight)
        model = check_crashed(db_path, tmp_path / "check", candidates, context)
    # The original files, recovered once more by this process, agree too.
    check_db(db_path, [model], "\nfinal reopen of the crashed directory itself")
    return done


def _never(_lines: list[str]) -> bool:
    return False


def _random_kill(rng: random.Random) -> Callable[[Writer, int], object]:
    """Every third kill lands early, during startup and recovery of the previous crash
    (timed from the spawn); the others while writes, flushes and compactions run
    (timed from the first acknowledgment)."""

    def wait(w: Writer, r: int) -> None:
        if r % 3 == 0:
            w.wait_for(_never, rng.uniform(0.05, 0.4))
        else:
            w.wait_for(bool, 30)
            w.wait_for(_never, rng.uniform(0.05, 1.3))

    return wait


# ---------------------------------------------------------------------- random kills


def test_sigkill_at_random_moments_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """fsync=always, flush and compaction in a worker process. Kills land anywhere:
    during startup and recovery, mid-write, mid-flush, mid-compaction."""
    _kill_rounds(tmp_path, 71, [("--fsync", "always")] * 12, _random_kill(random.Random(71)))


def test_sigkill_without_fsync_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """fsync=no and everysec: the WAL record reaches the OS before a write returns, so
    killing the process (not the machine) loses nothing acknowledged."""
    rounds = [("--fsync", "no"), ("--fsync", "everysec")] * 3
    _kill_rounds(tmp_path, 72, rounds, _random_kill(random.Random(72)))


def test_sigkill_with_deferred_wal_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """The server's mode (DB.defer_wal): steps are acknowledged in groups, after one
    write_wal(); a kill keeps every acknowledged step and a prefix of the group in
    flight, never a gap."""
    rounds = [("--defer", "8", "--fsync", f) for f in ("always", "no", "everysec")] * 2
    _kill_rounds(tmp_path, 74, rounds, _random_kill(random.Random(74)))


def test_sigkill_during_explicit_compact(tmp_path: Path) -> None:
    """The writer calls db.compact() between bursts of writes; each kill comes soon
    after a compact() started, mostly while it runs."""
    rng = random.Random(73)

    def kill_after_a_compact_starts(w: Writer, _r: int) -> None:
        nth = rng.randint(1, 2)
        started = w.wait_for(lambda lines: lines.count("C") >= nth, 30)
        assert started, f"no compaction started{w.context()}"
        time.sleep(rng.uniform(0.0, 0.05))

    rounds = [("--mode", "compact", "--fsync", "always")] * 5
    writers = _kill_rounds(tmp_path, 73, rounds, kill_after_a_compact_starts)
    # Guards the test's own power: a compaction takes far longer than the write of
    # the "C" line, so some of the five kills must land inside one.
    assert any(w.count("C") > w.count("D") for w in writers), "no kill landed in compact()"


def test_sigkill_while_compact_runs_beside_a_writer(tmp_path: Path) -> None:
    """DB is documented thread-safe: one thread writes (fsync=always) while another
    loops db.compact() (which seals the memtable). Kills at random moments."""
    rounds = [("--mode", "concurrent", "--fsync", "always")] * 4
    _kill_rounds(tmp_path, 74, rounds, _random_kill(random.Random(74)))


# ---------------------------------------------------------------------- crash points

CRASH_POINTS = [
    # (crash point:Nth hit, compaction_workers, extra writer arguments)
    ("flush-before-install:3", "1", ()),
    ("compaction-before-install:2", "1", ()),
    ("compaction-mid-output:6", "0", ()),
    ("blob-mid-write:3", "0", ()),
    ("manifest-edit-sync:4", "1", ("--arm-after", "100")),
    ("obsolete-file-unlink:2", "1", ()),
    ("wal-segment-created:3", "1", ()),
    ("open-before-current:1", "1", ("--arm-after", "150", "--reopen-every", "150")),
]


@pytest.mark.parametrize(
    "point, workers, extra", CRASH_POINTS, ids=[p.split(":")[0] for p, _, _ in CRASH_POINTS]
)
def test_crash_point_recovers(
    tmp_path: Path, point: str, workers: str, extra: tuple[str, ...]
) -> None:
    """The writer SIGKILLs its own process group at a chosen moment. The recovered DB
    holds every acknowledged write; then a new writer recovers the crashed files
    itself, writes on and closes cleanly, and the DB holds all of that too."""
    db_path = tmp_path / "db"
    seed = 7500 + [p for p, _, _ in CRASH_POINTS].index(point)
    w = Writer(
        db_path,
        tmp_path / "crash.log",
        seed,
        "--crash-at",
        point,
        "--workers",
        workers,
        "--max-steps",
        "20000",
        *extra,
    )
    try:
        w.finish()
    finally:
        w.kill()
    context = w.context()
    w.assert_no_errors()
    name = point.split(":")[0]
    assert w.returncode == -signal.SIGKILL and f"X {name}" in w.lines, (
        f"crash point {point} never fired{context}"
    )
    model = check_crashed(
        db_path, tmp_path / "check", list(expected_states({}, seed, w.acked)), context
    )

    after = Writer(db_path, tmp_path / "after.log", seed + 1, "--max-steps", "200")
    try:
        after.finish()
    finally:
        after.kill()
    context = f"\nwriter after the crash{after.context()}"
    after.assert_no_errors()
    assert after.returncode == 0 and after.acked == 199, f"writer failed{context}"
    check_db(db_path, [expected_states(model, after.seed, after.acked)[0]], context)
