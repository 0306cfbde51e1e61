"""TLS (tls-port, tls-cert-file, tls-key-file) with the standard ssl module: redis-py
over TLS, the plain port alongside, and clients that botch the handshake."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest
import redis

from tests.certs import self_signed
from tests.redis_server import free_port
from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess, shalekv_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(tmp)
    port = free_port()
    with shalekv_server(
        str(tmp / "data"),
        "--tls-port", str(port), "--tls-cert-file", cert, "--tls-key-file", key,
    ) as sp:  # fmt: skip
        sp.cert = cert  # type: ignore[attr-defined]
        yield sp, port


def test_redis_py_over_tls(tls_server: tuple[ServerProcess, int]) -> None:
    sp, port = tls_server
    c = redis.Redis(port=port, ssl=True, ssl_cert_reqs=None)  # type: ignore[arg-type]
    try:
        assert c.ping() is True
        assert c.set("tls", "v" * 100_000) is True  # bigger than one TLS record
        assert c.get("tls") == b"v" * 100_000
        with c.pipeline(transaction=False) as p:
            for _ in range(200):
                p.incr("tls:n")
            assert p.execute()[-1] == 200
        c.delete("tls", "tls:n")
    finally:
        c.close()


def test_tls_verifies_with_the_cert(tls_server: tuple[ServerProcess, int]) -> None:
    sp, port = tls_server
    ctx = ssl.create_default_context(cafile=sp.cert)  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(pack("ECHO", "over tls"))
            assert s.recv(100) == b"$8\r\nover tls\r\n"


def test_plain_port_alongside(tls_server: tuple[ServerProcess, int]) -> None:
    sp, _ = tls_server
    with RawClient(sp.port) as c:
        assert c.call("PING") == b"+PONG\r\n"


def test_bad_handshakes_do_not_hurt(tls_server: tuple[ServerProcess, int]) -> None:
    sp, port = tls_server
    for junk in (pack("PING"), b"\x16\x03\x01\x00\x05hello", b"", b"\x00" * 5000):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):  # the server answers with a TLS alert or closes
                    pass
            except (ConnectionResetError, BrokenPipeError):
                pass
    # a client that connects and vanishes mid-handshake
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        tls = ctx.wrap_socket(raw, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
            tls.sendall(b"*1\r\n$4\r\nPI")
        except (ssl.SSLError, OSError):
            pass
        raw.close()
    c = redis.Redis(port=port, ssl=True, ssl_cert_reqs=None)  # type: ignore[arg-type]
    try:
        assert c.ping() is True
    finally:
        c.close()
    assert sp.proc.poll() is None
    assert "Traceback" not in sp.log_text()
