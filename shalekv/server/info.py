"""INFO's text (Redis's genRedisInfoString): `# Section` headers, `field:value` lines,
CRLF line ends, sections in Redis 7.0's order, plus an `engine` section for the LSM tree.

The figures are gathered once per call by `snapshot` so that INFO and /metrics report
the same numbers from the same code.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from shalekv.server.commands.connection import REDIS_VERSION

if TYPE_CHECKING:
    from shalekv.server.app import Server
    from shalekv.server.latency import Latency

try:
    from importlib.metadata import version as _dist_version

    SHALEKV_VERSION = _dist_version("shalekv")
except Exception:  # noqa: BLE001  # not installed as a distribution (a source checkout)
    SHALEKV_VERSION = "0.0.0"

RUN_ID = os.urandom(20).hex()  # as Redis: random per process
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# Sections in Redis 7.0's order; `engine` is ours. DEFAULT is what "INFO" and
# "INFO default" show; ALL adds commandstats and latencystats ("everything" adds
# module sections, of which we have none).
ORDER = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "engine",
)
DEFAULT = frozenset(ORDER) - {"commandstats", "latencystats"}
ALL = frozenset(ORDER)


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; the peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def human(n: float) -> str:
    """bytesToHuman: 1.37M, 12.28G ..."""
    for unit, size in (("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1024)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{int(n)}B"


def pubsub_counts(server: Server) -> tuple[int, int]:
    """(channels, patterns) with at least one subscriber: from the pub/sub hub when it
    exposes its maps, else from the clients' own subscription sets."""
    hub = server.extensions.get("pubsub")
    ch = getattr(hub, "channels", None)
    pat = getattr(hub, "patterns", None)
    if isinstance(ch, dict) and isinstance(pat, dict):
        return len(ch), len(pat)
    channels: set[bytes] = set()
    patterns: set[bytes] = set()
    for c in server.clients.values():
        channels |= c.channels
        patterns |= c.patterns
    return len(channels), len(patterns)


def engine_stats(server: Server) -> dict[str, Any]:
    store = server.store
    if store is None:
        return {}
    return store.engine.stats()


def _lines(title: str, fields: Iterable[tuple[str, object]]) -> str:
    return "# " + title + "\r\n" + "".join(f"{k}:{v}\r\n" for k, v in fields)


def _server(s: Server) -> list[tuple[str, object]]:
    now = time.time()
    uptime = int(now - s.start_time)
    u = platform.uname()
    return [
        ("redis_version", REDIS_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", "0"),
        ("redis_mode", "standalone"),
        ("os", f"{u.system} {u.release} {u.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "asyncio"),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", RUN_ID),
        ("tcp_port", s.ports.get("tcp", s.config["port"])),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", s.config["hz"]),
        ("configured_hz", s.config["hz"]),
        ("executable", os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""),
        ("config_file", s.config.path or ""),
        ("io_threads_active", 0),
        ("shalekv_version", SHALEKV_VERSION),
        ("python_version", platform.python_version()),
    ]


def _clients(s: Server) -> list[tuple[str, object]]:
    clients = s.clients.values()
    return [
        ("connected_clients", len(s.clients)),
        ("cluster_connections", 0),
        ("maxclients", s.config["maxclients"]),
        ("client_recent_max_input_buffer", max((c.parser.buffered() for c in clients), default=0)),
        ("client_recent_max_output_buffer", 0),
        ("blocked_clients", sum(1 for c in clients if c.blocked)),
        ("tracking_clients", 0),
        ("clients_in_timeout_table", 0),
    ]


def _memory(s: Server, es: dict[str, Any]) -> list[tuple[str, object]]:
    # used_memory: the process's resident set (Python heap, memtables and both block
    # caches all live in it; flush/compaction workers are other processes). The engine_*
    # fields break out what the engine holds of it: cache usage is the bytes of cached
    # blocks, memtable bytes the approximate size of the active memtable.
    rss = rss_bytes()
    caches = es.get("block_cache_usage", 0) + es.get("compressed_cache_usage", 0)
    mem = es.get("memtable_bytes", 0)
    maxmem = s.config["maxmemory"]
    try:
        total = os.sysconf("SC_PHYS_PAGES") * _PAGE
    except (ValueError, OSError, AttributeError):
        total = 0
    return [
        ("used_memory", rss),
        ("used_memory_human", human(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", human(rss)),
        ("used_memory_peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        ("used_memory_dataset", caches + mem),
        ("total_system_memory", total),
        ("total_system_memory_human", human(total)),
        ("maxmemory", maxmem),
        ("maxmemory_human", human(maxmem)),
        ("maxmemory_policy", s.config["maxmemory-policy"]),
        ("mem_fragmentation_ratio", "1.00"),
        ("mem_allocator", "libc"),
        ("engine_block_cache_bytes", es.get("block_cache_usage", 0)),
        ("engine_compressed_cache_bytes", es.get("compressed_cache_usage", 0)),
        ("engine_memtable_bytes", mem),
        *_rank_fields(s),
        ("lazyfree_pending_objects", 0),
    ]


def _rank_fields(s: Server) -> list[tuple[str, object]]:
    """The sorted sets' rank indexes (types/zrank.py): memory, builds (one scan of a set
    each), mismatches with the engine (should stay 0), evictions."""
    r = s.store.ranks if s.store else None
    if r is None:
        return []
    return [
        ("zset_rank_indexes", len(r)),
        ("zset_order_indexes", r.ordered()),
        ("zset_rank_index_bytes", r.nbytes),
        ("zset_rank_index_builds", r.builds),
        ("zset_rank_index_build_seconds", f"{r.build_seconds:.3f}"),
        ("zset_rank_index_mismatches", r.mismatches),
        ("zset_rank_index_evictions", r.evictions),
    ]


def _persistence(s: Server, es: dict[str, Any]) -> list[tuple[str, object]]:
    cp = s.extensions.get("last_checkpoint")
    bg_error = es.get("background_error")
    return [
        ("loading", 0),
        ("async_loading", 0),
        ("rdb_changes_since_last_save", 0),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", s.last_save),
        ("rdb_last_bgsave_status", "ok"),
        ("rdb_saves", 1 if cp else 0),
        ("aof_enabled", 1),  # every write goes to the WAL
        ("aof_rewrite_in_progress", 0),
        ("aof_last_write_status", "err" if bg_error else "ok"),
        ("aof_fsync", s.config["appendfsync"]),
        ("checkpoint_last_status", "ok" if cp else "none"),
        ("checkpoint_last_time", cp["time"] if cp else -1),
        ("checkpoint_last_path", cp["path"] if cp else ""),
        ("wal_bytes_written", es.get("wal_bytes_written", 0)),
        *_backup_fields(s),
    ]


def _backup_fields(s: Server) -> list[tuple[str, object]]:
    """BACKUP CREATE's progress and last result (shalekv.server.commands.backup)."""
    bk = s.extensions.get("backup")
    return bk.info_fields() if bk is not None else []


def _stats(s: Server) -> list[tuple[str, object]]:
    st = s.stats
    store = s.store
    channels, patterns = pubsub_counts(s)
    return [
        ("total_connections_received", st.connections_received),
        ("total_commands_processed", st.total_commands),
        ("instantaneous_ops_per_sec", int(st.ops_per_sec())),
        ("total_net_input_bytes", st.net_input_bytes),
        ("total_net_output_bytes", st.net_output_bytes),
        ("rejected_connections", st.rejected_connections),
        ("expired_keys", store.expired_keys if store else 0),
        ("evicted_keys", 0),
        ("keyspace_hits", store.keyspace_hits if store else 0),
        ("keyspace_misses", store.keyspace_misses if store else 0),
        ("pubsub_channels", channels),
        ("pubsub_patterns", patterns),
        ("pubsubshard_channels", len(getattr(s.extensions.get("pubsub"), "shard", None) or ())),
        ("total_error_replies", sum(st.errors.values())),
    ]


def _replication(s: Server) -> list[tuple[str, object]]:
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", RUN_ID),
        ("master_repl_offset", 0),
        ("repl_backlog_active", 0),
    ]


def _cpu(s: Server) -> list[tuple[str, object]]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    out: list[tuple[str, object]] = [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{ch.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{ch.ru_utime:.6f}"),
    ]
    if hasattr(resource, "RUSAGE_THREAD") and threading.current_thread() is threading.main_thread():
        th = resource.getrusage(resource.RUSAGE_THREAD)
        out += [
            ("used_cpu_sys_main_thread", f"{th.ru_stime:.6f}"),
            ("used_cpu_user_main_thread", f"{th.ru_utime:.6f}"),
        ]
    return out


def _commandstats(s: Server) -> list[tuple[str, object]]:
    return [
        (
            "cmdstat_" + name,
            f"calls={cs.calls},usec={int(cs.usec)},"
            f"usec_per_call={cs.usec / cs.calls if cs.calls else 0:.2f},"
            f"rejected_calls={cs.rejected},failed_calls={cs.failed}",
        )
        for name, cs in s.stats.commands.items()
        if cs.calls or cs.rejected or cs.failed
    ]


def _errorstats(s: Server) -> list[tuple[str, object]]:
    return [("errorstat_" + code, f"count={n}") for code, n in s.stats.errors.items()]


def _latencystats(s: Server) -> list[tuple[str, object]]:
    lat: Latency | None = s.extensions.get("latency")
    if lat is None:
        return []
    return [
        (
            "latency_percentiles_usec_" + name,
            f"p50={h.percentile(50):.3f},p99={h.percentile(99):.3f},p99.9={h.percentile(99.9):.3f}",
        )
        for name, h in lat.histograms.items()
        if h.total
    ]


def _keyspace(s: Server) -> list[tuple[str, object]]:
    if s.store is None:
        return []
    return [
        (f"db{db}", f"keys={keys},expires={expires},avg_ttl=0")
        for db, (keys, expires) in enumerate(s.store.counts)
        if keys
    ]


def _engine(s: Server, es: dict[str, Any]) -> list[tuple[str, object]]:
    if not es:
        return []
    out: list[tuple[str, object]] = [
        ("engine_levels", len(es["levels"])),
        ("engine_files", es["num_files"]),
        ("engine_sst_bytes", es["sst_bytes"]),
    ]
    out += [
        (f"level{lv['level']}", f"files={lv['files']},bytes={lv['bytes']}") for lv in es["levels"]
    ]
    for k in sorted(es):
        v = es[k]
        if k in ("levels", "num_files", "sst_bytes", "background_error"):
            continue
        if isinstance(v, float):
            out.append((k, f"{v:.4f}"))
        elif isinstance(v, int):
            out.append((k, v))
    out.append(("background_error", es.get("background_error") or ""))
    return out


_SIMPLE: dict[str, Callable[[Server], list[tuple[str, object]]]] = {
    "server": _server,
    "clients": _clients,
    "stats": _stats,
    "replication": _replication,
    "cpu": _cpu,
    "commandstats": _commandstats,
    "errorstats": _errorstats,
    "latencystats": _latencystats,
    "keyspace": _keyspace,
}
_WITH_ENGINE = {"memory": _memory, "persistence": _persistence, "engine": _engine}
TITLES = {"cpu": "CPU"}


def sections_for(args: list[str]) -> set[str]:
    """genInfoSectionDict: no argument or "default" -> the default sections; "all",
    "everything"; otherwise the named sections (unknown ones add nothing)."""
    if not args:
        return set(DEFAULT)
    out: set[str] = set()
    for a in args:
        a = a.lower()
        if a == "default":
            out |= DEFAULT
        elif a in ("all", "everything"):
            out |= ALL
        else:
            out.add(a)
    return out


def info_text(server: Server, args: list[str]) -> str:
    wanted = sections_for(args)
    es = engine_stats(server) if wanted & {"memory", "persistence", "engine"} else {}
    parts = []
    for name in ORDER:
        if name not in wanted:
            continue
        title = TITLES.get(name, name.capitalize())
        if name in _SIMPLE:
            fields = _SIMPLE[name](server)
        elif name in _WITH_ENGINE:
            fields = _WITH_ENGINE[name](server, es)
        elif name == "cluster":
            fields = [("cluster_enabled", 0)]
        else:  # modules
            fields = []
        parts.append(_lines(title, fields))
    return "\r\n".join(parts)
