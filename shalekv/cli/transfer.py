"""`shalekv import` / `shalekv export` (issue 6): copy every key between a Redis or
ShaleKV server, a ShaleKV DB directory and a portable dump file (docs/transfer.md).

Presentation only: the copying is shalekv.backup.transfer. Exit codes: 0 done;
1 damage found (a dump file failing a check, named with its offset); 2 bad usage, an
unreachable server or a DB directory in use; 3 stopped before the end (the state file
is saved: run again with --resume).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from redis import exceptions as redis_errors
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from shalekv.backup import transfer as tx
from shalekv.cli.output import err as _err
from shalekv.engine.version import sync_dir
from shalekv.errors import CorruptionError, InvalidArgumentError, LockError

EXIT_DAMAGE = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]
ServerOpt = Annotated[
    str | None, typer.Option("--server", help="A Redis-protocol server, HOST:PORT.")
]
DirOpt = Annotated[str | None, typer.Option("--dir", help="A ShaleKV DB directory.")]


def _fail(message: str, code: int) -> typer.Exit:
    _err(message)
    return typer.Exit(code)


def _redact(url: str) -> str:
    """The URL without its password (it goes into state files and messages)."""
    head, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return head + sep + rest


@contextmanager
def _progress(total: int | None, label: str) -> Iterator[tx.Progress | None]:
    """A progress bar on stderr (keys done, keys/s, ETA) when it is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9.0f} keys/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    t0 = time.monotonic()
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total, rate=0.0)

        def update(keys: int, nbytes: int) -> None:
            dt = time.monotonic() - t0
            bar.update(task, completed=keys, rate=keys / dt if dt > 0 else 0.0)

        yield update


def _report(summary: tx.Summary, verb: str, as_json: bool, extra: dict[str, Any]) -> None:
    data = {**summary.as_dict(), **extra}
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    mib = summary.bytes / (1 << 20)
    line = (
        f"{verb} {summary.keys} keys ({mib:.1f} MiB) in {summary.seconds:.2f} s "
        f"({summary.keys_per_s:.0f} keys/s)"
    )
    skipped = [
        f"{n} {what}"
        for n, what in (
            (summary.skipped_existing, "already present"),
            (summary.skipped_expired, "expired"),
            (summary.changed_during_read, "changed while read"),
            (summary.unsupported_type, "of unsupported types"),
        )
        if n
    ]
    if skipped:
        line += "; skipped " + ", ".join(skipped)
    if summary.resumed_from:
        line += f"; resumed after {summary.resumed_from} keys"
    sys.stdout.write(line + "\n")


def _one_of(**given: str | None) -> tuple[str, str]:
    chosen = [(k, v) for k, v in given.items() if v is not None]
    if len(chosen) != 1:
        names = " | ".join(f"--{k}" if k != "url" else "redis://..." for k in given)
        raise _fail(f"error: give exactly one of {names}", EXIT_USAGE)
    return chosen[0]


# ------------------------------------------------------------------ import


def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="redis://HOST:PORT/DB (a password as redis://:PW@HOST:PORT), or a dump file."
        ),
    ],
    server: ServerOpt = None,
    data_dir: DirOpt = None,
    db: Annotated[
        int | None,
        typer.Option("--db", help="Target database number (default: the source's)."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace/--no-replace", help="Overwrite keys the target has (or leave them)."
        ),
    ] = True,
    password: Annotated[
        str | None, typer.Option("--password", help="Password of the source server.")
    ] = None,
    target_password: Annotated[
        str | None, typer.Option("--target-password", help="Password of the --server target.")
    ] = None,
    state_file: Annotated[
        str | None,
        typer.Option("--state", help="Where to keep the resume state (default: by the target)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted import from its state.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Check a whole dump file before writing."),
    ] = True,
    chunk: Annotated[
        int, typer.Option("--chunk", help="Keys per SCAN, elements per read.", min=1)
    ] = 1000,
    stop_after: Annotated[int | None, typer.Option("--stop-after", hidden=True)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy every key of a Redis/ShaleKV server or a dump file into a ShaleKV server
    or DB directory: all five types, TTLs kept, each key written whole.

    Restartable: progress is saved after every batch; --resume continues (see
    docs/transfer.md for what that guarantees)."""
    kind, target = _one_of(server=server, dir=data_dir)
    from_url = tx.is_url(source)
    try:
        src_db = tx.url_db(source) if from_url else 0
    except (InvalidArgumentError, ValueError) as e:
        raise _fail(f"error: {e}", EXIT_USAGE) from None
    dst_db = src_db if db is None else db
    if kind == "dir":
        target_id = f"dir:{os.path.abspath(target)}/{dst_db}"
        default_state = os.path.abspath(target).rstrip("/") + f".import-state-{dst_db}.json"
    else:
        target_id = f"server:{target}/{dst_db}"
        safe = target.replace(":", "-").replace("/", "-")
        default_state = f"shalekv-import-{safe}-{dst_db}.state.json"
    source_id = _redact(source) if from_url else f"file:{os.path.abspath(source)}"
    state_path = state_file or default_state
    if not from_url and not os.path.isfile(source):
        raise _fail(f"error: {source}: no such dump file (or give a redis:// URL)", EXIT_USAGE)

    state = tx.State(source_id, target_id)
    if resume:
        if not os.path.exists(state_path):
            raise _fail(f"error: {state_path}: no import state to resume", EXIT_USAGE)
        try:
            state = tx.State.load(state_path)
        except (OSError, ValueError, TypeError) as e:
            raise _fail(f"error: {state_path}: unreadable import state ({e})", EXIT_USAGE) from None
        if (state.source, state.target) != (source_id, target_id):
            raise _fail(
                f"error: {state_path} is for {state.source} -> {state.target}, "
                f"not {source_id} -> {target_id}",
                EXIT_USAGE,
            )
        if state.done:
            sys.stdout.write(f"{state_path}: that import already completed\n")
            return
    closers: list[Any] = []
    try:
        if from_url:
            src_client = tx.connect(source, password=password)
            closers.append(src_client)
            src: tx.Source = tx.client_source(src_client, chunk=chunk)
        else:
            if check:
                tx.verify_file(source)
            f = open(source, "rb")  # noqa: SIM115 - closed below
            closers.append(f)
            src = tx.DumpSource(f, source, batch_keys=chunk)
        if kind == "dir":
            dst_client = tx.open_dir(target, dst_db, create=True)
        else:
            dst_client = tx.connect(hostport=target, db=dst_db, password=target_password)
        closers.append(dst_client)
        dst = tx.client_target(dst_client, replace)
        with _progress(src.total_keys(), "import") as update:
            summary = tx.run(
                src,
                dst,
                state=state,
                state_path=state_path,
                progress=update,
                stop_after=stop_after,
            )
    except CorruptionError as e:
        raise _fail(str(e), EXIT_DAMAGE) from None
    except LockError as e:
        raise _fail(f"error: {e} (a running server? import through it: --server)", 2) from None
    except (InvalidArgumentError, FileNotFoundError) as e:
        raise _fail(f"error: {e}", EXIT_USAGE) from None
    except (redis_errors.ConnectionError, redis_errors.AuthenticationError) as e:
        code = EXIT_INCOMPLETE if state.batches else EXIT_USAGE
        raise _fail(f"error: {e}" + _resume_hint(state, state_path), code) from None
    except tx.TransferInterrupted as e:
        raise _fail(f"{e}" + _resume_hint(state, state_path), EXIT_INCOMPLETE) from None
    except (redis_errors.RedisError, OSError) as e:
        raise _fail(f"error: {e}" + _resume_hint(state, state_path), EXIT_INCOMPLETE) from None
    except KeyboardInterrupt:
        raise _fail("interrupted" + _resume_hint(state, state_path), EXIT_INCOMPLETE) from None
    finally:
        for c in closers:
            c.close()
    _report(summary, "imported", as_json, {"state": state_path})


def _resume_hint(state: tx.State, path: str) -> str:
    if not state.batches:
        return ""
    return f"\n{state.keys} keys done; state saved in {path}: run again with --resume"


# ------------------------------------------------------------------ export


def export(
    url: Annotated[
        str | None,
        typer.Argument(
            help="redis://HOST:PORT/DB to export (a password as redis://:PW@HOST:PORT)."
        ),
    ] = None,
    server: ServerOpt = None,
    data_dir: DirOpt = None,
    out: Annotated[str, typer.Option("--out", help="The dump file to write.")] = "",
    db: Annotated[int, typer.Option("--db", help="Database number (--server, --dir).")] = 0,
    password: Annotated[str | None, typer.Option("--password", help="Server password.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out.")] = False,
    chunk: Annotated[
        int, typer.Option("--chunk", help="Keys per SCAN, elements per read.", min=1)
    ] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Write every key of a server or DB directory to a portable dump file
    (docs/format/dump.md). The file appears only once complete (written as
    FILE.tmp, fsynced, renamed)."""
    kind, where = _one_of(url=url, server=server, dir=data_dir)
    if not out:
        raise _fail("error: --out FILE is required", EXIT_USAGE)
    if os.path.exists(out) and not force:
        raise _fail(f"error: {out} exists (use --force to overwrite)", EXIT_USAGE)
    tmp = out + ".tmp"
    client: Any = None
    try:
        if kind == "url":
            client = tx.connect(where, password=password)
        elif kind == "server":
            client = tx.connect(hostport=where, db=db, password=password)
        else:
            client = tx.open_dir(where, db, create=False)
        src = tx.client_source(client, chunk=chunk)
        with open(tmp, "wb") as f:
            dst = tx.DumpTarget(f)
            with _progress(src.total_keys(), "export") as update:
                summary = tx.run(src, dst, progress=update)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        sync_dir(os.path.dirname(os.path.abspath(out)))
        size = dst.writer.size
    except (InvalidArgumentError, LockError, FileNotFoundError, redis_errors.ConnectionError,
            redis_errors.AuthenticationError) as e:  # fmt: skip
        _remove(tmp)
        raise _fail(f"error: {e}", EXIT_USAGE) from None
    except (redis_errors.RedisError, OSError, KeyboardInterrupt) as e:
        _remove(tmp)
        raise _fail(f"error: export failed, nothing written: {e!r}", EXIT_INCOMPLETE) from None
    finally:
        if client is not None:
            client.close()
    _report(summary, "exported", as_json, {"file": out, "file_bytes": size})


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def register(app: typer.Typer) -> None:
    """Add `import` and `export` to the `shalekv` app."""
    app.command("import")(import_)
    app.command("export")(export)
