"""Server administration: SHUTDOWN, TIME, LASTSAVE, SAVE/BGSAVE, WAIT."""

from __future__ import annotations

import os
import shutil
import time

from shalekv.commands.registry import OK, command, syntax
from shalekv.commands.reply import Status
from shalekv.server.client import NO_REPLY, Client
from shalekv.server.commands.table import SERVER
from shalekv.types.numbers import parse_int


@command(
    "shutdown", -1, "admin noscript loading stale no_multi allow_busy no_txn", 0, 0, 0, table=SERVER
)
def shutdown(c: Client, a: list[bytes]) -> object:
    for opt in a[1:]:
        if opt.upper() not in (b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"):
            raise syntax()
    # As Redis: no reply on success; the connection closes as the server stops.
    c.server.request_stop()
    return NO_REPLY


@command("time", 1, "random loading stale fast no_txn", 0, 0, 0, table=SERVER)
def time_(c: Client, a: list[bytes]) -> list[bytes]:
    ns = time.time_ns()
    return [b"%d" % (ns // 1_000_000_000), b"%d" % (ns // 1000 % 1_000_000)]


@command("lastsave", 1, "random loading stale fast no_txn", 0, 0, 0, table=SERVER)
def lastsave(c: Client, a: list[bytes]) -> int:
    return c.server.last_save


def checkpoint(c: Client) -> str:
    """Make `<dir>/checkpoint` a fresh engine checkpoint (hard links: cheap), replacing
    the previous one only once the new one is complete."""
    base = os.path.join(c.server.config["dir"], "checkpoint")
    tmp = base + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    c.store.engine.checkpoint(tmp)
    old = base + ".old"
    if os.path.exists(base):
        os.replace(base, old)
    os.replace(tmp, base)
    shutil.rmtree(old, ignore_errors=True)
    c.server.last_save = int(time.time())
    c.server.extensions["last_checkpoint"] = {"path": base, "time": c.server.last_save}
    return base


@command("save", 1, "admin noscript no_async_loading no_multi no_txn", 0, 0, 0, table=SERVER)
def save(c: Client, a: list[bytes]) -> Status:
    checkpoint(c)
    return OK


@command("bgsave", -1, "admin noscript no_async_loading no_txn", 0, 0, 0, table=SERVER)
def bgsave(c: Client, a: list[bytes]) -> Status:
    if len(a) > 2 or (len(a) == 2 and a[1].upper() != b"SCHEDULE"):
        raise syntax()
    # A checkpoint is hard links plus a memtable flush: done in the command itself.
    checkpoint(c)
    return Status(b"Background saving started")


@command("wait", 3, "noscript no_txn", 0, 0, 0, table=SERVER)
def wait(c: Client, a: list[bytes]) -> int:
    parse_int(a[1])
    if parse_int(a[2]) < 0:
        from shalekv.errors import ResponseError

        raise ResponseError("timeout is negative")
    return 0  # no replicas until replication exists
