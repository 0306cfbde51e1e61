"""Prometheus /metrics: a server started with --metrics-port, scraped with urllib; the
figures INFO reports move the same way after commands."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.redis_server import free_port
from tests.shalekv_server import ServerProcess, shalekv_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    port = free_port()
    data = str(tmp_path_factory.mktemp("metrics") / "data")
    with shalekv_server(data, "--metrics-port", str(port)) as sp:
        yield sp, port


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_move_after_commands(metrics_server: tuple[ServerProcess, int]) -> None:
    sp, port = metrics_server
    r = redis.Redis(port=sp.port)
    r.flushall()
    before = scrape(port)
    r.mset({"a": "1", "b": "2", "c": "3"})
    r.get("a")
    r.get("nope")
    after = scrape(port)
    n = ("shalekv_commands_processed_total", ())
    assert after[n] >= before[n] + 3
    hits = ("shalekv_keyspace_hits_total", ())
    misses = ("shalekv_keyspace_misses_total", ())
    assert after[hits] == before[hits] + 1 and after[misses] == before[misses] + 1
    assert after[("shalekv_db_keys", (("db", "0"),))] == 3
    assert after[("shalekv_connected_clients", ())] >= 1
    calls = ("shalekv_command_calls_total", (("cmd", "get"),))
    assert after[calls] == before.get(calls, 0) + 2
    # INFO reports the same figure.
    assert r.info("keyspace")["db0"]["keys"] == after[("shalekv_db_keys", (("db", "0"),))]
    r.close()


def test_latency_histograms(metrics_server: tuple[ServerProcess, int]) -> None:
    sp, port = metrics_server
    r = redis.Redis(port=sp.port)
    for i in range(5):
        r.set(f"k{i}", "v")
    s = scrape(port)
    count = s[("shalekv_command_latency_seconds_count", (("cmd", "set"),))]
    inf = s[("shalekv_command_latency_seconds_bucket", (("cmd", "set"), ("le", "+Inf")))]
    assert count >= 5 and inf == count
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in s.items()
        if name == "shalekv_command_latency_seconds_bucket" and dict(labels)["cmd"] == "set"
    )
    values = [v for _, v in buckets]
    assert values == sorted(values)  # cumulative
    assert s[("shalekv_command_latency_seconds_sum", (("cmd", "set"),))] > 0
    r.close()


def test_engine_figures(metrics_server: tuple[ServerProcess, int]) -> None:
    sp, port = metrics_server
    s = scrape(port)
    names = {name for name, _ in s}
    for want in (
        "shalekv_engine_level_files",
        "shalekv_engine_level_bytes",
        "shalekv_engine_write_amplification",
        "shalekv_engine_block_cache_hit_ratio",
        "shalekv_engine_compressed_cache_hit_ratio",
        "shalekv_engine_bloom_useful",
        "shalekv_engine_pending_compaction_bytes",
    ):
        assert want in names, want
    assert ("shalekv_engine_level_files", (("level", "0"),)) in s
    r = redis.Redis(port=sp.port)
    engine = r.info("engine")
    assert engine["engine_files"] == s[("shalekv_engine_num_files", ())]
    r.close()
