"""MULTI/EXEC/DISCARD/WATCH/UNWATCH (Redis's multi.c). A transaction runs as one store
Txn: one WriteBatch, all or nothing on disk; WATCH uses the store's watcher tokens,
which every commit touching a watched key marks dirty."""

from __future__ import annotations

import time

from shalekv.commands.registry import OK, Command, command
from shalekv.commands.reply import NULL_ARRAY, Status
from shalekv.errors import ResponseError, ShaleError
from shalekv.server.client import BLOCKED, NO_REPLY, Client, CodedError, log
from shalekv.server.commands.table import SERVER
from shalekv.types.keyspace import Txn


def unwatch_all(c: Client) -> None:
    token = c.watch_token
    if token is None:
        return
    c.store.unwatch(token, c.watched)
    c.watched = []
    c.watch_expiry = {}
    c.watch_token = None


def discard_multi(c: Client) -> None:
    c.multi = None
    c.multi_dirty = False


@command("multi", 1, "noscript loading stale fast allow_busy no_txn", 0, 0, 0, table=SERVER)
def multi(c: Client, a: list[bytes]) -> Status:
    if c.multi is not None:
        raise ResponseError("MULTI calls can not be nested")
    c.multi = []
    c.multi_dirty = False
    return OK


@command("discard", 1, "noscript loading stale fast allow_busy no_txn", 0, 0, 0, table=SERVER)
def discard(c: Client, a: list[bytes]) -> Status:
    if c.multi is None:
        raise ResponseError("DISCARD without MULTI")
    discard_multi(c)
    unwatch_all(c)
    return OK


@command("watch", -2, "noscript loading stale fast allow_busy no_txn", 1, -1, 1, table=SERVER)
def watch(c: Client, a: list[bytes]) -> Status:
    if c.multi is not None:
        raise ResponseError("WATCH inside MULTI is not allowed")
    if c.watch_token is None:
        c.watch_token = [False]
    store = c.store
    for k in a[1:]:
        key = (c.db, k)
        if key not in c.watched:
            c.watched.append(key)
            with store.lock:
                at = store.watch(c.watch_token, c.db, k)
            if at:
                c.watch_expiry[key] = at
    return OK


@command("unwatch", 1, "noscript loading stale fast allow_busy no_txn", 0, 0, 0, table=SERVER)
def unwatch(c: Client, a: list[bytes]) -> Status:
    unwatch_all(c)
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog no_txn", 0, 0, 0, table=SERVER)
def exec_(c: Client, a: list[bytes]) -> object:
    if c.multi is None:
        raise ResponseError("EXEC without MULTI")
    queued = c.multi
    dirty = c.multi_dirty
    discard_multi(c)
    cas = c.watch_token is not None and c.store.watch_failed(c.watch_token, c.watch_expiry.values())
    unwatch_all(c)
    if dirty:
        raise CodedError("EXECABORT Transaction discarded because of previous errors.")
    if cas:
        return NULL_ARRAY
    server = c.server
    store = c.store
    results: list[object] = []
    timings: list[tuple[Command, list[bytes], int, bool]] = []
    c.in_exec = True
    try:
        with store.lock:
            t = c.txn = Txn(store)
            for cmd, args in queued:
                t.count_reads = cmd.readonly
                start = time.perf_counter_ns()
                failed = False
                try:
                    r = cmd.handler(c, args)
                except ResponseError as e:
                    r, failed = e, True
                    server.stats.error(e)
                except ShaleError as e:
                    log.error("%s failed in EXEC: %s", cmd.name, e)
                    r, failed = ResponseError(str(e)), True
                if r is BLOCKED or r is NO_REPLY:  # cannot block inside EXEC
                    r = NULL_ARRAY
                results.append(r)
                timings.append((cmd, args, time.perf_counter_ns() - start, failed))
            t.commit()
    finally:
        c.txn = None
        c.in_exec = False
    for cmd, args, ns, failed in timings:
        server.stats.called(cmd, ns, failed)
        for hook in server.after_call_hooks:
            hook(c, cmd, args, ns, failed)
    return results
