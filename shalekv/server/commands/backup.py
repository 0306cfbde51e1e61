"""Online backups: BACKUP CREATE | LIST | STATUS (issue 6), as Kvrocks's BGSAVE-to-
backup-dir. The backup dir is a path on the server's host.

BACKUP CREATE runs the whole backup (the checkpoint, which flushes the memtable, and
the copy) in a background thread: the event loop never waits for a flush or a disk
copy, so other clients keep being served. The calling client is parked the way a
blocking pop is (its later pipelined requests wait) and gets the reply when the
backup is done; INFO persistence shows the progress meanwhile (`backup_in_progress`,
`backup_current_bytes` / `backup_total_bytes`) and the last result. One backup at a
time per server.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from shalekv.backup.engine import BackupEngine
from shalekv.backup.meta import BackupInfo
from shalekv.commands.registry import container, subcommand
from shalekv.errors import ResponseError, ShaleError
from shalekv.server.client import BLOCKED, Client
from shalekv.server.commands.table import SERVER, SERVER_INIT

if TYPE_CHECKING:
    from shalekv.server.app import Server

log = logging.getLogger("shalekv.server")

BACKUP = container("backup", SERVER, "admin noscript no_multi no_txn")
_FLAGS = "admin noscript no_multi no_txn"
_SHUTDOWN_WAIT_S = 60.0  # a stopping server waits this long for a running checkpoint


class BackupCancelled(ShaleError):
    """The server is stopping: the running backup is abandoned (its temp files are
    removed; the next create also cleans up whatever is left)."""


class BackupStatus:
    """The server's backup state (server.extensions["backup"]): written by the backup
    thread (plain attribute stores), read by INFO and BACKUP STATUS on the loop."""

    def __init__(self) -> None:
        self.in_progress = False
        self.stage = ""
        self.done = 0
        self.total = 0
        self.started = 0.0
        self.dir = ""
        self.cancel = False
        self.thread: threading.Thread | None = None
        self.last_status = "none"  # ok | err | none
        self.last_error = ""
        self.last_id = -1
        self.last_time = -1  # unix seconds of the last finished backup
        self.last_sequence = -1
        self.last_new_bytes = 0
        self.last_duration_ms = 0
        self.last_dir = ""

    def progress(self, stage: str, done: int, total: int) -> None:
        if self.cancel:
            raise BackupCancelled("server is shutting down")
        self.stage, self.done, self.total = stage, done, total

    def start(self, backup_dir: str) -> None:
        self.in_progress = True
        self.cancel = False
        self.stage, self.done, self.total = "checkpoint", 0, 0
        self.started = time.time()
        self.dir = backup_dir

    def finish(self, info: BackupInfo | None, error: BaseException | None) -> None:
        now = time.time()
        self.last_time = int(now)
        self.last_duration_ms = int((now - self.started) * 1000)
        self.last_dir = self.dir
        if info is not None:
            self.last_status = "ok"
            self.last_error = ""
            self.last_id = info.id
            self.last_sequence = info.sequence
            self.last_new_bytes = info.new_bytes
        else:
            self.last_status = "err"
            self.last_error = str(error)
        self.in_progress = False
        self.thread = None

    def info_fields(self) -> list[tuple[str, object]]:
        """INFO persistence lines."""
        return [
            ("backup_in_progress", int(self.in_progress)),
            ("backup_current_stage", self.stage if self.in_progress else ""),
            ("backup_current_bytes", self.done if self.in_progress else 0),
            ("backup_total_bytes", self.total if self.in_progress else 0),
            ("last_backup_status", self.last_status),
            ("last_backup_id", self.last_id),
            ("last_backup_time", self.last_time),
            ("last_backup_sequence", self.last_sequence),
            ("last_backup_new_bytes", self.last_new_bytes),
            ("last_backup_duration_ms", self.last_duration_ms),
            ("last_backup_dir", self.last_dir),
            ("last_backup_error", _one_line(self.last_error)),
        ]

    def stop(self) -> None:
        """on_close: cancel a running backup and wait for its thread, so the engine
        is not closed under a checkpoint."""
        t = self.thread
        if t is not None:
            self.cancel = True
            t.join(_SHUTDOWN_WAIT_S)


def _one_line(text: str) -> str:
    """An INFO value: one line, and no "," with "=" that clients would parse as a
    dict (redis-py's INFO parser does)."""
    return text.replace("\r", " ").replace("\n", " ").replace(",", ";")


def install(server: Server) -> None:
    """SERVER_INIT: per-server backup state, and its shutdown hook."""
    st = BackupStatus()
    server.extensions["backup"] = st
    server.extensions.setdefault("on_close", []).append(st.stop)


SERVER_INIT.append(install)


def status(server: Server) -> BackupStatus:
    st: BackupStatus = server.extensions["backup"]
    return st


def _backup_dir(arg: bytes) -> str:
    path = os.fsdecode(arg)
    if not os.path.isabs(path):
        raise ResponseError("backup dir must be an absolute path on the server's host")
    return path


def _info_reply(info: BackupInfo) -> list[object]:
    return [
        b"id", info.id,
        b"sequence", info.sequence,
        b"timestamp_ms", info.timestamp_ms,
        b"size", info.size,
        b"new_bytes", info.new_bytes,
        b"files", len(info.files),
    ]  # fmt: skip


@subcommand(BACKUP, "create", 3, _FLAGS)
def backup_create(c: Client, a: list[bytes]) -> object:
    """Take a backup into <backup-dir> (a path on the server's host) while clients
    keep writing; replies with the new backup's id and sequence number when done."""
    if c.in_exec:
        raise ResponseError("BACKUP CREATE is not allowed inside MULTI")
    path = _backup_dir(a[2])
    st = status(c.server)
    if st.in_progress:
        raise ResponseError(f"a backup is already in progress (into {st.dir})")
    st.start(path)
    engine = c.store.engine
    loop = c.server.loop

    def run() -> None:
        info: BackupInfo | None = None
        error: BaseException | None = None
        try:
            info = BackupEngine(path).create(engine, st.progress)
            reply: Any = _info_reply(info)
        except Exception as e:  # noqa: BLE001  # reported to the client and INFO, not lost
            error = e
            log.warning("BACKUP CREATE into %s failed: %s", path, e)
            reply = ResponseError(f"backup failed: {e}")
        st.finish(info, error)
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(_deliver, c, reply)
        except RuntimeError:  # the loop is closed: the server stopped meanwhile
            pass

    t = threading.Thread(target=run, name="shalekv-backup", daemon=True)
    st.thread = t
    t.start()
    return BLOCKED


def _deliver(c: Client, reply: Any) -> None:
    """On the loop: answer the parked client and run its pipelined requests."""
    if c.closing:
        return
    c.blocked = False
    if isinstance(reply, ResponseError):
        c.server.stats.error(reply)
    c.reply(reply)
    if c.skip_this or c.skip_next:  # as call(): CLIENT REPLY SKIP covers this reply
        c.skip_this = c.skip_next
        c.skip_next = False
    c.process()


@subcommand(BACKUP, "list", 3, _FLAGS)
def backup_list(c: Client, a: list[bytes]) -> list[object]:
    """The backups in <backup-dir>, oldest first: id, sequence, time, sizes."""
    path = _backup_dir(a[2])
    try:
        return [_info_reply(i) for i in BackupEngine(path).list()]
    except ShaleError as e:
        raise ResponseError(str(e)) from None


@subcommand(BACKUP, "status", 2, _FLAGS)
def backup_status(c: Client, a: list[bytes]) -> list[object]:
    """The running backup's progress and the last one's result (as INFO persistence)."""
    out: list[object] = []
    for k, v in status(c.server).info_fields():
        out += [k.encode(), v if isinstance(v, int) else str(v).encode()]
    return out


@subcommand(BACKUP, "help", 2, "loading stale no_txn")
def backup_help(c: Client, a: list[bytes]) -> list[bytes]:
    """What BACKUP's subcommands do."""
    return [
        b"BACKUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"CREATE <backup-dir>",
        b"    Take a consistent backup into <backup-dir> (absolute, on the server's host);",
        b"    replies id, sequence, sizes when done. Other clients are served meanwhile.",
        b"LIST <backup-dir>",
        b"    The backups kept in <backup-dir>.",
        b"STATUS",
        b"    The running backup's progress and the last backup's result.",
        b"HELP",
        b"    Print this help.",
    ]
