"""A WAL write that fails (disk full) in the server: the writes of that event-loop pass
are never acknowledged (their client is closed without replies), later writes and PING
get Redis's MISCONF error, reads go on, and a restart holds exactly what was
acknowledged. In-process (a Server and Clients on fake transports), so the failure can
be injected into the one write that matters."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from shalekv.server.app import Server
from tests.server.inproc import connect, open_server
from tests.server.raw import pack


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = open_server(tmp_path / "data")
    yield s
    if not s.store.engine._closed:
        s.store.engine.close()


def test_failed_wal_write_acknowledges_nothing_and_refuses_writes(
    server: Server, tmp_path: Path
) -> None:
    a, ta = connect(server)
    b, tb = connect(server)
    a.data_received(pack("SET", "acked", "1"))
    assert ta.take() == b"+OK\r\n"

    def full(buf: bytes, start: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    server.store.engine._wal._write = full  # the next write of the WAL fails
    a.data_received(pack("SET", "lost1", "x") + pack("INCR", "lost2") + pack("GET", "acked"))
    assert ta.take() == b"" and ta.closed  # no reply acknowledges the lost writes
    del server.store.engine._wal._write

    misconf = b"-MISCONF Errors writing to the AOF file: No space left on device\r\n"
    b.data_received(pack("SET", "later", "2"))
    assert tb.take() == misconf
    b.data_received(pack("PING"))  # as Redis: PING too, so health checks notice
    assert tb.take() == misconf
    b.data_received(pack("GET", "acked"))
    assert tb.take() == b"$1\r\n1\r\n"
    b.data_received(pack("MULTI") + pack("SET", "t", "1") + pack("EXEC"))
    assert tb.take() == (
        b"+OK\r\n" + misconf + b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    )
    assert server.store.engine.stats()["background_error"] is not None

    server.store.engine.close()
    restarted = open_server(tmp_path / "data")
    try:
        c, tc = connect(restarted)
        c.data_received(pack("MGET", "acked", "lost1", "lost2", "later", "t"))
        assert tc.take() == b"*5\r\n$1\r\n1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n"
        c.data_received(pack("SET", "after", "3"))  # a restart clears the condition
        assert tc.take() == b"+OK\r\n"
    finally:
        restarted.store.engine.close()
