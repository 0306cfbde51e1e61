"""Prometheus `/metrics` (prometheus-client) on `metrics-bind`:`metrics-port`.

A custom collector reads the figures INFO reports at scrape time (no second set of
counters on the hot path): the scrape runs in prometheus-client's HTTP thread, so it
asks the event loop for a snapshot and waits for it, as the server's state belongs to
the loop's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from shalekv.server import info

if TYPE_CHECKING:
    from shalekv.server.app import Server

log = logging.getLogger("shalekv.server")

# Histogram bounds in microseconds (exported in seconds, as Prometheus prefers).
BOUNDS_USEC = [
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    25000,
    50000,
    100000,
    250000,
    500000,
    1000000,
    2500000,
    10000000,
]
SNAPSHOT_TIMEOUT = 5.0


def snapshot(server: Server) -> dict[str, Any]:
    """Every figure /metrics exports, read on the event loop's thread."""
    st = server.stats
    store = server.store
    lat = server.extensions.get("latency")
    channels, patterns = info.pubsub_counts(server)
    return {
        "commands_processed": st.total_commands,
        "connections_received": st.connections_received,
        "rejected_connections": st.rejected_connections,
        "connected_clients": len(server.clients),
        "blocked_clients": sum(1 for c in server.clients.values() if c.blocked),
        "keyspace_hits": store.keyspace_hits if store else 0,
        "keyspace_misses": store.keyspace_misses if store else 0,
        "expired_keys": store.expired_keys if store else 0,
        "ranks": (
            (
                len(store.ranks),
                store.ranks.ordered(),
                store.ranks.nbytes,
                store.ranks.builds,
                store.ranks.build_seconds,
                store.ranks.mismatches,
            )
            if store
            else (0, 0, 0, 0, 0.0, 0)
        ),
        "pubsub_channels": channels,
        "pubsub_patterns": patterns,
        "keys": [(db, k, e) for db, (k, e) in enumerate(store.counts) if k] if store else [],
        "commands": {
            n: (cs.calls, cs.usec, cs.rejected, cs.failed) for n, cs in st.commands.items()
        },
        "errors": dict(st.errors),
        "latency": {
            n: (h.cumulative(BOUNDS_USEC), h.total, st.commands[n].usec if n in st.commands else 0)
            for n, h in (lat.histograms.items() if lat else ())
        },
        "engine": info.engine_stats(server),
        "rss": info.rss_bytes(),
        "start_time": server.start_time,
    }


class ServerCollector(Collector):
    def __init__(self, server: Server) -> None:
        self.server = server

    def _snapshot(self) -> dict[str, Any]:
        loop = self.server.loop
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if loop is None or not loop.is_running() or here is loop:
            return snapshot(self.server)
        fut: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def take() -> None:
            try:
                fut.set_result(snapshot(self.server))
            except Exception as e:  # noqa: BLE001  # handed to the scraping thread
                fut.set_exception(e)

        loop.call_soon_threadsafe(take)
        return fut.result(SNAPSHOT_TIMEOUT)

    def collect(self) -> Iterator[Metric]:
        try:
            s = self._snapshot()
        except (concurrent.futures.TimeoutError, RuntimeError, asyncio.CancelledError) as e:
            log.warning("metrics snapshot failed: %s", e)
            return
        p = "shalekv_"

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(p + name, doc, value=value)

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(p + name, doc, value=value)

        yield counter(
            "commands_processed",
            "Commands run (INFO total_commands_processed).",
            s["commands_processed"],
        )
        yield counter("connections_received", "Connections accepted.", s["connections_received"])
        yield counter(
            "rejected_connections", "Connections refused (maxclients).", s["rejected_connections"]
        )
        yield gauge("connected_clients", "Open client connections.", s["connected_clients"])
        yield gauge("blocked_clients", "Clients in a blocking command.", s["blocked_clients"])
        yield counter(
            "keyspace_hits", "Key lookups by read commands that found the key.", s["keyspace_hits"]
        )
        yield counter(
            "keyspace_misses",
            "Key lookups by read commands that found nothing.",
            s["keyspace_misses"],
        )
        yield counter("expired_keys", "Keys deleted on expiry.", s["expired_keys"])
        n, ordered, nbytes, builds, build_seconds, mismatches = s["ranks"]
        yield gauge("zset_rank_indexes", "Sorted sets with a rank index in memory.", n)
        yield gauge("zset_order_indexes", "Of those, sets whose whole order is in memory.", ordered)
        yield gauge("zset_rank_index_bytes", "Estimated memory of the rank indexes.", nbytes)
        yield counter("zset_rank_index_builds", "Rank indexes built by a scan of a set.", builds)
        yield counter(
            "zset_rank_index_build_seconds",
            "Time commands waited for rank index builds.",
            build_seconds,
        )
        yield counter(
            "zset_rank_index_mismatches",
            "Rank indexes dropped for disagreeing with the engine (should stay 0).",
            mismatches,
        )
        yield gauge("pubsub_channels", "Channels with subscribers.", s["pubsub_channels"])
        yield gauge("pubsub_patterns", "Patterns with subscribers.", s["pubsub_patterns"])
        yield gauge("memory_rss_bytes", "Resident set size of the server process.", s["rss"])
        yield gauge("start_time_seconds", "Unix time the server started.", s["start_time"])

        keys = GaugeMetricFamily(p + "db_keys", "Keys per database.", labels=["db"])
        expires = GaugeMetricFamily(
            p + "db_expires", "Keys with a TTL per database.", labels=["db"]
        )
        for db, nkeys, nexpires in s["keys"]:
            keys.add_metric([str(db)], nkeys)
            expires.add_metric([str(db)], nexpires)
        yield keys
        yield expires

        calls = CounterMetricFamily(p + "command_calls", "Calls per command.", labels=["cmd"])
        usec = CounterMetricFamily(
            p + "command_duration_seconds", "Time spent per command.", labels=["cmd"]
        )
        rejected = CounterMetricFamily(
            p + "command_rejected_calls", "Calls refused before running.", labels=["cmd"]
        )
        failed = CounterMetricFamily(
            p + "command_failed_calls", "Calls that replied an error.", labels=["cmd"]
        )
        for name, (n, us, rej, fail) in s["commands"].items():
            calls.add_metric([name], n)
            usec.add_metric([name], us / 1e6)
            rejected.add_metric([name], rej)
            failed.add_metric([name], fail)
        yield from (calls, usec, rejected, failed)

        errors = CounterMetricFamily(p + "errors", "Error replies by error code.", labels=["code"])
        for code, n in s["errors"].items():
            errors.add_metric([code], n)
        yield errors

        hist = HistogramMetricFamily(
            p + "command_latency_seconds",
            "Command latency (the server's own measure).",
            labels=["cmd"],
        )
        for name, (cum, total, sum_usec) in s["latency"].items():
            buckets = [(f"{b / 1e6:g}", n) for b, n in zip(BOUNDS_USEC, cum, strict=True)]
            buckets.append(("+Inf", total))
            hist.add_metric([name], buckets, sum_usec / 1e6)
        yield hist

        yield from self._engine(p, s["engine"])

    def _engine(self, p: str, es: dict[str, Any]) -> Iterator[Metric]:
        if not es:
            return
        files = GaugeMetricFamily(p + "engine_level_files", "SSTables per level.", labels=["level"])
        size = GaugeMetricFamily(
            p + "engine_level_bytes", "SSTable bytes per level.", labels=["level"]
        )
        for lv in es["levels"]:
            files.add_metric([str(lv["level"])], lv["files"])
            size.add_metric([str(lv["level"])], lv["bytes"])
        yield files
        yield size
        gauges = {
            "num_files": "SSTables in the current version.",
            "sst_bytes": "Bytes of all SSTables.",
            "blob_files": "Blob files.",
            "blob_bytes": "Bytes of all blob files.",
            "memtable_bytes": "Approximate size of the active memtable.",
            "immutable_memtables": "Memtables waiting to be flushed.",
            "pending_compaction_bytes": "Bytes compaction still has to rewrite.",
            "write_amplification": "(flush + compaction bytes written) / flush bytes written.",
            "block_cache_usage": "Bytes in the block cache.",
            "block_cache_hit_ratio": "Block cache hits / lookups.",
            "compressed_cache_usage": "Bytes in the compressed block cache.",
            "compressed_cache_hit_ratio": "Compressed block cache hits / lookups.",
            "bloom_useful": "Lookups a bloom filter answered without a block read "
            "(tables open now).",
        }
        for k, doc in gauges.items():
            if k in es:
                yield GaugeMetricFamily(p + "engine_" + k, doc, value=es[k])
        counters = {
            "flushes": "Memtable flushes.",
            "compactions": "Compactions run.",
            "seek_compactions": "L0 compactions started by range reads (writes idle).",
            "flush_bytes_written": "Bytes written by flushes.",
            "compaction_bytes_written": "Bytes written by compactions.",
            "compaction_bytes_read": "Bytes read by compactions.",
            "block_cache_hits": "Block cache hits.",
            "block_cache_misses": "Block cache misses.",
            "compressed_cache_hits": "Compressed block cache hits.",
            "compressed_cache_misses": "Compressed block cache misses.",
            "stall_count": "Write stalls.",
            "user_bytes_written": "Bytes of keys and values written by users.",
            "wal_bytes_written": "Bytes written to the WAL.",
        }
        for k, doc in counters.items():
            if k in es:
                yield CounterMetricFamily(p + "engine_" + k, doc, value=es[k])


def start(server: Server) -> None:
    """SERVER_INIT: serve /metrics when metrics-port is set (its own registry, so
    several servers in one process do not clash)."""
    cfg = server.config
    port = cfg["metrics-port"]
    if not port:
        return
    registry = CollectorRegistry()
    registry.register(ServerCollector(server))
    httpd, thread = start_http_server(port, addr=cfg["metrics-bind"], registry=registry)
    server.extensions["metrics"] = httpd

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)

    # Called by the server as it closes, once app.py runs extensions["on_close"].
    server.extensions.setdefault("on_close", []).append(stop)
    log.info("metrics on http://%s:%d/metrics", cfg["metrics-bind"], port)
