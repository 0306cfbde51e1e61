"""The writer process that tests/engine/test_crash.py kills: it applies a deterministic
workload to a DB and reports every acknowledged write on stdout, until it dies.

The workload is a pure function of the seed, so the parent rebuilds exactly what each
acknowledged step wrote (and what the one step in flight would have written). Every
output line is one unbuffered write() to the pipe, so a line printed before a SIGKILL
always reaches the parent:

  A <i>       step i returned (is acknowledged)
  C / D       a db.compact() starts / returns
  E <text>    a write or compaction raised; the process then exits with status 2
  X <point>   a crash point fired; SIGKILL to the process group follows

Run as `python crash_writer.py DB_DIR --seed N [options]` (see main()).
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from shalekv.engine import DB, WriteBatch, blob, jobs, version
from shalekv.engine.log_format import LogWriter
from shalekv.engine.sstable import SSTableWriter

NUM_KEYS = 4000
"""Keys are key(0) .. key(NUM_KEYS - 1): a bounded space, so writes overwrite and
delete what earlier rounds wrote."""

DB_OPTIONS: dict[str, Any] = {
    # Tiny sizes so that a second of writes runs dozens of flushes and compactions
    # through every level, with blob files and blob GC.
    "memtable_size": 32 << 10,
    "target_file_size": 32 << 10,
    "level_base_size": 128 << 10,
    "blob_threshold": 2 << 10,
}

# ("put", key, value) | ("delete", key, None) | ("range", start, end): delete [start, end)
Op = tuple[str, bytes, bytes | None]
# (kind, ops): kind is "batch", "put", "delete" or "range", the API call that runs it
Step = tuple[str, list[Op]]


def key(i: int) -> bytes:
    return b"key%05d" % i


def _value(rng: random.Random, tag: bytes) -> bytes:
    # Incompressible, so tables reach their target sizes; 1 in 20 goes to a blob file.
    size = 3000 if rng.random() < 0.05 else rng.randint(16, 200)
    return tag + b":" + rng.randbytes(size)


def _range(rng: random.Random) -> Op:
    start = rng.randrange(NUM_KEYS)
    return ("range", key(start), key(start + rng.randint(1, 30)))


def steps(seed: int) -> Iterator[Step]:
    """The workload of one writer process: batches of 2-6 updates (puts, overwrites,
    deletes, now and then a range deletion), single puts, deletes, range deletions.
    Each value names its seed, step and position, so any mix-up shows."""
    rng = random.Random(seed)
    i = 0
    while True:
        r = rng.random()
        if r < 0.55:
            ops: list[Op] = []
            for j in range(rng.randint(2, 6)):
                p = rng.random()
                if p < 0.8:
                    tag = b"%d/%d/%d" % (seed, i, j)
                    ops.append(("put", key(rng.randrange(NUM_KEYS)), _value(rng, tag)))
                elif p < 0.96:
                    ops.append(("delete", key(rng.randrange(NUM_KEYS)), None))
                else:
                    ops.append(_range(rng))
            yield "batch", ops
        elif r < 0.85:
            tag = b"%d/%d" % (seed, i)
            yield "put", [("put", key(rng.randrange(NUM_KEYS)), _value(rng, tag))]
        elif r < 0.95:
            yield "delete", [("delete", key(rng.randrange(NUM_KEYS)), None)]
        else:
            yield "range", [_range(rng)]
        i += 1


def apply_ops(model: dict[bytes, bytes], ops: list[Op]) -> None:
    """What the ops do to a plain dict: the reference the DB is compared with."""
    for kind, a, b in ops:
        if kind == "put":
            assert b is not None
            model[a] = b
        elif kind == "delete":
            model.pop(a, None)
        else:
            assert b is not None
            for k in [k for k in model if a <= k < b]:
                del model[k]


def execute(db: DB, step: Step) -> None:
    """Run one step through the API call its kind names (each takes its own path)."""
    kind, ops = step
    if kind == "put":
        db.put(ops[0][1], ops[0][2])  # type: ignore[arg-type]
    elif kind == "delete":
        db.delete(ops[0][1])
    elif kind == "range":
        db.delete_range(ops[0][1], ops[0][2])  # type: ignore[arg-type]
    else:
        batch = WriteBatch()
        for op, a, b in ops:
            if op == "put":
                batch.put(a, b)  # type: ignore[arg-type]
            elif op == "delete":
                batch.delete(a)
            else:
                batch.delete_range(a, b)  # type: ignore[arg-type]
        db.write(batch)


def emit(line: str) -> None:
    os.write(1, line.encode() + b"\n")


# ------------------------------------------------------------------ crash points


class _Arm:
    """Crash points count hits only once armed (after --arm-after steps)."""

    armed = False
    compaction_thread: int | None = None  # the thread running a compaction job now


def _die(point: str) -> None:
    emit(f"X {point}")
    # The whole group: the writer and its flush/compaction worker die together, as in
    # a machine crash (and nothing outlives the test).
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _hook(
    owner: Any, name: str, point: str, nth: int, when: str, pred: Callable[..., bool]
) -> None:
    """Replace owner.name with a wrapper that kills the process group on the nth armed
    call that satisfies pred, before or after the original runs."""
    original = getattr(owner, name)
    hits = 0

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal hits
        fire = False
        if _Arm.armed and pred(*args, **kwargs):
            hits += 1
            fire = hits == nth
        if fire and when == "before":
            _die(point)
        result = original(*args, **kwargs)
        if fire:
            _die(point)
        return result

    setattr(owner, name, wrapper)


def _always(*_a: Any, **_k: Any) -> bool:
    return True


def _in_compaction(*_a: Any, **_k: Any) -> bool:
    # Flush jobs run at the same time in another thread: count this thread's only.
    return _Arm.compaction_thread == threading.get_ident()


def _manifest_writer(self: LogWriter, *_a: Any) -> bool:
    return os.path.basename(self.path).startswith("MANIFEST-")


def _wal_path(_self: LogWriter, path: str, *_a: Any, **_k: Any) -> bool:
    return os.path.basename(os.path.dirname(path)) == "wal"


def _track_compaction() -> None:
    run = jobs.run_compaction

    @functools.wraps(run)
    def tracked(spec: dict[str, Any]) -> dict[str, Any]:
        _Arm.compaction_thread = threading.get_ident()
        try:
            return run(spec)
        finally:
            _Arm.compaction_thread = None

    jobs.run_compaction = tracked  # type: ignore[assignment]


# name -> (object, attribute, before/after, predicate, runs in the job (needs workers=0))
CRASH_POINTS: dict[str, tuple[Any, str, str, Callable[..., bool], bool]] = {
    # A flush job wrote and synced its table; the MANIFEST does not name it yet.
    "flush-before-install": (DB, "_install_flush", "before", _always, False),
    # A compaction wrote all its outputs; the MANIFEST still lists its inputs.
    "compaction-before-install": (DB, "_install_compaction", "before", _always, False),
    # A compaction is writing a data block of an output table (partial file on disk).
    "compaction-mid-output": (SSTableWriter, "_flush_block", "before", _in_compaction, True),
    # A job is appending to a blob file (a partial file without its footer).
    "blob-mid-write": (blob.BlobWriter, "add", "before", _always, True),
    # A MANIFEST edit is written (so the OS has it) and being fsynced; the new version
    # is not installed in memory and no obsolete file is deleted yet.
    "manifest-edit-sync": (LogWriter, "sync", "before", _manifest_writer, False),
    # An edit is installed and obsolete tables/blobs are being unlinked.
    "obsolete-file-unlink": (DB, "_unlink_data_file", "after", _always, False),
    # A full memtable is being sealed: its next WAL segment was just created.
    "wal-segment-created": (LogWriter, "__init__", "after", _wal_path, False),
    # DB.open wrote its fresh MANIFEST and is about to point CURRENT at it.
    "open-before-current": (version, "set_current", "before", _always, False),
}


def install_crash_point(spec: str, workers: int) -> None:
    name, _, nth = spec.partition(":")
    owner, attr, when, pred, in_job = CRASH_POINTS[name]
    if in_job and workers != 0:
        raise SystemExit(f"crash point {name} runs inside a job: needs --workers 0")
    if os.getpgrp() != os.getpid():
        raise SystemExit("crash points kill the process group: start me in a new session")
    if in_job:
        _track_compaction()
    _hook(owner, attr, name, int(nth or 1), when, pred)


# ------------------------------------------------------------------ main


def _write_loop(args: argparse.Namespace, db_box: list[DB], stop: threading.Event) -> None:
    burst = random.Random(args.seed + 1)
    next_compact = burst.randint(30, 150)
    unacked: list[int] = []  # --defer: steps run whose WAL records may be in memory only
    group_end = burst.randint(1, max(1, args.defer))
    for i, step in enumerate(steps(args.seed)):
        if stop.is_set() or (args.max_steps and i >= args.max_steps):
            return
        if i == args.arm_after:
            _Arm.armed = True
        if args.reopen_every and i and i % args.reopen_every == 0:
            db_box[0].close()
            db_box[0] = _open(args)
        try:
            execute(db_box[0], step)
            if args.defer:  # acknowledge the group once its WAL records are written
                unacked.append(i)
                if len(unacked) >= group_end:
                    db_box[0].write_wal()
                    for j in unacked:
                        emit(f"A {j}")
                    unacked.clear()
                    group_end = burst.randint(1, args.defer)
                continue
        except Exception as e:
            emit(f"E step {i}: {e!r}")
            raise
        emit(f"A {i}")
        if args.mode == "compact" and i + 1 == next_compact:
            _compact(db_box[0])
            next_compact += burst.randint(30, 150)


def _compact(db: DB) -> None:
    emit("C")
    try:
        db.compact()
    except Exception as e:
        emit(f"E compact: {e!r}")
        raise
    emit("D")


def _open(args: argparse.Namespace) -> DB:
    db = DB.open(args.path, fsync=args.fsync, compaction_workers=args.workers, **DB_OPTIONS)
    if args.defer:
        db.defer_wal()
    return db


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("path")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--fsync", default="always")
    p.add_argument("--workers", type=int, default=1, help="compaction_workers")
    p.add_argument(
        "--mode",
        choices=("plain", "compact", "concurrent"),
        default="plain",
        help="compact: db.compact() between bursts of writes; concurrent: db.compact() "
        "in a loop in a second thread while the first writes",
    )
    p.add_argument("--crash-at", help="POINT[:N]: SIGKILL the group at its Nth armed hit")
    p.add_argument("--arm-after", type=int, default=0, help="steps before crash points count")
    p.add_argument("--reopen-every", type=int, default=0, help="close and reopen every N steps")
    p.add_argument("--max-steps", type=int, default=0, help="then close and exit 0")
    p.add_argument(
        "--defer", type=int, default=0, help="DB.defer_wal(); write_wal() every 1..N steps"
    )
    args = p.parse_args(argv)
    if args.crash_at:
        install_crash_point(args.crash_at, args.workers)
    _Arm.armed = args.arm_after == 0
    db_box = [_open(args)]
    stop = threading.Event()
    if args.mode != "concurrent":
        _write_loop(args, db_box, stop)
    else:
        failed: list[BaseException] = []

        def writer() -> None:
            try:
                _write_loop(args, db_box, stop)
            except BaseException as e:  # noqa: BLE001 - reported by exiting with status 2
                traceback.print_exc()
                failed.append(e)
            stop.set()

        t = threading.Thread(target=writer, name="crash-writer")
        t.start()
        pause = random.Random(args.seed + 2)
        while not stop.wait(pause.uniform(0.0, 0.05)):
            _compact(db_box[0])
        t.join()
        if failed:
            os._exit(2)  # leave the files as the failure left them
    db_box[0].close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        os._exit(2)  # skip atexit/DB cleanup: the state on disk is what the parent checks
