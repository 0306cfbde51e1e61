"""Connection and request limits as Redis 7.0: maxclients, proto-max-bulk-len,
client-query-buffer-limit, timeout; at startup and (when CONFIG exists) at runtime.
The server must stay up whatever a client does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shalekv.commands.registry import Command, Context
from shalekv.server.app import Server
from shalekv.server.config import ServerConfig
from tests.redis_server import redis_server
from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess, shalekv_server


@contextlib.contextmanager
def _pair(tmp: str, *extra: str) -> Iterator[tuple[ServerProcess, int]]:
    with shalekv_server(tmp + "/data", *extra) as sp, redis_server(tmp, *extra) as rp:
        yield sp, rp


def _alive(sp: ServerProcess) -> None:
    assert sp.proc.poll() is None
    with RawClient(sp.port) as c:
        assert c.call("PING") == b"+PONG\r\n"
    assert "Traceback" not in sp.log_text()


def _closed(c: RawClient, timeout: float = 10) -> bytes:
    """What the server sends until it closes the connection (fails if it never does)."""
    c.sock.settimeout(timeout)
    return c.read_until_closed()


def _maxclients(port: int, n: int) -> tuple[list[bytes], bytes]:
    """Open n clients (PING each), then one more: its reply; the first n's PINGs."""
    clients = []
    try:
        pongs = []
        for _ in range(n):
            c = RawClient(port)
            clients.append(c)
            pongs.append(c.call("PING"))
        with RawClient(port) as extra:
            refused = _closed(extra)
        return pongs, refused
    finally:
        for c in clients:
            c.close()


def test_maxclients(tmp_path) -> None:
    with _pair(str(tmp_path), "--maxclients", "3") as (sp, rp):
        ours, theirs = _maxclients(sp.port, 3), _maxclients(rp, 3)
        assert ours == theirs
        assert ours == ([b"+PONG\r\n"] * 3, b"-ERR max number of clients reached\r\n")
        # the slots are given back when clients go
        deadline = time.monotonic() + 10
        while True:
            with RawClient(sp.port) as c:
                if c.call("PING") == b"+PONG\r\n":
                    break
            assert time.monotonic() < deadline, "closed clients still counted"
            time.sleep(0.05)
        _alive(sp)


def test_proto_max_bulk_len(tmp_path) -> None:
    # 1mb is Redis's minimum for this option
    with _pair(str(tmp_path), "--proto-max-bulk-len", "1mb") as (sp, rp):
        for port in (sp.port, rp):
            with RawClient(port) as c:
                assert c.call("SET", "k", "v" * (1 << 20)) == b"+OK\r\n"  # exactly the limit
        got = []
        for port in (sp.port, rp):
            with RawClient(port) as c:
                c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
                got.append(_closed(c))
        assert got[0] == got[1] == b"-ERR Protocol error: invalid bulk length\r\n"
        _alive(sp)


def test_client_query_buffer_limit(tmp_path) -> None:
    with _pair(str(tmp_path), "--client-query-buffer-limit", "1mb") as (sp, rp):
        got = []
        for port in (sp.port, rp):
            with RawClient(port) as c:
                # one 2 MB argument: the unparsed request passes 1 MB, the client is closed
                c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
                try:
                    c.send(b"x" * 1_200_000)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                got.append(_closed(c))
        assert got[0] == got[1] == b""
        with RawClient(sp.port) as c:  # a request below the limit still works
            assert c.call("SET", "k", "v" * 500_000) == b"+OK\r\n"
        _alive(sp)


def test_idle_timeout(tmp_path) -> None:
    with shalekv_server(str(tmp_path / "data"), "--timeout", "1") as sp:
        with RawClient(sp.port) as idle, RawClient(sp.port) as sub:
            assert idle.call("PING") == b"+PONG\r\n"
            # subscribers are exempt (clientsCronHandleTimeout skips CLIENT_PUBSUB)
            subscribed = sub.call("SUBSCRIBE", "ch").startswith(b"*3\r\n")
            assert _closed(idle, timeout=15) == b""
            if subscribed:
                with RawClient(sp.port) as pub:
                    assert pub.call("PUBLISH", "ch", "m") == b":1\r\n"
                assert sub.read_replies(1) == b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
        _alive(sp)


def _has_config(port: int) -> bool:
    with RawClient(port) as c:
        return c.call("CONFIG", "GET", "maxclients").startswith(b"*2\r\n")


def test_config_set_limits_at_runtime(tmp_path) -> None:
    with shalekv_server(str(tmp_path / "data")) as sp:
        if not _has_config(sp.port):
            pytest.skip("CONFIG is not implemented yet")
        with RawClient(sp.port) as admin:
            with RawClient(sp.port) as c:  # connected before the changes: they apply to it
                assert c.call("PING") == b"+PONG\r\n"
                assert admin.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n"
                assert admin.call("CONFIG", "SET", "maxclients", "2") == b"+OK\r\n"
                with RawClient(sp.port) as extra:
                    assert _closed(extra) == b"-ERR max number of clients reached\r\n"
                c.send(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n")
                assert _closed(c) == b"-ERR Protocol error: invalid bulk length\r\n"
            assert admin.call("CONFIG", "SET", "maxclients", "100") == b"+OK\r\n"
            assert admin.call("CONFIG", "SET", "client-query-buffer-limit", "1mb") == b"+OK\r\n"
            with RawClient(sp.port) as c:
                c.send(b"*2\r\n$4\r\nECHO\r\n$1048576\r\n" + b"x" * 1_100_000)
                assert _closed(c) == b""
            assert admin.call("CONFIG", "SET", "timeout", "1") == b"+OK\r\n"
            with RawClient(sp.port) as idle:
                assert _closed(idle, timeout=15) == b""
        _alive(sp)


def _fill(port: int, n: int) -> list[RawClient]:
    """n clients that each got PONG (fails with the refusal if the server has no room)."""
    clients: list[RawClient] = []
    try:
        for _ in range(n):
            clients.append(RawClient(port))
            assert clients[-1].call("PING") == b"+PONG\r\n"
    except BaseException:
        for c in clients:
            c.close()
        raise
    return clients


def test_many_connects_and_disconnects(tmp_path) -> None:
    """connection_made/lost bookkeeping: after hundreds of abrupt closes, half-sent
    requests and refusals, exactly maxclients clients fit again."""
    with shalekv_server(str(tmp_path / "data"), "--maxclients", "5") as sp:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", sp.port), timeout=5)
            if i % 3 == 0:
                s.sendall(pack("SET", f"k{i}", "v"))
            elif i % 3 == 1:
                s.sendall(b"*2\r\n$3\r\nGET\r\n$5\r\nab")  # cut mid-request
            if i % 5 == 0:  # reset instead of FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        deadline = time.monotonic() + 20
        while True:  # the server sees the closes asynchronously
            try:
                clients = _fill(sp.port, 5)
                break
            except (AssertionError, ConnectionError):
                assert time.monotonic() < deadline, "closed clients are still counted"
                time.sleep(0.1)
        try:
            with RawClient(sp.port) as extra:
                assert _closed(extra) == b"-ERR max number of clients reached\r\n"
        finally:
            for c in clients:
                c.close()
        with RawClient(sp.port) as c:
            assert c.call("GET", "k0") == b"$1\r\nv\r\n"
        _alive(sp)


# ---------------------------------------------------------------- handler bugs


@contextlib.contextmanager
def _inprocess_server(data_dir: str) -> Iterator[Server]:
    """A Server on its own event loop in a thread, so the test can give it commands
    that fail in ways no real command should (a copy of the table; nothing global)."""
    cfg = ServerConfig()
    for name, value in (("port", "0"), ("dir", data_dir), ("compaction-workers", "0")):
        cfg.set(name, value, startup=True)
    srv = Server(cfg)
    srv.table = dict(srv.table)
    ready = threading.Event()
    t = threading.Thread(target=asyncio.run, args=(srv.serve(lambda s: ready.set()),))
    t.start()
    try:
        assert ready.wait(30), "the in-process server did not start"
        yield srv
    finally:
        assert srv.loop is not None
        srv.loop.call_soon_threadsafe(srv.request_stop)
        t.join(30)
        assert not t.is_alive()


def _bug(c: Context, a: list[bytes]) -> object:
    missing: dict[str, int] = {}
    return missing["no such key"]


def _write_then_bug(c: Context, a: list[bytes]) -> object:
    c.server.table[b"set"].handler(c, [b"set", a[1], b"written"])  # type: ignore[attr-defined]
    raise ZeroDivisionError("after a write")


def _bad_reply(c: Context, a: list[bytes]) -> object:
    return object()  # no RESP encoding


def test_handler_bug_gives_error_and_server_stays_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _inprocess_server(str(tmp_path)) as srv:
        srv.table[b"bug"] = Command("bug", 1, frozenset({"no_txn"}), 0, 0, 0, _bug)
        srv.table[b"bugw"] = Command("bugw", 2, frozenset({"write"}), 1, 1, 1, _write_then_bug)
        srv.table[b"badreply"] = Command("badreply", 1, frozenset(), 0, 0, 0, _bad_reply)
        port = srv.ports["tcp"]
        with caplog.at_level(logging.ERROR, logger="shalekv.server"), RawClient(port) as c:
            c.send(pack("BUG") + pack("PING"))  # the pipeline goes on after the error
            assert c.read_replies(2) == b"-ERR internal error: KeyError\r\n+PONG\r\n"
            # inside a store Txn: the failed command's writes are not committed
            assert c.call("BUGW", "k") == b"-ERR internal error: ZeroDivisionError\r\n"
            assert c.call("EXISTS", "k") == b":0\r\n"
            assert c.call("MULTI") == b"+OK\r\n"
            assert c.call("BUG") == b"+QUEUED\r\n"
            assert c.call("SET", "k2", "v") == b"+QUEUED\r\n"
            execed = c.call("EXEC")
            k2 = c.call("EXISTS", "k2")
            assert c.call("PING") == b"+PONG\r\n"
            # a reply that cannot be encoded: this client is dropped, no one else
            with RawClient(port) as other:
                c.send(pack("BADREPLY"))
                assert _closed(c) == b""
                assert other.call("PING") == b"+PONG\r\n"
        assert "Traceback" in caplog.text and "KeyError" in caplog.text
    # as Redis, an error inside EXEC belongs to its command; failing the whole EXEC
    # (nothing applied) is the acceptable fallback of the generic catch
    assert (execed, k2) in (
        (b"*2\r\n-ERR internal error: KeyError\r\n+OK\r\n", b":1\r\n"),
        (b"-ERR internal error: KeyError\r\n", b":0\r\n"),
    )
