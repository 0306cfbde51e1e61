"""`shalekv` command line: inspect and verify a DB or one of its files (as RocksDB's
ldb and sst_dump). Presentation only: the reading and checking is in
shalekv.engine.inspect, which returns plain data that `--json` prints as is.

Exit codes: 0 success; 1 damage found (a CorruptionError, printed with file and
offset); 2 bad usage or a path that is not a ShaleKV DB or file.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shalekv.cli.output import console as _console
from shalekv.cli.output import err as _err
from shalekv.cli.output import size as _size
from shalekv.engine import inspect as engine_inspect
from shalekv.errors import CorruptionError

app = typer.Typer(
    name="shalekv",
    help="ShaleKV tools: inspect and verify a database directory or one of its files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
_KEY_WIDTH = 40


def _show_bytes(hexstr: str | None, width: int = _KEY_WIDTH) -> str:
    """A key or value for people: the bytes' repr, cut to width."""
    if hexstr is None:
        return ""
    s = repr(bytes.fromhex(hexstr))
    return s if len(s) <= width else s[: width - 1] + "…"


def _table(title: str, *columns: str) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        t.add_column(c, justify="right" if c in _NUMERIC else "left", overflow="fold")
    return t


_NUMERIC = {
    "level",
    "files",
    "bytes",
    "size",
    "entries",
    "deletions",
    "number",
    "dir",
    "seq",
    "records",
    "offset",
    "raw",
    "garbage",
    "ratio",
    "first seq",
    "last seq",
    "min seq",
    "max seq",
    "#",
    "value size",
}


def _row(t: Table, *cells: object) -> None:
    # Text cells: a key like b'[x]' must not be read as rich markup.
    t.add_row(*(Text("" if c is None else str(c)) for c in cells))


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _fail(e: BaseException, code: int) -> typer.Exit:
    _err(str(e) if isinstance(e, CorruptionError) else f"error: {e}")
    return typer.Exit(code)


# ------------------------------------------------------------------ inspect


@app.command()
def inspect(
    path: Annotated[
        str, typer.Argument(help="A DB directory, or a .sst, .blob, .log or MANIFEST file.")
    ],
    dump: Annotated[
        bool, typer.Option("--dump", help="Also list the entries (files only).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", help="Show at most this many dumped entries (0: all).")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Show what a DB directory or one of its files holds.

    A DB: levels, tables, blob files, range deletions, WAL segments. A table: footer,
    properties, blocks. Reads only (no LOCK): safe beside an open DB."""
    kind = engine_inspect.file_kind(path)
    if not os.path.exists(path) or kind is None:
        raise _fail(FileNotFoundError(f"{path}: not a DB directory or a ShaleKV file"), 2)
    try:
        if kind == "db":
            data = engine_inspect.inspect_db(path)
        elif kind == "sst":
            data = engine_inspect.inspect_sst(path, dump=dump)
        elif kind == "wal":
            data = engine_inspect.inspect_wal(path, dump=dump)
        elif kind == "blob":
            data = engine_inspect.inspect_blob(path, dump=dump)
        else:
            data = engine_inspect.inspect_manifest(path)
    except CorruptionError as e:
        raise _fail(e, 1) from None
    except FileNotFoundError as e:
        raise _fail(e, 2) from None
    bad = data.get("bad_blocks", 0)
    if limit > 0:
        for k in ("entries", "records"):
            if isinstance(data.get(k), list):
                data[k] = data[k][:limit]
    if as_json:
        _print_json(data)
    else:
        _SHOW[kind](data)
    if bad:
        _err(f"{bad} data block(s) fail their checksum (run `shalekv verify {path}`)")
        raise typer.Exit(1)


def _show_db(d: dict[str, Any]) -> None:
    c = _console()
    c.print(Text(f"DB {d['path']}", style="bold"))
    c.print(
        Text(
            f"format {d['format_version']}  {d['manifest']} ({_size(d['manifest_size'])})  "
            f"log_number {d['log_number']}  next_file {d['next_file']}  "
            f"last_sequence {d['last_sequence']} (MANIFEST: {d['manifest_last_seq']})"
        )
    )
    c.print(Text("data dirs: " + ", ".join(f"[{i}] {p}" for i, p in enumerate(d["data_dirs"]))))
    t = _table("Levels", "level", "files", "bytes", "entries", "deletions")
    for lv in d["levels"]:
        _row(t, lv["level"], lv["files"], _size(lv["bytes"]), lv["entries"], lv["deletions"])
    c.print(t)
    t = _table(
        "Tables",
        "number",
        "level",
        "dir",
        "size",
        "entries",
        "deletions",
        "smallest",
        "largest",
        "min seq",
        "max seq",
        "blob refs",
    )
    for f in d["files"]:
        _row(
            t,
            f["number"],
            f["level"],
            f["dir"],
            _size(f["size"]),
            f["entries"],
            f["deletions"],
            _show_bytes(f["smallest"]),
            _show_bytes(f["largest"]),
            f["min_seq"],
            f["max_seq"],
            ",".join(f["blob_refs"]),
        )
    c.print(t)
    if d["blob_files"]:
        t = _table("Blob files", "number", "dir", "size", "bytes", "garbage", "ratio")
        for b in d["blob_files"]:
            _row(
                t,
                b["number"],
                b["dir"],
                _size(b["size"]),
                _size(b["value_bytes"]),
                _size(b["garbage_bytes"]),
                f"{b['garbage_ratio']:.2f}",
            )
        c.print(t)
    if d["range_deletions"]:
        t = _table("Range deletions", "start", "end", "seq")
        for r in d["range_deletions"]:
            _row(t, _show_bytes(r["start"]), _show_bytes(r["end"]), r["seq"])
        c.print(t)
    t = _table(
        "WAL segments", "number", "size", "records", "entries", "first seq", "last seq", "state"
    )
    for w in d["wal_segments"]:
        state = "live" if w["live"] else "flushed"
        if w["torn_offset"] is not None:
            state += f", torn at {w['torn_offset']}"
        if w["error"]:
            state += f", {w['error']}"
        _row(
            t,
            w["number"],
            _size(w["size"]),
            w["records"],
            w["entries"],
            w["first_seq"],
            w["last_seq"],
            state,
        )
    c.print(t)
    tot = d["totals"]
    c.print(
        Text(
            f"{tot['files']} tables ({_size(tot['sst_bytes'])}, {tot['entries']} entries, "
            f"{tot['deletions']} deletions), {tot['blob_files']} blob files "
            f"({_size(tot['blob_bytes'])}, {_size(tot['blob_garbage_bytes'])} garbage), "
            f"{len(d['range_deletions'])} range deletions, "
            f"{len(d['wal_segments'])} WAL segments ({_size(tot['wal_bytes'])})"
        )
    )


def _show_sst(d: dict[str, Any]) -> None:
    c = _console()
    c.print(Text(f"SSTable {d['path']} ({_size(d['file_size'])})", style="bold"))
    f = d["footer"]
    t = _table("Footer", "field", "value")
    for k in (
        "offset",
        "index_offset",
        "index_size",
        "filter_offset",
        "filter_size",
        "properties_offset",
        "properties_size",
        "format_version",
        "crc",
        "magic",
    ):
        _row(t, k, f[k])
    c.print(t)
    t = _table("Properties", "property", "value")
    for k, v in sorted(d["properties"].items()):
        shown = _show_bytes(v, 60) if k in ("smallest", "largest") else json.dumps(v)
        _row(t, k, shown)
    c.print(t)
    t = _table("Meta blocks", "name", "offset", "size", "codec", "crc")
    for b in d["meta_blocks"]:
        _row(
            t,
            b["name"],
            b["offset"],
            b["size"],
            b["codec"],
            b["crc"] + ("" if b["crc_ok"] else " BAD"),
        )
    c.print(t)
    t = _table(
        f"Data blocks ({d['num_data_blocks']})",
        "#",
        "offset",
        "size",
        "raw",
        "codec",
        "entries",
        "crc",
        "last key",
    )
    for b in d["data_blocks"]:
        _row(
            t,
            b["index"],
            b["offset"],
            b["size"],
            "-" if b["raw_size"] is None else b["raw_size"],
            b["codec"],
            "-" if b["entries"] is None else b["entries"],
            b["crc"] + ("" if b["crc_ok"] else " BAD"),
            _show_bytes(b["last_key"]),
        )
    c.print(t)
    if "entries" in d:
        _show_entries(c, d["entries"])


def _show_entries(c: Console, entries: list[dict[str, Any]]) -> None:
    t = _table(
        f"Entries ({len(entries)} shown)", "key", "key hex", "seq", "kind", "value size", "value"
    )
    for e in entries:
        if "blob" in e:
            b = e["blob"]
            value = f"-> blob {b['file']} @{b['offset']} ({b['size']} B)"
        else:
            value = _show_bytes(e["value"])
        _row(
            t,
            _show_bytes(e["key"]),
            _cut(e["key"], _KEY_WIDTH),
            e["seq"],
            e["kind"],
            e["value_size"],
            value,
        )
    c.print(t)


def _cut(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def _show_wal(d: dict[str, Any]) -> None:
    c = _console()
    c.print(Text(f"WAL segment {d['path']} ({_size(d['size'])})", style="bold"))
    c.print(
        Text(
            f"{len(d['records'])} records, {d['entries']} entries, "
            f"sequences {d['first_seq']}..{d['last_seq']}"
            + ("" if d["torn_offset"] is None else f", torn last record at {d['torn_offset']}")
        )
    )
    t = _table("Records", "offset", "size", "seq", "entries")
    for r in d["records"]:
        _row(t, r["offset"], r["size"], r["seq"], r["count"])
    c.print(t)
    entries = [e for r in d["records"] for e in r.get("entries", ())]
    if entries:
        _show_entries(c, entries)


def _show_blob(d: dict[str, Any]) -> None:
    c = _console()
    c.print(Text(f"Blob file {d['path']} ({_size(d['size'])})", style="bold"))
    c.print(
        Text(
            f"magic {d['magic']}  format {d['format_version']}  {d['records']} records "
            f"(footer: {d['footer_count']}), {_size(d['value_bytes'])} of values, all checksums OK"
        )
    )
    if "entries" in d:
        t = _table("Records", "offset", "key", "value size", "value")
        for e in d["entries"]:
            _row(t, e["offset"], _show_bytes(e["key"]), e["value_size"], _show_bytes(e["value"]))
        c.print(t)


def _show_manifest(d: dict[str, Any]) -> None:
    c = _console()
    c.print(Text(f"MANIFEST {d['path']} ({_size(d['size'])})", style="bold"))
    c.print(
        Text(
            f"{len(d['edits'])} edits; result: log_number {d['log_number']}, next_file "
            f"{d['next_file']}, last_seq {d['last_seq']}, {d['files']} tables, "
            f"{d['blob_files']} blob files, {d['range_deletions']} range deletions"
        )
    )
    t = _table("Edits", "offset", "size", "edit")
    for e in d["edits"]:
        _row(t, e["offset"], e["size"], json.dumps(e["edit"], sort_keys=True))
    c.print(t)


_SHOW = {
    "db": _show_db,
    "sst": _show_sst,
    "wal": _show_wal,
    "blob": _show_blob,
    "manifest": _show_manifest,
}


# ------------------------------------------------------------------ verify


@app.command()
def verify(
    path: Annotated[
        str, typer.Argument(help="A DB directory, or a .sst, .blob, .log or MANIFEST file.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Check every checksum of a DB directory or one of its files.

    The MANIFEST, every block of every live table, every blob record and every WAL
    record. Exit 1 naming the file and offset of any damage, 0 if all is intact."""
    if not os.path.exists(path):
        raise _fail(FileNotFoundError(f"{path} does not exist"), 2)
    try:
        result = engine_inspect.verify_path(path)
    except CorruptionError as e:  # OPTIONS unreadable: before any file could be checked
        raise _fail(e, 1) from None
    except (FileNotFoundError, ValueError) as e:
        raise _fail(e, 2) from None
    if as_json:
        _print_json(result)
    else:
        c = _console()
        for w in result["warnings"]:
            c.print(Text(f"warning: {w['path']}: {w['message']}", style="yellow"))
        for problem in result["errors"]:
            c.print(Text(problem["message"], style="bold red"))
        verdict = "OK" if result["ok"] else f"FAILED ({len(result['errors'])} problems)"
        c.print(
            Text(
                f"{verdict}: {result['files']} files, {result['blocks']} blocks, "
                f"{result['records']} records, {result['bytes']} bytes checked"
            )
        )
    if not result["ok"]:
        raise typer.Exit(1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def server(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option("--config", help="A shalekv.conf file (Redis-style 'name value' lines)."),
    ] = None,
) -> None:
    """Run the Redis-protocol server: 127.0.0.1:7379, data in ./data, unless configured.

    Any option of shalekv.conf may follow as `--name value` (e.g. `--port 7000
    --dir /var/lib/shalekv --appendfsync always`); these override the file.
    """
    import logging

    from shalekv.server.app import run
    from shalekv.server.config import ConfigError, ServerConfig

    cfg = ServerConfig()
    try:
        if config is not None:
            cfg.load_file(config)
        cfg.load_args(ctx.args)
    except (ConfigError, OSError) as e:
        _err(f"shalekv server: {e}")
        raise typer.Exit(2) from None
    level = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO}.get(
        cfg["loglevel"], logging.WARNING
    )
    logging.basicConfig(
        level=level,
        filename=cfg["logfile"] or None,
        format="%(process)d:M %(asctime)s %(levelname)s %(message)s",
    )
    run(cfg)


@app.command(context_settings={"allow_interspersed_args": False, "help_option_names": ["--help"]})
def cli(
    command: Annotated[
        list[str] | None, typer.Argument(help="A command to run once; none: a prompt.")
    ] = None,
    host: Annotated[str, typer.Option("-h", help="Server hostname.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("-p", help="Server port.")] = 7379,
    socket_path: Annotated[
        str | None, typer.Option("-s", help="Unix socket (overrides -h and -p).")
    ] = None,
    password: Annotated[
        str | None, typer.Option("-a", "--pass", help="Password (or $SHALEKV_CLI_AUTH).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="ACL user for AUTH.")] = None,
    db: Annotated[int, typer.Option("-n", help="Database number.")] = 0,
    resp3: Annotated[bool, typer.Option("-3", help="Speak RESP3 (HELLO 3).")] = False,
    resp2: Annotated[bool, typer.Option("-2", help="Speak RESP2 (the default).")] = False,
    repeat: Annotated[int, typer.Option("-r", help="Run the command N times.")] = 1,
    interval: Annotated[float, typer.Option("-i", help="Seconds to wait between -r runs.")] = 0,
    stdin_arg: Annotated[bool, typer.Option("-x", help="Read the last argument from stdin.")] = (
        False
    ),
    errcode: Annotated[bool, typer.Option("-e", help="Exit 1 on an error reply.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Raw replies even on a terminal.")] = False,
    no_raw: Annotated[
        bool, typer.Option("--no-raw", help="Formatted replies even when not a terminal.")
    ] = False,
    show_pushes: Annotated[
        str | None, typer.Option("--show-pushes", help="yes|no: print RESP3 pushes.")
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS.")] = False,
    sni: Annotated[str | None, typer.Option("--sni", help="TLS server name.")] = None,
    cacert: Annotated[str | None, typer.Option("--cacert", help="CA file to verify with.")] = None,
    cert: Annotated[str | None, typer.Option("--cert", help="Client certificate.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Client private key.")] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Skip TLS certificate verification.")
    ] = False,
    no_auth_warning: Annotated[
        bool, typer.Option("--no-auth-warning", help="No warning about -a.")
    ] = False,
) -> None:
    """A small Redis client, as redis-cli: run one command, or a prompt without one.

    With a command, runs it and prints the reply (raw when stdout is not a terminal);
    without, a prompt with history (~/.shalekv_cli_history). Exit 0 (1 on an error
    reply with -e; 2 if the server cannot be reached)."""
    from shalekv.cli.client import Options, run

    pushes = None if show_pushes is None else show_pushes.lower().startswith("y")
    opts = Options(
        host=host, port=port, socket_path=socket_path, password=password, user=user, db=db,
        resp3=resp3, resp2=resp2, repeat=repeat, interval=interval, stdin_arg=stdin_arg,
        errcode=errcode, raw=True if raw else False if no_raw else None,
        show_pushes=pushes, tls=tls, sni=sni, cacert=cacert, cert=cert, key=key,
        insecure=insecure, no_auth_warning=no_auth_warning,
    )  # fmt: skip
    raise typer.Exit(run(opts, command or []))


def _register_groups() -> None:
    """Command groups that live in their own modules (backup, import/export) add
    themselves here, so this file stays the inspect/server front door."""
    from shalekv.cli import backup, transfer

    backup.register(app)
    transfer.register(app)


_register_groups()


def main() -> None:
    """Console-script entry point (`shalekv = "shalekv.cli.main:main"`)."""
    app()


if __name__ == "__main__":
    main()
