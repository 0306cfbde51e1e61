#!/usr/bin/env python3
"""Machine instructions per embedded call (`shalekv.open` + redis-py's methods),
counted by valgrind's callgrind on a fixed store: the deterministic measure of a code
change to the embedded path (docs/decisions.md D19). This VM's timings drift by 30-60 %
within minutes; these counts repeat to < 1 % (hash seed fixed).

The store is built once, by the current checkout, without valgrind: a 200,000-member
sorted set (members in random order, 500 per ZADD), 100 lists of 100 elements, 20,000
strings, 100 hashes and 100 sets of 100 fields or members, flushed with compaction held
back (so several L0 files overlap, as after a fill). Each checkout measured (this one,
and `--compare DIR`, e.g. a `git worktree` of an older commit) opens a copy of it under
callgrind, makes 2 x --calls warm-up calls per workload, then --calls calls inside one
`functools.reduce`, which is all callgrind counts (`--toggle-collect`). Workloads run
in order on one store (ZADD and SADD add new members, RPOP pops). The store is built
anew by every run and its files (where flushes cut) differ a little between builds:
compare checkouts within one run (--compare), not counts across runs (~10 % apart on
the sorted-set reads).

    python bench/icount_embedded.py [--workloads GET,ZRANK] [--compare DIR] [--memtable N] [--write-docs]

Needs valgrind (Debian: `apt-get install valgrind`) and an interpreter with symbols
(callgrind finds `functools_reduce` by name: a python3 built from source, such as
pyenv's, has them; Debian's stripped /usr/bin/python3 does not). Instructions are
not time: a syscall, a cache miss or a page fault costs more than its count.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import engine_bench as eb  # noqa: E402

MARKERS = ("<!-- icount_embedded:start -->", "<!-- icount_embedded:end -->")
HEADING = "## Embedded instructions per call (valgrind)"
HOLD = {  # no compaction: every checkout meets the same files
    "l0_compaction_trigger": 1000,
    "l0_slowdown_trigger": 1000,
    "l0_stop_trigger": 1000,
    "seek_compaction_bytes": 0,
}
ZSET = 200_000
WORKLOADS = ["PING", "GET", "HGET", "SADD", "RPOP", "ZADD", "ZRANGEBYSCORE", "ZRANK"]


def calls_for(name: str, n: int) -> tuple[str, list[tuple[Any, ...]]]:
    """(redis-py method, argument tuples) of a workload: 3 x n calls, seeded."""
    rng = random.Random(name)
    k = 3 * n
    if name == "PING":
        return "ping", [() for _ in range(k)]
    if name == "GET":
        return "get", [(f"s{rng.randrange(20_000)}",) for _ in range(k)]
    if name == "HGET":
        return "hget", [(f"h{rng.randrange(100)}", f"f{rng.randrange(100)}") for _ in range(k)]
    if name == "SADD":
        return "sadd", [(f"set{rng.randrange(100)}", f"x{i}") for i in range(k)]
    if name == "RPOP":  # 100 lists of 100: at most 12 pops each for n = 400
        return "rpop", [(f"l{i % 100}",) for i in range(k)]
    if name == "ZADD":
        return "zadd", [("z", {b"n%015d" % i: float(i)}) for i in range(k)]  # as types_bench
    if name == "ZRANGEBYSCORE":
        return "zrangebyscore", [("z", rng.randrange(ZSET - 10), "+inf", 0, 10) for _ in range(k)]
    if name == "ZRANK":
        return "zrank", [("z", b"m%015d" % rng.randrange(ZSET)) for _ in range(k)]
    raise SystemExit(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")


def fill(path: str) -> None:
    import shalekv

    db = shalekv.open(path, **HOLD)
    try:
        rng = random.Random(1)
        perm = list(range(ZSET))
        rng.shuffle(perm)
        for i in range(0, ZSET, 500):
            db.zadd("z", {b"m%015d" % j: j for j in perm[i : i + 500]})
        for i in range(100):
            db.rpush(f"l{i}", *[b"v" * 100] * 100)
            db.hset(f"h{i}", mapping={f"f{j}": b"y" * 100 for j in range(100)})
            db.sadd(f"set{i}", *[f"m{j}" for j in range(100)])
        for i in range(20_000):
            db.set(f"s{i}", b"x" * 100)
        db.engine.flush()
    finally:
        db.close()


def child(path: str, workloads: list[str], n: int, memtable: int = 0) -> None:
    """Under callgrind: one counted functools.reduce per workload. memtable: first
    that many single-member ZADDs (uncounted) between the set's members, so that the
    sorted-set reads merge a memtable with the tables, as in types_bench after its fill."""
    import shalekv

    db = shalekv.open(path, active_expiry=False, **HOLD)
    try:
        for i in range(memtable):
            db.zadd("z", {b"t%015d" % i: i * ZSET / memtable + 0.5})
        for name in workloads:
            method, calls = calls_for(name, n)
            fn: Callable[..., Any] = getattr(db, method)
            for a in calls[: 2 * n]:
                fn(*a)
            # A full collection walks the whole heap (~10-15 M instructions here); when
            # one falls inside the counted calls depends on every allocation before
            # it, so a change that allocates less could count one more. Collected and
            # frozen first, the heap before the calls is never walked again: what is
            # counted is the calls' own allocation and collection work.
            gc.collect()
            gc.freeze()
            functools.reduce(lambda _, a: fn(*a), calls[2 * n :], None)
    finally:
        db.close()


def measure(root: str, store: str, workloads: list[str], n: int, memtable: int) -> list[float]:
    tmp = tempfile.mkdtemp(prefix="icount-embedded-")
    try:
        path = os.path.join(tmp, "db")
        shutil.copytree(store, path)
        argv = [os.path.abspath(__file__), "--child", path, ",".join(workloads), str(n)]
        argv.append(str(memtable))
        totals = eb.callgrind_totals(argv, root, len(workloads), PYTHONHASHSEED="0")
        return [t / n for t in totals]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--calls", type=int, default=400, help="calls counted per workload")
    p.add_argument(
        "--memtable",
        type=int,
        default=0,
        help="single-member ZADDs made (uncounted) before the workloads, left in the "
        "memtable (types_bench's reads meet ~150 k entries there); ~+3 s each 1,000",
    )
    p.add_argument("--compare", help="another checkout, measured as 'before'")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args(argv)
    args.argv = argv
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    for w in args.workloads:
        calls_for(w, 1)  # unknown names exit here
    if not 1 <= args.calls <= 400:  # RPOP: 100 lists of 100 elements
        raise SystemExit("--calls must be 1..400")
    eb.require_valgrind()
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2].split(","), int(argv[3]), int(argv[4]))
        return
    args = parse_args(argv)
    store_dir = tempfile.mkdtemp(prefix="icount-embedded-store-")
    try:
        eb.log("icount", "building the store (no valgrind)")
        sys.path.insert(0, ROOT)
        fill(os.path.join(store_dir, "db"))
        eb.log("icount", f"{len(args.workloads)} workloads under callgrind (a few minutes)")
        now = measure(
            ROOT, os.path.join(store_dir, "db"), args.workloads, args.calls, args.memtable
        )
        before = None
        if args.compare:
            root = os.path.abspath(args.compare)
            before = measure(
                root, os.path.join(store_dir, "db"), args.workloads, args.calls, args.memtable
            )
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    headers = ["workload", "instructions/call"]
    if before:
        headers += ["before", "change"]
    rows = []
    for i, w in enumerate(args.workloads):
        row = [w, f"{now[i]:,.0f}"]
        if before:
            row += [f"{before[i]:,.0f}", f"{(now[i] - before[i]) / before[i]:+.1%}"]
        rows.append(row)
    print(eb.text_table(headers, rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workloads": args.workloads, "now": now, "before": before}, f)
    if args.write_docs:
        import inproc_bench as ib

        prose = (
            f"Machine instructions per embedded call (valgrind's callgrind, {args.calls} "
            "calls per workload counted after warm-up, on one store built once: a "
            f"{ZSET:,}-member sorted set and small lists, hashes, sets and strings, "
            "flushed with compaction held back, so several L0 files overlap as after a "
            "fill). Deterministic to < 1 %; not time."
        )
        if args.compare:
            prose += f" The before column: the checkout at `{eb.git_head(args.compare)}`, same run."
        block = ib.section(HEADING, "icount_embedded.py", args.argv, prose, headers, rows)
        eb.replace_section(eb.DEFAULT_OUT, MARKERS, block, HEADING)
        print("docs/benchmarks.md updated")


if __name__ == "__main__":
    main()
