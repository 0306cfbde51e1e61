#!/usr/bin/env python3
"""CPU per request of the server's Python path, without sockets: ShaleKV's Client and
the ceiling server's Connection (bench/ceiling_server.py) fed the same request streams
in this process, side by side in one run.

redis-benchmark numbers (bench/server_bench.sh) mix our work with socket syscalls,
the event loop and redis-benchmark's own CPU on the same two cores. Here each side
gets redis-benchmark's requests (one key, as its default) as reads of P pipelined
requests from C clients; ShaleKV runs an event-loop pass the way the real loop does
(every client's read, then `Server.flush_clients`: one WAL write, then the replies),
on fake transports that keep the bytes. The figure is process CPU time per request,
best of several rounds; the ratio is ceiling time / ShaleKV time (1.0x: as cheap as
the ceiling). Replies of the first round are compared byte for byte.

    python bench/inproc_bench.py [--tests set,get] [--pipeline 1,16] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ceiling_server as ceiling  # noqa: E402
import engine_bench as eb  # noqa: E402

from shalekv.server.app import Server  # noqa: E402
from shalekv.server.client import Client  # noqa: E402
from shalekv.server.config import ServerConfig  # noqa: E402
from tests.server.inproc import FakeLoop  # noqa: E402  (call_soon for flush_clients)

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
MARKERS = ("<!-- inproc_bench:start -->", "<!-- inproc_bench:end -->")
HEADING = "## Server CPU per request, in process (no sockets)"


def pack(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


KEY = b"key:000000000000"
ELEMENT = b"element:000000000000"
VALUE = b"xxx"  # redis-benchmark's default 3-byte payload
TESTS: dict[str, bytes] = {
    "PING": pack(b"PING"),
    "SET": pack(b"SET", KEY, VALUE),
    "GET": pack(b"GET", KEY),
    "INCR": pack(b"INCR", b"counter:000000000000"),
    "LPUSH": pack(b"LPUSH", b"mylist", VALUE),
    "RPOP": pack(b"RPOP", b"mylist"),
    "SADD": pack(b"SADD", b"myset", ELEMENT),
    "HSET": pack(b"HSET", b"myhash", ELEMENT, VALUE),
    "ZADD": pack(b"ZADD", b"myzset", b"0", ELEMENT),
    "LRANGE_100": pack(b"LRANGE", b"mylist", b"0", b"99"),
    "MSET": pack(b"MSET", *[x for _ in range(10) for x in (KEY, VALUE)]),
}
# Run once by one client before the timed rounds, on both sides: the list LRANGE reads
# (RPOP gets one long enough for every pop of the run, as redis-benchmark's RPOP test
# pops what its LPUSH test pushed).
SETUP = [pack(b"RPUSH", b"mylist", *[VALUE] * 100), pack(b"SET", KEY, VALUE)]


class Transport:
    """Keeps what is written (the first round's replies are compared)."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.keep = True

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 7379)}.get(name)

    def write(self, data: bytes) -> None:
        if self.keep:
            self.data.append(data)

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Side:
    """C connections of one server implementation; feed() is one loop pass."""

    def __init__(self, name: str, clients: int) -> None:
        self.name = name
        self.transports = [Transport() for _ in range(clients)]
        self.conns: list[Any] = []
        self.loop: FakeLoop | None = None
        self.tmp: str | None = None
        self.server: Server | None = None
        if name == "shalekv":
            self.tmp = tempfile.mkdtemp(prefix="inproc-")
            cfg = ServerConfig()
            cfg.set("dir", self.tmp, startup=True)
            self.server = Server(cfg)
            self.server.open()
            self.loop = FakeLoop()
            self.server.loop = self.loop  # type: ignore[assignment]
            for t in self.transports:
                c = Client(self.server)
                c.connection_made(t)  # type: ignore[arg-type]
                self.conns.append(c)
        else:
            ceiling.DB.clear()
            for t in self.transports:
                c = ceiling.Connection()
                c.connection_made(t)  # type: ignore[arg-type]
                self.conns.append(c)

    def feed(self, chunk: bytes) -> None:
        for c in self.conns:
            c.data_received(chunk)
        if self.loop is not None:
            self.loop.run_pass()

    def feed_one(self, chunk: bytes) -> None:
        self.conns[0].data_received(chunk)
        if self.loop is not None:
            self.loop.run_pass()

    def replies(self) -> bytes:
        out = b"".join(b"".join(t.data) for t in self.transports)
        for t in self.transports:
            t.data.clear()
            t.keep = False
        return out

    def close(self) -> None:
        if self.server is not None:
            assert self.server.store is not None
            self.server.store.engine.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def measure(side: Side, test: str, depth: int, requests: int, rounds: int) -> dict[str, Any]:
    """CPU µs per request, best of rounds; the first pass's replies."""
    passes = max(1, requests // (depth * len(side.conns)))
    setup = list(SETUP)
    if test == "RPOP":
        pops = (passes * rounds + 1) * depth * len(side.conns)
        setup += [pack(b"RPUSH", b"mylist", *[VALUE] * 1000)] * (pops // 1000 + 1)
    for req in setup:
        side.feed_one(req)
    side.replies()
    for t in side.transports:
        t.keep = True
    chunk = TESTS[test] * depth
    side.feed(chunk)
    first = side.replies()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(passes):
            side.feed(chunk)
        best = min(best, time.process_time() - t0)
    done = passes * depth * len(side.conns)
    return {"us": best / done * 1e6, "first": first}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for depth in args.pipeline:
        for test in args.tests:
            row: dict[str, Any] = {"test": test, "depth": depth}
            firsts = {}
            for name in ("shalekv", "ceiling"):
                side = Side(name, args.clients)
                try:
                    m = measure(side, test, depth, args.requests, args.rounds)
                finally:
                    side.close()
                row[name] = m["us"]
                firsts[name] = m["first"]
            row["same_replies"] = firsts["shalekv"] == firsts["ceiling"]
            row["ratio"] = row["ceiling"] / row["shalekv"]
            results.append(row)
            eb.log(
                "inproc",
                f"{test:11s} -P {depth:<3d} shalekv {row['shalekv']:6.2f} us  "
                f"ceiling {row['ceiling']:5.2f} us  {row['ratio']:.2f}x"
                + ("" if row["same_replies"] else "  (replies differ)"),
            )
    return results


def table(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    headers = ["test", "pipeline", "ShaleKV µs/req", "ceiling µs/req", "ceiling/ShaleKV"]
    rows = [
        [
            r["test"],
            f"-P {r['depth']}",
            f"{r['shalekv']:.2f}",
            f"{r['ceiling']:.2f}",
            f"{r['ratio']:.2f}x" + ("" if r["same_replies"] else " (replies differ)"),
        ]
        for r in results
    ]
    return headers, rows


def docs_block(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    headers, rows = table(results)
    prose = (
        f"redis-benchmark's requests (one key) from {args.clients} clients, P per read, "
        "fed to ShaleKV's `Client` (with a loop pass per round of reads: one WAL "
        "write, then the replies) and to the ceiling server's `Connection` in the same "
        "process on fake transports: process CPU time per request, best of "
        f"{args.rounds} rounds of {args.requests:,} requests. No sockets, no event "
        "loop, no redis-benchmark: what the Python path costs. First-round replies "
        "compared byte for byte (marked if they differ)."
    )
    return section(HEADING, "inproc_bench.py", args.argv, prose, headers, rows)


def section(
    heading: str,
    script: str,
    argv: list[str],
    prose: str,
    headers: list[str],
    rows: list[list[str]],
) -> str:
    """A docs/benchmarks.md block: heading, command, machine, what it measures, table."""
    cmd = f"python bench/{script} " + " ".join(argv)
    parts = [heading, "", f"Command: `{cmd.strip()}`  ", eb.machine_line(eb.machine()), ""]
    return "\n".join([*parts, prose, "", eb.md_table(headers, rows), ""])


def add_common_args(p: argparse.ArgumentParser, tests: list[str]) -> None:
    """The options this script shares with bench/icount_bench.py."""
    p.add_argument("--tests", default=",".join(tests))
    p.add_argument("--pipeline", default="1,16", help="requests per read, comma list")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def check_common_args(args: argparse.Namespace, argv: list[str], counts: list[str]) -> None:
    """Parse --tests/--pipeline in place; each option named in counts must be >= 1."""
    args.argv = argv
    args.tests = [t.strip().upper() for t in args.tests.split(",") if t.strip()]
    for t in args.tests:
        if t not in TESTS:
            raise SystemExit(f"unknown test {t!r}; known: {', '.join(TESTS)}")
    args.pipeline = [int(x) for x in args.pipeline.split(",")]
    if min(args.pipeline) < 1 or any(getattr(args, c) < 1 for c in counts):
        raise SystemExit(f"--{', --'.join(counts)} and --pipeline must be >= 1")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, [t for t in TESTS if t != "PING"])
    p.add_argument("--requests", type=int, default=20_000, help="per round")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    check_common_args(args, argv, ["clients", "requests", "rounds"])
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    results = run(args)
    headers, rows = table(results)
    print(eb.text_table(headers, rows, left=(0, 1)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.write_docs:
        eb.replace_section(
            Path(DOCS) / "benchmarks.md", MARKERS, docs_block(results, args), HEADING
        )
        print("docs/benchmarks.md updated")


if __name__ == "__main__":
    main()
