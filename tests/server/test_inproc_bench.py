"""bench/inproc_bench.py stays runnable, and its two sides agree: ShaleKV's Client and
the ceiling server's Connection give byte-equal replies to redis-benchmark's requests."""

from __future__ import annotations

import os
import sys

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")


def test_inproc_bench_sides_agree() -> None:
    sys.path.insert(0, BENCH)
    try:
        import inproc_bench
    finally:
        sys.path.remove(BENCH)
    args = inproc_bench.parse_args(
        ["--requests", "60", "--rounds", "1", "--clients", "3", "--pipeline", "1,4"]
    )
    results = inproc_bench.run(args)
    assert {(r["test"], r["depth"]) for r in results} == {
        (t, d) for t in inproc_bench.TESTS if t != "PING" for d in (1, 4)
    }
    for r in results:
        assert r["same_replies"], r["test"]
        assert r["shalekv"] > 0 and r["ceiling"] > 0


def test_icount_bench_child_runs_every_request_stream(tmp_path) -> None:
    """bench/icount_bench.py's measured part (what valgrind runs) works for every
    test, on both sides; the instruction counting itself needs valgrind, not in CI."""
    import json

    sys.path.insert(0, BENCH)
    try:
        import icount_bench
    finally:
        sys.path.remove(BENCH)
    runs = [(side, t, 2) for t in icount_bench.TESTS for side in ("shalekv", "ceiling")]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"clients": 2, "passes": 2, "runs": runs}))
    root = os.path.dirname(os.path.abspath(BENCH))
    written = icount_bench.child(root, str(spec))
    assert len(written) == len(runs) and all(n > 0 for n in written)
