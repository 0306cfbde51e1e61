"""The server: opens the store, listens, admits clients, runs the background cron
(active expiry, idle timeouts) and stops cleanly on SIGTERM/SIGINT/SHUTDOWN.

Everything runs on one asyncio event loop (uvloop when installed), as Redis runs on one
thread: commands never interleave, so a command is atomic without further locking.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import ssl
import time
from collections.abc import Callable
from typing import Any

from shalekv.commands.registry import Command
from shalekv.engine import DB
from shalekv.errors import ResponseError, ShaleError
from shalekv.server.client import Client
from shalekv.server.config import ServerConfig
from shalekv.server.stats import Stats
from shalekv.types.compaction_filter import COMPACTION_FILTER
from shalekv.types.encoding import KEY_CLASS_PREFIX
from shalekv.types.expiry import ExpiryCycle
from shalekv.types.keyspace import Store

log = logging.getLogger("shalekv.server")

# Byte for byte as Redis 7.0's clientAcceptHandler sends it (typo "Setup a an" included).
PROTECTED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted "
    b"from the loopback interface. If you want to connect from external computers to "
    b"Redis you may adopt one of the following solutions: 1) Just disable protected mode "
    b"sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    b"connecting to Redis from the same host the server is running, however MAKE SURE "
    b"Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to "
    b"make this change permanent. 2) Alternatively you can just disable the protected mode "
    b"by editing the Redis configuration file, and setting the protected mode option to "
    b"'no', and then restarting the server. 3) If you started the server manually just for "
    b"testing, restart it with the '--protected-mode no' option. 4) Setup a an "
    b"authentication password for the default user. NOTE: You only need to do one of the "
    b"above things in order for the server to start accepting connections from the "
    b"outside.\r\n"
)
MAX_CLIENTS = b"-ERR max number of clients reached\r\n"

AfterCall = Callable[[Client, Command, list[bytes], int, bool], None]


def _is_loopback(peer: Any) -> bool:
    if not isinstance(peer, tuple):
        return True  # a Unix socket
    try:
        return ipaddress.ip_address(peer[0].split("%")[0]).is_loopback
    except ValueError:
        return False


class Server:
    def __init__(self, config: ServerConfig) -> None:
        from shalekv.server.commands import SERVER_TABLE  # registers every command

        self.config = config
        self.table: dict[bytes, Command] = SERVER_TABLE
        self.store: Store = None  # type: ignore[assignment]  # set by open()
        # strerror of a failed WAL write: writes (and PING) get MISCONF until restart
        self.disk_error: str | None = None
        # Clients whose replies go out at the end of this loop pass (flush_clients),
        # and what must run after them (a MONITOR's line about its own command).
        self._to_flush: list[Client] = []
        self._after_flush: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._flush_scheduled = False
        # client-query-buffer-limit, read by every client on every read
        self.query_buffer_limit: int = config["client-query-buffer-limit"]
        self.clients: dict[int, Client] = {}
        self._client_ids = 0
        self.stats = Stats()
        # The hooks Client.call runs after each command: only the active ones, in
        # registration order ("last" ones at the end). Replaced, never changed in
        # place, so that a hook may switch hooks while the list is being run.
        self.after_call_hooks: list[AfterCall] = []
        self._hooks: dict[AfterCall, bool] = {}  # every hook: is it on
        self._hooks_last: set[AfterCall] = set()
        self.cron_hooks: list[Callable[[], None]] = []
        self.start_time = time.time()
        self.last_save = int(self.start_time)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list[asyncio.AbstractServer] = []
        self.stopping: asyncio.Event | None = None
        self.expiry: ExpiryCycle | None = None
        self.ports: dict[str, int] = {}
        # pubsub, blocking, monitor ... by name; lists of hooks: "on_disconnect" and
        # "on_reset" fn(client), "on_close" fn() as the server stops
        self.extensions: dict[str, Any] = {}
        config.listeners.append(self._config_changed)
        from shalekv.server.commands.table import SERVER_INIT

        for init in SERVER_INIT:
            init(self)

    def add_hook(self, hook: AfterCall, *, on: bool = True, last: bool = False) -> None:
        """Register an after-call hook; `last` ones run after all others."""
        self._hooks[hook] = on
        if last:
            self._hooks_last.add(hook)
        self._rebuild_hooks()

    def set_hook(self, hook: AfterCall, on: bool) -> None:
        """Switch a hook on or off: idle features (no MONITOR client, nobody blocked,
        notifications off) cost the hot path nothing."""
        if self._hooks.get(hook) != on:
            self._hooks[hook] = on
            self._rebuild_hooks()

    def _rebuild_hooks(self) -> None:
        on = [h for h, active in self._hooks.items() if active]
        last = self._hooks_last
        self.after_call_hooks = [h for h in on if h not in last] + [h for h in on if h in last]

    def _config_changed(self, name: str, value: Any) -> None:
        """CONFIG SET of an option connected clients hold a copy of."""
        if name == "proto-max-bulk-len":  # Redis reads server.proto_max_bulk_len per bulk
            for c in self.clients.values():
                c.parser.max_bulk = value
        elif name == "client-query-buffer-limit":
            self.query_buffer_limit = value

    def next_client_id(self) -> int:
        self._client_ids += 1
        return self._client_ids

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        cfg = self.config
        os.makedirs(cfg["dir"], exist_ok=True)
        opts = cfg.engine_options()
        opts["compaction_filter"] = COMPACTION_FILTER
        opts.setdefault("partition_prefix_len", KEY_CLASS_PREFIX)
        engine = DB.open(cfg["dir"], **opts)
        engine.defer_wal()  # the WAL is written once per loop pass: flush_clients
        self.store = Store(engine, cfg["databases"], cfg["zset-rank-index-size"])
        self.expiry = ExpiryCycle(self.store, thread=False)

    def queue_flush(self, c: Client) -> None:
        """Write c's replies at the end of this event-loop pass (Client.flush)."""
        self._to_flush.append(c)
        self._schedule_flush()

    def after_flush(self, fn: Callable[..., None], *args: Any) -> None:
        """Run fn(*args) once this pass's replies are written."""
        self._after_flush.append((fn, args))
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            assert self.loop is not None
            self._flush_scheduled = True
            self.loop.call_soon(self.flush_clients)

    def flush_clients(self) -> None:
        """Redis's beforeSleep: one WAL write (and fsync with appendfsync always) for
        the writes of every client served in this pass, then all their replies. At -P 1
        with many clients this turns one WAL syscall per request into one per pass."""
        self._flush_scheduled = False
        clients, self._to_flush = self._to_flush, []
        after, self._after_flush = self._after_flush, []
        ok = self.write_wal()
        for c in clients:
            c.write_out(ok)
        for fn, args in after:
            fn(*args)

    def write_wal(self) -> bool:
        """Make the writes so far durable (per appendfsync) before any reply or push
        leaves. False if that failed: the store then refuses writes until restarted
        (docs/server.md, "Durability"), and the caller drops the replies it held."""
        try:
            self.store.engine.write_wal()
        except ShaleError as e:
            log.error("WAL write failed: %s", e)
            cause = e.__cause__
            if self.disk_error is None:
                code = getattr(cause, "errno", None)
                self.disk_error = os.strerror(code) if code else str(cause or e)
            return False
        return True

    async def serve(self, ready: Callable[[Server], None] | None = None) -> None:
        """Open, listen, run until stopped, close."""
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.open()
        try:
            await self._listen()
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    self.loop.add_signal_handler(sig, self.request_stop)
                except (NotImplementedError, RuntimeError):  # not the main thread
                    pass
            cron = asyncio.ensure_future(self._cron())
            log.info("ready to accept connections on %s", self.ports)
            if ready is not None:
                ready(self)
            await self.stopping.wait()
            cron.cancel()
        finally:
            await self._close()

    async def _listen(self) -> None:
        cfg = self.config
        loop = self.loop
        assert loop is not None
        binds = cfg["bind"] or ["127.0.0.1"]
        factory = lambda: Client(self)  # noqa: E731
        if cfg["port"] or not cfg["tls-port"]:
            srv = await loop.create_server(
                factory, binds, cfg["port"], backlog=cfg["tcp-backlog"], reuse_address=True
            )
            self.listeners.append(srv)
            self.ports["tcp"] = srv.sockets[0].getsockname()[1]
        if cfg["tls-port"]:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cfg["tls-cert-file"], cfg["tls-key-file"])
            if cfg["tls-ca-cert-file"]:
                ctx.load_verify_locations(cfg["tls-ca-cert-file"])
            ctx.verify_mode = {
                "yes": ssl.CERT_REQUIRED,
                "optional": ssl.CERT_OPTIONAL,
                "no": ssl.CERT_NONE,
            }[cfg["tls-auth-clients"]]
            srv = await loop.create_server(
                factory,
                binds,
                cfg["tls-port"],
                ssl=ctx,
                backlog=cfg["tcp-backlog"],
                reuse_address=True,
            )
            self.listeners.append(srv)
            self.ports["tls"] = srv.sockets[0].getsockname()[1]
        if cfg["unixsocket"]:
            srv = await loop.create_unix_server(factory, cfg["unixsocket"])
            self.listeners.append(srv)

    def request_stop(self) -> None:
        """SIGTERM, SIGINT, SHUTDOWN: stop accepting, close clients, close the store."""
        if self.stopping is not None:
            self.stopping.set()

    async def _close(self) -> None:
        for srv in self.listeners:
            srv.close()
        for c in list(self.clients.values()):
            c.close()
        for srv in self.listeners:
            try:
                await asyncio.wait_for(srv.wait_closed(), 1)
            except (TimeoutError, Exception):  # noqa: BLE001  # closing anyway
                pass
        for hook in self.extensions.get("on_close", ()):  # e.g. the /metrics listener
            try:
                hook()
            except Exception:  # noqa: BLE001  # the store must be closed whatever happens
                log.exception("on_close hook failed")
        if self.store is not None:
            log.info("closing the store")
            self.store.engine.close()
        if self.config["unixsocket"]:
            try:
                os.unlink(self.config["unixsocket"])
            except OSError:
                pass

    async def _cron(self) -> None:
        """serverCron: active expiry, idle timeouts and the hooks, `hz` times a second."""
        while True:
            await asyncio.sleep(1 / max(1, self.config["hz"]))
            try:
                if self.expiry is not None:
                    self.expiry.run_once()
            except ShaleError as e:
                log.error("active expiry: %s", e)
            timeout = self.config["timeout"]
            if timeout:
                limit = time.monotonic() - timeout
                for c in list(self.clients.values()):
                    if (
                        c.last_interaction < limit
                        and not c.blocked
                        and not (c.channels or c.patterns or c.shard_channels)
                    ):
                        c.close()
            self.stats.sample(self)
            for hook in self.cron_hooks:
                hook()
            self.write_wal()  # expired keys' deletions: logged within one cron tick

    # ------------------------------------------------------------ clients

    def admit(self, client: Client, peer: Any) -> bytes | None:
        """None to accept a new connection, else the error line to send before closing."""
        cfg = self.config
        # Redis's order: maxclients (acceptCommonHandler), then the connection counts as
        # received, then protected mode (clientAcceptHandler)
        if len(self.clients) >= cfg["maxclients"]:
            self.stats.rejected_connections += 1
            return MAX_CLIENTS
        self.stats.connections_received += 1
        if cfg["protected-mode"] and not cfg["requirepass"] and not _is_loopback(peer):
            return PROTECTED
        return None

    def forget(self, client: Client) -> None:
        if self.clients.pop(client.id, None) is None:
            return
        for hook in self.extensions.get("on_disconnect", ()):
            hook(client)
        if client.watch_token is not None:
            from shalekv.server.commands.transactions import unwatch_all

            unwatch_all(client)

    def check_output_limit(self, client: Client) -> None:
        """client-output-buffer-limit for pub/sub clients (others are paused instead)."""
        t = client.transport
        if t is None or not (client.channels or client.patterns or client.shard_channels):
            return
        hard, soft, secs = self.pubsub_limits()
        size = t.get_write_buffer_size()
        now = time.monotonic()
        if hard and size > hard:
            log.warning(
                "closing client %s: pubsub output buffer %d > hard limit", client.addr, size
            )
            client.close()
        elif soft and size > soft:
            since = getattr(client, "soft_since", None)
            if since is None:
                client.soft_since = now  # type: ignore[attr-defined]
            elif now - since > secs:
                log.warning("closing client %s: pubsub output buffer over soft limit", client.addr)
                client.close()
        else:
            client.soft_since = None  # type: ignore[attr-defined]

    def pubsub_limits(self) -> tuple[int, int, int]:
        from shalekv.server.config import parse_memory

        words = self.config["client-output-buffer-limit"].split()
        for i in range(0, len(words), 4):
            if words[i].lower() == "pubsub":
                return parse_memory(words[i + 1]), parse_memory(words[i + 2]), int(words[i + 3])
        return 0, 0, 0


def run(config: ServerConfig) -> None:
    """Run a server in this process until it is stopped (the `shalekv server` command)."""
    server = Server(config)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio still works
        asyncio.run(server.serve())
    else:
        uvloop.run(server.serve())


__all__ = ["Server", "run", "ResponseError"]
