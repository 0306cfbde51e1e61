#!/usr/bin/env python3
"""Import throughput (issue 6): `shalekv import redis://...` from a local redis-server
into a ShaleKV DB directory and into a ShaleKV server, plus the dump-file legs
(export to a file, import from it), in keys/s and MB/s.

The copy is the library path the CLI runs (shalekv.backup.transfer.run: SCAN,
pipelined TYPE + PEXPIRETIME, pipelined type-aware reads; MULTI/EXEC batches of
DEL + write + PEXPIREAT on the target). Each leg writes into a fresh target. redis-server
(Debian's, no persistence) and `shalekv server` (its defaults, data on local disk) are
started on free ports and stopped by pid.

Datasets (seeded):
    strings   --keys string keys, --value-size random bytes each
    large     --keys/10 string keys of 16 KiB (MB/s rather than keys/s)
    mixed     --keys keys: 30% strings (0-60 B), 20% lists, 20% hashes, 10% sets,
              20% sorted sets, 1-8 small elements each; 1 key in 9 with a TTL

MB/s counts key and value bytes copied (hash fields, members, 8 bytes per score), not
protocol overhead. Run from the repository root:

    python bench/import_bench.py                 # 100k keys, all datasets, all legs
    python bench/import_bench.py --keys 5000     # smoke test
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import engine_bench as eb  # noqa: E402  (machine(), the header's facts)
import redis  # noqa: E402

import shalekv  # noqa: E402
from shalekv.backup import transfer as tx  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.02)


@contextmanager
def process(args: list[str], port: int, what: str) -> Iterator[None]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, what)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def redis_server(tmp: str) -> Iterator[int]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", tmp]  # fmt: skip
    with process(args, port, "redis-server"):
        yield port


@contextmanager
def shalekv_server(data: str) -> Iterator[int]:
    port = free_port()
    args = [sys.executable, "-m", "shalekv.cli.main", "server", "--port", str(port),
            "--dir", data]  # fmt: skip
    with process(args, port, "shalekv server"):
        yield port


def load(r: redis.Redis, dataset: str, n: int, value_size: int, seed: int) -> None:
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    p = r.pipeline(transaction=False)
    if dataset == "large":
        n //= 10
    for i in range(n):
        key = b"key:%012d" % i
        if dataset == "strings":
            p.set(key, rnd.randbytes(value_size))
        elif dataset == "large":
            p.set(key, rnd.randbytes(16 << 10))
        else:
            kind = i % 10
            m = rnd.randrange(1, 9)
            if kind < 3:
                p.set(key, rnd.randbytes(rnd.randrange(0, 61)))
            elif kind < 5:
                p.rpush(key, *(rnd.randbytes(8) for _ in range(m)))
            elif kind < 7:
                p.hset(key, mapping={b"f%d" % j: rnd.randbytes(8) for j in range(m)})
            elif kind < 8:
                p.sadd(key, *(rnd.randbytes(8) for _ in range(m)))
            else:
                p.zadd(key, {rnd.randbytes(8): rnd.random() for _ in range(m)})
            if i % 9 == 0:
                p.pexpireat(key, now + 3_600_000)
        if len(p) >= (500 if dataset == "large" else 10_000):
            p.execute()
    p.execute()


def leg(name: str, fn: Callable[[], tx.Summary], rows: list[list[str]]) -> None:
    t0 = time.perf_counter()
    s = fn()
    secs = time.perf_counter() - t0
    mb = s.bytes / 1e6
    rows.append([name, str(s.keys), f"{mb:.1f}", f"{secs:.2f}", f"{s.keys / secs:,.0f}",
                 f"{mb / secs:.2f}", f"{secs * 1e6 / max(s.keys, 1):.1f}"])  # fmt: skip
    print(f"  {name}: {s.keys} keys in {secs:.2f} s", file=sys.stderr)


def run_dataset(dataset: str, args: argparse.Namespace, tmp: str, rows: list[list[str]]) -> None:
    with redis_server(tmp) as rport:
        src = redis.Redis(port=rport, protocol=2)
        load(src, dataset, args.keys, args.value_size, args.seed)
        url_client = tx.connect(f"redis://127.0.0.1:{rport}/0")

        def into_dir() -> tx.Summary:
            d = tempfile.mkdtemp(dir=tmp)
            with shalekv.open(d, active_expiry=False) as c:
                return tx.run(tx.client_source(url_client), tx.client_target(c, True))

        leg(f"{dataset}: redis -> dir", into_dir, rows)
        with shalekv_server(tempfile.mkdtemp(dir=tmp)) as sport:
            dst = tx.connect(hostport=f"127.0.0.1:{sport}")
            leg(
                f"{dataset}: redis -> server",
                lambda: tx.run(tx.client_source(url_client), tx.client_target(dst, True)),
                rows,
            )
            dst.close()
        dump = os.path.join(tmp, f"{dataset}.dump")

        def export() -> tx.Summary:
            with open(dump, "wb") as f:
                s = tx.run(tx.client_source(url_client), tx.DumpTarget(f))
            return s

        leg(f"{dataset}: redis -> dump file", export, rows)

        def from_dump() -> tx.Summary:
            tx.verify_file(dump)
            d = tempfile.mkdtemp(dir=tmp)
            with open(dump, "rb") as f, shalekv.open(d, active_expiry=False) as c:
                return tx.run(tx.DumpSource(f, dump), tx.client_target(c, True))

        leg(f"{dataset}: dump file -> dir", from_dump, rows)
        url_client.close()
        src.close()


SECTION = ("<!-- import_bench:start -->", "<!-- import_bench:end -->")
HEADING = "## Import (issue 6)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--datasets", default="strings,mixed,large")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--tmp", default=None, help="Where targets go (default: a temp dir).")
    ap.add_argument("--write-docs", action="store_true", help="also write docs/benchmarks.md")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    m = eb.machine()
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    report = [
        f"ShaleKV:    version {shalekv.__version__}",
        f"Date:       {m['date']}",
        f"CPU:        {m['nproc']} * {m['cpu']}",
        f"CPUCache:   {m['cache']}",
        f"Python:     {m['python']}, redis-py {redis.__version__}, redis-server {redis_version}",
        f"Keys:       {args.keys} per dataset; strings: {args.value_size}-byte values",
        "-" * 48,
    ]
    print("\n".join(report), flush=True)
    rows: list[list[str]] = []
    base = args.tmp or tempfile.mkdtemp(prefix="import_bench.")
    try:
        for dataset in args.datasets.split(","):
            run_dataset(dataset, args, tempfile.mkdtemp(dir=base), rows)
    finally:
        if args.tmp is None:
            shutil.rmtree(base, ignore_errors=True)
    head = ["leg", "keys", "MB", "seconds", "keys/s", "MB/s", "micros/key"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    table = [fmt.format(*head), *(fmt.format(*r) for r in rows)]
    print("\n".join(table))
    if args.write_docs:
        command = " ".join(["python bench/import_bench.py", *sys.argv[1:]])
        body = "\n".join(
            [
                HEADING,
                "",
                f"`{command}`: `shalekv import` from a local redis-server (the library path",
                "the CLI runs), into a DB directory, into a ShaleKV server, and through a",
                "dump file. Written by the script.",
                "",
                "```",
                *report,
                *table,
                "```",
            ]
        )
        eb.replace_section(args.out, SECTION, body, HEADING)


if __name__ == "__main__":
    main()
