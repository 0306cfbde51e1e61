#!/usr/bin/env python3
"""Redis data-type commands per call: embedded ShaleKV against redis-py -> redis-server
and diskcache (issue 4), one subprocess per engine.

Every engine is driven through the same redis-py method calls (``db.set``, ``db.hset``,
``db.zadd(key, {member: score})``, ``db.zrangebyscore(key, lo, "+inf", 0, 10)`` ...),
one call per operation, no pipelining: what an application does.

- ``shalekv``: ``shalekv.open(dir)`` with its defaults (fsync="everysec", background
  compaction in a worker process), the real embedded configuration.
- ``redis``: redis-py (with hiredis if installed) over TCP to a local redis-server
  (Debian's), which the engine's process starts on a free port without persistence and
  stops by pid.
- ``diskcache``: ``diskcache.Cache(dir)``, string workloads only (SET=cache.set,
  GET=cache.get, INCR=cache.incr).

Each engine runs in a fresh interpreter (its peak RSS is its own, a crash or hang only
blanks its column, bounded by ``--timeout``). Workloads run in order on one store:

    SET            --num string keys, each written once, in seeded random order
    GET            --ops random existing string keys
    INCR           --ops increments over --ops/10 counters (most hit an existing one)
    LPUSH          --num elements into --num/--per-key lists, random order
    RPOP           --ops pops, never more from a list than it holds
    HSET           --num new fields into --num/--per-key hashes
    HGET           --ops random existing fields
    SADD           --num new members into --num/--per-key sets
    ZADD           --zset-members members into one zset (score = member number)
    ZRANGEBYSCORE  --ops queries: random min, max +inf, LIMIT 0 10 (10 results); after
                   members / (60 x sorted runs a read merges) of them ShaleKV builds
                   the set's order index, a
                   step of ~2,048 keys from each source per call (timed with the
                   rest: docs/decisions.md D21)
    ZRANK          --zrank-ops random members (default: --ops; the first call builds
                   ShaleKV's rank index unless one exists, timed with the rest)

Run from the repository root:

    python bench/types_bench.py                                   # 1M keys, all engines
    python bench/types_bench.py --num 2000 --zset-members 2000 --ops 500    # smoke test
    python bench/types_bench.py --engines shalekv --reuse /tmp/t.json --write-docs

Results go to stdout (LevelDB-style header, per-engine tables, a summary with ratios and
the issue's targets); with ``--write-docs`` also as Markdown into the "## Data types
(issue 4)" section of ``--out`` (docs/benchmarks.md), which is created if absent; the
rest of the file is kept as it is.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_bench as eb  # noqa: E402  (shared header pieces, formatting, value generator)

ROOT = eb.ROOT
KEY_SIZE = 16
VALUE_SIZE = eb.VALUE_SIZE
PREFIX = "@@types_bench "  # marks the child's JSON lines on stdout
CHUNK = 10_000  # arguments are built outside the timer, at most this many calls at a time
FIRST_CHUNK = 100  # chunks start small and double, so a slow command meets its budget soon
SAMPLE_EVERY = 10  # per-call latency: the first 1/10 of each chunk is timed call by call
SAMPLE_ALL_BELOW = 2000  # ...and every call of a workload this short
ZRANGE_LIMIT = 10

ENGINES = ("shalekv", "redis", "diskcache")
LABELS = {"shalekv": "ShaleKV", "redis": "redis-py->redis", "diskcache": "diskcache"}
BASELINE = "shalekv"
REDIS_TARGET = 2.0  # issue 4: ShaleKV >= 2x redis-py -> redis-server per call
DISKCACHE_TARGET = 1.0  # and >= diskcache

HEADING = "## Data types (issue 4)"
SECTION = ("<!-- types_bench:start -->", "<!-- types_bench:end -->")


# --------------------------------------------------------------------------- data

# Every key, field and member is 16 bytes; the first byte keeps the types apart (a
# string key and a list key never collide, which would be a WRONGTYPE error).


def string_key(i: int) -> bytes:
    return b"k%015d" % i


def counter_key(i: int) -> bytes:
    return b"n%015d" % i


def list_key(i: int) -> bytes:
    return b"l%015d" % i


def hash_key(i: int) -> bytes:
    return b"h%015d" % i


def set_key(i: int) -> bytes:
    return b"s%015d" % i


def field_name(i: int) -> bytes:
    return b"f%015d" % i


def member(i: int) -> bytes:
    return b"m%015d" % i


ZSET_KEY = b"z%015d" % 0


def permutation(seed: int, name: str, n: int) -> array[int]:
    """0..n-1 in a seeded random order: every engine sees the same order."""
    a = array("q", range(n))
    random.Random(f"{seed}:{name}").shuffle(a)
    return a


def draws(seed: int, name: str, count: int, space: int) -> array[int]:
    """count numbers drawn with replacement from [0, space), seeded."""
    randrange = random.Random(f"{seed}:{name}").randrange
    return array("q", (randrange(max(1, space)) for _ in range(count)))


@dataclass(frozen=True)
class Sizes:
    num: int
    zset_members: int
    ops: int
    zrank_ops: int
    per_key: int
    seed: int

    @property
    def collections(self) -> int:
        return max(1, -(-self.num // self.per_key))

    @property
    def counters(self) -> int:
        return max(1, self.ops // 10)


@dataclass(frozen=True)
class Workload:
    """One command timed call by call.

    ``indices`` picks the operation numbers (outside the timer), ``make`` turns one into
    the method's positional arguments, ``check`` scores one reply outside the timer (a
    found/added/correct count, compared between engines).
    """

    name: str
    method: str
    indices: Callable[[Sizes], Sequence[int]]
    make: Callable[[int, bytes, Sizes], tuple[Any, ...]]
    check: Callable[[int, Any], int] | None = None
    needs: str | None = None  # the workload that filled what this one reads
    strings: bool = False  # diskcache runs it
    counts: str = ""  # what check counts, for the report
    expect_all: bool = False  # check must hold for every call


def _zrange_expected(lo: int) -> list[bytes]:
    return [member(lo + j) for j in range(ZRANGE_LIMIT)]


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "SET",
        "set",
        lambda s: permutation(s.seed, "SET", s.num),
        lambda i, v, s: (string_key(i), v),
        strings=True,
    ),
    Workload(
        "GET",
        "get",
        lambda s: draws(s.seed, "GET", s.ops, s.num),
        lambda i, v, s: (string_key(i),),
        lambda i, r: r is not None,
        needs="SET",
        strings=True,
        counts="found",
        expect_all=True,
    ),
    Workload(
        "INCR",
        "incr",
        lambda s: draws(s.seed, "INCR", s.ops, s.counters),
        lambda i, v, s: (counter_key(i),),
        lambda i, r: r > 1,
        strings=True,
        counts="on an existing counter",
    ),
    Workload(
        "LPUSH",
        "lpush",
        lambda s: permutation(s.seed, "LPUSH", s.num),
        lambda i, v, s: (list_key(i // s.per_key), v),
    ),
    Workload(
        "RPOP",
        "rpop",
        # Distinct element numbers, so no list is popped more often than it was pushed.
        lambda s: permutation(s.seed, "RPOP", s.num)[: s.ops],
        lambda i, v, s: (list_key(i // s.per_key),),
        lambda i, r: r is not None,
        needs="LPUSH",
        counts="popped",
        expect_all=True,
    ),
    Workload(
        "HSET",
        "hset",
        lambda s: permutation(s.seed, "HSET", s.num),
        lambda i, v, s: (hash_key(i // s.per_key), field_name(i), v),
        lambda i, r: r == 1,
        counts="new fields",
        expect_all=True,
    ),
    Workload(
        "HGET",
        "hget",
        lambda s: draws(s.seed, "HGET", s.ops, s.num),
        lambda i, v, s: (hash_key(i // s.per_key), field_name(i)),
        lambda i, r: r is not None,
        needs="HSET",
        counts="found",
        expect_all=True,
    ),
    Workload(
        "SADD",
        "sadd",
        lambda s: permutation(s.seed, "SADD", s.num),
        lambda i, v, s: (set_key(i // s.per_key), member(i)),
        lambda i, r: r == 1,
        counts="added",
        expect_all=True,
    ),
    Workload(
        "ZADD",
        "zadd",
        lambda s: permutation(s.seed, "ZADD", s.zset_members),
        lambda i, v, s: (ZSET_KEY, {member(i): float(i)}),
        lambda i, r: r == 1,
        counts="added",
        expect_all=True,
    ),
    Workload(
        "ZRANGEBYSCORE",
        "zrangebyscore",
        lambda s: draws(s.seed, "ZRANGEBYSCORE", s.ops, s.zset_members - ZRANGE_LIMIT),
        # zrangebyscore(name, min, max, start, num): ZRANGEBYSCORE z lo +inf LIMIT 0 10
        lambda i, v, s: (ZSET_KEY, i, "+inf", 0, ZRANGE_LIMIT),
        lambda i, r: r == _zrange_expected(i),
        needs="ZADD",
        counts="correct",
        expect_all=True,
    ),
    Workload(
        "ZRANK",
        "zrank",
        lambda s: draws(s.seed, "ZRANK", s.zrank_ops, s.zset_members),
        lambda i, v, s: (ZSET_KEY, member(i)),
        # Scores are the member numbers, so member i's rank is i.
        lambda i, r: r == i,
        needs="ZADD",
        counts="correct",
        expect_all=True,
    ),
)
BY_NAME = {w.name: w for w in WORKLOADS}
NAMES = tuple(BY_NAME)
FILLS = {"SET", "LPUSH", "HSET", "SADD", "ZADD"}


def op_count(w: Workload, s: Sizes) -> int:
    if w.name == "ZADD":
        return s.zset_members
    if w.name == "ZRANK":
        return s.zrank_ops
    if w.name == "RPOP":
        return min(s.ops, s.num)
    if w.name in FILLS:
        return s.num
    return s.ops


# --------------------------------------------------------------------------- engines


class Engine:
    """One engine: a client object with redis-py method names, opened in a directory."""

    name: str
    client: Any

    def load(self) -> str:
        """Import the engine (ImportError if it is missing); return its version string."""
        raise NotImplementedError

    def open(self, path: str) -> None:
        raise NotImplementedError

    def method(self, name: str) -> Callable[..., Any] | None:
        """The bound method for a redis-py method name, None if the engine has no such
        operation at all (diskcache has no lists)."""
        return getattr(self.client, name, None)

    def finish(self) -> dict[str, Any]:
        """Facts to report before closing (disk, memory)."""
        return {}

    def close(self) -> None:
        raise NotImplementedError


class ShaleKVEngine(Engine):
    name = "shalekv"

    def load(self) -> str:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import shalekv

        self._open = shalekv.open
        return f"ShaleKV {shalekv.__version__}"

    def open(self, path: str) -> None:
        # The defaults on purpose: what an application that calls shalekv.open gets.
        self.path = path
        self.client = self._open(path)
        o = self.client.engine.options
        self.settings = f"fsync={o.fsync}, compaction_workers={o.compaction_workers}"

    def finish(self) -> dict[str, Any]:
        stats = dict(self.client.engine.stats())
        return {"settings": self.settings, "stats": stats}

    def close(self) -> None:
        self.client.close()
        self.disk = eb.disk_bytes(self.path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisEngine(Engine):
    name = "redis"

    def load(self) -> str:
        import redis

        self._redis = redis
        exe = shutil.which("redis-server")
        if exe is None:
            raise ImportError("redis-server is not installed (apt-get install redis-server)")
        self._exe = exe
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"v=(\S+)", out)
        self._server_version = m.group(1) if m else "?"
        parser = (
            f", hiredis {eb._dist_version('hiredis')}" if eb._dist_version("hiredis") != "?" else ""
        )
        return f"redis-py {redis.__version__}{parser}, redis-server {self._server_version}"

    def open(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        port = free_port()
        # No persistence (no RDB snapshots, no AOF): the server only does the commands.
        self.proc = subprocess.Popen(
            [self._exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        # redis-py's defaults, one connection reused for every call.
        self.client = self._redis.Redis(host="127.0.0.1", port=port)
        self.client.ping()

    def finish(self) -> dict[str, Any]:
        mem = self.client.info("memory")
        return {"used_memory": mem.get("used_memory"), "server_rss": mem.get("used_memory_rss")}

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, 9)
            self.proc.wait()


class DiskCacheClient:
    """diskcache's methods under the redis-py names the string workloads call."""

    def __init__(self, cache: Any) -> None:
        self.set, self.get, self.incr = cache.set, cache.get, cache.incr


class DiskCacheEngine(Engine):
    name = "diskcache"

    def load(self) -> str:
        import diskcache

        self._diskcache = diskcache
        return f"diskcache {diskcache.__version__}"

    def open(self, path: str) -> None:
        self.path = path
        # Default settings (SQLite WAL, synchronous=NORMAL), but a size limit it never
        # reaches, so it never evicts (as in engine_bench).
        self.cache = self._diskcache.Cache(path, size_limit=2**40)
        self.client = DiskCacheClient(self.cache)

    def close(self) -> None:
        self.cache.close()
        self.disk = eb.disk_bytes(self.path)


ADAPTERS: dict[str, type[Engine]] = {
    e.name: e for e in (ShaleKVEngine, RedisEngine, DiskCacheEngine)
}


# --------------------------------------------------------------------------- child side


def peak_rss_kb() -> int:
    """This process's peak RSS (KiB). VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    exec from the forked copy of the parent, whose size would count."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def emit(kind: str, **payload: Any) -> None:
    """Send one result line to the parent (stdout, marked, so stray prints are ignored)."""
    payload["type"] = kind
    payload["rss_kb"] = peak_rss_kb()
    print(PREFIX + json.dumps(payload, default=str), flush=True)


def short_error(exc: BaseException) -> str:
    # Redis's unknown-command text goes on to quote the (binary) arguments: cut there.
    text = " ".join(str(exc).split()).split(", with args beginning with")[0]
    return f"{type(exc).__name__}: {text[:160]}"


def percentile(ordered: Sequence[int], p: float) -> float:
    """Microseconds at quantile p of sorted nanosecond latencies."""
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1000


class GcTimer:
    """Seconds and count of this process's garbage collections, per generation, while
    installed (gc.callbacks): the part of a workload's time the cyclic collector took,
    which grows with the objects a store keeps alive (cached blocks, memtables)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._start = 0.0

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            g = info["generation"]
            self.seconds[g] += time.perf_counter() - self._start
            self.counts[g] += 1


def run_workload(
    w: Workload, fn: Callable[..., Any], sizes: Sizes, values: eb.Values, budget: float
) -> dict[str, Any]:
    """Time calls of fn over w's operations; stop early (reported) past budget seconds.
    The collector's time inside the timed calls is reported apart (gc_seconds: it is
    part of `seconds`), by generation."""
    idx = w.indices(sizes)
    total = len(idx)
    sample_all = total <= SAMPLE_ALL_BELOW
    latencies = array("q")
    record = latencies.append
    clock, now = time.perf_counter_ns, time.perf_counter
    seconds, done, good, size, stopped = 0.0, 0, 0, FIRST_CHUNK, False
    gc_timer = GcTimer()
    while done < total:
        if seconds > budget:
            stopped = True
            break
        chunk = idx[done : done + size]
        size = min(CHUNK, size * 2)
        vals = values.take(len(chunk))
        calls = [w.make(i, v, sizes) for i, v in zip(chunk, vals, strict=True)]
        n_sampled = len(calls) if sample_all else max(1, len(calls) // SAMPLE_EVERY)
        sampled, rest = calls[:n_sampled], calls[n_sampled:]
        results: list[Any] = []
        out = results.append
        with gc_timer:
            t0 = now()
            for a in sampled:
                s = clock()
                out(fn(*a))
                record(clock() - s)
            for a in rest:
                out(fn(*a))
            seconds += now() - t0
        done += len(calls)
        if w.check is not None:
            check = w.check
            good += sum(1 for i, r in zip(chunk, results, strict=True) if check(i, r))
    ordered = sorted(latencies)
    return {
        "name": w.name,
        "ops": done,
        "planned": total,
        "seconds": seconds,
        "good": good if w.check is not None else None,
        "p50": percentile(ordered, 0.50) if ordered else None,
        "p99": percentile(ordered, 0.99) if ordered else None,
        "sampled": len(ordered),
        "stopped": stopped,
        "gc_seconds": [round(x, 4) for x in gc_timer.seconds],
        "gc_collections": gc_timer.counts,
    }


def child_main(engine: Engine, args: argparse.Namespace) -> None:
    sizes = sizes_of(args)
    selected = set(args.workloads)
    # A selected read needs its fill, which then runs untimed-in-the-report.
    wanted = selected | {BY_NAME[n].needs for n in selected if BY_NAME[n].needs}
    failed: dict[str, str] = {}
    values = eb.Values(args.seed)
    path = os.path.join(args.path, engine.name)
    engine.open(path)
    try:
        for w in WORKLOADS:
            if w.name not in wanted:
                continue
            if args.paced:
                # Stop this process group (the child, its store's workers, its
                # redis-server) until the parent lets it run this workload: engines
                # take turns workload by workload (see spawn_paced).
                os.killpg(0, signal.SIGSTOP)
            report = w.name in selected
            fn = engine.method(w.method)
            if fn is None or (engine.name == "diskcache" and not w.strings):
                if report:
                    emit("skipped", name=w.name, reason="not applicable")
                continue
            if w.needs in failed:
                if report:
                    emit("skipped", name=w.name, reason=f"needs {w.needs}, which failed")
                continue
            try:
                r = run_workload(w, fn, sizes, values, args.workload_budget)
            except Exception as exc:  # an unimplemented or broken command: reported, not fatal
                failed[w.name] = short_error(exc)
                if report:
                    emit("skipped", name=w.name, reason=f"error: {failed[w.name]}")
                eb.log(engine.name, f"{w.name:<14} n/a (error: {failed[w.name]})")
                continue
            if not report:
                continue
            emit("workload", **r)
            note = f" (stopped after {r['ops']} of {r['planned']} calls)" if r["stopped"] else ""
            eb.log(
                engine.name,
                f"{w.name:<14} {r['seconds'] * 1e6 / max(r['ops'], 1):10.3f} micros/op{note}",
            )
        emit("finish", **engine.finish())
    finally:
        engine.close()
    emit("disk", bytes=getattr(engine, "disk", None))


def run_child(args: argparse.Namespace) -> int:
    engine = ADAPTERS[args.child]()
    try:
        version = engine.load()
    except ImportError as exc:
        emit("missing", error=short_error(exc))
        return 0
    emit("start", version=version, baseline_rss_kb=peak_rss_kb())
    try:
        child_main(engine, args)
    except Exception as exc:
        emit("error", error=short_error(exc))
        raise
    emit("done", children_rss_kb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return 0


# --------------------------------------------------------------------------- parent side


@dataclass
class Run:
    """What the parent learned from one child: results so far and how it ended."""

    engine: str
    status: str = "ok"
    detail: str = ""
    version: str = ""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    disk: int | None = None
    baseline_rss_kb: int | None = None
    peak_rss_kb: int | None = None
    children_rss_kb: int | None = None

    @property
    def label(self) -> str:
        return LABELS[self.engine]

    @property
    def started(self) -> bool:
        return bool(self.version)

    def ops(self, name: str) -> float | None:
        r = self.results.get(name)
        return r["ops"] / r["seconds"] if r and r["seconds"] > 0 else None

    def cell(self, name: str, short: bool = False) -> str:
        """Why there is no number for a workload; short: as the summary shows it."""
        why = self.skipped.get(name)
        if why is None:
            return "-" if self.status == "ok" else self.status
        if not short:
            return f"n/a ({why})"
        if why.startswith("error:"):
            return "n/a (not implemented)" if "unknown command" in why else "n/a (error)"
        if why.startswith("needs "):
            return f"n/a ({why.split(',')[0]})"
        return "n/a"


def child_command(args: argparse.Namespace, engine: str, path: str) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", engine, "--path", path]
    cmd += ["--num", str(args.num), "--zset-members", str(args.zset_members)]
    cmd += ["--ops", str(args.ops), "--zrank-ops", str(args.zrank_ops)]
    cmd += ["--per-key", str(args.per_key), "--seed", str(args.seed)]
    cmd += ["--workloads", ",".join(args.workloads)]
    cmd += ["--workload-budget", str(args.workload_budget)]
    if not args.sequential:
        cmd.append("--paced")
    return cmd


@dataclass
class Child:
    """One engine's child process: its results file, temp dir and time used so far."""

    run: Run
    proc: subprocess.Popen[str]
    out: Any
    workdir: str
    used: float = 0.0  # seconds it was let run (paced) or since it started
    exit: int | None = None  # its exit status once reaped


def start_child(args: argparse.Namespace, engine: str) -> Child:
    """A fresh process and temp dir for one engine. As in engine_bench: results go to a
    file (a leftover helper cannot stall a pipe), and the child gets a session of its
    own, so a timeout also kills its redis-server and compaction workers (and pacing
    stops and resumes them all)."""
    workdir = tempfile.mkdtemp(prefix=f"types_bench-{engine}-", dir=args.dir)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    print(f"== {engine} in {workdir}", file=sys.stderr, flush=True)
    out = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        child_command(args, engine, workdir),
        stdout=out,
        text=True,
        env=env,
        start_new_session=True,
    )
    return Child(Run(engine), proc, out, workdir)


def finish_child(child: Child) -> Run:
    """Kill what is left of the child's session, read its results, clean up."""
    run, proc = child.run, child.proc
    eb._kill_group(proc.pid)
    if child.exit is None:
        proc.wait()
        child.exit = proc.returncode
    shutil.rmtree(child.workdir, ignore_errors=True)
    child.out.seek(0)
    for line in child.out:
        if line.startswith(PREFIX):
            absorb(run, json.loads(line[len(PREFIX) :]))
    child.out.close()
    if run.status == "ok" and child.exit != 0:
        run.status = f"failed (exit {child.exit})"
    print(f"== {run.engine}: {run.status}, {child.used:.1f} s", file=sys.stderr)
    return run


def spawn(args: argparse.Namespace, engine: str) -> Run:
    """Run one engine to the end, bounded by --timeout."""
    child = start_child(args, engine)
    started = time.monotonic()
    try:
        child.proc.wait(timeout=args.timeout)
        child.exit = child.proc.returncode
    except subprocess.TimeoutExpired:
        child.run.status = f"timeout after {args.timeout:g} s"
    except BaseException:  # Ctrl-C: leave no redis-server or worker behind
        eb._kill_group(child.proc.pid)
        shutil.rmtree(child.workdir, ignore_errors=True)
        raise
    child.used = time.monotonic() - started
    return finish_child(child)


def _wait_stop(child: Child, timeout: float) -> bool:
    """Wait until the child stops itself (True) or exits (False); on timeout it is
    killed and marked. The time it ran is added to child.used."""
    started = time.monotonic()
    pid = child.proc.pid
    while True:
        got, status = os.waitpid(pid, os.WUNTRACED | os.WNOHANG)
        if got:
            child.used += time.monotonic() - started
            if os.WIFSTOPPED(status):
                return True
            child.exit = os.waitstatus_to_exitcode(status)
            child.proc.returncode = child.exit  # reaped here, not by Popen
            return False
        if time.monotonic() - started > timeout:
            child.used += time.monotonic() - started
            child.run.status = f"timeout after {child.used:.0f} s"
            eb._kill_group(pid)
            os.waitpid(pid, 0)
            child.exit = -9
            child.proc.returncode = child.exit
            return False
        time.sleep(0.01)


def spawn_paced(args: argparse.Namespace, engines: Sequence[str]) -> list[Run]:
    """Run the engines by turns: every child stops (its whole process group) before
    each workload, and the engines run workload k one after the other before any runs
    workload k + 1. Each workload's numbers are then taken minutes apart at most, not
    an engine's whole run apart (this shared VM's speed drifts by tens of percent over
    minutes), and a stopped engine's background work (compaction, a redis-server)
    does not run during another's turn."""
    children = [start_child(args, e) for e in engines]
    try:
        live = []
        for c in children:  # startup (imports, opening the store) up to the first stop
            if _wait_stop(c, args.timeout):
                live.append(c)
        while live:
            for c in list(live):
                os.killpg(c.proc.pid, signal.SIGCONT)
                if not _wait_stop(c, args.timeout - c.used):
                    live.remove(c)
    except BaseException:  # Ctrl-C: no stopped child, redis-server or worker left behind
        for c in children:
            eb._kill_group(c.proc.pid)
            shutil.rmtree(c.workdir, ignore_errors=True)
        raise
    return [finish_child(c) for c in children]


def absorb(run: Run, msg: dict[str, Any]) -> None:
    kind = msg["type"]
    run.peak_rss_kb = max(run.peak_rss_kb or 0, msg["rss_kb"])
    if kind == "missing":
        run.status, run.detail = "not installed", msg["error"]
    elif kind == "start":
        run.version, run.baseline_rss_kb = msg["version"], msg["baseline_rss_kb"]
    elif kind == "workload":
        run.results[msg["name"]] = msg
    elif kind == "skipped":
        run.skipped[msg["name"]] = msg["reason"]
    elif kind == "finish":
        run.facts = {k: v for k, v in msg.items() if k not in ("type", "rss_kb")}
    elif kind == "disk":
        run.disk = msg["bytes"]
    elif kind == "error":
        run.status, run.detail = "failed", msg["error"]
    elif kind == "done":
        run.children_rss_kb = msg["children_rss_kb"]


# --------------------------------------------------------------------------- reporting


def sizes_of(args: argparse.Namespace) -> Sizes:
    return Sizes(args.num, args.zset_members, args.ops, args.zrank_ops, args.per_key, args.seed)


def engine_label(run: Run) -> str:
    v = run.version
    if run.facts.get("settings"):
        v += f", {run.facts['settings']}"
    return f"{run.label} ({v or run.engine})"


def header(m: dict[str, str], s: Sizes) -> str:
    """LevelDB db_bench's opening lines, with this benchmark's sizes."""
    lines = [
        f"ShaleKV:    version {eb.shalekv_version()}",
        f"Date:       {m['date']}",
        f"CPU:        {m['nproc']} * {m['cpu']}",
        f"CPUCache:   {m['cache']}",
        f"Python:     {m['python']}",
        f"Keys:       {KEY_SIZE} bytes each (also fields and members)",
        f"Values:     {VALUE_SIZE} bytes each (strings, hash values, list elements)",
        f"Strings:    {s.num} keys; INCR on {s.counters} counters",
        f"Collections: {s.num} elements each for lists, hashes, sets, "
        f"over {s.collections} keys ({s.per_key} per key)",
        f"Zset:       {s.zset_members} members in one key",
        f"Ops:        {s.ops} per query workload; ZRANK {s.zrank_ops}",
        "-" * 48,
    ]
    return "\n".join(lines)


def fmt_us(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def note_for(w: Workload, r: dict[str, Any]) -> str:
    notes = []
    if r.get("good") is not None and w.counts:
        notes.append(f"{r['good']} of {r['ops']} {w.counts}")
    if r.get("stopped"):
        notes.append(f"stopped at the budget after {r['ops']} of {r['planned']} calls")
    return "; ".join(notes)


def engine_table(run: Run, names: Sequence[str]) -> str:
    """db_bench's per-workload lines for one engine, with sampled latency percentiles."""
    title = f"{engine_label(run)}: {run.status}"
    if run.detail:
        title += f" ({run.detail})"
    if run.peak_rss_kb:
        title += f", peak RSS {eb.fmt_bytes(run.peak_rss_kb * 1024)}"
    if run.disk is not None:
        title += f", {eb.fmt_bytes(run.disk)} on disk at the end"
    rows = []
    for name in names:
        r = run.results.get(name)
        if r is None:
            rows.append([name, "", "", "", "", "", run.cell(name)])
            continue
        secs, ops = r["seconds"], r["ops"]
        rows.append(
            [
                name,
                f"{ops}",
                f"{secs * 1e6 / ops:.3f}",
                f"{ops / secs:.0f}",
                fmt_us(r["p50"]),
                fmt_us(r["p99"]),
                note_for(BY_NAME[name], r),
            ]
        )
    headers = ["workload", "calls", "micros/op", "ops/s", "p50 us", "p99 us", ""]
    return title + "\n" + eb.text_table(headers, rows, left=(0, 6))


def ratio_text(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "-"
    r = a / b
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"


def target_cell(w: Workload, base: Run | None, by: dict[str, Run]) -> tuple[str, bool | None]:
    """'met' / 'NOT met (...)' for ShaleKV against the targets that apply to w."""
    if base is None:
        return "-", None
    mine = base.ops(w.name)
    # A workload (or the fill it reads) cut short by --workload-budget ran on different
    # data in different engines: its numbers do not compare.
    for r in by.values():
        for name in filter(None, (w.name, w.needs)):
            if r.results.get(name, {}).get("stopped"):
                return f"- ({r.label} {name} stopped at the budget)", None
    checks = [("redis", REDIS_TARGET)]
    if w.strings:
        checks.append(("diskcache", DISKCACHE_TARGET))
    misses, compared = [], []
    for engine, target in checks:
        peer = by.get(engine)
        theirs = peer.ops(w.name) if peer else None
        if mine is None or theirs is None:
            continue
        compared.append(LABELS[engine])
        if mine / theirs < target:
            misses.append(f"{mine / theirs:.2f}x {LABELS[engine]}, needs {target:g}x")
    if not compared:
        return "-", None
    if misses:
        return "NOT met: " + "; ".join(misses), False
    only = f" (vs {' and '.join(compared)} only)" if len(compared) < len(checks) else ""
    return "met" + only, True


def summary_rows(
    runs: Sequence[Run], names: Sequence[str], s: Sizes
) -> tuple[list[str], list[list[str]], list[tuple[str, bool | None]]]:
    """Rows = workloads: calls, ops/s per engine, ShaleKV's ratios, the target verdict."""
    by = {r.engine: r for r in runs}
    base = by.get(BASELINE) if by.get(BASELINE) and by[BASELINE].started else None
    headers = ["workload", "calls"] + [r.label for r in runs]
    if base is not None and "redis" in by:
        headers.append("ShaleKV/redis")
    if base is not None and "diskcache" in by:
        headers.append("ShaleKV/diskcache")
    headers.append("target")
    rows, verdicts = [], []
    for name in names:
        w = BY_NAME[name]
        calls = {r.results[name]["ops"] for r in runs if name in r.results}
        row = [name, " / ".join(f"{c:,}" for c in sorted(calls)) or f"{op_count(w, s):,}"]
        for r in runs:
            ops = r.ops(name)
            row.append(eb.fmt_count(ops) if ops is not None else r.cell(name, short=True))
        mine = base.ops(name) if base else None
        if base is not None and "redis" in by:
            row.append(ratio_text(mine, by["redis"].ops(name)))
        if base is not None and "diskcache" in by:
            row.append(ratio_text(mine, by["diskcache"].ops(name)) if w.strings else "")
        verdict = target_cell(w, base, by)
        row.append(verdict[0])
        verdicts.append((name, verdict[1]))
        rows.append(row)
    return headers, rows, verdicts


def latency_rows(runs: Sequence[Run], names: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    headers = ["workload"] + [f"{r.label} p50 / p99 us" for r in runs]
    rows = []
    for name in names:
        row = [name]
        for r in runs:
            x = r.results.get(name)
            row.append(f"{fmt_us(x['p50'])} / {fmt_us(x['p99'])}" if x else "-")
        rows.append(row)
    return headers, rows


def verdict_line(verdicts: Sequence[tuple[str, bool | None]]) -> str:
    judged = [(n, v) for n, v in verdicts if v is not None]
    if not judged:
        return "Targets: nothing judged (no ShaleKV or peer numbers, or a run cut short)."
    missed = [n for n, v in judged if not v]
    unjudged = [n for n, v in verdicts if v is None]
    text = f"Targets (ShaleKV >= {REDIS_TARGET:g}x redis-py->redis-server on every workload, "
    text += f">= {DISKCACHE_TARGET:g}x diskcache on strings): "
    text += f"met on {len(judged) - len(missed)} of {len(judged)} workloads"
    if missed:
        text += f"; NOT met on {', '.join(missed)}"
    if unjudged:
        text += f"; no comparison for {', '.join(unjudged)}"
    return text + "."


def consistency_warnings(runs: Sequence[Run], names: Sequence[str]) -> list[str]:
    """Engines saw the same calls, so their reply counts must agree and, where every
    reply is known (all found, all added, ranks), match the call count."""
    warnings = []
    for name in names:
        w = BY_NAME[name]
        seen = {r.label: r.results[name] for r in runs if name in r.results}
        goods = {label: x["good"] for label, x in seen.items() if x.get("good") is not None}
        same_calls = len({x["ops"] for x in seen.values()}) == 1
        if same_calls and len(set(goods.values())) > 1:
            warnings.append(f"WARNING: engines disagree on {name} ({w.counts}): {goods}")
        for label, x in seen.items():
            if w.expect_all and x.get("good") is not None and x["good"] != x["ops"]:
                warnings.append(
                    f"WARNING: {label} {name}: only {x['good']} of {x['ops']} calls {w.counts}"
                )
    return warnings


def not_measured(runs: Sequence[Run], names: Sequence[str]) -> list[str]:
    """The workloads an engine could not run because a command failed, with the error."""
    return [
        f"{r.label} {name}: {r.skipped[name][len('error: ') :]}"
        for r in runs
        for name in names
        if r.skipped.get(name, "").startswith("error:")
    ]


def problems(runs: Sequence[Run]) -> str:
    why = {
        r.label: f"{r.status}: {r.detail}" if r.detail else r.status
        for r in runs
        if r.status != "ok"
    }
    return "; ".join(f"{label}: {reason}" for label, reason in why.items())


def versions(runs: Sequence[Run]) -> str:
    return "; ".join(engine_label(r) for r in runs if r.version)


def extra_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """Memory and disk per engine (redis-server's memory is its own process)."""

    def kb(x: int | None) -> str:
        return eb.fmt_bytes(x * 1024) if x else "-"

    rows = []
    for r in runs:
        if not r.started:
            continue
        helper = kb(r.children_rss_kb)
        if r.engine == "redis" and r.facts.get("used_memory"):
            helper += f" (server used_memory {eb.fmt_bytes(r.facts['used_memory'])})"
        disk = eb.fmt_bytes(r.disk) if r.disk is not None else "-"
        rows.append([r.label, kb(r.peak_rss_kb), helper, disk])
    return [
        "engine",
        "peak RSS (client process)",
        "peak RSS of helper processes",
        "disk at end",
    ], rows


def command_line() -> str:
    return shlex.join(["python", "bench/types_bench.py", *sys.argv[1:]])


def description(s: Sizes, paced: bool = True) -> str:
    turns = (
        "The engines run by turns: each stops (with its workers and servers) before every "
        "workload, and all run workload k before any runs k + 1, so that the two sides of "
        "a ratio are timed minutes apart, not a whole run apart. "
        if paced
        else "The engines ran one after the other (--sequential). "
    )
    return (
        f"Keys, fields and members {KEY_SIZE} bytes, values {VALUE_SIZE} bytes. In order on "
        f"one store: SET {s.num:,} string keys (seeded random order), GET {s.ops:,} random "
        f"ones, INCR {s.ops:,} times over {s.counters:,} counters; LPUSH, HSET and SADD "
        f"{s.num:,} elements each over {s.collections:,} keys ({s.per_key} per key), RPOP "
        f"and HGET {s.ops:,}; ZADD {s.zset_members:,} members into one zset, "
        f"ZRANGEBYSCORE {s.ops:,} times (random min, +inf, LIMIT 0 {ZRANGE_LIMIT}; ShaleKV "
        "reads the engine until the set has been read members / (60 x the sorted runs a read "
        "merges) times, then builds the set's order index in memory, ~2,048 keys from each "
        "source per call, timed with the rest), ZRANK "
        f"{s.zrank_ops:,} times (random members; ShaleKV builds a rank index on the first "
        "call unless one exists). One "
        "redis-py method call per operation, no pipelining, each engine in its own process: "
        "ShaleKV embedded via `shalekv.open(dir)` with default options; redis-py over TCP "
        "to a local redis-server without persistence; diskcache.Cache (strings only). "
        f"p50/p99 come from timing a sample of calls one by one (1 in {SAMPLE_EVERY}, every "
        f"call of workloads under {SAMPLE_ALL_BELOW:,} calls). " + turns
    ).rstrip()


def markdown(args: argparse.Namespace, m: dict[str, str], runs: Sequence[Run]) -> str:
    s = sizes_of(args)
    started = [r for r in runs if r.started]
    parts = [
        HEADING,
        "",
        f"Command: `{command_line()}`  ",
        eb.machine_line(m),
        "",
        description(s, not args.sequential),
        "",
    ]
    if started:
        headers, rows, verdicts = summary_rows(started, args.workloads, s)
        parts += [f"Versions: {versions(runs)}.", "", eb.md_table(headers, rows), ""]
        parts += [
            "Cells are ops/s; ratios are ShaleKV's ops/s divided by the peer's (above 1x: "
            "ShaleKV is faster).",
            "",
            verdict_line(verdicts),
            "",
            "### Per-call latency (sampled)",
            "",
            eb.md_table(*latency_rows(started, args.workloads)),
            "",
            "### Memory and disk",
            "",
            eb.md_table(*extra_rows(started)),
            "",
        ]
    missing = not_measured(started, args.workloads)
    if missing:
        parts += ["Not measured (the command failed): " + "; ".join(missing) + ".", ""]
    if problems(runs):
        parts += [f"Problems: {problems(runs)}.", ""]
    warnings = consistency_warnings(started, args.workloads)
    parts += [f"**{w}**" for w in warnings] + ([""] if warnings else [])
    return "\n".join(parts)


# --------------------------------------------------------------------------- main


def parse_list(text: str, allowed: Sequence[str], what: str, upper: bool = False) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    items = [x.upper() for x in items] if upper else items
    unknown = [x for x in items if x not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [x for x in allowed if x in items]  # canonical order


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Redis data-type commands: embedded ShaleKV vs redis-py->redis-server "
        "and diskcache (issue 4).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--num", type=int, default=1_000_000, help="string keys; elements per list/hash/set fill"
    )
    p.add_argument("--zset-members", type=int, default=1_000_000, help="members of the one zset")
    p.add_argument("--ops", type=int, default=100_000, help="calls per read/query workload")
    p.add_argument("--zrank-ops", type=int, default=None, help="ZRANK calls (default: --ops)")
    p.add_argument("--per-key", type=int, default=100, help="elements per list, hash and set")
    p.add_argument("--seed", type=int, default=301, help="seed for keys, orders and values")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma list")
    p.add_argument("--workloads", default=",".join(NAMES), help="comma list")
    p.add_argument("--dir", default="/tmp", help="parent of the per-engine temp dirs")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per engine process")
    p.add_argument(
        "--workload-budget",
        type=float,
        default=600,
        help="seconds one workload may take; past it, it stops (reported) and the next runs",
    )
    p.add_argument("--write-docs", action="store_true", help="update the section in --out")
    p.add_argument(
        "--out", type=Path, default=eb.DEFAULT_OUT, help="Markdown file for --write-docs"
    )
    p.add_argument("--json", type=Path, help="also dump raw results here")
    p.add_argument("--reuse", type=Path, help="a previous --json: keep its engines not run now")
    p.add_argument(
        "--sequential",
        action="store_true",
        help="run each engine to the end before the next (default: by turns per workload)",
    )
    p.add_argument("--paced", action="store_true", help=argparse.SUPPRESS)  # to a child
    p.add_argument("--child", choices=sorted(ADAPTERS), help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.engines = parse_list(args.engines, ENGINES, "engine")
    args.workloads = parse_list(args.workloads, NAMES, "workload", upper=True)
    if args.zrank_ops is None:
        args.zrank_ops = args.ops
    for name in ("num", "zset_members", "ops", "zrank_ops", "per_key"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1")
    if args.zset_members <= ZRANGE_LIMIT and "ZRANGEBYSCORE" in args.workloads:
        raise SystemExit(f"--zset-members must be > {ZRANGE_LIMIT} for ZRANGEBYSCORE")
    return args


def reuse_runs(args: argparse.Namespace, runs: list[Run]) -> list[Run]:
    """Add the engines of an earlier --json that were not run now (same sizes only)."""
    old = json.loads(args.reuse.read_text())
    keys = ("num", "zset_members", "ops", "zrank_ops", "per_key", "seed")
    mismatch = [k for k in keys if old["args"].get(k) != getattr(args, k)]
    if mismatch:
        raise SystemExit(f"--reuse: {args.reuse} was run with other sizes ({', '.join(mismatch)})")
    for d in old["runs"]:
        if d["engine"] not in args.engines:
            run = Run(**d)
            run.detail = (
                run.detail + " " if run.detail else ""
            ) + f"(reused from {old['machine']['date']})"
            runs.append(run)
    order = {e: i for i, e in enumerate(ENGINES)}
    return sorted(runs, key=lambda r: order[r.engine])


def parent(args: argparse.Namespace) -> None:
    m = eb.machine()
    s = sizes_of(args)
    if not args.sequential:
        runs = spawn_paced(args, args.engines)
    else:
        runs = [spawn(args, e) for e in args.engines]
    if args.reuse:
        runs = reuse_runs(args, runs)
    print(header(m, s))
    print(f"Versions:   {versions(runs)}\n")
    for run in runs:
        print(
            engine_table(run, args.workloads) + "\n"
            if run.started
            else f"{run.label}: {run.status} {run.detail}\n"
        )
    if problems(runs):
        print(f"Problems: {problems(runs)}\n")
    started = [r for r in runs if r.started]
    if started:
        headers, rows, verdicts = summary_rows(started, args.workloads, s)
        print("Summary: ops/s per engine; ratios = ShaleKV ops/s / peer ops/s")
        print(eb.text_table(headers, rows, left=(0, len(headers) - 1)) + "\n")
        print(verdict_line(verdicts))
        for line in not_measured(started, args.workloads):
            print(f"n/a: {line}")
        print("\nMemory and disk")
        print(eb.text_table(*extra_rows(started)))
    for warning in consistency_warnings(started, args.workloads):
        print(warning)
    if args.write_docs:
        eb.replace_section(args.out, SECTION, markdown(args, m, runs), HEADING)
        print(f"\nwrote {args.out}", file=sys.stderr)
    if args.json:
        keys = ("num", "zset_members", "ops", "zrank_ops", "per_key", "seed")
        payload = {
            "machine": m,
            "args": {k: getattr(args, k) for k in keys},
            "command": command_line(),
            "runs": [r.__dict__ for r in runs],
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    parent(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
