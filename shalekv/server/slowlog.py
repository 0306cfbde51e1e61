"""The slow log (Redis's slowlog.c): commands slower than slowlog-log-slower-than
microseconds, newest first, at most slowlog-max-len entries, recorded by an after_call
hook from the duration the server measured around the handler."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from shalekv.commands.registry import Command

if TYPE_CHECKING:
    from shalekv.server.app import Server
    from shalekv.server.client import Client

# As slowlog.h: SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
MAX_ARGC = 32
MAX_STRING = 128
REDACTED = b"(redacted)"


def trim_args(args: list[bytes]) -> list[bytes]:
    """The arguments as slowlogCreateEntry stores them: at most 32 (the last one saying
    how many more there were), each at most 128 bytes plus '... (N more bytes)'."""
    n = min(len(args), MAX_ARGC)
    out = []
    for j in range(n):
        if n != len(args) and j == n - 1:
            out.append(b"... (%d more arguments)" % (len(args) - n + 1))
            break
        a = args[j]
        if len(a) > MAX_STRING:
            a = a[:MAX_STRING] + b"... (%d more bytes)" % (len(a) - MAX_STRING)
        out.append(a)
    return out


def redact(cmd: Command, args: list[bytes]) -> list[bytes]:
    """Passwords never reach the log: Redis 7 redacts AUTH's arguments and HELLO's AUTH
    pair (redactClientCommandArgument)."""
    if cmd.name == "auth":
        return [args[0], *([REDACTED] * (len(args) - 1))]
    if cmd.name == "hello":
        out = list(args)
        for i in range(2, len(out) - 2):
            if out[i].upper() == b"AUTH":
                out[i + 1] = out[i + 2] = REDACTED
                break
        return out
    return args


class SlowLog:
    def __init__(self, server: Server, parked: set[int]) -> None:
        self.server = server
        self.parked = parked  # clients whose current call is parked by CLIENT PAUSE
        self.entries: deque[list[object]] = deque()
        self.next_id = 0
        self.min_ns = self._min_ns(server.config["slowlog-log-slower-than"])

    @staticmethod
    def _min_ns(usec: int) -> float:
        return usec * 1000 if usec >= 0 else float("inf")  # negative: disabled

    def on_config(self, name: str, value: object) -> None:
        if name == "slowlog-log-slower-than":
            self.min_ns = self._min_ns(int(value))  # type: ignore[call-overload]
        elif name == "slowlog-max-len":
            self.trim(int(value))  # type: ignore[call-overload]

    def after_call(self, c: Client, cmd: Command, args: list[bytes], ns: int, failed: bool) -> None:
        # On every command: one comparison unless the command is slow.
        if ns < self.min_ns or "skip_slowlog" in cmd.flags:
            return
        if self.parked and c.id in self.parked:
            return
        entry: list[object] = [
            self.next_id,
            int(time.time()),
            ns // 1000,
            trim_args(redact(cmd, args)),
            c.addr.encode(),
            c.name or b"",
        ]
        self.next_id += 1
        self.entries.appendleft(entry)
        self.trim(self.server.config["slowlog-max-len"])

    def trim(self, max_len: int) -> None:
        while len(self.entries) > max_len:
            self.entries.pop()

    def get(self, count: int) -> list[list[object]]:
        """Newest first; count -1 means all."""
        if count < 0 or count >= len(self.entries):
            return list(self.entries)
        return [self.entries[i] for i in range(count)]

    def reset(self) -> None:
        self.entries.clear()


def install(server: Server, parked: set[int]) -> SlowLog:
    log = SlowLog(server, parked)
    server.extensions["slowlog"] = log
    server.add_hook(log.after_call)
    server.config.listeners.append(log.on_config)
    return log
