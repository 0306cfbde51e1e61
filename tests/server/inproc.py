"""A Server and its Clients in this process, on fake transports: for what needs a
failure injected at one exact point, or a deterministic event-loop pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shalekv.server.app import Server
from shalekv.server.client import Client
from shalekv.server.config import ServerConfig


class FakeTransport:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 7379)}.get(name)

    def write(self, data: bytes) -> None:
        assert not self.closed, "a write after close"
        self.data += data

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0  # everything written is taken at once

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.data = self.data, b""
        return out


def open_server(path: Path) -> Server:
    cfg = ServerConfig()
    cfg.set("dir", str(path), startup=True)
    server = Server(cfg)
    server.open()
    return server


def connect(server: Server) -> tuple[Client, FakeTransport]:
    c = Client(server)
    t = FakeTransport()
    c.connection_made(t)  # type: ignore[arg-type]
    return c, t


class FakeLoop:
    """call_soon only: run_pass() runs what was scheduled, as the end of a loop pass."""

    def __init__(self) -> None:
        self.soon: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.soon.append((fn, args))

    def run_pass(self) -> None:
        while self.soon:
            todo, self.soon = self.soon, []
            for fn, args in todo:
                fn(*args)
