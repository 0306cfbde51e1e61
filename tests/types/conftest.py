"""Fixtures for the data-model tests: a real redis-server for differential tests and
an embedded store to compare it with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import shalekv
from tests.redis_server import redis_server
from tests.types.differential import Pair


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with redis_server(str(tmp_path_factory.mktemp("redis"))) as port:
        yield port


@pytest.fixture(scope="session")
def real(redis_port: int) -> Iterator[redis.Redis]:
    r = redis.Redis(port=redis_port)
    yield r
    r.close()


@pytest.fixture(scope="session")
def shale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[shalekv.embedded.ShaleKV]:
    db = shalekv.open(str(tmp_path_factory.mktemp("shale")), compaction_workers=0)
    yield db
    db.close()


@pytest.fixture
def pair(real: redis.Redis, shale: shalekv.embedded.ShaleKV) -> Pair:
    """Both stores, emptied: call pair.same("method", *args) to compare them."""
    real.flushall()
    shale.flushall()
    return Pair(shale, real)
