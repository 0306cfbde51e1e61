"""Worker processes that run flush and compaction jobs on the other core(s).

Each worker is `python -m shalekv.engine.worker_main`, fed JSON requests over its
stdin and answering on stdout (length-prefixed). A plain subprocess, not
multiprocessing: nothing re-imports the user's __main__, and the messages are data,
never pickles. One pool per process, shared by every open DB, started lazily.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

_LEN = struct.Struct("<Q")


class WorkerDied(RuntimeError):
    """The worker process exited mid-job (killed, out of memory)."""


class JobError(RuntimeError):
    """The job raised in the worker; carries the remote error type and text."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {message}")


def send(stream: IO[bytes], obj: Any) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (n,) = _LEN.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return json.loads(data)


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shalekv.engine.worker_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def call(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            send(self.proc.stdin, {"job": name, "spec": spec})
            reply = receive(self.proc.stdout)
        except (EOFError, BrokenPipeError, OSError):
            self.kill()
            raise WorkerDied(f"worker {self.proc.pid} exited with {self.proc.poll()}") from None
        if "error" in reply:
            if reply.get("errno") is not None:
                raise OSError(reply["errno"], reply.get("message", ""))
            raise JobError(reply["error"], reply.get("message", ""))
        return reply["result"]  # type: ignore[no-any-return]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for s in (self.proc.stdin, self.proc.stdout):
            if s is not None:
                s.close()


class _Pool:
    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def call(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(2):
            with self._lock:
                w = self._idle.pop() if self._idle else None
            if w is None or not w.alive():
                w = _Worker()
            try:
                result = w.call(name, spec)
            except WorkerDied:
                if attempt:
                    raise
                continue
            except BaseException:
                self._give_back(w)
                raise
            self._give_back(w)
            return result
        raise AssertionError("unreachable")

    def _give_back(self, w: _Worker) -> None:
        with self._lock:
            self._idle.append(w)

    def shutdown(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for w in idle:
            try:
                if w.proc.stdin is not None:
                    w.proc.stdin.close()
                w.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            w.kill()


_pool = _Pool()


def run(
    fn: Callable[[dict[str, Any]], dict[str, Any]], spec: dict[str, Any], workers: int
) -> dict[str, Any]:
    """Run a job function of shalekv.engine.jobs on spec, in a worker process (or
    inline when workers == 0), and wait for its result."""
    if workers <= 0:
        # Round-trip through JSON so both modes hand the installer the same shapes.
        return json.loads(json.dumps(fn(json.loads(json.dumps(spec)))))  # type: ignore[no-any-return]
    return _pool.call(fn.__name__, spec)


def shutdown() -> None:
    """Stop idle workers (tests, interpreter exit)."""
    _pool.shutdown()


import atexit  # noqa: E402

atexit.register(shutdown)
