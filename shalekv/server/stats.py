"""Counters INFO and /metrics report: commands, errors, connections, throughput."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from shalekv.commands.registry import Command

if TYPE_CHECKING:
    from shalekv.server.app import Server


class CommandStats:
    __slots__ = ("calls", "usec", "rejected", "failed")

    def __init__(self) -> None:
        self.calls = 0
        self.usec = 0.0
        self.rejected = 0
        self.failed = 0


class Stats:
    def __init__(self) -> None:
        self.commands: dict[str, CommandStats] = {}
        self.errors: dict[str, int] = {}  # errorstats: by the error's first word
        self.total_commands = 0
        self.connections_received = 0
        self.rejected_connections = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self._samples: deque[tuple[float, int]] = deque(maxlen=16)

    def _of(self, name: str) -> CommandStats:
        s = self.commands.get(name)
        if s is None:
            s = self.commands[name] = CommandStats()
        return s

    def called(self, cmd: Command, ns: int, failed: bool) -> None:
        s = self.commands.get(cmd.name)
        if s is None:
            s = self._of(cmd.name)
        s.calls += 1
        s.usec += ns / 1000
        self.total_commands += 1
        if failed:
            s.failed += 1

    def rejected(self, cmd: Command | None, e: Exception) -> None:
        if cmd is not None:
            self._of(cmd.name).rejected += 1
        self.error(e)

    def error(self, e: Exception) -> None:
        prefix = getattr(e, "err_prefix", "ERR ")
        code = prefix.strip() or str(e).split(" ", 1)[0]
        self.errors[code] = self.errors.get(code, 0) + 1

    def sample(self, server: Server) -> None:
        self._samples.append((time.monotonic(), self.total_commands))

    def ops_per_sec(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.commands.clear()
        self.errors.clear()
        self.total_commands = 0
        self.connections_received = 0
        self.rejected_connections = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            name: {"calls": s.calls, "usec": s.usec, "rejected": s.rejected, "failed": s.failed}
            for name, s in self.commands.items()
        }
