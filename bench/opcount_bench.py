#!/usr/bin/env python3
"""Python bytecodes per call of the embedded data-type workloads (issue 4), counted
with `sys.settrace` opcode events: repeatable within ~3 % (the flush worker's timing
decides when a table replaces the memtable) where this shared VM's timings drift by
30-60 % between runs, so a change of 5 % or more to the embedded path can be seen.

The workloads, their argument streams and their fills are bench/types_bench.py's, at a
smaller size (default 200,000 elements). For each workload the store is filled, the
memtable flushed (the reads then go to tables, as in the full run), `--warmup` calls
run, and the next `--calls` calls are counted. Background compaction is held back
(L0 triggers raised, seek compaction off) so that no compaction changes the tables
between the checkouts compared: the reads meet the L0 files the fills left, the
full run's transient after a fill. `--compare DIR` measures another checkout (a
`git worktree` of an older commit) in the same run.

    python bench/opcount_bench.py [--workloads RPOP,ZRANK] [--compare DIR] [--top 8]

Bytecodes are not time (a C call inside one bytecode may cost more than a hundred
others), but the embedded path is Python-bound: its wall-clock time follows them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import engine_bench as eb  # noqa: E402
import types_bench as tb  # noqa: E402

MARKERS = ("<!-- opcount_bench:start -->", "<!-- opcount_bench:end -->")
HEADING = "## Embedded bytecodes per call (sys.settrace)"
HOLD_COMPACTION = {
    "l0_compaction_trigger": 1000,
    "l0_slowdown_trigger": 1000,
    "l0_stop_trigger": 1000,
    "seek_compaction_bytes": 0,
}


def count_opcodes(fn: Any) -> Counter[str]:
    """Bytecodes executed by fn() in this thread, per function (file:qualname)."""
    counts: Counter[str] = Counter()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        code = frame.f_code
        name = f"{os.path.basename(code.co_filename)}:{code.co_qualname}"

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[name] += 1
            return local

        return local

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return counts


def child(root: str, spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh interpreter with root first on sys.path: every selected workload on
    its own store, {name: {"per_call": n, "top": [[function, n], ...]}}."""
    sys.path.insert(0, root)
    import shalekv

    if not os.path.abspath(shalekv.__file__).startswith(os.path.abspath(root)):
        raise SystemExit(f"imported {shalekv.__file__}, not the checkout at {root}")
    sizes = tb.Sizes(**spec["sizes"])
    out: dict[str, Any] = {}
    for name in spec["workloads"]:
        w = tb.BY_NAME[name]
        values = eb.Values(sizes.seed)
        with tempfile.TemporaryDirectory(prefix="opcount.") as d:
            db = shalekv.open(d, **HOLD_COMPACTION)
            try:
                if w.needs:
                    fill = tb.BY_NAME[w.needs]
                    fn = getattr(db, fill.method)
                    for i in fill.indices(sizes):
                        fn(*fill.make(i, values.take(1)[0], sizes))
                    db.engine.flush()
                idx = list(w.indices(sizes))
                fn = getattr(db, w.method)
                n, warm = spec["calls"], spec["warmup"]
                if len(idx) < warm + n:
                    raise SystemExit(f"{name}: {len(idx)} operations, need {warm + n}")
                calls = [
                    w.make(i, v, sizes) for i, v in zip(idx, values.take(len(idx)), strict=True)
                ]
                if not w.needs:  # a fill: count its calls at the end, after a flush
                    warm = len(idx) - n
                for a in calls[:warm]:
                    fn(*a)
                if not w.needs:
                    db.engine.flush()
                counted = calls[warm : warm + n]

                def run(fn: Any = fn, counted: list[Any] = counted) -> None:
                    for a in counted:
                        fn(*a)

                c = count_opcodes(run)
            finally:
                db.close()
        out[name] = {
            "per_call": sum(c.values()) / n,
            "top": [[k, v / n] for k, v in c.most_common(spec["top"])],
        }
    return out


def measure(root: str, spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        # PYTHONPATH and cwd: the store's flush/compaction worker processes must run the
        # checkout's code too (the venv's editable install points at this one)
        env = {**os.environ, "PYTHONPATH": root}
        r = subprocess.run(
            [sys.executable, __file__, "--child", root, f.name],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            cwd=root,  # `python -m` puts the working directory first on sys.path
        )
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise SystemExit(f"child for {root} failed:\n{r.stderr[-3000:]}")
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default=",".join(tb.NAMES))
    p.add_argument("--num", type=int, default=200_000, help="elements each fill writes")
    p.add_argument("--calls", type=int, default=300, help="calls counted per workload")
    p.add_argument("--warmup", type=int, default=5000, help="read calls before counting")
    p.add_argument("--top", type=int, default=6, help="functions listed per workload")
    p.add_argument("--compare", help="another checkout, measured as 'before'")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = argv
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    for w in args.workloads:
        if w not in tb.BY_NAME:
            raise SystemExit(f"unknown workload {w!r}; known: {', '.join(tb.NAMES)}")
    if min(args.num, args.calls, args.top) < 1 or args.warmup < 0:
        raise SystemExit("--num, --calls and --top must be >= 1, --warmup >= 0")
    return args


def table(res: dict[str, Any], before: dict[str, Any] | None) -> tuple[list[str], list[list[str]]]:
    headers = ["workload", "bytecodes/call"]
    if before:
        headers += ["before", "change"]
    headers.append("where (bytecodes/call, top functions)")
    rows = []
    for name, r in res.items():
        row = [name, f"{r['per_call']:,.0f}"]
        if before:
            b = before[name]["per_call"]
            row += [f"{b:,.0f}", f"{(r['per_call'] - b) / b:+.1%}"]
        row.append(", ".join(f"{fn.split(':')[-1]} {n:.0f}" for fn, n in r["top"]))
        rows.append(row)
    return headers, rows


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(Path(args.child[1]).read_text())
        print(json.dumps(child(args.child[0], spec)))
        return 0
    n = args.num
    spec = {
        "sizes": {
            "num": n,
            "zset_members": n,
            "ops": n,
            "zrank_ops": n,
            "per_key": 100,
            "seed": 301,
        },
        "workloads": args.workloads,
        "calls": args.calls,
        "warmup": args.warmup,
        "top": args.top,
    }
    res = measure(eb.ROOT, spec)
    before = measure(os.path.abspath(args.compare), spec) if args.compare else None
    headers, rows = table(res, before)
    print(eb.md_table(headers, rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"now": res, "before": before, "spec": spec}))
    if args.write_docs:
        import inproc_bench as ib

        prose = (
            f"Fills of {n:,} elements (types_bench's workloads and arguments), the memtable "
            f"flushed, compaction held back; {args.calls} calls counted after "
            f"{args.warmup:,} warm-up calls (fills: their last {args.calls} calls). "
            "Repeatable within ~3 % (a flush worker decides when its table replaces the "
            "memtable); not time (a C call is one bytecode)."
        )
        if args.compare:
            prose += f" The before column: the checkout at `{eb.git_head(args.compare)}`, same run."
        block = ib.section(HEADING, "opcount_bench.py", args.argv, prose, headers, rows)
        eb.replace_section(eb.DEFAULT_OUT, MARKERS, block, HEADING)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
