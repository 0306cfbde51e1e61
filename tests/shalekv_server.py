"""Start `shalekv server` as a subprocess on a free port; stop it by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.redis_server import free_port


@dataclass
class ServerProcess:
    port: int
    dir: str
    proc: subprocess.Popen[bytes]
    log: str
    args: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send sig and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log_text(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()


def start_server(data_dir: str, *extra: str, port: int | None = None) -> ServerProcess:
    """Start a server (not waiting for anything but its port to accept)."""
    port = port or free_port()
    log = os.path.join(os.path.dirname(os.path.abspath(data_dir)), f"server-{port}.log")
    args = [
        sys.executable, "-m", "shalekv.cli.main", "server",
        "--port", str(port), "--dir", data_dir, "--compaction-workers", "0", *extra,
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    sp = ServerProcess(port, data_dir, proc, log, args)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sp
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                raise RuntimeError("shalekv server did not start:\n" + sp.log_text()) from None
            time.sleep(0.02)


@contextmanager
def shalekv_server(data_dir: str, *extra: str) -> Iterator[ServerProcess]:
    sp = start_server(data_dir, *extra)
    try:
        yield sp
    finally:
        if sp.proc.poll() is None:
            sp.proc.kill()
            sp.proc.wait()
