"""Fixtures for the server tests: one shalekv server and one real redis-server per
session, raw RESP clients to both, and redis-py clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.redis_server import redis_server
from tests.server.raw import RawClient
from tests.shalekv_server import ServerProcess, shalekv_server


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with redis_server(str(tmp_path_factory.mktemp("redis"))) as port:
        yield port


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shalekv_server(str(tmp_path_factory.mktemp("shalekv") / "data")) as sp:
        yield sp


@pytest.fixture
def r(server: ServerProcess) -> Iterator[redis.Redis]:
    """redis-py on the session server, db 0 flushed."""
    c = redis.Redis(port=server.port, protocol=2)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def raw_pair(server: ServerProcess, redis_port: int) -> Iterator[tuple[RawClient, RawClient]]:
    """Raw connections to (shalekv, redis-server), both flushed."""
    with RawClient(server.port) as ours, RawClient(redis_port) as theirs:
        for c in (ours, theirs):
            c.call("FLUSHALL")
        yield ours, theirs
