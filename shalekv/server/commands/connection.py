"""Connection commands (Redis's networking.c/server.c): PING, ECHO, QUIT, RESET, HELLO,
AUTH, SELECT and the CLIENT subcommands that only touch the caller."""

from __future__ import annotations

import hmac

from shalekv.commands.registry import OK, command, container, subcommand, syntax
from shalekv.commands.reply import Map, Status
from shalekv.errors import ResponseError
from shalekv.server.client import NO_REPLY, Client, CodedError
from shalekv.server.commands.table import SERVER
from shalekv.types.numbers import parse_int

REDIS_VERSION = "7.0.15"  # the Redis version whose commands and replies we follow
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@command("ping", -1, "fast stale no_txn", 0, 0, 0, table=SERVER)
def ping(c: Client, a: list[bytes]) -> object:
    if len(a) > 2:
        raise ResponseError("wrong number of arguments for 'ping' command")
    if c.proto == 2 and (c.channels or c.patterns or c.shard_channels):
        return [b"pong", a[1] if len(a) == 2 else b""]
    return a[1] if len(a) == 2 else Status(b"PONG")


@command("echo", 2, "fast no_txn", 0, 0, 0, table=SERVER)
def echo(c: Client, a: list[bytes]) -> bytes:
    return a[1]


@command("quit", -1, "fast no_auth allow_busy no_txn", 0, 0, 0, table=SERVER)
def quit_(c: Client, a: list[bytes]) -> Status:
    c.close_after_reply = True
    return OK


def check_password(c: Client, user: bytes, password: bytes) -> bool:
    want = c.server.config["requirepass"].encode()
    if user != b"default":
        return False
    if not want:
        return True  # the default user has nopass
    return hmac.compare_digest(password, want)


@command("auth", -2, "no_auth fast no_txn", 0, 0, 0, table=SERVER)
def auth(c: Client, a: list[bytes]) -> Status:
    if len(a) > 3:
        raise syntax()
    if len(a) == 2 and not c.server.config["requirepass"]:
        raise ResponseError(
            "AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        )
    user, password = (b"default", a[1]) if len(a) == 2 else (a[1], a[2])
    if not check_password(c, user, password):
        raise CodedError(WRONGPASS)
    c.authenticated = True
    return OK


@command("hello", -1, "no_auth fast no_txn", 0, 0, 0, table=SERVER)
def hello(c: Client, a: list[bytes]) -> Map:
    proto = None
    if len(a) >= 2:
        try:
            proto = parse_int(a[1])
        except ResponseError:
            raise ResponseError("Protocol version is not an integer or out of range") from None
        if proto not in (2, 3):
            raise CodedError("NOPROTO unsupported protocol version")
    i = 2
    name = None
    creds = None
    while i < len(a):
        opt = a[i].upper()
        more = len(a) - i - 1
        if opt == b"AUTH" and more >= 2:
            creds = (a[i + 1], a[i + 2])
            i += 3
        elif opt == b"SETNAME" and more >= 1:
            name = a[i + 1]
            i += 2
        else:
            raise ResponseError(f"Syntax error in HELLO option '{a[i].decode('utf-8', 'replace')}'")
    if creds is not None:
        if not check_password(c, *creds):
            raise CodedError(WRONGPASS)
        c.authenticated = True
    if not c.authenticated:
        raise CodedError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time"
        )
    if name is not None:
        check_name(name)
        c.name = name or None
    if proto is not None:
        c.proto = proto
    return Map(
        [
            b"server", b"redis",
            b"version", REDIS_VERSION.encode(),
            b"proto", c.proto,
            b"id", c.id,
            b"mode", b"standalone",
            b"role", b"master",
            b"modules", [],
        ]
    )  # fmt: skip


@command("reset", 1, "fast no_auth no_txn", 0, 0, 0, table=SERVER)
def reset(c: Client, a: list[bytes]) -> Status:
    from shalekv.server.commands.transactions import discard_multi, unwatch_all

    discard_multi(c)
    unwatch_all(c)
    for hook in c.server.extensions.get("on_reset", ()):
        hook(c)  # pub/sub unsubscribes, MONITOR ends
    c.db = 0
    c.proto = 2
    c.name = None
    c.reply_off = c.skip_this = c.skip_next = False
    c.authenticated = not c.server.config["requirepass"]
    return Status(b"RESET")


@command("select", 2, "fast loading stale no_txn", 0, 0, 0, table=SERVER)
def select(c: Client, a: list[bytes]) -> Status:
    try:
        db = parse_int(a[1])
    except ResponseError:
        raise ResponseError("value is not an integer or out of range") from None
    c.store.check_db(db)
    c.db = db
    return OK


# ---------------------------------------------------------------- CLIENT (own connection)

CLIENT = container("client", SERVER, "no_txn")


def check_name(name: bytes) -> None:
    if any(ch <= 32 or ch > 126 for ch in name):
        raise ResponseError("Client names cannot contain spaces, newlines or special characters.")


@subcommand(CLIENT, "id", 2, "no_txn")
def client_id(c: Client, a: list[bytes]) -> int:
    return c.id


@subcommand(CLIENT, "setname", 3, "no_txn")
def client_setname(c: Client, a: list[bytes]) -> Status:
    check_name(a[2])
    c.name = a[2] or None
    return OK


@subcommand(CLIENT, "getname", 2, "no_txn")
def client_getname(c: Client, a: list[bytes]) -> bytes | None:
    return c.name


@subcommand(CLIENT, "reply", 3, "no_txn")
def client_reply(c: Client, a: list[bytes]) -> object:
    mode = a[2].lower()
    if mode == b"on":
        c.reply_off = c.skip_next = False
        return OK
    if mode == b"off":
        c.reply_off = True
        return NO_REPLY
    if mode == b"skip":
        if not c.reply_off:
            c.skip_next = True
        return NO_REPLY
    raise syntax()


@subcommand(CLIENT, "setinfo", 4, "no_txn")
def client_setinfo(c: Client, a: list[bytes]) -> Status:
    attr = a[2].lower()
    if attr not in (b"lib-name", b"lib-ver"):
        raise ResponseError(f"Unrecognized option '{a[2].decode('utf-8', 'replace')}'")
    if any(ch < 33 or ch > 126 for ch in a[3]):
        raise ResponseError(
            f"{attr.decode()} cannot contain spaces, newlines or special characters."
        )
    if attr == b"lib-name":
        c.lib_name = a[3]
    else:
        c.lib_ver = a[3]
    return OK


@subcommand(CLIENT, "no-evict", 3, "no_txn")
def client_no_evict(c: Client, a: list[bytes]) -> Status:
    if a[2].lower() not in (b"on", b"off"):
        raise syntax()
    return OK  # accepted: nothing is evicted from a store whose data is on disk
