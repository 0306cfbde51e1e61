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
