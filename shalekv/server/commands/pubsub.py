"""Pub/sub and MONITOR commands (Redis's pubsub.c, monitorCommand): argument parsing
and replies; the subscriptions live in `shalekv.server.pubsub`, the MONITOR feed in
`shalekv.server.monitor`, keyspace notifications in `shalekv.server.notify`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shalekv.commands.registry import OK, command, container, subcommand
from shalekv.commands.reply import Push, Status
from shalekv.errors import ResponseError
from shalekv.server import monitor, notify
from shalekv.server import pubsub as hub_module
from shalekv.server.client import NO_REPLY, Client
from shalekv.server.commands.table import SERVER, SERVER_INIT
from shalekv.server.pubsub import PubSubHub, hub
from shalekv.types.glob import compile_glob

SERVER_INIT.extend((hub_module.install, notify.install, monitor.install))


def _confirm(c: Client, replies: list[Push]) -> object:
    """One confirmation per channel, as Redis's addReplyPubsub(Un)Subscribed. Inside EXEC
    the command has one slot in EXEC's array: it gets the (only, usually) confirmation."""
    if c.in_exec:
        return replies[0] if len(replies) == 1 else replies
    for r in replies:
        c.reply(r)
    return NO_REPLY


def _subscribe(
    kind: bytes, add: Callable[[PubSubHub], Callable[[Client, bytes], None]], shard: bool = False
) -> Callable[[Client, list[bytes]], object]:
    def handler(c: Client, a: list[bytes]) -> object:
        h = hub(c.server)
        fn = add(h)
        replies = []
        for ch in a[1:]:
            fn(c, ch)
            replies.append(Push([kind, ch, h.shard_count(c) if shard else h.count(c)]))
        return _confirm(c, replies)

    return handler


def _unsubscribe(
    kind: bytes,
    remove: Callable[[PubSubHub], Callable[[Client, bytes], None]],
    current: Callable[[PubSubHub, Client], list[bytes]],
    shard: bool = False,
) -> Callable[[Client, list[bytes]], object]:
    def handler(c: Client, a: list[bytes]) -> object:
        h = hub(c.server)
        fn = remove(h)
        names = a[1:] or current(h, c)
        if not names:
            # as pubsubUnsubscribeAllChannels: with nothing to drop, one reply with nil
            return _confirm(c, [Push([kind, None, h.shard_count(c) if shard else h.count(c)])])
        replies = []
        for ch in names:
            fn(c, ch)
            replies.append(Push([kind, ch, h.shard_count(c) if shard else h.count(c)]))
        return _confirm(c, replies)

    return handler


FLAGS = "pubsub noscript loading stale no_txn"

command("subscribe", -2, FLAGS, 0, 0, 0, table=SERVER)(
    _subscribe(b"subscribe", lambda h: h.subscribe)
)
command("psubscribe", -2, FLAGS, 0, 0, 0, table=SERVER)(
    _subscribe(b"psubscribe", lambda h: h.psubscribe)
)
command("ssubscribe", -2, FLAGS, 1, -1, 1, table=SERVER)(
    _subscribe(b"ssubscribe", lambda h: h.ssubscribe, shard=True)
)
command("unsubscribe", -1, FLAGS, 0, 0, 0, table=SERVER)(
    _unsubscribe(b"unsubscribe", lambda h: h.unsubscribe, lambda h, c: list(c.channels))
)
command("punsubscribe", -1, FLAGS, 0, 0, 0, table=SERVER)(
    _unsubscribe(b"punsubscribe", lambda h: h.punsubscribe, lambda h, c: list(c.patterns))
)
command("sunsubscribe", -1, FLAGS, 1, -1, 1, table=SERVER)(
    _unsubscribe(
        b"sunsubscribe",
        lambda h: h.sunsubscribe,
        lambda h, c: list(h.shard_of.get(c.id, ())),
        shard=True,
    )
)


@command("publish", 3, "pubsub loading stale fast no_txn", 0, 0, 0, table=SERVER)
def publish(c: Client, a: list[bytes]) -> int:
    return hub(c.server).publish(a[1], a[2])


@command("spublish", 3, "pubsub loading stale fast no_txn", 1, 1, 1, table=SERVER)
def spublish(c: Client, a: list[bytes]) -> int:
    return hub(c.server).spublish(a[1], a[2])


# ---------------------------------------------------------------- PUBSUB <subcommand>

PUBSUB = container("pubsub", SERVER, "no_txn")

HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


def _syntax(a: list[bytes]) -> ResponseError:
    # Redis's addReplySubcommandSyntaxError: the subcommand as the client typed it
    sub = a[1][:128].decode("utf-8", "replace")
    return ResponseError(
        f"unknown subcommand or wrong number of arguments for '{sub}'. "
        f"Try {a[0].decode('utf-8', 'replace').upper()} HELP."
    )


def _names(index: Mapping[bytes, object], a: list[bytes]) -> list[bytes]:
    if len(a) > 3:
        raise _syntax(a)
    if len(a) == 2:
        return list(index)
    match = compile_glob(a[2])
    return [ch for ch in index if match(ch)]


@subcommand(PUBSUB, "help", 2, "loading stale no_txn")
def pubsub_help(c: Client, a: list[bytes]) -> list[Status]:
    return [Status(line.encode()) for line in HELP]


@subcommand(PUBSUB, "channels", -2, "pubsub loading stale no_txn")
def pubsub_channels(c: Client, a: list[bytes]) -> list[bytes]:
    return _names(hub(c.server).channels, a)


@subcommand(PUBSUB, "shardchannels", -2, "pubsub loading stale no_txn")
def pubsub_shardchannels(c: Client, a: list[bytes]) -> list[bytes]:
    return _names(hub(c.server).shard, a)


@subcommand(PUBSUB, "numsub", -2, "pubsub loading stale no_txn")
def pubsub_numsub(c: Client, a: list[bytes]) -> list[object]:
    # A flat array (channel, count, ...) in RESP2 and RESP3 alike, as Redis 7.0
    index = hub(c.server).channels
    out: list[object] = []
    for ch in a[2:]:
        out += (ch, len(index.get(ch, ())))
    return out


@subcommand(PUBSUB, "shardnumsub", -2, "pubsub loading stale no_txn")
def pubsub_shardnumsub(c: Client, a: list[bytes]) -> list[object]:
    index = hub(c.server).shard
    out: list[object] = []
    for ch in a[2:]:
        out += (ch, len(index.get(ch, ())))
    return out


@subcommand(PUBSUB, "numpat", 2, "pubsub loading stale no_txn")
def pubsub_numpat(c: Client, a: list[bytes]) -> int:
    return len(hub(c.server).patterns)  # distinct patterns, as dictSize(pubsub_patterns)


# ---------------------------------------------------------------- MONITOR


@command("monitor", 1, "admin noscript loading stale no_txn", 0, 0, 0, table=SERVER)
def monitor_(c: Client, a: list[bytes]) -> object:
    if c.in_exec:
        # EXEC expects one reply per command (Redis: CLIENT_DENY_BLOCKING)
        raise ResponseError("MONITOR isn't allowed for DENY BLOCKING client")
    if not monitor.start(c):
        return NO_REPLY  # already a monitor: Redis ignores the command, without a reply
    return OK
