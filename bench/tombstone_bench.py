#!/usr/bin/env python3
"""Do tombstones rot range reads? (Kvrocks users saw a hot sorted set under
ZADD/ZREMRANGEBYRANK fall to ~100 reads/s.)

One DB holds two key ranges with the same number of live keys:
- clean:   `c|` + LIVE keys;
- deleted: `d|` + DEAD keys written then deleted one by one (a ZREMRANGEBYRANK that
           removed the first members), followed by LIVE keys.
A "range read" is what ZRANGE 0 9 does: seek to the start of the range and read the
first 10 live entries, with the range's end as upper bound. We time it on both ranges
right after the deletes (tombstones still in the memtable / level 0) and again after
the background deletion-triggered compaction has run, and report the ratio to clean.
A third row reads `e|`, a small range that sits right after the dead one, as Kvrocks
#876's "small key after a big expired key".

    python bench/tombstone_bench.py [--dead 200000] [--live 10000] [--reads 2000]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine_bench  # noqa: E402  (shared header and docs/benchmarks.md writer)

from shalekv.engine import DB  # noqa: E402

SECTION = ("<!-- tombstone_bench:start -->", "<!-- tombstone_bench:end -->")


def key(prefix: bytes, i: int) -> bytes:
    return prefix + b"%012d" % i


def range_read_us(db: DB, prefix: bytes, reads: int) -> float:
    """Mean microseconds to read the first 10 live entries of a prefix range."""
    lower, upper = prefix, prefix[:-1] + b"}"
    t = time.perf_counter()
    for _ in range(reads):
        got = list(islice(db.items(lower, upper), 10))
    elapsed = time.perf_counter() - t
    assert len(got) == 10, (prefix, len(got))
    return elapsed / reads * 1e6


def wait_for_compactions(db: DB, timeout: float) -> float:
    """Wait until the background has nothing left to do (bounded); return seconds."""
    t = time.perf_counter()
    last = -1
    while time.perf_counter() - t < timeout:
        s = db.stats()
        busy = s["immutable_memtables"] or s["pending_compaction_bytes"]
        if not busy and s["compactions"] == last:
            break
        last = s["compactions"]
        time.sleep(1.0)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dead", type=int, default=200_000)
    ap.add_argument("--live", type=int, default=10_000)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=engine_bench.DEFAULT_OUT)
    args = ap.parse_args()

    value = os.urandom(50) + b"v" * 50
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="tombstone_bench") as d:
        db = DB.open(d, fsync="no")
        for i in range(args.live):
            db.put(key(b"c|", i), value)
            db.put(key(b"e|", i), value)
        for i in range(args.dead):
            db.put(key(b"d|", i), value)
        for i in range(args.dead, args.dead + args.live):
            db.put(key(b"d|", i), value)
        db.flush()
        wait_for_compactions(db, args.timeout)
        for i in range(args.dead):
            db.delete(key(b"d|", i))

        def measure(label: str) -> None:
            clean = range_read_us(db, b"c|", args.reads)
            dead = range_read_us(db, b"d|", args.reads)
            after = range_read_us(db, b"e|", args.reads)
            rows.append((label, clean, dead, after))

        measure("tombstones in the memtable")
        db.flush()
        measure("tombstones flushed to level 0")
        waited = wait_for_compactions(db, args.timeout)
        stats = db.stats()
        measure(f"after background compaction ({waited:.0f} s)")
        db.close()

    m = engine_bench.machine()
    print(engine_bench.header(m, args.dead + 3 * args.live))
    lines = [
        "| state | clean range µs | deleted range µs | ratio | range after the dead one µs |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, clean, dead, after in rows:
        print(
            f"{label:40s} clean {clean:8.1f} us  deleted {dead:9.1f} us  "
            f"ratio {dead / clean:6.2f}x  after-dead {after:8.1f} us"
        )
        lines.append(f"| {label} | {clean:.1f} | {dead:.1f} | {dead / clean:.2f}× | {after:.1f} |")
    print(
        f"compactions {stats['compactions']}, files {stats['num_files']}, "
        f"write amplification {stats['write_amplification']:.2f}"
    )
    body = "\n".join(
        [
            "## Range reads over deleted data (`bench/tombstone_bench.py`)",
            "",
            f"`{shlex.join(['python', 'bench/tombstone_bench.py', *sys.argv[1:]])}` — "
            f"{engine_bench.machine_line(m)}",
            "",
            f"{args.live} live keys per range; the deleted range also holds {args.dead} "
            "deleted keys before its live ones. A read = seek + the first 10 live entries, "
            "upper bound at the range's end (what ZRANGE 0 9 does). Target: the deleted "
            "range within 2× of the clean one once the deletion-triggered compaction ran.",
            "",
            *lines,
        ]
    )
    engine_bench.replace_section(args.out, SECTION, body)


if __name__ == "__main__":
    main()
