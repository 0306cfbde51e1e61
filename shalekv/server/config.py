"""Server configuration: one table of options (name, default, kind, mutable), read from
a Redis-style file (`key value` lines), command-line `--name value` pairs and CONFIG SET.

The table is the single source for CONFIG GET/SET/REWRITE, `shalekv.conf` and
docs/server.md. Engine options are passed through to `shalekv.engine.DB.open`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shalekv.server.resp import split_args

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


class ConfigError(ValueError):
    """A bad option name or value; the text is what CONFIG SET reports after ' - '."""


def parse_memory(s: str) -> int:
    """Redis's memtoll: 100, 1k (1000), 1kb (1024), 64mb, 1gb ..."""
    m = re.fullmatch(r"(-?\d+)([a-zA-Z]*)", s.strip())
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError("argument must be a memory value")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_bool(s: str) -> bool:
    v = s.lower()
    if v not in ("yes", "no"):
        raise ConfigError("argument must be 'yes' or 'no'")
    return v == "yes"


def parse_int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise ConfigError("argument couldn't be parsed into an integer") from None


def _enum(*choices: str) -> Callable[[str], str]:
    def parse(s: str) -> str:
        v = s.lower()
        if v not in choices:
            raise ConfigError("argument(s) must be one of the following: " + ", ".join(choices))
        return v

    return parse


def _nonneg(parse: Callable[[str], int]) -> Callable[[str], int]:
    def check(s: str) -> int:
        v = parse(s)
        if v < 0:
            raise ConfigError("argument must be a non-negative number")  # our text
        return v

    return check


def _obuf_limit(s: str) -> str:
    """client-output-buffer-limit: `<class> <hard> <soft> <seconds>` groups."""
    words = s.split()
    if not words or len(words) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    for i in range(0, len(words), 4):
        if words[i].lower() not in ("normal", "replica", "slave", "pubsub"):
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            parse_memory(words[i + 1]), parse_memory(words[i + 2]), int(words[i + 3])
        except (ConfigError, ValueError):
            raise ConfigError(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
            ) from None
    return s


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    parse: Callable[[str], Any]
    mutable: bool
    doc: str
    engine: str | None = None  # the engine option it feeds, if any
    show: Callable[[Any], str] = str


def _show_bool(v: Any) -> str:
    return "yes" if v else "no"


def _show_list(v: Any) -> str:
    return " ".join(v)


def _list(s: str) -> list[str]:
    return s.replace(",", " ").split()


OPTIONS: dict[str, Option] = {}


def _opt(
    name: str, default: str, parse: Callable[[str], Any], mutable: bool, doc: str, **kw: Any
) -> None:
    if parse is parse_bool:
        kw.setdefault("show", _show_bool)
    OPTIONS[name] = Option(name, default, parse, mutable, doc, **kw)


# -- network
_opt(
    "bind", "127.0.0.1", _list, False, "Addresses to listen on (space-separated).", show=_show_list
)
_opt("port", "7379", _nonneg(parse_int), False, "TCP port; 0 disables plain TCP.")
_opt("protected-mode", "yes", parse_bool, True, "Without requirepass, refuse non-loopback clients.")
_opt("tcp-backlog", "511", _nonneg(parse_int), False, "listen() backlog.")
_opt("timeout", "0", _nonneg(parse_int), True, "Close clients idle this many seconds (0: never).")
_opt("unixsocket", "", str, False, "Path of a Unix socket to listen on too (empty: none).")
_opt("tls-port", "0", _nonneg(parse_int), False, "TLS port (0: no TLS).")
_opt("tls-cert-file", "", str, False, "Server certificate (PEM) for TLS.")
_opt("tls-key-file", "", str, False, "Private key (PEM) for TLS.")
_opt("tls-ca-cert-file", "", str, False, "CA to verify client certificates with.")
_opt(
    "tls-auth-clients", "no", _enum("yes", "no", "optional"), False, "Require client certificates."
)
# -- security and limits
_opt("requirepass", "", str, True, "Password of the default user (empty: no AUTH needed).")
_opt("maxclients", "10000", _nonneg(parse_int), True, "Connections beyond this get an error.")
_opt(
    "proto-max-bulk-len",
    "512mb",
    _nonneg(parse_memory),
    True,
    "Largest bulk string a request may carry.",
)
_opt(
    "client-query-buffer-limit",
    "1gb",
    _nonneg(parse_memory),
    True,
    "Unparsed request bytes per client before it is closed.",
)
_opt(
    "client-output-buffer-limit",
    "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60",
    _obuf_limit,
    True,
    "Per class: hard limit, soft limit, soft seconds; a client over a limit is closed.",
)
# -- persistence and storage
_opt("dir", "./data", str, False, "Data directory.")
_opt(
    "data-dirs",
    "",
    _list,
    False,
    "Extra directories SSTables and blobs are spread over.",
    engine="data_dirs",
    show=_show_list,
)
_opt("appendonly", "yes", parse_bool, False, "Always yes: every write goes to the WAL.")
_opt(
    "appendfsync",
    "everysec",
    _enum("always", "everysec", "no"),
    False,
    "WAL fsync policy.",
    engine="fsync",
)
_opt("databases", "16", _nonneg(parse_int), False, "Number of databases (SELECT 0..n-1).")
_opt(
    "zset-rank-index-size",
    "128mb",
    _nonneg(parse_memory),
    False,
    "Memory for the rank and order indexes of big sorted sets (0: none, ranks are counted"
    " by scanning).",
)
_opt(
    "block-cache-size",
    "256mb",
    _nonneg(parse_memory),
    False,
    "Uncompressed block cache.",
    engine="block_cache_size",
)
_opt(
    "compressed-cache-size",
    "64mb",
    _nonneg(parse_memory),
    False,
    "Second cache tier of compressed blocks.",
    engine="compressed_cache_size",
)
_opt(
    "memtable-size",
    "64mb",
    _nonneg(parse_memory),
    False,
    "Memtable size before a flush.",
    engine="memtable_size",
)
_opt(
    "block-size",
    "16kb",
    _nonneg(parse_memory),
    False,
    "Target uncompressed size of an SSTable data block (new tables).",
    engine="block_size",
)
_opt(
    "blob-threshold",
    "64kb",
    _nonneg(parse_memory),
    False,
    "Values this large go to blob files.",
    engine="blob_threshold",
)
_opt(
    "seek-compaction-bytes",
    "16kb",
    _nonneg(parse_memory),
    False,
    "Range reads before L0 is compacted early, as file size / this (0: off).",
    engine="seek_compaction_bytes",
)
_opt(
    "compaction-workers",
    "1",
    _nonneg(parse_int),
    False,
    "Worker processes for flush and compaction.",
    engine="compaction_workers",
)
_opt("save", "", str, True, "Accepted for compatibility; the WAL makes snapshots unnecessary.")
# -- observability
_opt("metrics-port", "0", _nonneg(parse_int), False, "Prometheus /metrics port (0: off).")
_opt("metrics-bind", "127.0.0.1", str, False, "Address of the /metrics listener.")
_opt(
    "slowlog-log-slower-than",
    "10000",
    parse_int,
    True,
    "Microseconds; negative disables, 0 logs all.",
)
_opt("slowlog-max-len", "128", _nonneg(parse_int), True, "Entries kept by SLOWLOG.")
_opt(
    "latency-monitor-threshold", "0", _nonneg(parse_int), True, "Milliseconds; 0 disables LATENCY."
)
_opt("notify-keyspace-events", "", str, True, "Keyspace notification classes (as Redis).")
_opt("loglevel", "notice", _enum("debug", "verbose", "notice", "warning"), True, "Log verbosity.")
_opt("logfile", "", str, False, "Log file (empty: stderr).")
_opt("hz", "10", _nonneg(parse_int), True, "Background task frequency (expiry, timeouts).")
_opt(
    "maxmemory", "0", _nonneg(parse_memory), True, "Accepted for compatibility: data lives on disk."
)
_opt("maxmemory-policy", "noeviction", str, True, "Accepted for compatibility: nothing is evicted.")

ALIASES = {"slave-output-buffer-limit": "client-output-buffer-limit"}


class ServerConfig:
    """Current values by option name, parsed."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {n: o.parse(o.default) for n, o in OPTIONS.items()}
        self.path: str | None = None  # the file CONFIG REWRITE writes
        self.listeners: list[Callable[[str, Any], None]] = []

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def set(self, name: str, value: str, *, startup: bool = False) -> None:
        name = ALIASES.get(name.lower(), name.lower())
        opt = OPTIONS.get(name)
        if opt is None:
            raise ConfigError(f"unknown option '{name}'")
        if not startup and not opt.mutable:
            raise ConfigError("can't set immutable config")
        self.values[name] = opt.parse(value)
        for listener in self.listeners:
            listener(name, self.values[name])

    def show(self, name: str) -> str:
        return OPTIONS[name].show(self.values[name])

    def load_file(self, path: str) -> None:
        self.path = os.path.abspath(path)
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                words = split_args(text.encode())
                if words is None or len(words) < 2:
                    raise ConfigError(f"{path}:{lineno}: expected 'name value'")
                try:
                    self.set(
                        words[0].decode(), " ".join(w.decode() for w in words[1:]), startup=True
                    )
                except ConfigError as e:
                    raise ConfigError(f"{path}:{lineno}: {e}") from None

    def load_args(self, args: Iterable[str]) -> None:
        """`--name value [value ...]` pairs, as redis-server takes them."""
        name: str | None = None
        vals: list[str] = []
        for a in [*args, "--"]:
            if a.startswith("--"):
                if name is not None:
                    self.set(name, " ".join(vals), startup=True)
                name, vals = a[2:].replace("_", "-") or None, []
            elif name is None:
                raise ConfigError(f"unexpected argument {a!r}")
            else:
                vals.append(a)

    def engine_options(self) -> dict[str, Any]:
        return {
            o.engine: self.values[n]
            for n, o in OPTIONS.items()
            if o.engine and (n != "data-dirs" or self.values[n])
        }

    def rewrite(self) -> None:
        """CONFIG REWRITE: write every non-default value back to the config file."""
        if self.path is None:
            raise ConfigError("The server is running without a config file")
        lines = [
            f"{n} {self.show(n)}\n"
            for n, o in OPTIONS.items()
            if self.show(n) != o.show(o.parse(o.default))
        ]
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("# Written by CONFIG REWRITE; see shalekv.conf for every option.\n")
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
