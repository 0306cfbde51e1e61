"""Run batches of raw commands (lists of bytes) against a Redis-protocol server or an
embedded ShaleKV store, with replies as RESP2 gives them.

A transfer sends millions of small commands; redis-py's pipeline spends more time
building and parsing each one (argument encoding, callbacks) than the server spends
running it. Here a batch is packed into one buffer and its replies read with the
connection's (hiredis) parser; for the embedded store the commands run through the
command table in one Txn, as `shalekv.embedded.Pipeline` does, without the redis-py
argument layer. Either way the command semantics are the server's own.
"""

from __future__ import annotations

from typing import Any, Protocol

from redis.exceptions import ResponseError

from shalekv.commands import Context
from shalekv.commands.registry import lookup
from shalekv.types.keyspace import Txn

Cmd = list[bytes]


class Conn(Protocol):
    def run(self, cmds: list[Cmd], atomic: bool = False) -> list[Any]:
        """Replies in order. Not atomic: an error reply is returned as a ResponseError
        in its place. Atomic (MULTI/EXEC, one Txn): all or nothing; any error raises."""
        ...


def pack(cmds: list[Cmd]) -> bytes:
    """RESP2 multibulk encoding of every command, in one buffer."""
    out: list[bytes] = []
    for a in cmds:
        out.append(b"*%d\r\n" % len(a))
        for x in a:
            out.append(b"$%d\r\n" % len(x))
            out.append(x)
            out.append(b"\r\n")
    return b"".join(out)


class RedisConn:
    """Raw pipelining on a redis-py client's connection pool (its AUTH, SELECT and
    TLS setup are kept: they run when the pool connects)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, cmds: list[Cmd], atomic: bool = False) -> list[Any]:
        if not cmds:
            return []
        if atomic:
            cmds = [[b"MULTI"], *cmds, [b"EXEC"]]
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([pack(cmds)], check_health=False)
            out: list[Any] = []
            for _ in cmds:
                try:
                    out.append(conn.read_response())
                except ResponseError as e:  # the reply was read whole: stream in sync
                    out.append(e)
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        if not atomic:
            return out
        for r in out[:-1]:
            if isinstance(r, ResponseError):
                raise r  # a queued command was refused: EXEC discarded the transaction
        result = out[-1]
        if isinstance(result, ResponseError):
            raise result
        if result is None:
            raise ResponseError("transaction aborted")
        for r in result:
            if isinstance(r, ResponseError):
                raise r
        return list(result)


class EmbeddedConn:
    """Commands through the command table of an embedded store (`shalekv.open`),
    under its lock; atomic batches are one Txn, committed as one write batch."""

    def __init__(self, client: Any) -> None:
        # The embedded client's store and database (ShaleKV has no public accessor
        # for them yet; embedded.Pipeline reads the same attributes).
        self.store = client.store
        self.db = client.db

    def run(self, cmds: list[Cmd], atomic: bool = False) -> list[Any]:
        store = self.store
        out: list[Any] = []
        with store.lock:
            ctx = Context(store, self.db)
            t = Txn(store)
            for a in cmds:
                if not atomic:
                    t = Txn(store)
                ctx.txn = t
                try:
                    out.append(lookup(a).handler(ctx, a))
                except ResponseError as e:
                    if atomic:
                        ctx.txn = None
                        raise  # nothing of the transaction is committed
                    out.append(e)
                if not atomic:
                    t.commit()
            ctx.txn = None
            if atomic:
                t.commit()
        return out


def as_conn(client: Any) -> Conn:
    """The Conn for a redis-py client or an embedded ShaleKV store."""
    from shalekv.embedded import ShaleKV

    if isinstance(client, ShaleKV):
        return EmbeddedConn(client)
    return RedisConn(client)
