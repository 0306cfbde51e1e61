#!/usr/bin/env python3
"""``shalekv server`` under redis-benchmark against redis-server and a pure-Python
ceiling (issue 5), each server started here on a free port and stopped by pid, one
after the other in the same run.

Servers:

- ``shalekv``: ``.venv/bin/shalekv server --port P --dir <tmp> --compaction-workers 1``
  (its defaults otherwise: appendfsync everysec).
- ``redis``: Debian's redis-server without persistence (``--save "" --appendonly no``).
- ``redis-aof``: redis-server with ``--appendonly yes --appendfsync everysec``, the
  durability ShaleKV's default gives.
- ``ceiling``: ``bench/ceiling_server.py`` (asyncio + uvloop + hiredis over dicts): what
  Python can do per request with no store at all.

For each server, four redis-benchmark runs of ``-q -n N -c 50 --csv -t SET,GET,INCR,
LPUSH,RPOP,SADD,HSET,ZADD,LRANGE_100,MSET``: ``-P 1`` and ``-P 16``, each on one key
(redis-benchmark's default) and with ``-r 1000000`` (keys drawn from a million). The
server is FLUSHALLed before each run. Throughput and the p50/p99 latencies are
redis-benchmark's own (its CSV has them: per request, from send to reply, as its client
sees it, so at -P 16 a request's latency includes the 15 queued with it).

Targets (issue 5): ShaleKV >= 0.8x redis (no persistence) at -P 1, >= 0.5x the ceiling
at -P 16, on every test.

``--big`` adds the large-dataset case: ShaleKV with ``--block-cache-size 256mb`` loaded
with ``--big-keys`` (5,000,000) keys ``key:%012d`` (redis-benchmark's key format) of
500-byte incompressible values by a pipelined loader here (every key written once;
redis-benchmark's own ``-r`` draws with replacement and its values are all 'x', which
would compress to nothing), then GET ``-r <big-keys>`` against GET ``-r 1000`` (a keyspace
that stays in cache), at -P 16 and -P 1, and the server's peak RSS (VmHWM). Target: the
big rate >= 0.5x the in-cache rate, RSS bounded.

    bench/server_bench.sh --quick                   # smoke run, small N
    bench/server_bench.sh --json /tmp/s.json --write-docs
    bench/server_bench.sh --servers '' --big --reuse /tmp/s.json --write-docs

Results go to stdout (LevelDB-style header, one table per configuration); with
``--write-docs`` also into the "## Server (redis-benchmark)" section of docs/benchmarks.md
(only the text between this script's markers is replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_bench as eb  # noqa: E402  (machine(), tables, number formats)

ROOT = eb.ROOT
VENV_PY = ROOT / ".venv" / "bin" / "python"
SHALEKV = ROOT / ".venv" / "bin" / "shalekv"
CEILING = ROOT / "bench" / "ceiling_server.py"

TESTS = ("SET", "GET", "INCR", "LPUSH", "RPOP", "SADD", "HSET", "ZADD", "LRANGE_100", "MSET")
SERVERS = ("shalekv", "redis", "redis-aof", "ceiling")
LABELS = {
    "shalekv": "ShaleKV",
    "redis": "redis",
    "redis-aof": "redis AOF",
    "ceiling": "ceiling",
}
CONFIGS = ("P1", "P1-r", "P16", "P16-r")
RANDOM_KEYS = 1_000_000
CLIENTS = 50
REDIS_TARGET = 0.8  # ShaleKV / redis (no persistence) at -P 1
CEILING_TARGET = 0.5  # ShaleKV / ceiling at -P 16
BIG_TARGET = 0.5  # big-dataset GET / in-cache GET
SMALL_KEYS = 1000

HEADING = "## Server (redis-benchmark)"
SECTION = ("<!-- server_bench:start -->", "<!-- server_bench:end -->")


def pipeline(config: str) -> int:
    return 16 if config.startswith("P16") else 1


def keyspace(config: str) -> int | None:
    return RANDOM_KEYS if config.endswith("-r") else None


def config_title(config: str) -> str:
    keys = f"-r {RANDOM_KEYS:,}" if keyspace(config) else "one key"
    return f"-P {pipeline(config)}, {keys}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(port: int, *args: bytes | str, timeout: float = 600) -> bytes:
    """Send one command, return its raw reply (enough for PING, FLUSHALL, INFO)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(parts))
        data = s.recv(1 << 16)
        if data[:1] == b"$":
            size = int(data[1 : data.index(b"\r\n")])
            want = data.index(b"\r\n") + 2 + size + 2
            while len(data) < want:
                more = s.recv(1 << 16)
                if not more:
                    break
                data += more
        return data


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS in bytes, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                out[name] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process (not its children), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def tool_version(exe: str, pattern: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    m = re.search(pattern, out)
    return m.group(1) if m else "?"


class Server:
    """One server process: started on a free port in its own session, stopped by pid."""

    def __init__(self, kind: str, workdir: str, extra: Sequence[str] = (), name: str = "") -> None:
        self.kind = kind
        name = name or kind
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        p = str(self.port)
        redis = shutil.which("redis-server") or "redis-server"
        if kind == "shalekv":
            argv = [str(SHALEKV), "server", "--port", p, "--dir", self.dir]
            argv += ["--compaction-workers", "1", *extra]
        elif kind == "redis":
            argv = [redis, "--port", p, "--bind", "127.0.0.1", "--dir", self.dir]
            argv += ["--save", "", "--appendonly", "no"]
        elif kind == "redis-aof":
            argv = [redis, "--port", p, "--bind", "127.0.0.1", "--dir", self.dir]
            argv += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        elif kind == "ceiling":
            py = str(VENV_PY) if VENV_PY.exists() else sys.executable
            argv = [py, str(CEILING), "--port", p]
        else:
            raise ValueError(kind)
        self.argv = argv
        self.logfile = open(os.path.join(workdir, f"{name}.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, stdout=self.logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if command(self.port, "PING", timeout=5).startswith(b"+PONG"):
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.logfile.name, "rb") as f:
                    tail = f.read()[-300:].decode(errors="replace").strip().splitlines()
                last = tail[-1] if tail else "no output"
                raise RuntimeError(f"{kind} did not start: {shlex.join(argv)}: {last}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL to the pid's own group after 60 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                log(f"{self.kind} pid {self.pid} ignored SIGTERM; killing its group")
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.logfile.close()


def server_version(kind: str) -> str:
    if kind == "shalekv":
        return f"ShaleKV {eb.shalekv_version()}"
    if kind.startswith("redis"):
        return "redis-server " + tool_version(shutil.which("redis-server") or "", r"v=(\S+)")
    return (
        f"Python {eb.machine()['python']}, uvloop {eb._dist_version('uvloop')}, "
        f"hiredis {eb._dist_version('hiredis')}"
    )


# --------------------------------------------------------------------------- benchmark


@dataclass
class Result:
    rps: float
    p50: float | None  # ms
    p99: float | None


def csv_name(name: str) -> str | None:
    """redis-benchmark's CSV test name -> ours; None for its helper runs (the LPUSH it
    does before LRANGE)."""
    if name in TESTS:
        return name
    if name.startswith("LRANGE_100 ("):
        return "LRANGE_100"
    if name.startswith("MSET ("):
        return "MSET"
    return None


def _num(row: dict[str, str], key: str) -> float | None:
    v = row.get(key)
    return float(v) if v else None


def parse_csv(text: str) -> tuple[dict[str, Result], list[str]]:
    """(results by test, other lines: redis-benchmark's error and warning output)."""
    results: dict[str, Result] = {}
    other: list[str] = []
    head: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith('"'):
            if line.strip():
                other.append(line.strip())
            continue
        cells = [c.strip('"') for c in line.split('","')]
        if cells[0] == "test":
            head = cells
            continue
        row = dict(zip(head or ["test", "rps"], cells, strict=False))
        name = csv_name(row["test"])
        if name is None:
            continue
        results[name] = Result(
            float(row["rps"]), _num(row, "p50_latency_ms"), _num(row, "p99_latency_ms")
        )
    return results, other


def redis_benchmark(
    port: int,
    n: int,
    p: int,
    r: int | None,
    tests: Sequence[str],
    timeout: float,
    extra: Sequence[str] = (),
) -> tuple[dict[str, Result], list[str], float]:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q", "--csv"]
    argv += ["-n", str(n), "-c", str(CLIENTS), "-P", str(p), "-t", ",".join(tests)]
    if r:
        argv += ["-r", str(r)]
    argv += list(extra)
    start = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        results, other = parse_csv(out)
        return results, [*other, f"redis-benchmark timed out after {timeout:.0f} s"], timeout
    results, other = parse_csv(done.stdout)
    other += [x.strip() for x in done.stderr.splitlines() if x.strip()]
    if done.returncode:
        other.append(f"redis-benchmark exited with {done.returncode}")
    return results, other, time.monotonic() - start


def interesting(lines: Sequence[str]) -> list[str]:
    """redis-benchmark's stray lines worth keeping: errors, not its progress chatter."""
    seen: list[str] = []
    for line in lines:
        text = line.split("\r")[-1].strip()
        if text and text not in seen and ("rror" in text or "timed out" in text or "exit" in text):
            seen.append(text)
    return seen[:5]


def run_server(kind: str, args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    run: dict[str, Any] = {
        "kind": kind,
        "version": server_version(kind),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "configs": {},
        "errors": {},
    }
    t0 = time.monotonic()
    try:
        server = Server(kind, workdir)
    except RuntimeError as e:
        run["status"] = str(e)
        log(str(e))
        return run
    run["argv"] = shlex.join(server.argv)
    try:
        for config in args.configs:
            reply = command(server.port, "FLUSHALL")
            if not reply.startswith(b"+OK"):
                run["errors"][config] = [f"FLUSHALL: {reply[:80]!r}"]
            log(f"{kind}: redis-benchmark {config_title(config)}, N={args.n}")
            results, other, secs = redis_benchmark(
                server.port, args.n, pipeline(config), keyspace(config), args.tests, args.timeout
            )
            run["configs"][config] = {t: vars(r) for t, r in results.items()}
            errs = interesting(other)
            if errs:
                run["errors"][config] = run["errors"].get(config, []) + errs
                log(f"{kind} {config}: {errs}")
            if server.proc.poll() is not None:
                run["status"] = f"exited with {server.proc.returncode} during {config}"
                break
        run.update(proc_status(server.pid))
        run["cpu_s"] = cpu_seconds(server.pid)
        run.setdefault("status", "ok")
    finally:
        server.stop()
        run["seconds"] = time.monotonic() - t0
    return run


# --------------------------------------------------------------------------- big dataset

VALUE_SIZE = 500
LOAD_BATCH = 1000
LOAD_CONNECTIONS = 4


def big_key(i: int) -> bytes:
    return b"key:%012d" % i  # redis-benchmark's __rand_int__ key for GET -r


def load(port: int, count: int) -> float:
    """SET key:0..count-1 once each, 500-byte incompressible values, pipelined over a few
    connections; returns the seconds taken."""
    pool = random.Random(5).randbytes(1 << 20)
    span = len(pool) - VALUE_SIZE
    head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
    mid = b"\r\n$%d\r\n" % VALUE_SIZE
    failures: list[str] = []

    def worker(lo: int, hi: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
                pending = 0
                buf = b""
                for start in range(lo, hi, LOAD_BATCH):
                    stop = min(hi, start + LOAD_BATCH)
                    cmds = []
                    for i in range(start, stop):
                        off = (i * 7919) % span
                        cmds += [head, big_key(i), mid, pool[off : off + VALUE_SIZE], b"\r\n"]
                    s.sendall(b"".join(cmds))
                    pending += (stop - start) * 5  # each reply is +OK\r\n
                    # keep at most one batch in flight beyond the one just sent
                    while pending > LOAD_BATCH * 5:
                        chunk = s.recv(1 << 16)
                        if not chunk:
                            raise ConnectionError("server closed the connection")
                        buf = (buf + chunk)[-64:]
                        pending -= len(chunk)
                        if b"-" in chunk:
                            raise RuntimeError(f"error reply while loading: {chunk[:200]!r}")
                while pending > 0:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        raise ConnectionError("server closed the connection")
                    pending -= len(chunk)
        except Exception as e:  # reported, the run goes on
            failures.append(f"{type(e).__name__}: {e}")

    t0 = time.monotonic()
    step = -(-count // LOAD_CONNECTIONS)
    threads = [
        threading.Thread(target=worker, args=(lo, min(count, lo + step)))
        for lo in range(0, count, step)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError("; ".join(failures))
    return time.monotonic() - t0


def sample_found(port: int, count: int, sample: int = 1000) -> str:
    """GET a seeded sample of the loaded keys in one pipeline: 'found/asked', checking
    that the keys GET -r reads exist (so the big rate is not the rate of misses)."""
    try:
        import hiredis
    except ImportError:
        return "?"
    rnd = random.Random(7)
    keys = [big_key(rnd.randrange(count)) for _ in range(sample)]
    req = b"".join(b"*2\r\n$3\r\nGET\r\n$16\r\n%s\r\n" % k for k in keys)
    reader = hiredis.Reader()
    found = got = 0
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.sendall(req)
        while got < sample:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            reader.feed(chunk)
            while (r := reader.gets()) is not False:
                got += 1
                found += isinstance(r, bytes) and len(r) == VALUE_SIZE
    return f"{found}/{sample}"


def info_fields(port: int, section: str) -> dict[str, str]:
    """The `name:value` fields of one INFO section."""
    text = command(port, "INFO", section).decode(errors="replace")
    return dict(re.findall(r"^(\w+):(.*?)\r?$", text, re.MULTILINE))


def info_field(port: int, section: str, name: str) -> str | None:
    """A field of INFO, None if the server has no INFO or no such field."""
    return info_fields(port, section).get(name)


def engine_counters(port: int) -> tuple[int, int]:
    """(pending compaction bytes, flushes + compactions so far) from INFO engine."""
    fields = info_fields(port, "engine")
    return int(fields.get("pending_compaction_bytes", 0)), int(fields.get("flushes", 0)) + int(
        fields.get("compactions", 0)
    )


def settle(port: int, limit: float, quiet: float = 10.0) -> dict[str, Any]:
    """Wait (at most limit seconds) until the engine owes no compaction: no pending
    compaction bytes and no flush or compaction finished for `quiet` seconds. The load
    leaves a backlog whose compaction takes the second core for minutes; serving a
    dataset is measured once that is done (and once right after the load, for scale)."""
    t0 = time.monotonic()
    first_pending = engine_counters(port)[0]
    last = None
    since = t0
    while True:
        pending, done = engine_counters(port)
        now = time.monotonic()
        if done != last or pending:
            last, since = done, now
        elif now - since >= quiet:
            return {"seconds": now - t0, "settled": True, "pending_at_start": first_pending}
        if now - t0 >= limit:
            return {"seconds": now - t0, "settled": False, "pending_at_start": first_pending}
        time.sleep(1.0)


def run_big(args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    big: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "keys": args.big_keys,
        "cache": args.big_cache,
        "n": args.big_n,
        "errors": [],
        "rates": {},
    }
    t0 = time.monotonic()
    server = Server("shalekv", workdir, ["--block-cache-size", args.big_cache], "shalekv-big")
    big["argv"] = shlex.join(server.argv)
    try:
        log(f"big: loading {args.big_keys:,} keys of {VALUE_SIZE} bytes")
        big["load_s"] = load(server.port, args.big_keys)
        big["load_rss"] = proc_status(server.pid)
        log(f"big: loaded in {big['load_s']:.0f} s")
        big["dbsize"] = command(server.port, "DBSIZE").decode().strip().lstrip(":")
        big["sample"] = sample_found(server.port, args.big_keys)
        log("big: GET right after the load, compaction still at work")
        res, other, _ = redis_benchmark(
            server.port, args.big_n, 16, args.big_keys, ["GET"], args.timeout
        )
        if res.get("GET"):
            big["rates"]["loaded-P16"] = vars(res["GET"])
        big["errors"] += interesting(other)
        log(f"big: waiting up to {args.big_settle:.0f} s for compaction to settle")
        big["settle"] = settle(server.port, args.big_settle)
        log(f"big: settle {big['settle']}")
        for p in (16, 1):
            for label, r in (("big", args.big_keys), ("small", SMALL_KEYS)):
                hits0 = info_field(server.port, "stats", "keyspace_hits")
                log(f"big: GET -r {r} -P {p}")
                res, other, secs = redis_benchmark(
                    server.port, args.big_n, p, r, ["GET"], args.timeout
                )
                hits1 = info_field(server.port, "stats", "keyspace_hits")
                g = res.get("GET")
                big["rates"][f"{label}-P{p}"] = {
                    **(vars(g) if g else {}),
                    "hits": int(hits1) - int(hits0) if hits0 and hits1 else None,
                }
                big["errors"] += interesting(other)
        big.update(proc_status(server.pid))
        big["disk"] = eb.disk_bytes(server.dir)
    finally:
        server.stop()
        big["seconds"] = time.monotonic() - t0
    log(f"big: took {big['seconds']:.0f} s")
    return big


# --------------------------------------------------------------------------- report


def fmt_ms(x: float | None) -> str:
    return "?" if x is None else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def rate(runs: dict[str, Any], kind: str, config: str, test: str) -> float | None:
    r = runs.get(kind, {}).get("configs", {}).get(config, {}).get(test)
    return r["rps"] if r else None


def ratio_cell(a: float | None, b: float | None, target: float) -> tuple[str, bool | None]:
    if not a or not b:
        return "n/a", None
    x = a / b
    return f"{x:.2f} {'✓' if x >= target else '✗'}", x >= target


def target_of(config: str) -> tuple[str, str, float]:
    """(peer, column title, target) the config's ratio is taken against."""
    if pipeline(config) == 1:
        return "redis", "ShaleKV/redis (≥0.8)", REDIS_TARGET
    return "ceiling", "ShaleKV/ceiling (≥0.5)", CEILING_TARGET


def rows_for(
    runs: dict[str, Any], config: str, kinds: Sequence[str], tests: Sequence[str]
) -> tuple[list[str], list[list[str]], list[bool | None]]:
    peer, title, target = target_of(config)
    headers = ["test", *(LABELS[k] for k in kinds), title]
    rows, verdicts = [], []
    for t in tests:
        cells = [t]
        for k in kinds:
            v = rate(runs, k, config, t)
            cells.append(eb.fmt_count(v) if v else "n/a")
        cell, ok = ratio_cell(rate(runs, "shalekv", config, t), rate(runs, peer, config, t), target)
        rows.append([*cells, cell])
        verdicts.append(ok)
    return headers, rows, verdicts


def latency_rows(
    runs: dict[str, Any], config: str, kinds: Sequence[str], tests: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    headers = ["test", *(f"{LABELS[k]} p50/p99" for k in kinds)]
    rows = []
    for t in tests:
        cells = [t]
        for k in kinds:
            r = runs.get(k, {}).get("configs", {}).get(config, {}).get(t)
            cells.append(f"{fmt_ms(r['p50'])} / {fmt_ms(r['p99'])}" if r else "n/a")
        rows.append(cells)
    return headers, rows


def verdict_text(runs: dict[str, Any], configs: Sequence[str], tests: Sequence[str]) -> str:
    parts = []
    for label, cfgs in (("-P 1 vs redis", ("P1", "P1-r")), ("-P 16 vs ceiling", ("P16", "P16-r"))):
        vs = []
        for c in cfgs:
            if c in configs:
                vs += [v for v in rows_for(runs, c, ("shalekv",), tests)[2] if v is not None]
        if vs:
            parts.append(f"{label}: {sum(vs)}/{len(vs)} tests meet the target")
    return "; ".join(parts)


def big_rows(big: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["pipeline", f"GET -r {big['keys']:,}", f"GET -r {SMALL_KEYS:,} (in cache)"]
    headers += ["ratio (≥0.5)", "p50/p99 big (ms)", "p50/p99 in cache (ms)"]
    rows = []
    for p in (16, 1):
        b = big["rates"].get(f"big-P{p}", {})
        s = big["rates"].get(f"small-P{p}", {})
        cell, _ = ratio_cell(b.get("rps"), s.get("rps"), BIG_TARGET)
        rows.append(
            [
                f"-P {p}",
                eb.fmt_count(b["rps"]) if b.get("rps") else "n/a",
                eb.fmt_count(s["rps"]) if s.get("rps") else "n/a",
                cell,
                f"{fmt_ms(b.get('p50'))} / {fmt_ms(b.get('p99'))}",
                f"{fmt_ms(s.get('p50'))} / {fmt_ms(s.get('p99'))}",
            ]
        )
    return headers, rows


def big_facts(big: dict[str, Any]) -> list[str]:
    out = [
        f"Started {big['started']}, took {big.get('seconds', 0):.0f} s in all; "
        f"loading {big['keys']:,} keys took {big.get('load_s', 0):.0f} s "
        f"({big['keys'] / big['load_s']:,.0f} SET/s over {LOAD_CONNECTIONS} pipelined "
        f"connections); DBSIZE after loading: {big.get('dbsize', '?')}; a seeded sample of "
        f"GETs found {big.get('sample', '?')} keys with their {VALUE_SIZE} bytes."
        if big.get("load_s")
        else f"Started {big['started']}; the load did not finish.",
    ]
    if "VmHWM" in big:
        load_rss = big.get("load_rss", {}).get("VmHWM")
        out.append(
            f"Server peak RSS (VmHWM): {eb.fmt_bytes(big['VmHWM'])}"
            + (f" ({eb.fmt_bytes(load_rss)} at the end of the load)" if load_rss else "")
            + f"; RSS at the end {eb.fmt_bytes(big.get('VmRSS', 0))}; "
            f"{eb.fmt_bytes(big.get('disk', 0))} on disk."
        )
    st = big.get("settle")
    loaded = big["rates"].get("loaded-P16", {}).get("rps")
    if st:
        out.append(
            f"The GETs above ran once the load's compaction had settled: "
            f"{st['pending_at_start'] / 2**20:,.0f} MiB of compaction pending after the load, "
            + (
                f"none left {st['seconds']:.0f} s later."
                if st["settled"]
                else f"NOT settled within {st['seconds']:.0f} s (measured anyway)."
            )
            + (
                f" Right after the load, compaction still at work on the second core: "
                f"GET -r {big['keys']:,} -P 16 {eb.fmt_count(loaded)} req/s."
                if loaded
                else ""
            )
        )
    hits = [
        f"{k}: {v['hits']:,}/{big['n']:,}"
        for k, v in big["rates"].items()
        if v.get("hits") is not None
    ]
    if hits:
        out.append("keyspace_hits during each GET run (all should hit): " + ", ".join(hits) + ".")
    if big.get("errors"):
        out.append("Errors: " + "; ".join(big["errors"]) + ".")
    return out


def server_facts(runs: dict[str, Any], kinds: Sequence[str]) -> list[list[str]]:
    rows = []
    for k in kinds:
        r = runs.get(k)
        if not r:
            continue
        cpu = r.get("cpu_s")
        rows.append(
            [
                LABELS[k],
                r.get("version", "?"),
                r.get("started", "?"),
                f"{r.get('seconds', 0):.0f} s",
                f"{cpu:.0f} s" if cpu is not None else "?",
                eb.fmt_bytes(r["VmHWM"]) if r.get("VmHWM") else "?",
                r.get("status", "?"),
            ]
        )
    return rows


FACT_HEADERS = ["server", "version", "started", "wall", "server CPU", "peak RSS", "status"]


def header(m: dict[str, str], args: argparse.Namespace) -> str:
    bench = tool_version("redis-benchmark", r"redis-benchmark (\S+)")
    lines = [
        f"ShaleKV:    version {eb.shalekv_version()}",
        f"Date:       {m['date']}",
        f"CPU:        {m['nproc']} * {m['cpu']}",
        f"CPUCache:   {m['cache']}",
        f"Python:     {m['python']}",
        f"Benchmark:  redis-benchmark {bench}, -n {args.n} -c {CLIENTS}, values 3 bytes",
        f"Tests:      {','.join(args.tests)}",
        "-" * 48,
    ]
    return "\n".join(lines)


def kinds_of(runs: dict[str, Any]) -> list[str]:
    return [k for k in SERVERS if k in runs]


def text_report(data: dict[str, Any], args: argparse.Namespace) -> str:
    runs = data["runs"]
    kinds = kinds_of(runs)
    out = []
    if kinds:
        out += [eb.text_table(FACT_HEADERS, server_facts(runs, kinds), left=(0, 1, 2, 6)), ""]
    for config in CONFIGS:
        if not any(config in runs[k]["configs"] for k in kinds):
            continue
        out.append(f"redis-benchmark -P {pipeline(config)} ({config_title(config)}): req/s")
        headers, rows, _ = rows_for(runs, config, kinds, TESTS)
        out += [eb.text_table(headers, rows), ""]
        out.append("latency p50 / p99, ms")
        out += [eb.text_table(*latency_rows(runs, config, kinds, TESTS)), ""]
        for k in kinds:
            for e in runs[k].get("errors", {}).get(config, []):
                out.append(f"  {LABELS[k]}: {e}")
    v = verdict_text(runs, CONFIGS, TESTS)
    if v:
        out += [v, ""]
    if data.get("big"):
        out.append(f"Large dataset (ShaleKV, block cache {data['big']['cache']})")
        out += [eb.text_table(*big_rows(data["big"])), *big_facts(data["big"]), ""]
    return "\n".join(out)


def markdown(data: dict[str, Any]) -> str:
    runs = data["runs"]
    kinds = kinds_of(runs)
    meta = data["meta"]
    parts = [
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}. Machine: {meta['nproc']} × {meta['cpu']} "
        f"({meta['cache']} cache), Python {meta['python']}; redis-benchmark "
        f"{meta['redis_benchmark']}.",
        "",
        f"`redis-benchmark -q --csv -n {meta['n']:,} -c {CLIENTS} -P <1|16> [-r "
        f"{RANDOM_KEYS}] -t {','.join(TESTS).lower()}` against each server in turn, each "
        "started by the script on a free port (ShaleKV: `--compaction-workers 1`, its "
        'defaults otherwise, so appendfsync everysec; redis: `--save "" --appendonly no`; '
        "redis AOF: `--appendonly yes --appendfsync everysec`; ceiling: "
        "`bench/ceiling_server.py`, asyncio + uvloop + hiredis over plain dicts) and "
        "FLUSHALLed before each configuration. redis-benchmark runs on the same 2 cores. "
        "Cells are requests/s as redis-benchmark reports them; latencies are its p50/p99 "
        "per request (send to reply, so at -P 16 they include the other 15 requests of "
        "the pipeline).",
        "",
    ]
    if kinds:
        parts += [eb.md_table(FACT_HEADERS, server_facts(runs, kinds)), ""]
        parts += [
            "Server CPU is the server process's own user+system time over its whole run "
            "(ShaleKV's compaction worker not included).",
            "",
        ]
    for config in CONFIGS:
        if not any(config in runs[k]["configs"] for k in kinds):
            continue
        parts += [f"### {config_title(config)}", ""]
        headers, rows, _ = rows_for(runs, config, kinds, TESTS)
        parts += [eb.md_table(headers, rows), ""]
        parts += [
            "Latency p50 / p99 (ms):",
            "",
            eb.md_table(*latency_rows(runs, config, kinds, TESTS)),
            "",
        ]
        errs = [
            f"{LABELS[k]}: {e}" for k in kinds for e in runs[k].get("errors", {}).get(config, [])
        ]
        if errs:
            parts += ["Errors reported by redis-benchmark: " + "; ".join(errs) + ".", ""]
    v = verdict_text(runs, CONFIGS, TESTS)
    if v:
        parts += [f"**Targets: {v}.**", ""]
    big = data.get("big")
    if big:
        parts += [
            f"### Large dataset: {big['keys']:,} keys of {VALUE_SIZE} bytes, "
            f"block cache {big['cache']}",
            "",
            f"`{big.get('argv', '')}`, loaded by the script's own pipelined loader "
            "(each key `key:%012d` written once, incompressible values), then "
            f"`redis-benchmark -n {big['n']:,} -c {CLIENTS} -t get -r <keys>` on the "
            f"whole keyspace and on its first {SMALL_KEYS:,} keys (which stay cached).",
            "",
            eb.md_table(*big_rows(big)),
            "",
            *big_facts(big),
            "",
        ]
    else:
        parts += ["The large-dataset case (`--big`) was not run.", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- main


def parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("-n", "--n", type=int, default=100_000, help="requests per test")
    p.add_argument("--quick", action="store_true", help="smoke run: -n 5000, big 20k keys")
    p.add_argument("--servers", default=",".join(SERVERS), help="comma list; '' for none")
    p.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma list of " + ", ".join(CONFIGS)
    )
    p.add_argument("--tests", default=",".join(TESTS))
    p.add_argument("--timeout", type=float, default=1800, help="per redis-benchmark run, s")
    p.add_argument("--big", action="store_true", help="also the large-dataset case (long)")
    p.add_argument("--big-keys", type=int, default=5_000_000)
    p.add_argument("--big-cache", default="256mb")
    p.add_argument("--big-n", type=int, default=200_000, help="GETs per big-case run")
    p.add_argument(
        "--big-settle",
        type=float,
        default=900,
        help="seconds to wait at most for the load's compaction before the big GETs",
    )
    p.add_argument("--json", help="write the results here")
    p.add_argument("--reuse", help="start from this --json file; parts run now replace its")
    p.add_argument("--write-docs", action="store_true")
    p.add_argument("--out", default=str(eb.DEFAULT_OUT))
    p.add_argument("--workdir", help="keep server dirs and logs here (default: a temp dir)")
    args = p.parse_args(argv)
    args.servers = parse_list(args.servers, SERVERS, "server")
    args.configs = parse_list(args.configs, CONFIGS, "config")
    args.tests = parse_list(args.tests.upper(), TESTS, "test")
    if args.quick:
        args.n = min(args.n, 5000)
        args.big_keys = min(args.big_keys, 20_000)
        args.big_n = min(args.big_n, 5000)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("redis-benchmark"):
        raise SystemExit("redis-benchmark is not installed (apt-get install redis-tools)")
    m = eb.machine()
    m["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(header(m, args), flush=True)
    data: dict[str, Any] = {"runs": {}, "big": None}
    if args.reuse:
        data = json.loads(Path(args.reuse).read_text())
    data["meta"] = {
        **m,
        "n": args.n if args.servers or not data.get("meta") else data["meta"]["n"],
        "command": shlex.join(["bench/server_bench.sh", *(argv or sys.argv[1:])]),
        "redis_benchmark": tool_version("redis-benchmark", r"redis-benchmark (\S+)"),
    }
    if args.reuse and not args.servers:  # the table is the earlier run's: keep its facts
        old = json.loads(Path(args.reuse).read_text())["meta"]
        data["meta"].update(date=old["date"], command=old["command"])
    workdir = args.workdir or tempfile.mkdtemp(prefix="server_bench.")
    t0 = time.monotonic()
    try:
        for kind in args.servers:
            data["runs"][kind] = run_server(kind, args, workdir)
        if args.big:
            data["big"] = run_big(args, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(text_report(data, args))
    print(f"Total: {time.monotonic() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
    if args.write_docs:
        eb.replace_section(Path(args.out), SECTION, markdown(data), HEADING)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
