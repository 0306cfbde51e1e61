"""`shalekv backup create|list|verify|restore|purge` (issue 6). Presentation only: the
work is shalekv.backup.engine.BackupEngine (offline, or in the server for `create
--server`, through its BACKUP command).

Exit codes as `shalekv verify`: 0 success; 1 damage found (a file named with its
problem) or a backup that failed; 2 bad usage (no such backup, a non-empty restore
target, a DB directory a server has open, a server that cannot be reached).
Progress bars (bytes/s, ETA) go to stderr, only when it is a terminal.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from shalekv.backup.engine import BackupEngine
from shalekv.backup.meta import BackupInfo
from shalekv.cli.output import console as _console
from shalekv.cli.output import err as _err
from shalekv.cli.output import size as _size
from shalekv.errors import CorruptionError, InvalidArgumentError, LockError, ShaleError

backup_app = typer.Typer(
    name="backup",
    help="Incremental, verified backups of a ShaleKV DB (offline, or online via a server).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BackupDir = Annotated[
    str, typer.Option("--backup-dir", help="The backup directory (created if missing).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
IdOpt = Annotated[int | None, typer.Option("--id", help="A backup id (default: see help).")]

_STAGES = {  # stages with bytes to count (the checkpoint is links, a flush: no bar)
    "copy": "copying",
    "verify": "verifying",
    "restore": "restoring",
}


def register(app: typer.Typer) -> None:
    """Add the `backup` command group to the `shalekv` app."""
    app.add_typer(backup_app, name="backup")


# ------------------------------------------------------------------ output helpers


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _when(timestamp_ms: int) -> str:
    t = datetime.datetime.fromtimestamp(timestamp_ms / 1000, tz=datetime.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _info_json(info: BackupInfo) -> dict[str, Any]:
    d = info.to_json()
    d["time"] = _when(info.timestamp_ms)
    return d


def _fail(e: BaseException) -> typer.Exit:
    """Print e and return the exit it calls for (1 damage or failure, 2 usage)."""
    if isinstance(e, CorruptionError):
        _err(str(e))
        return typer.Exit(1)
    if isinstance(e, LockError):
        _err(f"error: {e}")
        return typer.Exit(2)
    if isinstance(e, (InvalidArgumentError, FileNotFoundError, NotADirectoryError)):
        _err(f"error: {e}")
        return typer.Exit(2)
    _err(f"error: {e}")
    return typer.Exit(1)


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None] | None]:
    """A BackupEngine progress callback drawing rich bars on stderr (None when stderr
    is not a terminal: scripts and logs get no bar noise)."""
    if not sys.stderr.isatty():
        yield None
        return
    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        label = _STAGES.get(stage)
        if label is None:
            return
        task = tasks.get(stage)
        if task is None:
            task = tasks[stage] = bars.add_task(label, total=total or None)
        bars.update(task, completed=done, total=total or None)

    with bars:
        yield update


# ------------------------------------------------------------------ create


def _parse_server(server: str) -> tuple[str, int]:
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidArgumentError(f"--server wants HOST:PORT, not {server!r}")
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@backup_app.command()
def create(
    backup_dir: BackupDir,
    data_dir: Annotated[
        str | None,
        typer.Option("--dir", help="Back up this DB directory (offline: no server has it open)."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Back up a running server (HOST:PORT); --backup-dir is a path on its host.",
        ),
    ] = None,
    password: Annotated[
        str | None, typer.Option("-a", "--pass", help="Server password (or $SHALEKV_CLI_AUTH).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Take a backup (offline --dir, or online --server).

    A consistent point in time (a sequence number); copies only the tables and blob
    files no earlier backup in --backup-dir has."""
    if (data_dir is None) == (server is None):
        _err("error: give exactly one of --dir DATA (offline) or --server HOST:PORT (online)")
        raise typer.Exit(2)
    try:
        if data_dir is not None:
            info = _create_offline(data_dir, backup_dir)
        else:
            assert server is not None
            info = _create_online(server, backup_dir, password)
    except LockError as e:
        _err(
            f"error: {e}\n{data_dir} is in use (a running server?): back it up online "
            "with --server HOST:PORT instead"
        )
        raise typer.Exit(2) from None
    except (ShaleError, OSError) as e:
        raise _fail(e) from None
    if as_json:
        _print_json(info)
    else:
        _console().print(
            Text(
                f"backup {info['id']} created: sequence {info['sequence']}, "
                f"{info['num_files']} files, {_size(info['size'])}, "
                f"{_size(info['new_bytes'])} new"
            )
        )


def _create_offline(data_dir: str, backup_dir: str) -> dict[str, Any]:
    if not os.path.isdir(data_dir):
        raise InvalidArgumentError(f"{data_dir} is not a directory")
    with _progress() as progress:
        info = BackupEngine(backup_dir).create(data_dir, progress)
    return _info_json(info)


def _create_online(server: str, backup_dir: str, password: str | None) -> dict[str, Any]:
    """BACKUP CREATE on the server; its progress read from BACKUP STATUS meanwhile."""
    import redis

    host, port = _parse_server(server)
    if not os.path.isabs(backup_dir):
        if not _is_loopback(host):
            raise InvalidArgumentError("--backup-dir must be an absolute path on the server's host")
        backup_dir = os.path.abspath(backup_dir)  # same host: the same filesystem
    password = password or os.environ.get("SHALEKV_CLI_AUTH")
    conn = redis.Redis(host=host, port=port, password=password, socket_connect_timeout=5)
    try:
        conn.ping()
    except redis.ConnectionError as e:
        raise InvalidArgumentError(f"cannot reach server {server}: {e}") from None
    except redis.ResponseError as e:
        raise ShaleError(f"server {server}: {e}") from None
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["reply"] = conn.execute_command("BACKUP", "CREATE", backup_dir)
        except redis.RedisError as e:
            result["error"] = e

    worker = threading.Thread(target=call, daemon=True)
    with _progress() as progress:
        worker.start()
        poll = redis.Redis(host=host, port=port, password=password) if progress else None
        while worker.is_alive():
            worker.join(0.25)
            if poll is not None and progress is not None and worker.is_alive():
                try:
                    st = _pairs(poll.execute_command("BACKUP", "STATUS"))
                except redis.RedisError:
                    continue
                if int(st.get("backup_in_progress", 0)):
                    total = int(st.get("backup_total_bytes", 0))
                    progress(
                        str(st.get("backup_current_stage", "")),
                        int(st.get("backup_current_bytes", 0)),
                        total,
                    )
        if poll is not None:
            poll.close()
        if progress is not None and "reply" in result:
            size = int(_pairs(result["reply"])["size"])
            progress("copy", size, size)  # the last poll may predate the end
    conn.close()
    if "error" in result:
        raise ShaleError(f"server {server}: {result['error']}")
    d = _pairs(result["reply"])
    info: dict[str, Any] = {k: int(v) for k, v in d.items()}
    info["num_files"] = info.pop("files")
    info["time"] = _when(info["timestamp_ms"])
    info["server"] = server
    info["backup_dir"] = backup_dir
    return info


def _pairs(reply: Any) -> dict[str, Any]:
    """A flat [name, value, ...] reply (or a RESP3 map) as a dict of str keys."""
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        items = list(zip(reply[::2], reply[1::2], strict=True))
    out: dict[str, Any] = {}
    for k, v in items:
        key = k.decode() if isinstance(k, bytes) else str(k)
        out[key] = v.decode() if isinstance(v, bytes) else v
    return out


# ------------------------------------------------------------------ list, verify


@backup_app.command("list")
def list_(backup_dir: BackupDir, as_json: JsonOpt = False) -> None:
    """List backups: id, time, sequence number, size, new bytes copied."""
    try:
        infos = BackupEngine(backup_dir).list()
    except (ShaleError, OSError) as e:
        raise _fail(e) from None
    if as_json:
        _print_json([_info_json(i) for i in infos])
        return
    c = _console()
    if not infos:
        c.print(Text(f"no backups in {backup_dir}"))
        return
    t = Table(title=f"backups in {backup_dir}", title_justify="left")
    for col in ("id", "time", "sequence", "files", "size", "new bytes"):
        t.add_column(col, justify="left" if col == "time" else "right")
    for i in infos:
        t.add_row(
            *(
                Text(s)
                for s in (
                    str(i.id),
                    _when(i.timestamp_ms),
                    str(i.sequence),
                    str(len(i.files)),
                    _size(i.size),
                    _size(i.new_bytes),
                )
            )
        )
    c.print(t)


@backup_app.command()
def verify(backup_dir: BackupDir, backup_id: IdOpt = None, as_json: JsonOpt = False) -> None:
    """Check every file's size and CRC32C; exit 1 on damage.

    Of backup --id, default all backups. Each damaged or missing file is named."""
    engine = BackupEngine(backup_dir)
    try:
        if backup_id is not None:
            engine.get(backup_id)  # an unknown id is a usage error, not damage
        elif not engine.ids():
            raise InvalidArgumentError(f"no backups in {engine.dir}")
        with _progress() as progress:
            result = engine.check(backup_id, progress)
    except CorruptionError as e:  # the named meta file itself is damaged
        if as_json:
            _print_json({"ok": False, "problems": [{"path": e.path, "message": str(e)}]})
        raise _fail(e) from None
    except (ShaleError, OSError) as e:
        raise _fail(e) from None
    if as_json:
        _print_json(result.to_json())
    else:
        c = _console()
        for p in result.problems:
            c.print(Text(str(p.error()), style="bold red"))
        verdict = "OK" if result.ok else f"FAILED ({len(result.problems)} problems)"
        c.print(
            Text(
                f"{verdict}: {len(result.backups)} backup(s), {result.files} files, "
                f"{_size(result.bytes)} checked"
            )
        )
    if not result.ok:
        raise typer.Exit(1)


# ------------------------------------------------------------------ restore, purge


@backup_app.command()
def restore(
    backup_dir: BackupDir,
    to: Annotated[str, typer.Option("--to", help="A new or empty directory for the DB.")],
    backup_id: IdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup (--id, default the newest) into a new or empty --to.

    Every file's CRC32C is checked as it is copied; nothing lands in --to unless all
    of them pass."""
    start = time.monotonic()
    try:
        with _progress() as progress:
            info = BackupEngine(backup_dir).restore(backup_id, to, progress)
    except (ShaleError, OSError) as e:
        raise _fail(e) from None
    seconds = time.monotonic() - start
    if as_json:
        d = _info_json(info)
        d["target"] = os.path.abspath(to)
        d["seconds"] = round(seconds, 3)
        _print_json(d)
    else:
        _console().print(
            Text(
                f"restored backup {info.id} (sequence {info.sequence}, {_size(info.size)}) "
                f"to {to} in {seconds:.1f} s"
            )
        )


@backup_app.command()
def purge(
    backup_dir: BackupDir,
    keep: Annotated[int, typer.Option("--keep", help="How many of the newest backups to keep.")],
    as_json: JsonOpt = False,
) -> None:
    """Delete all but the newest --keep backups, and the files only they used."""
    if keep < 0:
        _err("error: --keep must be >= 0")
        raise typer.Exit(2)
    try:
        result = BackupEngine(backup_dir).purge(keep)
    except (ShaleError, OSError) as e:
        raise _fail(e) from None
    if as_json:
        _print_json(result.to_json())
    else:
        ids = ", ".join(map(str, result.deleted_backups)) or "none"
        _console().print(
            Text(
                f"deleted backups: {ids}; {result.deleted_files} files, "
                f"{_size(result.freed_bytes)} freed"
            )
        )
