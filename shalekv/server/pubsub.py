"""The pub/sub hub (Redis's pubsub.c): who listens to which channel, pattern and shard
channel, and PUBLISH's fan-out.

Subscribers are kept per channel in insertion order (a dict of client id -> Client), so
a message reaches them in the order they subscribed, as Redis's per-channel list. A
client's own channels and patterns live on the client (`c.channels`, `c.patterns`:
client.py reads them for the RESP2 subscribed context and the output-buffer limit);
shard channels (SSUBSCRIBE) are kept here, by client id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shalekv.commands.reply import Push
from shalekv.types.glob import compile_glob

if TYPE_CHECKING:
    from shalekv.server.app import Server
    from shalekv.server.client import Client

Subscribers = dict[int, "Client"]


class PubSubHub:
    """Channel, pattern and shard-channel subscriptions of one server."""

    def __init__(self) -> None:
        self.channels: dict[bytes, Subscribers] = {}
        # pattern -> (matcher, subscribers); the matcher is compiled once per pattern
        self.patterns: dict[bytes, tuple[Callable[[bytes], object], Subscribers]] = {}
        self.shard: dict[bytes, Subscribers] = {}
        self.shard_of: dict[int, set[bytes]] = {}  # client id -> its shard channels

    # ------------------------------------------------------------ counts

    @staticmethod
    def count(c: Client) -> int:
        """What (P)SUBSCRIBE/(P)UNSUBSCRIBE replies carry: channels + patterns
        (Redis 7.0's clientSubscriptionsCount; shard channels are counted apart)."""
        return len(c.channels) + len(c.patterns)

    def shard_count(self, c: Client) -> int:
        return len(self.shard_of.get(c.id, ()))

    # ------------------------------------------------------------ (un)subscribe

    def subscribe(self, c: Client, channel: bytes) -> None:
        if channel not in c.channels:
            c.channels.add(channel)
            self.channels.setdefault(channel, {})[c.id] = c

    def unsubscribe(self, c: Client, channel: bytes) -> None:
        if channel in c.channels:
            c.channels.discard(channel)
            _drop(self.channels, channel, c.id)

    def psubscribe(self, c: Client, pattern: bytes) -> None:
        if pattern not in c.patterns:
            c.patterns.add(pattern)
            entry = self.patterns.get(pattern)
            if entry is None:
                entry = self.patterns[pattern] = (compile_glob(pattern), {})
            entry[1][c.id] = c

    def punsubscribe(self, c: Client, pattern: bytes) -> None:
        if pattern in c.patterns:
            c.patterns.discard(pattern)
            entry = self.patterns.get(pattern)
            if entry is not None:
                entry[1].pop(c.id, None)
                if not entry[1]:
                    del self.patterns[pattern]

    def ssubscribe(self, c: Client, channel: bytes) -> None:
        mine = self.shard_of.setdefault(c.id, set())
        if channel not in mine:
            mine.add(channel)
            c.shard_channels.add(channel)
            self.shard.setdefault(channel, {})[c.id] = c

    def sunsubscribe(self, c: Client, channel: bytes) -> None:
        mine = self.shard_of.get(c.id)
        if mine is not None and channel in mine:
            mine.discard(channel)
            c.shard_channels.discard(channel)
            if not mine:
                del self.shard_of[c.id]
            _drop(self.shard, channel, c.id)

    def forget(self, c: Client) -> None:
        """Drop every subscription of a client (disconnect, RESET), replying nothing."""
        for ch in list(c.channels):
            self.unsubscribe(c, ch)
        for p in list(c.patterns):
            self.punsubscribe(c, p)
        for ch in list(self.shard_of.get(c.id, ())):
            self.sunsubscribe(c, ch)

    # ------------------------------------------------------------ publish

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver to channel subscribers, then to every matching pattern (pubsub.c's
        pubsubPublishMessage order); returns the receivers, a client counted once per
        matching subscription."""
        n = 0
        subs = self.channels.get(channel)
        if subs:
            msg = Push([b"message", channel, message])
            n += len(subs)  # counted first: a slow consumer may be dropped while sent
            for c in list(subs.values()):
                deliver(c, msg)
        if self.patterns:
            for pattern, (match, psubs) in list(self.patterns.items()):
                if match(channel):
                    pmsg = Push([b"pmessage", pattern, channel, message])
                    n += len(psubs)
                    for c in list(psubs.values()):
                        deliver(c, pmsg)
        return n

    def spublish(self, channel: bytes, message: bytes) -> int:
        subs = self.shard.get(channel)
        if not subs:
            return 0
        msg = Push([b"smessage", channel, message])
        n = len(subs)
        for c in list(subs.values()):
            deliver(c, msg)
        return n


def deliver(c: Client, msg: Push) -> None:
    """Send a message: Client.push keeps it behind the replies c has pending (a RESP3
    client that pipelines SUBSCRIBE and PUBLISH sees them in execution order), else
    writes it at once and enforces client-output-buffer-limit pubsub."""
    c.push(msg)


def _drop(index: dict[bytes, Subscribers], channel: bytes, cid: int) -> None:
    subs = index.get(channel)
    if subs is not None:
        subs.pop(cid, None)
        if not subs:
            del index[channel]


def hub(server: Server) -> PubSubHub:
    """The server's hub (installed by install())."""
    h: PubSubHub = server.extensions["pubsub"]
    return h


def install(server: Server) -> None:
    """SERVER_INIT: a hub per server; subscriptions end with the connection or RESET."""
    h = PubSubHub()
    server.extensions["pubsub"] = h
    server.extensions.setdefault("on_disconnect", []).append(h.forget)
    server.extensions.setdefault("on_reset", []).append(h.forget)
