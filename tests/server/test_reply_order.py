"""Replies wait for the end of the event-loop pass (Server.flush_clients: one WAL write
for every client served in it); out-of-band messages must not overtake them."""

from __future__ import annotations

from pathlib import Path

from tests.server.inproc import FakeLoop, connect, open_server
from tests.server.raw import pack


def test_replies_of_a_pass_share_one_wal_write_and_pushes_keep_their_place(
    tmp_path: Path,
) -> None:
    server = open_server(tmp_path / "data")
    loop = FakeLoop()
    server.loop = loop  # type: ignore[assignment]
    try:
        sub, tsub = connect(server)
        a, ta = connect(server)
        b, tb = connect(server)
        writes: list[int] = []
        wal = server.store.engine._wal
        real = wal._write
        wal._write = lambda buf, start: (writes.append(len(buf)), real(buf, start))[1]

        # one pass: a SUBSCRIBE, two clients' writes, a PUBLISH to the new subscriber
        sub.data_received(pack("SUBSCRIBE", "ch"))
        a.data_received(pack("SET", "k1", "v") + pack("INCR", "n"))
        b.data_received(pack("SET", "k2", "v") + pack("PUBLISH", "ch", "hello"))
        assert ta.data == tb.data == tsub.data == b""  # nothing before the pass ends
        assert writes == []
        loop.run_pass()
        assert len(writes) == 1  # the WAL records of both clients in one write
        assert ta.take() == b"+OK\r\n:1\r\n"
        assert tb.take() == b"+OK\r\n:1\r\n"
        # the confirmation first, then the message, as Redis's reply buffer holds them
        assert tsub.take() == (
            b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
        )
        b.data_received(pack("PUBLISH", "ch", "again"))  # nothing queued: out at once
        assert tsub.take() == b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nagain\r\n"
        loop.run_pass()
        assert tb.take() == b":1\r\n"
        del wal._write

        # MONITOR's +OK is queued when another client's command makes a line: the
        # line follows the +OK (Client.push keeps behind queued replies)
        mon, tmon = connect(server)
        mon.data_received(pack("MONITOR"))
        a.data_received(pack("GET", "k1"))
        loop.run_pass()
        got = tmon.take()
        assert got.startswith(b"+OK\r\n+") and got.endswith(b' "GET" "k1"\r\n'), got
    finally:
        server.store.engine.close()
