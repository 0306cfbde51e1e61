"""Clients blocked on keys (Redis 7.0's blocked.c): who waits on which (db, key), in
the order they blocked, and the serving of them when a write makes a key ready.

A blocking command that finds nothing registers a `Waiter` (its keys, a `serve`
function, an optional timeout) and parks the client. After every non-read-only command
the after-call hook marks the waited keys among the command's arguments as ready
(Redis's signalKeyAsReady; over-marking only costs a lookup), then serves each ready
key's waiters first-blocked-first, each pop in its own store Txn, until the key is
empty (handleClientsBlockedOnKeys). A served BLMOVE marks its destination ready, so a
chain of BLMOVEs is served in the same round. A woken client's pipelined requests run
on the next loop iteration, after the round, as Redis's processUnblockedClients.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shalekv.commands.reply import NULL_ARRAY
from shalekv.errors import ResponseError, ShaleError
from shalekv.types.keyspace import Txn

if TYPE_CHECKING:
    from shalekv.commands.registry import Command
    from shalekv.server.app import Server
    from shalekv.server.client import Client

log = logging.getLogger("shalekv.server")


class _Outcome:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# What a serve function returns instead of a reply:
EMPTY = _Outcome("EMPTY")  # the key holds nothing: no later waiter can be served either
SKIP = _Outcome("SKIP")  # the key holds another type: this waiter stays, try the next

# serve(t, db, key) -> the reply (the pop done in t), EMPTY or SKIP; may raise
# ResponseError (BLMOVE's destination of the wrong type), which is the reply then.
Serve = Callable[[Txn, int, bytes], Any]

# Timeouts further away than this (about 31 years) never fire: as in Redis, where such
# deadlines overflow its timeout table, the client waits until data comes.
_MAX_TIMER_S = 1e9


class Waiter:
    """One blocked client: the keys it waits on, how to serve it, its timer."""

    __slots__ = ("client", "db", "keys", "serve", "args", "then", "timer")

    def __init__(
        self,
        client: Client,
        db: int,
        keys: list[bytes],
        serve: Serve,
        args: list[bytes],
        then: tuple[bytes, ...],
    ) -> None:
        self.client = client
        self.db = db
        self.keys = keys
        self.serve = serve
        self.args = args  # the blocking command as sent (for notifications)
        self.then = then  # keys the serve writes to (BLMOVE's destination): ready after
        self.timer: asyncio.TimerHandle | None = None


class BlockedClients:
    """The registry of one server: (db, key) -> FIFO of waiters, and the serving loop.

    Thread-safety: event-loop thread only, as every command."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.by_key: dict[tuple[int, bytes], deque[Waiter]] = {}
        # key name -> dbs it is waited on in: the hook looks arguments up here, across
        # databases (MOVE, COPY ... DB, and commands queued in MULTI around a SELECT)
        self.names: dict[bytes, set[int]] = {}
        self.by_client: dict[int, Waiter] = {}
        self.ready: deque[tuple[int, bytes]] = deque()
        self.ready_set: set[tuple[int, bytes]] = set()
        self.serving = False

    def __len__(self) -> int:
        """The number of blocked clients (INFO's blocked_clients)."""
        return len(self.by_client)

    def keys_count(self) -> int:
        """The number of (db, key) pairs clients wait on."""
        return len(self.by_key)

    # ------------------------------------------------------------ block / unblock

    def block(
        self,
        c: Client,
        keys: list[bytes],
        timeout_ms: int,
        serve: Serve,
        args: list[bytes],
        then: tuple[bytes, ...] = (),
    ) -> None:
        """Park c on keys (blockForKeys): served by `serve` when one becomes ready, or
        answered with a null array after timeout_ms (0: never). O(len(keys))."""
        w = Waiter(c, c.db, list(dict.fromkeys(keys)), serve, args, then)
        for key in w.keys:
            q = self.by_key.get((w.db, key))
            if q is None:
                q = self.by_key[(w.db, key)] = deque()
                self.names.setdefault(key, set()).add(w.db)
            q.append(w)
        self.by_client[c.id] = w
        self.server.set_hook(self.after_call, True)
        if timeout_ms > 0 and timeout_ms / 1000 < _MAX_TIMER_S:
            loop = self.server.loop or asyncio.get_running_loop()
            w.timer = loop.call_later(timeout_ms / 1000, self._expire, w)
        c.blocked = True

    def _remove(self, w: Waiter) -> None:
        """Forget w everywhere (unblockClient's bookkeeping)."""
        if self.by_client.get(w.client.id) is w:
            del self.by_client[w.client.id]
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        for key in w.keys:
            q = self.by_key.get((w.db, key))
            if q is None:
                continue
            try:
                q.remove(w)
            except ValueError:
                continue
            if not q:
                del self.by_key[(w.db, key)]
                dbs = self.names.get(key)
                if dbs is not None:
                    dbs.discard(w.db)
                    if not dbs:
                        del self.names[key]
                        if not self.names:
                            self.server.set_hook(self.after_call, False)

    def waiter(self, c: Client) -> Waiter | None:
        return self.by_client.get(c.id)

    def unblock(self, c: Client, reply: Any) -> bool:
        """End c's wait with `reply` (timeout, CLIENT UNBLOCK); False if not blocked here."""
        w = self.by_client.get(c.id)
        if w is None:
            return False
        self._remove(w)
        if isinstance(reply, ResponseError):
            self.server.stats.error(reply)
        self._answer(c, reply)
        self._resume_later(c)
        return True

    def forget(self, c: Client) -> None:
        """on_disconnect / on_reset: drop c's wait without a reply."""
        w = self.by_client.get(c.id)
        if w is not None:
            self._remove(w)
            c.blocked = False

    def _expire(self, w: Waiter) -> None:
        w.timer = None
        c = w.client
        if self.by_client.get(c.id) is not w:
            return
        self._remove(w)
        if c.closing:
            return
        # replyToBlockedClientTimedOut: a null array for every list and zset command
        self._answer(c, NULL_ARRAY)
        c.process()

    @staticmethod
    def _answer(c: Client, reply: Any) -> None:
        """The parked command's reply, with CLIENT REPLY SKIP honoured as call() does."""
        c.blocked = False
        c.reply(reply)
        if c.skip_this or c.skip_next:
            c.skip_this = c.skip_next
            c.skip_next = False

    def _resume_later(self, c: Client) -> None:
        """Write the reply and run c's pipelined requests once the current command and
        round are over (Redis's unblocked_clients, handled in beforeSleep)."""
        loop = self.server.loop
        if loop is None:
            c.process()
        else:
            loop.call_soon(_resume, c)

    # ------------------------------------------------------------ ready keys

    def signal(self, db: int, key: bytes) -> None:
        """signalKeyAsReady: queue (db, key) if someone waits on it."""
        dk = (db, key)
        if dk in self.by_key and dk not in self.ready_set:
            self.ready_set.add(dk)
            self.ready.append(dk)

    def after_call(
        self, c: Client, cmd: Command, args: list[bytes], dur: int, failed: bool
    ) -> None:
        """The after-call hook: mark the waited keys among a write's arguments ready,
        then serve them."""
        names = self.names
        if not names or cmd.readonly:
            return
        if cmd.name == "swapdb":  # every key of the swapped databases may be ready now
            for db, key in list(self.by_key):
                self.signal(db, key)
        else:
            for a in args[1:]:
                dbs = names.get(a)
                if dbs:
                    for db in dbs:
                        self.signal(db, a)
        if self.ready:
            self.serve_ready()

    def serve_ready(self) -> None:
        """handleClientsBlockedOnKeys: serve ready keys until none is left (a served
        BLMOVE may make its destination ready)."""
        if self.serving:
            return  # the outer round picks the new ready keys up
        self.serving = True
        try:
            while self.ready:
                dk = self.ready.popleft()
                self.ready_set.discard(dk)
                self._serve_key(*dk)
        finally:
            self.serving = False

    def _serve_key(self, db: int, key: bytes) -> None:
        q = self.by_key.get((db, key))
        if not q:
            return
        for w in list(q):  # first blocked, first served
            if self.by_client.get(w.client.id) is not w:
                continue  # already served through another of its keys
            c = w.client
            store = c.store
            with store.lock:
                t = c.txn = Txn(store)
                try:
                    r = w.serve(t, db, key)
                    events = self._events(w, t, r)
                    t.commit()
                except ResponseError as e:
                    r, events = e, None
                    self.server.stats.error(e)
                except ShaleError as e:
                    log.error("serving blocked %r failed: %s", w.args[0], e)
                    r, events = ResponseError(str(e)), None
                except Exception as e:  # noqa: BLE001  # a bug must not take the server down
                    log.error("internal error serving blocked %r", w.args[0], exc_info=e)
                    r, events = ResponseError(f"internal error: {type(e).__name__}"), None
                finally:
                    c.txn = None
            if r is SKIP:
                continue
            if r is EMPTY:
                return
            self._remove(w)
            if events:
                self.server.extensions["notify"].publish(events)
            self._answer(c, r)
            self._resume_later(c)
            if not isinstance(r, ResponseError):
                for k in w.then:
                    self.signal(db, k)

    def _events(self, w: Waiter, t: Txn, r: Any) -> list[Any] | None:
        """Keyspace events of a served pop: the ones the command emits when it pops at
        once (shalekv.server.notify's emitter for it, run on the served reply)."""
        n = self.server.extensions.get("notify")
        if n is None or not n.flags or r is SKIP or r is EMPTY:
            return None
        from shalekv.server import notify

        emitter = notify.EMITTERS.get(w.args[0].lower())
        if emitter is None:
            return None
        e = notify.Call(w.client, t, w.args, {})
        e.r = r
        e.wrote = True
        emitter(e)
        return e.events


def _resume(c: Client) -> None:
    if not c.closing and not c.blocked:
        c.process()


def install(server: Server) -> None:
    """SERVER_INIT: the registry and its hooks."""
    reg = BlockedClients(server)
    server.extensions["blocking"] = reg
    # on while someone is blocked; last: keyspace events of the write that made a key
    # ready go out before those of the pops it serves, as in Redis
    server.add_hook(reg.after_call, on=False, last=True)
    server.extensions.setdefault("on_disconnect", []).append(reg.forget)
    server.extensions.setdefault("on_reset", []).append(reg.forget)


def registry(server: Server) -> BlockedClients:
    r: BlockedClients = server.extensions["blocking"]
    return r
