#!/usr/bin/env python3
"""Backup and restore throughput (issue 6): full backup, incremental backup after 1 %
new data, verify and restore of a DB of --size-mb megabytes, through BackupEngine.

    python bench/backup_bench.py                  # ~1 GiB dataset under a temp dir
    python bench/backup_bench.py --size-mb 200 --dir /tmp/bb

Values are incompressible (slices of a random pool), 4 KiB each with one in 50 at
128 KiB (blob files). The DB is loaded, flushed and closed first; the backups are
offline (the DB directory path), the restore goes to a new directory on the same
disk. Prints a LevelDB-style header and one line per step: seconds, MB/s (of the
bytes the step read or wrote: the whole backup for full/verify/restore, the new
bytes for incremental). The page cache is not dropped: figures are warm-cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

import engine_bench as eb  # noqa: E402  (replace_section)

from shalekv.backup.engine import BackupEngine  # noqa: E402
from shalekv.engine import DB  # noqa: E402

VALUE = 4096
BLOB_VALUE = 128 << 10
BLOB_EVERY = 50
MB = 1_000_000


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load(db: DB, start: int, nbytes: int, pool: bytes, rnd: random.Random) -> tuple[int, int]:
    """Put about nbytes of values, keys from start; returns (next key, bytes written)."""
    i = start
    written = 0
    limit = len(pool) - BLOB_VALUE
    while written < nbytes:
        size = BLOB_VALUE if i % BLOB_EVERY == 0 else VALUE
        off = rnd.randrange(limit)
        db.put(b"key%010d" % i, pool[off : off + size])
        written += size + 13
        i += 1
    return i, written


def du(path: str) -> int:
    total = 0
    for d, _, names in os.walk(path):
        for n in names:
            total += os.path.getsize(os.path.join(d, n))
    return total


SECTION = ("<!-- backup_bench:start -->", "<!-- backup_bench:end -->")
HEADING = "## Backups (issue 6)"


def write_docs(args: argparse.Namespace, report: list[str]) -> None:
    command = " ".join(["python bench/backup_bench.py", *sys.argv[1:]])
    body = "\n".join(
        [
            HEADING,
            "",
            f"`{command}`: offline full backup of a DB directory, then an incremental one",
            "after new data, verify and restore, through BackupEngine. Written by the",
            "script. With `--settle` the DB is compacted before the first backup, so the",
            "incremental one copies only the new data's tables (without it, L0 tables",
            "that compaction rewrote in between count as new files).",
            "",
            "```",
            *report,
            "```",
        ]
    )
    eb.replace_section(args.out, SECTION, body, HEADING)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="dataset size (MB of values)")
    ap.add_argument("--new-percent", type=float, default=1.0, help="new data before backup 2")
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--settle",
        action="store_true",
        help="compact the DB fully before the first backup: the incremental backup then "
        "copies only the new data's tables, not L0 tables compaction rewrote meanwhile",
    )
    ap.add_argument("--write-docs", action="store_true", help="also write docs/benchmarks.md")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()

    work = args.dir or tempfile.mkdtemp(prefix="backup_bench_")
    os.makedirs(work, exist_ok=True)
    dbdir, bkdir = os.path.join(work, "db"), os.path.join(work, "bk")
    for p in (dbdir, bkdir, os.path.join(work, "restored")):
        shutil.rmtree(p, ignore_errors=True)
    rnd = random.Random(42)
    pool = rnd.randbytes(64 << 20)
    opts = {"compaction_rate_limit": 0}
    try:
        t = time.perf_counter()
        with DB.open(dbdir, **opts) as db:
            nxt, _ = load(db, 0, args.size_mb * MB, pool, rnd)
            db.flush()
            if args.settle:
                db.compact()  # no L0 tables left for the 1 % to be merged with
        load_s = time.perf_counter() - t
        db_bytes = du(dbdir)

        rows: list[tuple[str, float, int, str]] = []
        engine = BackupEngine(bkdir)
        t = time.perf_counter()
        full = engine.create(dbdir)
        rows.append(
            ("backup (full)", time.perf_counter() - t, full.new_bytes, f"{full.size / MB:.0f} MB")
        )

        with DB.open(dbdir, **opts) as db:
            load(db, nxt, int(args.size_mb * MB * args.new_percent / 100), pool, rnd)
            db.flush()
        t = time.perf_counter()
        inc = engine.create(dbdir)
        rows.append(
            (
                f"backup (incremental, +{args.new_percent:g} %)",
                time.perf_counter() - t,
                inc.new_bytes,
                f"{inc.new_bytes / MB:.1f} MB new of {inc.size / MB:.0f} MB",
            )
        )

        t = time.perf_counter()
        v = engine.verify(inc.id)
        rows.append(("verify", time.perf_counter() - t, v.bytes, f"{v.files} files"))

        t = time.perf_counter()
        engine.restore(inc.id, os.path.join(work, "restored"))
        rows.append(("restore", time.perf_counter() - t, inc.size, ""))

        report = [
            f"ShaleKV:    backup_bench, Python {platform.python_version()}",
            f"Date:       {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            f"CPU:        {os.cpu_count()} * {cpu()}",
            f"Values:     {VALUE} B (1 in {BLOB_EVERY}: {BLOB_VALUE >> 10} KiB, blob files),"
            " incompressible",
            f"Dataset:    {args.size_mb} MB of values; DB dir {db_bytes / MB:.0f} MB;"
            f" load {load_s:.1f} s",
            "Cache:      warm (page cache not dropped); backup dir on the same disk",
            f"Settled:    {'yes (compacted before backup 1)' if args.settle else 'no'}",
            "-" * 72,
            f"{'step':<32} {'seconds':>9} {'MB/s':>9}  note",
            *(
                f"{name:<32} {secs:>9.2f} {nbytes / MB / secs:>9.0f}  {note}"
                for name, secs, nbytes, note in rows
            ),
        ]
        print("\n".join(report))
        if args.write_docs:
            write_docs(args, report)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
