"""One client connection: the asyncio protocol that reads requests, runs them in order
and writes the replies, and the per-client state commands see (selected db, protocol
version, MULTI queue, WATCHed keys, subscriptions, name, flags).

The request path is the hot path: parse (resp.RequestParser), look up the command,
check arity/auth/context, run the handler inside one Txn, encode the reply into a list
that is written once per read (pipelined replies go out in one send).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from shalekv.commands.registry import Command, Context, unknown, unknown_subcommand
from shalekv.commands.reply import Status
from shalekv.errors import ResponseError, ShaleError
from shalekv.server import resp
from shalekv.types.keyspace import Txn

if TYPE_CHECKING:
    from shalekv.server.app import Server

log = logging.getLogger("shalekv.server")

# Replies (list pieces) gathered before process() writes them out mid-batch: with the
# transport's pause_writing this bounds the memory one pipelined read can fill (a read
# of 64 KiB of `GET big` would otherwise encode thousands of big replies at once).
FLUSH_PIECES = 1024


QUEUED = Status(b"QUEUED")

# Commands that run, rather than queue, inside MULTI (Redis 7.0's processCommand).
NOT_QUEUED = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"))
# All a RESP2 client may send while subscribed.
SUBSCRIBED_OK = frozenset(
    (
        b"ping",
        b"subscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"sunsubscribe",
        b"psubscribe",
        b"punsubscribe",
        b"quit",
        b"reset",
    )
)


class Blocked:
    """Returned by a handler that parks the client (BLPOP on an empty list): the reply
    comes later, and requests behind it wait."""


BLOCKED = Blocked()
NO_REPLY = Blocked()  # the handler replied itself, or must not (CLIENT REPLY OFF)


class CodedError(ResponseError):
    """An error whose text starts with its own code (NOAUTH, WRONGPASS, NOPROTO ...)."""

    err_prefix = ""


class Client(Context, asyncio.Protocol):
    """A connection and its state; also the Context data-command handlers receive."""

    def __init__(self, server: Server) -> None:
        Context.__init__(self, server.store)
        self.server = server
        self.id = server.next_client_id()
        self.transport: asyncio.Transport | None = None
        self.parser = resp.RequestParser(server.config["proto-max-bulk-len"])
        self.out: list[bytes] = []
        self.proto = 2
        self.authenticated = not server.config["requirepass"]
        self.addr = "?"
        self.laddr = "?"
        self.fd = -1
        self.created = time.time()
        self.last_interaction = time.monotonic()
        self.last_cmd = "NULL"
        self.closing = False
        self.close_after_reply = False
        self.paused_reading = False
        self.flush_queued = False  # in the server's list of replies to write this pass
        self.blocked = False
        self.in_exec = False  # blocking commands must not block inside EXEC
        # CLIENT REPLY: OFF drops every reply; SKIP drops the next command's
        self.reply_off = False
        self.skip_this = False
        self.skip_next = False
        self.lib_name = b""
        self.lib_ver = b""
        # MULTI/EXEC
        self.multi: list[tuple[Command, list[bytes]]] | None = None
        self.multi_dirty = False
        self.watch_token: list[bool] | None = None
        self.watched: list[tuple[int, bytes]] = []
        self.watch_expiry: dict[tuple[int, bytes], int] = {}  # alive at WATCH, expiring
        # pub/sub
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        self.shard_channels: set[bytes] = set()  # SSUBSCRIBE: Redis sets CLIENT_PUBSUB too
        self.flags = ""  # CLIENT LIST flags beyond the derived ones (e.g. "O" for MONITOR)

    # ------------------------------------------------------------ asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.addr = _fmt_addr(peer)
        self.laddr = _fmt_addr(sock)
        s = transport.get_extra_info("socket")
        self.fd = s.fileno() if s is not None else -1
        refusal = self.server.admit(self, peer)
        if refusal is not None:
            transport.write(refusal)  # type: ignore[attr-defined]
            transport.close()
            self.closing = True
            return
        # uvloop builds the protocol at accept and calls this later: read the options
        # again, a CONFIG SET may have run in between
        cfg = self.server.config
        self.parser.max_bulk = cfg["proto-max-bulk-len"]
        self.authenticated = not cfg["requirepass"]
        self.server.clients[self.id] = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.forget(self)

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests, so that
        # neither buffer grows without bound.
        if self.transport is not None and not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and self.paused_reading:
            self.paused_reading = False
            self.transport.resume_reading()
            if not self.closing and not self.blocked and self.parser.buffered():
                self.process()  # requests left parsed-but-not-run when writing paused

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_interaction = time.monotonic()
        parser = self.parser
        parser.feed(data)
        if parser.buffered() > self.server.query_buffer_limit:
            log.warning("closing client %s that reached max query buffer length", self.addr)
            self.close()
            return
        self.process()

    # ------------------------------------------------------------ request loop

    def process(self) -> None:
        """Run every complete request buffered, unless blocked, then write replies."""
        out = self.out
        parser = self.parser
        try:
            while not self.blocked and not self.close_after_reply:
                try:
                    args = parser.next(self.authenticated)
                except resp.ProtocolError as e:
                    out.append(resp.error_line(e))
                    self.close_after_reply = True
                    break
                if args is None:
                    break
                self.execute(args)
                if len(out) > FLUSH_PIECES:
                    self.write_out(self.server.write_wal())  # now: bounds the memory
                    if self.paused_reading:  # the peer is not reading: wait for it
                        break
        except Exception:  # a bug outside a handler (encoding, a hook): drop this client
            log.exception("closing client %s after an internal error", self.addr)
            out.clear()
            self.close_after_reply = True
        finally:
            self.flush()

    def flush(self) -> None:
        """Send the replies gathered so far: at the end of this event-loop pass,
        together with every other client's, after one WAL write for all of their
        writes (Server.flush_clients, as Redis's beforeSleep); at once without a loop."""
        if self.flush_queued:
            return
        server = self.server
        if server.loop is None:
            self.write_out(server.write_wal())
        else:
            self.flush_queued = True
            server.queue_flush(self)

    def write_out(self, wal_ok: bool) -> None:
        """Write the gathered replies, unless the WAL write that had to come first
        failed: then no reply acknowledges a lost write, and the client is closed."""
        self.flush_queued = False
        out = self.out
        if not wal_ok:
            out.clear()
            self.close()
            return
        t = self.transport
        if out and t is not None and not self.closing:
            t.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        if self.close_after_reply and not self.closing:
            self.close()

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if self.transport is not None:
            self.transport.close()
        self.server.forget(self)

    def reply(self, r: Any) -> None:
        """Append a reply for the current request (honouring CLIENT REPLY)."""
        if self.reply_off or self.skip_this:
            return
        resp.encode(self.out, r, self.proto)

    def push(self, r: Any) -> None:
        """An out-of-band message (pub/sub, MONITOR, keyspace events), never skipped:
        behind the replies this client already has pending (being built, or waiting for
        the end of the pass), so everything arrives in execution order as from Redis's
        single output buffer; written at once when there are none."""
        if self.closing or self.transport is None:
            return
        if self.out or self.flush_queued:
            resp.encode(self.out, r, self.proto)
            return
        out: list[bytes] = []
        resp.encode(out, r, self.proto)
        if not self.server.write_wal():
            self.close()
            return
        self.transport.write(b"".join(out))
        self.server.check_output_limit(self)

    def execute(self, args: list[bytes]) -> None:
        """processCommand: lookup, arity, auth, context checks, MULTI queueing, call."""
        server = self.server
        name = args[0].lower()
        cmd = server.table.get(name)
        if cmd is None:
            self._reject(unknown(args), None)
            return
        if cmd.subcommands is not None and len(args) >= 2:
            sub = cmd.subcommands.get(args[1].lower())
            if sub is None:
                self._reject(unknown_subcommand(args), cmd)
                return
            cmd = sub
        n = len(args)
        arity = cmd.arity
        if (arity > 0 and n != arity) or n < -arity:
            self._reject(ResponseError(f"wrong number of arguments for '{cmd.name}' command"), cmd)
            return
        if not self.authenticated and not cmd.no_auth:
            self._reject(CodedError("NOAUTH Authentication required."), cmd)
            return
        if server.disk_error is not None and (cmd.write or name == b"ping"):
            # processCommand's writeCommandsDeniedByDiskError, with the AOF's text: the
            # WAL is our AOF. Cleared by a restart (the store refuses writes till then).
            self._reject(
                CodedError(f"MISCONF Errors writing to the AOF file: {server.disk_error}"), cmd
            )
            return
        if (
            self.proto == 2
            and (self.channels or self.patterns or self.shard_channels)
            and name not in SUBSCRIBED_OK
        ):
            self._reject(
                ResponseError(
                    f"Can't execute '{cmd.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                    "PING / QUIT / RESET are allowed in this context"
                ),
                cmd,
            )
            return
        if self.multi is not None and name not in NOT_QUEUED:
            self.multi.append((cmd, args))
            self.reply(QUEUED)
            return
        self.call(cmd, args)

    def _reject(self, e: ResponseError, cmd: Command | None) -> None:
        if self.multi is not None:
            self.multi_dirty = True
        if cmd is not None and cmd.name == "exec":
            # rejectCommand -> execCommandAbort: a rejected EXEC discards the transaction
            from shalekv.server.commands.transactions import discard_multi, unwatch_all

            discard_multi(self)
            unwatch_all(self)
            e = CodedError(f"EXECABORT Transaction discarded because of: {e}")
        self.server.stats.rejected(cmd, e)
        self.reply(e)

    def call(self, cmd: Command, args: list[bytes]) -> None:
        """Run one command (its own Txn unless inside EXEC) and reply."""
        server = self.server
        start = time.perf_counter_ns()
        failed = False
        if cmd.no_txn:
            try:
                r = cmd.handler(self, args)
            except ResponseError as e:
                r = e
                failed = True
                server.stats.error(e)
            except Exception as e:  # noqa: BLE001  # a bug must not take the server down
                r = self._internal_error(cmd, e)
                failed = True
        else:
            store = self.store
            with store.lock:
                t = self.txn = Txn(store)
                t.count_reads = cmd.readonly
                try:
                    r = cmd.handler(self, args)
                    t.commit()
                except ResponseError as e:
                    r = e
                    failed = True
                    server.stats.error(e)
                except ShaleError as e:
                    log.error("%s failed: %s", cmd.name, e)
                    r = ResponseError(str(e))
                    failed = True
                except Exception as e:  # noqa: BLE001  # a bug: the Txn is not committed
                    r = self._internal_error(cmd, e)
                    failed = True
                finally:
                    self.txn = None
        dur = time.perf_counter_ns() - start
        self.last_cmd = cmd.name
        server.stats.called(cmd, dur, failed)
        for hook in server.after_call_hooks:
            hook(self, cmd, args, dur, failed)
        if r is BLOCKED:
            self.blocked = True
            return
        if r is not NO_REPLY:
            self.reply(r)
        if self.skip_this or self.skip_next:  # as call(): SKIP_NEXT becomes SKIP once
            self.skip_this = self.skip_next
            self.skip_next = False

    def _internal_error(self, cmd: Command, e: Exception) -> ResponseError:
        """An unexpected exception in a handler: log it, reply an error, stay up."""
        log.error("internal error in %s from %s", cmd.name, self.addr, exc_info=e)
        err = ResponseError(f"internal error: {type(e).__name__}")
        self.server.stats.error(err)
        return err


def _fmt_addr(a: Any) -> str:
    if isinstance(a, tuple) and len(a) >= 2:
        host = a[0]
        return f"[{host}]:{a[1]}" if ":" in host else f"{host}:{a[1]}"  # as anetFormatAddr
    return str(a) if a else "?"
