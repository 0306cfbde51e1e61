"""Introspection commands (Redis's server.c, config.c, networking.c, slowlog.c,
latency.c, object.c): INFO, CONFIG, COMMAND, CLIENT LIST/INFO/KILL/PAUSE/UNPAUSE/HELP,
SLOWLOG, LATENCY and OBJECT.

COMMAND's replies are derived from the command table (name, arity, flags, key
positions, subcommands); what Redis keeps beyond that (ACL categories, tips, key specs)
is derived from the flags and from the module a handler lives in, never written twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from shalekv.commands.registry import OK, Command, command, container, subcommand, syntax
from shalekv.commands.registry import TABLE as DATA_TABLE
from shalekv.commands.reply import Map, SetReply, Status, Verbatim
from shalekv.errors import ResponseError
from shalekv.server import info, latency, metrics, slowlog
from shalekv.server.client import BLOCKED, Client
from shalekv.server.commands.connection import CLIENT
from shalekv.server.commands.table import SERVER, SERVER_INIT
from shalekv.server.config import ALIASES, OPTIONS, ConfigError
from shalekv.types import encoding as enc
from shalekv.types.collection import elements, version_count
from shalekv.types.glob import compile_glob
from shalekv.types.numbers import parse_int

# ---------------------------------------------------------------- per-server state


def _init(server: Any) -> None:
    pause = server.extensions["pause"] = Pause(server)
    slowlog.install(server, pause.parked_ids)
    latency.install(server, pause.parked_ids)
    metrics.start(server)


SERVER_INIT.append(_init)


def _help(name: str, lines: Iterable[str]) -> list[Status]:
    """addReplyHelp: the header, the subcommands' lines, and HELP's, as status lines."""
    return [
        Status(f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".encode()),
        *(Status(line.encode()) for line in lines),
        Status(b"HELP"),
        Status(b"    Prints this help."),
    ]


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


# ---------------------------------------------------------------- INFO


@command("info", -1, "loading stale random no_txn", 0, 0, 0, table=SERVER)
def info_(c: Client, a: list[bytes]) -> Verbatim:
    return Verbatim(info.info_text(c.server, [_text(x) for x in a[1:]]).encode())


# ---------------------------------------------------------------- CONFIG

CONFIG = container("config", SERVER, "no_txn")


@subcommand(CONFIG, "get", -3, "admin noscript loading stale no_txn")
def config_get(c: Client, a: list[bytes]) -> Map:
    cfg = c.server.config
    seen: set[str] = set()
    out: list[bytes] = []
    for pattern in a[2:]:
        p = pattern.lower()
        if not any(ch in p for ch in b"*?["):
            # As configGetCommand: a plain name is looked up (aliases included).
            text = _text(p)
            name = ALIASES.get(text, text)
            names = [name] if name in OPTIONS else []
        else:
            match = compile_glob(p)
            names = [n for n in OPTIONS if match(n.encode())]
        for n in names:
            if n not in seen:
                seen.add(n)
                out += [n.encode(), cfg.show(n).encode()]
    return Map(out)


@subcommand(CONFIG, "set", -4, "admin noscript loading stale no_txn")
def config_set(c: Client, a: list[bytes]) -> Status:
    if len(a) % 2:
        raise syntax()
    cfg = c.server.config
    pairs: list[tuple[str, str, str]] = []  # (option, as given, value)
    seen: set[str] = set()
    # As Redis 7's configSetCommand: every name and value is checked before any is set,
    # so a failing CONFIG SET changes nothing.
    for i in range(2, len(a), 2):
        given = _text(a[i])
        name = ALIASES.get(given.lower(), given.lower())
        opt = OPTIONS.get(name)
        if opt is None:
            raise ResponseError(f"Unknown option or number of arguments for CONFIG SET - '{given}'")
        if name in seen:
            raise _set_failed(given, "duplicate parameter")
        seen.add(name)
        if not opt.mutable:
            raise _set_failed(given, "can't set immutable config")
        value = _text(a[i + 1])
        try:
            opt.parse(value)
        except ConfigError as e:
            raise _set_failed(given, str(e)) from None
        pairs.append((name, given, value))
    old = {name: cfg.show(name) for name, _, _ in pairs}
    done: list[str] = []
    for name, given, value in pairs:
        try:
            cfg.set(name, value)
        except ConfigError as e:
            for n in done:  # roll back what was already applied
                cfg.set(n, old[n], startup=True)
            raise _set_failed(given, str(e)) from None
        done.append(name)
    return OK


def _set_failed(arg: str, why: str) -> ResponseError:
    return ResponseError(f"CONFIG SET failed (possibly related to argument '{arg}') - {why}")


@subcommand(CONFIG, "resetstat", 2, "admin noscript loading stale no_txn")
def config_resetstat(c: Client, a: list[bytes]) -> Status:
    server = c.server
    server.stats.reset()
    if server.store is not None:
        server.store.keyspace_hits = server.store.keyspace_misses = 0
        server.store.expired_keys = 0
    lat = server.extensions.get("latency")
    if lat is not None:
        lat.reset_histograms()
    return OK


@subcommand(CONFIG, "rewrite", 2, "admin noscript loading stale no_txn")
def config_rewrite(c: Client, a: list[bytes]) -> Status:
    try:
        c.server.config.rewrite()
    except ConfigError as e:
        raise ResponseError(str(e)) from None
    except OSError as e:
        raise ResponseError(f"Rewriting config file: {e.strerror}") from None
    return OK


@subcommand(CONFIG, "help", 2, "loading stale no_txn")
def config_help(c: Client, a: list[bytes]) -> list[Status]:
    return _help(
        "CONFIG",
        [
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )


# ---------------------------------------------------------------- CLIENT

CLIENT_TYPES = ("normal", "master", "replica", "slave", "pubsub")


def client_type(c: Client) -> str:
    """getClientType: pub/sub subscribers, else normal (no replicas or masters yet)."""
    return "pubsub" if (c.channels or c.patterns or c.shard_channels) else "normal"


def client_flags(c: Client) -> str:
    """The flags field, in Redis's order (O monitor, P pub/sub, x MULTI, b blocked,
    d dirty CAS, c close after reply, U Unix socket), N when none."""
    f = c.flags
    if c.channels or c.patterns or c.shard_channels:
        f += "P"
    if c.multi is not None:
        f += "x"
    if c.blocked:
        f += "b"
    if c.watch_token is not None and c.watch_token[0]:
        f += "d"
    if c.close_after_reply:
        f += "c"
    if c.laddr.startswith("/"):
        f += "U"
    return f or "N"


def client_line(c: Client, current: str | None = None) -> str:
    """catClientInfoString (Redis 7.0's fields; the memory ones are what we know)."""
    now = time.time()
    qbuf = c.parser.buffered()
    t = c.transport
    omem = t.get_write_buffer_size() if t is not None else 0
    cmd = current if current is not None else c.last_cmd
    return (
        f"id={c.id} addr={c.addr} laddr={c.laddr} fd={c.fd} name={_text(c.name or b'')} "
        f"age={int(now - c.created)} idle={int(time.monotonic() - c.last_interaction)} "
        f"flags={client_flags(c)} db={c.db} sub={len(c.channels)} psub={len(c.patterns)} "
        f"ssub=0 multi={-1 if c.multi is None else len(c.multi)} qbuf={qbuf} qbuf-free=0 "
        f"argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={omem} tot-mem={qbuf + omem} "
        f"events=r{'w' if omem else ''} cmd={cmd} user=default redir=-1 resp={c.proto}\n"
    )


def _parse_id(b: bytes, error: str) -> int:
    try:
        v = parse_int(b)
    except ResponseError:
        raise ResponseError(error) from None
    if v <= 0:
        raise ResponseError(error)
    return v


@subcommand(CLIENT, "list", -2, "admin noscript loading stale random no_txn")
def client_list(c: Client, a: list[bytes]) -> Verbatim:
    clients: Iterable[Client] = list(c.server.clients.values())
    if len(a) == 4 and a[2].lower() == b"type":
        kind = _text(a[3]).lower()
        if kind not in CLIENT_TYPES:
            raise ResponseError(f"Unknown client type '{_text(a[3])}'")
        clients = [x for x in clients if client_type(x) == kind]
    elif len(a) >= 4 and a[2].lower() == b"id":
        ids = {_parse_id(x, "Invalid client ID") for x in a[3:]}
        clients = [x for x in clients if x.id in ids]
    elif len(a) != 2:
        raise syntax()
    return Verbatim(
        "".join(client_line(x, "client|list" if x is c else None) for x in clients).encode()
    )


@subcommand(CLIENT, "info", 2, "noscript loading stale random no_txn")
def client_info(c: Client, a: list[bytes]) -> Verbatim:
    return Verbatim(client_line(c, "client|info").encode())


@subcommand(CLIENT, "kill", -3, "admin noscript loading stale no_txn")
def client_kill(c: Client, a: list[bytes]) -> object:
    clients = list(c.server.clients.values())
    if len(a) == 3:
        # The old form: CLIENT KILL addr:port, an error when nobody matches.
        addr = _text(a[2])
        for x in clients:
            if x.addr == addr:
                _kill(c, x)
                return OK
        raise ResponseError("No such client")
    if len(a) % 2:
        raise syntax()
    want: list[tuple[str, object]] = []  # (what, value) filters a client must all pass
    skipme = True
    for i in range(2, len(a), 2):
        opt, val = a[i].lower(), a[i + 1]
        if opt == b"id":
            cid = _parse_id(val, "client-id should be greater than 0")
            want.append(("id", cid))
        elif opt == b"type":
            kind = _text(val).lower()
            if kind not in CLIENT_TYPES:
                raise ResponseError(f"Unknown client type '{_text(val)}'")
            want.append(("type", kind))
        elif opt == b"addr":
            want.append(("addr", _text(val)))
        elif opt == b"laddr":
            want.append(("laddr", _text(val)))
        elif opt == b"user":
            if val != b"default":
                raise ResponseError(f"No such user '{_text(val)}'")
        elif opt == b"skipme":
            if val.lower() == b"yes":
                skipme = True
            elif val.lower() == b"no":
                skipme = False
            else:
                raise syntax()
        else:
            raise syntax()
    killed = 0
    for x in clients:
        if skipme and x is c:
            continue
        if all(_client_field(x, what) == v for what, v in want):
            _kill(c, x)
            killed += 1
    return killed


def _client_field(c: Client, what: str) -> object:
    return client_type(c) if what == "type" else getattr(c, what)


def _kill(me: Client, x: Client) -> None:
    if x is me:
        x.close_after_reply = True  # as Redis: the caller gets its reply first
    else:
        x.close()


@subcommand(CLIENT, "pause", -3, "admin noscript loading stale no_txn")
def client_pause(c: Client, a: list[bytes]) -> Status:
    try:
        ms = parse_int(a[2])
    except ResponseError:
        raise ResponseError("timeout is not an integer or out of range") from None
    if ms < 0:
        raise ResponseError("timeout is negative")
    mode = "all"
    if len(a) == 4:
        mode = _text(a[3]).lower()
        if mode not in ("write", "all"):
            raise ResponseError("CLIENT PAUSE mode must be WRITE or ALL")
    elif len(a) > 4:
        raise syntax()
    c.server.extensions["pause"].start(ms, mode)
    return OK


@subcommand(CLIENT, "unpause", 2, "admin noscript loading stale no_txn")
def client_unpause(c: Client, a: list[bytes]) -> Status:
    c.server.extensions["pause"].end()
    return OK


@subcommand(CLIENT, "help", 2, "loading stale no_txn")
def client_help(c: Client, a: list[bytes]) -> list[Status]:
    # Redis 7.0's text, the subcommands we do not have (TRACKING, CACHING ...) left out.
    return _help(
        "CLIENT",
        [
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    )


class Pause:
    """CLIENT PAUSE: while a pause lasts, commands it covers (every command in ALL mode,
    write commands and EXEC of a transaction that writes in WRITE mode) park their
    client, as Redis's blockPostponeClient, and run in arrival order when it ends.

    client.py has no hook before a command runs, so the pause swaps the server's
    command table for one whose covered commands park the client (returning BLOCKED),
    and restores it when the pause ends."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.mode: str | None = None
        self.until = 0.0
        self.original: dict[bytes, Command] | None = None
        self.parked: list[tuple[Client, Command, list[bytes]]] = []
        self.parked_ids: set[int] = set()
        self.timer: Any = None

    def start(self, ms: int, mode: str) -> None:
        server = self.server
        until = time.monotonic() + ms / 1000
        # As pauseClients: a longer pause, or a stricter mode, wins over the current one.
        if self.mode is not None:
            until = max(until, self.until)
            if self.mode == "all":
                mode = "all"
        self.until = until
        if self.mode != mode:
            if self.original is None:
                self.original = server.table
            assert self.original is not None
            server.table = {n: self._wrap(cmd, mode) for n, cmd in self.original.items()}
            self.mode = mode
        if self.timer is not None:
            self.timer.cancel()
        loop = server.loop
        if loop is not None:
            self.timer = loop.call_later(max(0.0, until - time.monotonic()), self.end)

    def end(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.original is not None:
            self.server.table = self.original
            self.original = None
        self.mode = None
        parked, self.parked = self.parked, []
        stats = self.server.stats
        for c, cmd, args in parked:
            if self.mode is not None and self._covers(cmd, self.mode):
                self.parked.append((c, cmd, args))  # a resumed client paused again
                continue
            self.parked_ids.discard(c.id)
            # Stats.called counted the parked call; the real one counts now instead.
            s = stats.commands.get(cmd.name)
            if s is not None and s.calls > 0:
                s.calls -= 1
                stats.total_commands = max(0, stats.total_commands - 1)
            if c.closing:
                continue
            c.blocked = False
            c.call(cmd, args)
            c.process()

    def _covers(self, cmd: Command, mode: str) -> bool:
        return mode == "all" or "write" in cmd.flags or cmd.name == "exec"

    def _wrap(self, cmd: Command, mode: str) -> Command:
        subs = cmd.subcommands
        if subs is not None:
            subs = {n: self._wrap(s, mode) for n, s in subs.items()}
        if not self._covers(cmd, mode):
            return replace(cmd, subcommands=subs)
        real = cmd
        pause = self

        def parked(c: Client, a: list[bytes]) -> object:
            if c.in_exec:
                return real.handler(c, a)  # a queued command: EXEC itself was let through
            if mode == "write" and real.name == "exec" and not _multi_writes(c):
                return real.handler(c, a)
            pause.parked_ids.add(c.id)  # the slowlog and latency hooks skip this call
            pause.parked.append((c, real, a))
            return BLOCKED

        flags = cmd.flags | {"no_txn"}
        return replace(cmd, flags=flags, handler=parked, subcommands=subs)


def _multi_writes(c: Client) -> bool:
    return any("write" in cmd.flags for cmd, _ in (c.multi or ()))


# ---------------------------------------------------------------- COMMAND

# Redis 7.0's addReplyCommandFlags order; our internal flags (no_txn, random) are not
# shown (random is a tip in Redis 7).
FLAG_ORDER = (
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking",
    "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth",
    "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys", "allow_busy",
)  # fmt: skip
# ACLCommandCategories order (acl.c).
CATEGORY_ORDER = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting",
)  # fmt: skip
# The group category of a command, from the module its handler lives in (Redis keeps
# it in each command's JSON file; our modules are split the same way).
MODULE_CATEGORY = {
    "shalekv.commands.strings": "string",
    "shalekv.commands.keys": "keyspace",
    "shalekv.commands.lists": "list",
    "shalekv.commands.hashes": "hash",
    "shalekv.commands.sets": "set",
    "shalekv.commands.zsets": "sortedset",
    "shalekv.commands.geo": "geo",
    "shalekv.server.commands.connection": "connection",
    "shalekv.server.commands.transactions": "transaction",
    "shalekv.server.commands.pubsub": "pubsub",
}
# This module's own commands that Redis files under another group.
NAME_CATEGORY = {
    "command": "connection", "client": "connection", "object": "keyspace",
    "blpop": "list", "brpop": "list", "blmove": "list", "brpoplpush": "list", "blmpop": "list",
    "bzpopmin": "sortedset", "bzpopmax": "sortedset", "bzmpop": "sortedset",
}  # fmt: skip
# Commands Redis files under @dangerous without the admin flag (their JSON files).
DANGEROUS = frozenset(
    ("flushall", "flushdb", "info", "keys", "migrate", "restore", "restore-asking", "sort",
     "sort_ro", "swapdb")
)  # fmt: skip
DOC_GROUP = {"keyspace": "generic", "sortedset": "sorted_set", "transaction": "transactions"}


def _group(name: str) -> str | None:
    """The group category, from the module that registered the handler (the table a
    server runs may hold wrappers, e.g. keyspace notifications')."""
    top = name.split("|")[0]
    if top in NAME_CATEGORY:
        return NAME_CATEGORY[top]
    registered = DATA_TABLE.get(top.encode()) or SERVER.get(top.encode())
    return None if registered is None else MODULE_CATEGORY.get(registered.handler.__module__)


def acl_categories(cmd: Command) -> list[str]:
    """setImplicitACLCategories plus the group category."""
    cats: set[str] = set()
    # A pure container (CLIENT, CONFIG: arity -2) has no group; COMMAND runs by itself.
    if cmd.subcommands is None or cmd.arity != -2:
        group = _group(cmd.name)
        if group:
            cats.add(group)
    if cmd.name in DANGEROUS:
        cats.add("dangerous")
    f = cmd.flags
    if "write" in f:
        cats.add("write")
    if "readonly" in f:
        cats.add("read")
    if "admin" in f:
        cats |= {"admin", "dangerous"}
    if "pubsub" in f:
        cats.add("pubsub")
    if "blocking" in f:
        cats.add("blocking")
    cats.add("fast" if "fast" in f else "slow")
    return ["@" + x for x in CATEGORY_ORDER if x in cats]


def _spec_flags(cmd: Command) -> list[str]:
    """Key-spec flags: what the table knows (read or write), not Redis's finer ones."""
    return ["RO", "access"] if "write" not in cmd.flags else ["RW", "update"]


# Commands whose keys follow a numkeys argument (Redis's "keynum" key specs): the
# index of numkeys. The table's first/last/step only covers fixed positions.
NUMKEYS_AT = {
    "lmpop": 1, "zmpop": 1, "sintercard": 1, "zintercard": 1, "zunion": 1, "zinter": 1,
    "zdiff": 1, "zunionstore": 2, "zinterstore": 2, "zdiffstore": 2, "blmpop": 2, "bzmpop": 2,
}  # fmt: skip


# Commands with a key after a keyword (Redis's "keyword" key specs): where the search
# for each keyword starts; the first match names the key after it.
KEYWORD_KEYS = {
    "georadius": (6, (b"store", b"storedist")),
    "georadiusbymember": (5, (b"store", b"storedist")),
}


def _keyword_keys(name: str, args: list[bytes]) -> list[bytes]:
    spec = KEYWORD_KEYS.get(name)
    if spec is None:
        return []
    start, words = spec
    keys = []
    for word in words:
        for i in range(start, len(args) - 1):
            if args[i].lower() == word:
                keys.append(args[i + 1])
                break
    return keys


def _spec(flags: list[str], index: int, find: Map) -> Map:
    return Map(
        [
            b"flags", SetReply([Status(x.encode()) for x in flags]),
            b"begin_search", Map([b"type", b"index", b"spec", Map([b"index", index])]),
            b"find_keys", find,
        ]
    )  # fmt: skip


def _key_specs(cmd: Command) -> list[Map]:
    flags = _spec_flags(cmd)
    specs = []
    if cmd.first_key > 0:
        last = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
        spec = Map([b"lastkey", last, b"keystep", cmd.step, b"limit", 0])
        specs.append(_spec(flags, cmd.first_key, Map([b"type", b"range", b"spec", spec])))
    at = NUMKEYS_AT.get(cmd.name)
    if at is not None:
        spec = Map([b"keynumidx", 0, b"firstkey", 1, b"keystep", 1])
        specs.append(_spec(flags, at, Map([b"type", b"keynum", b"spec", spec])))
    return specs


def command_info(cmd: Command) -> list[object]:
    """addReplyCommandInfo: Redis 7's ten fields."""
    return [
        cmd.name.encode(),
        cmd.arity,
        SetReply([Status(f.encode()) for f in FLAG_ORDER if f in cmd.flags]),
        cmd.first_key,
        cmd.last_key,
        cmd.step,
        SetReply([Status(x.encode()) for x in acl_categories(cmd)]),
        # Redis 7.0 sends tips, key specs and subcommands as RESP3 sets
        SetReply([b"nondeterministic_output"] if "random" in cmd.flags else []),
        SetReply(_key_specs(cmd)),
        SetReply([command_info(s) for s in (cmd.subcommands or {}).values()]),
    ]


def command_docs(cmd: Command) -> Map:
    """A modest COMMAND DOCS entry: summary (the handler's docstring), group, arity."""
    doc = (cmd.handler.__doc__ or "").strip().split("\n")[0]
    group = _group(cmd.name) or "server"
    out: list[object] = [
        b"summary", doc.encode(),
        b"group", DOC_GROUP.get(group, group).encode(),
        b"arity", cmd.arity,
    ]  # fmt: skip
    if cmd.subcommands:
        sub: list[object] = []
        for s in cmd.subcommands.values():
            sub += [s.name.encode(), command_docs(s)]
        out += [b"subcommands", Map(sub)]
    return Map(out)


def find_command(table: dict[bytes, Command], name: bytes) -> Command | None:
    """By name, or `container|sub` (lookupCommandBySds)."""
    parts = name.lower().split(b"|")
    cmd = table.get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd if len(parts) == 1 else None
    if len(parts) != 2 or cmd.subcommands is None:
        return None
    return cmd.subcommands.get(parts[1])


def _all_commands(table: dict[bytes, Command]) -> Iterable[Command]:
    for cmd in table.values():
        yield cmd
        if cmd.subcommands:
            yield from cmd.subcommands.values()


def _command_all(c: Client, a: list[bytes]) -> list[object]:
    return [command_info(cmd) for cmd in c.server.table.values()]


COMMAND = Command(
    "command", -1, frozenset(("loading", "stale", "no_txn")), 0, 0, 0, _command_all, {}
)
SERVER[b"command"] = COMMAND


@subcommand(COMMAND, "count", 2, "loading stale no_txn")
def command_count(c: Client, a: list[bytes]) -> int:
    return len(c.server.table)


@subcommand(COMMAND, "info", -2, "loading stale no_txn")
def command_info_(c: Client, a: list[bytes]) -> list[object]:
    if len(a) == 2:
        return _command_all(c, a)
    out: list[object] = []
    for name in a[2:]:
        cmd = find_command(c.server.table, name)
        out.append(None if cmd is None else command_info(cmd))
    return out


@subcommand(COMMAND, "docs", -2, "loading stale no_txn")
def command_docs_(c: Client, a: list[bytes]) -> Map:
    table = c.server.table
    out: list[object] = []
    if len(a) == 2:
        for cmd in table.values():
            out += [cmd.name.encode(), command_docs(cmd)]
        return Map(out)
    for name in a[2:]:
        found = find_command(table, name)
        if found is not None:
            out += [found.name.encode(), command_docs(found)]
    return Map(out)


@subcommand(COMMAND, "list", -2, "loading stale no_txn")
def command_list(c: Client, a: list[bytes]) -> list[bytes]:
    cmds = _all_commands(c.server.table)
    if len(a) == 5 and a[2].lower() == b"filterby":
        kind, arg = a[3].lower(), a[4]
        if kind == b"module":
            cmds = []  # no modules
        elif kind == b"aclcat":
            cat = "@" + _text(arg).lower()
            cmds = [x for x in cmds if cat in acl_categories(x)]
        elif kind == b"pattern":
            match = compile_glob(arg.lower())
            cmds = [x for x in cmds if match(x.name.encode())]
        else:
            raise syntax()
    elif len(a) != 2:
        raise syntax()
    return [x.name.encode() for x in cmds]


@subcommand(COMMAND, "getkeys", -4, "loading stale no_txn")
def command_getkeys(c: Client, a: list[bytes]) -> list[bytes]:
    return _getkeys(c, a[2:])[1]


@subcommand(COMMAND, "getkeysandflags", -4, "loading stale no_txn")
def command_getkeysandflags(c: Client, a: list[bytes]) -> list[list[object]]:
    cmd, keys = _getkeys(c, a[2:])
    flags = SetReply([Status(f.encode()) for f in _spec_flags(cmd)])
    return [[k, flags] for k in keys]


def _getkeys(c: Client, args: list[bytes]) -> tuple[Command, list[bytes]]:
    """getKeysFromCommand: the table's first/last/step, then numkeys-counted keys."""
    cmd = c.server.table.get(args[0].lower())
    if cmd is not None and cmd.subcommands is not None and len(args) >= 2:
        cmd = cmd.subcommands.get(args[1].lower())
    if cmd is None:
        raise ResponseError("Invalid command specified")
    n = len(args)
    if (cmd.arity > 0 and n != cmd.arity) or n < -cmd.arity:
        raise ResponseError("Invalid number of arguments specified for command")
    at = NUMKEYS_AT.get(cmd.name)
    if cmd.first_key <= 0 and at is None:
        raise ResponseError("The command has no key arguments")
    keys: list[bytes] = []
    if cmd.first_key > 0:
        last = cmd.last_key if cmd.last_key >= 0 else n + cmd.last_key
        keys = args[cmd.first_key : last + 1 : max(cmd.step, 1)]
    if at is not None:
        try:
            numkeys = int(args[at])
        except ValueError:
            numkeys = 0
        if numkeys <= 0 or at + numkeys >= n:
            raise ResponseError("Invalid arguments specified for command")
        keys += args[at + 1 : at + 1 + numkeys]
    return cmd, keys + _keyword_keys(cmd.name, args)


@subcommand(COMMAND, "help", 2, "loading stale no_txn")
def command_help(c: Client, a: list[bytes]) -> list[Status]:
    return _help(
        "COMMAND",
        [
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    )


# ---------------------------------------------------------------- SLOWLOG

SLOWLOG = container("slowlog", SERVER, "no_txn")


@subcommand(SLOWLOG, "get", -2, "admin loading stale random no_txn")
def slowlog_get(c: Client, a: list[bytes]) -> list[list[object]]:
    count = 10
    if len(a) == 3:
        try:
            count = parse_int(a[2])
        except ResponseError:
            count = -2
        if count < -1:
            raise ResponseError("count should be greater than or equal to -1")
    elif len(a) > 3:
        raise ResponseError("wrong number of arguments for 'slowlog|get' command")
    return c.server.extensions["slowlog"].get(count)  # type: ignore[no-any-return]


@subcommand(SLOWLOG, "len", 2, "admin loading stale random no_txn")
def slowlog_len(c: Client, a: list[bytes]) -> int:
    return len(c.server.extensions["slowlog"].entries)


@subcommand(SLOWLOG, "reset", 2, "admin loading stale no_txn")
def slowlog_reset(c: Client, a: list[bytes]) -> Status:
    c.server.extensions["slowlog"].reset()
    return OK


@subcommand(SLOWLOG, "help", 2, "loading stale no_txn")
def slowlog_help(c: Client, a: list[bytes]) -> list[Status]:
    return _help(
        "SLOWLOG",
        [
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    )


# ---------------------------------------------------------------- LATENCY

LATENCY = container("latency", SERVER, "no_txn")


@subcommand(LATENCY, "latest", 2, "admin noscript loading stale random no_txn")
def latency_latest(c: Client, a: list[bytes]) -> list[list[object]]:
    return c.server.extensions["latency"].latest()  # type: ignore[no-any-return]


@subcommand(LATENCY, "history", 3, "admin noscript loading stale random no_txn")
def latency_history(c: Client, a: list[bytes]) -> list[list[int]]:
    return c.server.extensions["latency"].history(_text(a[2]))  # type: ignore[no-any-return]


@subcommand(LATENCY, "reset", -2, "admin noscript loading stale no_txn")
def latency_reset(c: Client, a: list[bytes]) -> int:
    events = [_text(x) for x in a[2:]] or None
    return c.server.extensions["latency"].reset(events)  # type: ignore[no-any-return]


@subcommand(LATENCY, "histogram", -2, "admin noscript loading stale random no_txn")
def latency_histogram(c: Client, a: list[bytes]) -> Map:
    lat = c.server.extensions["latency"]
    names: list[str] = []
    if len(a) == 2:
        names = list(lat.histograms)
    for arg in a[2:]:
        # As latencySpecificCommandsFillCDF: a container stands for its subcommands.
        cmd = find_command(c.server.table, arg)
        if cmd is not None:
            names += [s.name for s in cmd.subcommands.values()] if cmd.subcommands else [cmd.name]
    out: list[object] = []
    for name in dict.fromkeys(names):
        entry = lat.cdf(name)
        if entry is not None:
            out += [name.encode(), entry]
    return Map(out)


@subcommand(LATENCY, "help", 2, "loading stale no_txn")
def latency_help(c: Client, a: list[bytes]) -> list[Status]:
    return _help(
        "LATENCY",
        [
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for"
            " the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    )


# ---------------------------------------------------------------- OBJECT

OBJECT = container("object", SERVER, "no_txn")

# Redis 7.0's defaults for the compact encodings (hash-max-listpack-entries/value,
# set-max-intset-entries, zset-max-listpack-entries/value, OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
LISTPACK_ENTRIES = 128
LISTPACK_VALUE = 64
INTSET_ENTRIES = 512
EMBSTR_LIMIT = 44
SHARED_INTEGERS = 10000
LFU_POLICIES = ("allkeys-lfu", "volatile-lfu")


def _is_long(v: bytes) -> bool:
    """string2ll: a canonical decimal that fits in a signed 64-bit integer."""
    if not v or len(v) > 20:
        return False
    try:
        n = int(v)
    except ValueError:
        return False
    return str(n).encode() == v and -(2**63) <= n < 2**63


def encoding_of(c: Client, m: bytes, key: bytes) -> bytes:
    """The encoding Redis 7.0 would give this value, judged from its current contents
    (Redis never converts back to a compact encoding; we store every type the same
    way on disk, so this is only what a Redis client would expect to see)."""
    kind = m[0]
    if kind == enc.STRING:
        v = m[enc.STRING_HEADER :]
        if _is_long(v):
            return b"int"
        return b"embstr" if len(v) <= EMBSTR_LIMIT else b"raw"
    if kind == enc.LIST:
        return b"quicklist"  # Redis 7.0 lists are always quicklists
    version, count = version_count(m)
    prefix = enc.elem_prefix(c.db, key, version)
    if kind == enc.SET:
        if count > INTSET_ENTRIES:
            return b"hashtable"
        ok = all(_is_long(sub) for sub, _ in elements(c.t, prefix))
        return b"intset" if ok else b"hashtable"
    big = b"hashtable" if kind == enc.HASH else b"skiplist"
    if count > LISTPACK_ENTRIES:
        return big
    for sub, v in elements(c.t, prefix):
        if len(sub) > LISTPACK_VALUE or (kind == enc.HASH and len(v) > LISTPACK_VALUE):
            return big
    return b"listpack"


@subcommand(OBJECT, "encoding", 3, "readonly random", 2, 2, 1)
def object_encoding(c: Client, a: list[bytes]) -> bytes | None:
    m = c.t.meta(c.db, a[2])
    return None if m is None else encoding_of(c, m, a[2])


@subcommand(OBJECT, "freq", 3, "readonly random", 2, 2, 1)
def object_freq(c: Client, a: list[bytes]) -> int | None:
    if c.t.meta(c.db, a[2]) is None:
        return None
    if c.server.config["maxmemory-policy"] not in LFU_POLICIES:
        raise ResponseError(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please "
            "note that when switching between policies at runtime LRU and LFU data will "
            "take some time to adjust."
        )
    return 0  # access frequency is not tracked


@subcommand(OBJECT, "idletime", 3, "readonly random", 2, 2, 1)
def object_idletime(c: Client, a: list[bytes]) -> int | None:
    if c.t.meta(c.db, a[2]) is None:
        return None
    if c.server.config["maxmemory-policy"] in LFU_POLICIES:
        raise ResponseError(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that "
            "when switching between policies at runtime LRU and LFU data will take some "
            "time to adjust."
        )
    return 0  # access times are not tracked


@subcommand(OBJECT, "refcount", 3, "readonly random", 2, 2, 1)
def object_refcount(c: Client, a: list[bytes]) -> int | None:
    m = c.t.meta(c.db, a[2])
    if m is None:
        return None
    if m[0] == enc.STRING:
        v = m[enc.STRING_HEADER :]
        if _is_long(v) and 0 <= int(v) < SHARED_INTEGERS:
            return 2147483647  # OBJ_SHARED_REFCOUNT: Redis shares small integers
    return 1


@subcommand(OBJECT, "help", 2, "loading stale no_txn")
def object_help(c: Client, a: list[bytes]) -> list[Status]:
    return _help(
        "OBJECT",
        [
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )
