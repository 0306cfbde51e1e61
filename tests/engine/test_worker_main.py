"""The worker process's own protocol edge: the DB's process gone mid-job."""

from __future__ import annotations

import subprocess
import sys

from shalekv.engine.workers import _LEN


def test_worker_exits_quietly_when_the_parent_is_gone() -> None:
    """An application that exits without close() while a job runs leaves its worker
    unable to answer: the worker must exit cleanly, not print a BrokenPipeError."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "shalekv.engine.worker_main"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.close()  # the parent went away: nobody reads the answer
    msg = b'{"job":"run_flush","spec":{}}'  # a job that fails: its error reply is sent
    proc.stdin.write(_LEN.pack(len(msg)) + msg)
    proc.stdin.close()
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 0, err
    assert b"KeyError" in err or b"TypeError" in err, err  # the job's own failure is shown
    assert b"BrokenPipeError" not in err, err
