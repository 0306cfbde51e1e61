#!/usr/bin/env python3
"""Machine instructions per request of the server's Python path, counted by valgrind:
a figure this shared, noisy VM cannot move (timings here drift 30-60 % between runs,
instruction counts by < 1 %), so a change of a few percent can be seen at all.

The requests are those of bench/inproc_bench.py (redis-benchmark's, one key, from C
clients, P per read, a loop pass per round: one WAL write, then the replies), fed to
ShaleKV's `Client` and to the ceiling server's `Connection` on fake transports. Each
measured stretch runs inside one `functools.reduce` call, and callgrind counts only
there (`--toggle-collect`), dumping one count per stretch (`--dump-after`): startup,
imports and setup are not counted. `--compare DIR` measures another checkout (e.g. a
`git worktree` of an older commit) in the same run, as a "before" column.

    python bench/icount_bench.py [--tests set,get] [--pipeline 1,16] [--compare DIR]

Needs valgrind (Debian: `apt-get install valgrind`). Instructions are not time: a
syscall, a cache miss or a page fault costs far more than its instruction count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import engine_bench as eb  # noqa: E402

MARKERS = ("<!-- icount_bench:start -->", "<!-- icount_bench:end -->")
HEADING = "## Server instructions per request (valgrind)"
TESTS = ["PING", "SET", "GET", "INCR", "LPUSH", "RPOP", "SADD", "HSET", "ZADD", "LRANGE_100"]
TESTS += ["MSET"]


def child(root: str, spec_file: str) -> list[int]:
    """Run in valgrind: every (side, test, depth) of the spec, each measured stretch
        inside one functools.reduce call. Returns the bytes of replies of one more pass
    after each stretch (a check that the requests were served)."""
    import functools

    sys.path.insert(0, os.path.join(root, "bench"))
    sys.path.insert(0, root)
    import inproc_bench as ib

    spec = json.loads(Path(spec_file).read_text())
    clients, passes = spec["clients"], spec["passes"]
    written = []
    for side_name, test, depth in spec["runs"]:
        side = ib.Side(side_name, clients)
        try:
            setup = list(ib.SETUP)
            if test == "RPOP":
                pops = (passes + 10) * depth * clients
                setup += [ib.pack(b"RPUSH", b"mylist", *[ib.VALUE] * 1000)] * (pops // 1000 + 1)
            for req in setup:
                side.feed_one(req)
            side.replies()
            chunk = ib.TESTS[test] * depth
            for _ in range(10):  # warm: caches, first-use paths
                side.feed(chunk)
            side.replies()
            functools.reduce(lambda acc, _: side.feed(chunk), range(passes), None)
            for t in side.transports:  # one more pass, not counted, that keeps replies
                t.keep = True
            side.feed(chunk)
            written.append(len(side.replies()))
        finally:
            side.close()
    return written


def measure(root: str, runs: list[tuple[str, str, int]], args: argparse.Namespace) -> list[int]:
    """Instructions per request for each run, in order."""
    tmp = tempfile.mkdtemp(prefix="icount-")
    try:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"clients": args.clients, "passes": args.passes, "runs": runs}))
        argv = [os.path.abspath(__file__), "--child", root, str(spec)]
        totals = eb.callgrind_totals(argv, root, len(runs))
        return [
            round(t / (args.passes * args.clients * depth))
            for t, (_, _, depth) in zip(totals, runs, strict=True)
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = [
        (side, t, d) for d in args.pipeline for t in args.tests for side in ("shalekv", "ceiling")
    ]
    eb.log("icount", f"{len(runs)} measurements under callgrind (a few minutes)")
    now = dict(zip(runs, measure(ROOT, runs, args), strict=True))
    before: dict[tuple[str, str, int], int] = {}
    if args.compare:
        mine = [r for r in runs if r[0] == "shalekv"]
        eb.log("icount", f"{len(mine)} measurements of {args.compare}")
        before = dict(zip(mine, measure(os.path.abspath(args.compare), mine, args), strict=True))
    results = []
    for d in args.pipeline:
        for t in args.tests:
            row: dict[str, Any] = {
                "test": t,
                "depth": d,
                "shalekv": now[("shalekv", t, d)],
                "ceiling": now[("ceiling", t, d)],
            }
            if before:
                row["before"] = before[("shalekv", t, d)]
            results.append(row)
            eb.log("icount", f"{t:11s} -P {d:<3d} {row}")
    return results


def table(results: list[dict[str, Any]], compare: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["test", "pipeline"]
    if compare:
        headers += ["ShaleKV before", "ShaleKV now", "now/before"]
    else:
        headers += ["ShaleKV"]
    headers += ["ceiling", "ShaleKV/ceiling"]
    rows = []
    for r in results:
        row = [r["test"], f"-P {r['depth']}"]
        if compare:
            row += [f"{r['before']:,}", f"{r['shalekv']:,}", f"{r['shalekv'] / r['before']:.2f}"]
        else:
            row += [f"{r['shalekv']:,}"]
        row += [f"{r['ceiling']:,}", f"{r['shalekv'] / r['ceiling']:.1f}x"]
        rows.append(row)
    return headers, rows


def docs_block(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import inproc_bench as ib

    headers, rows = table(results, bool(args.compare))
    before = (
        f" The before column is the checkout at `{args.compare_label}`, measured in the same run."
        if args.compare
        else ""
    )
    prose = (
        "Machine instructions per request (valgrind's callgrind, counting only the "
        f"measured stretch: {args.passes} loop passes of {args.clients} clients, each "
        "sending P requests) of bench/inproc_bench.py's request streams, through "
        "ShaleKV's `Client` and the ceiling server's `Connection` on fake transports. "
        "Deterministic to < 1 %, unlike timings on this VM; not time (syscalls, cache "
        "misses and page faults cost more than their instructions)." + before
    )
    return ib.section(HEADING, "icount_bench.py", args.argv, prose, headers, rows)


def parse_args(argv: list[str]) -> argparse.Namespace:
    import inproc_bench as ib  # the request streams' module, this checkout's

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ib.add_common_args(p, TESTS)
    p.add_argument("--passes", type=int, default=20, help="loop passes measured per test")
    p.add_argument("--compare", help="another checkout to measure as 'before'")
    p.add_argument("--compare-label", help="how the docs name it (default: its git HEAD)")
    args = p.parse_args(argv)
    ib.check_common_args(args, argv, ["clients", "passes"])
    if args.compare and not args.compare_label:
        args.compare_label = eb.git_head(args.compare)
    eb.require_valgrind()
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2])
        return
    args = parse_args(argv)
    results = run(args)
    headers, rows = table(results, bool(args.compare))
    print(eb.text_table(headers, rows, left=(0, 1)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.write_docs:
        eb.replace_section(eb.DEFAULT_OUT, MARKERS, docs_block(results, args), HEADING)
        print("docs/benchmarks.md updated")


if __name__ == "__main__":
    main()
