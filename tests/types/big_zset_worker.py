"""Run in a fresh process by test_big_collections: fill a 2-million-member sorted set
with small caches, query it, and report peak RSS (a subprocess so the test runner's
own memory does not count)."""

from __future__ import annotations

import json
import resource
import sys

import shalekv

MEMBERS = 2_000_000
BATCH = 20_000


def peak_rss() -> int:
    """This process's peak RSS in bytes. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over exec from the forked copy of the parent, so a big test runner would count."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(path: str) -> None:
    db = shalekv.open(
        path,
        block_cache_size=64 << 20,
        compressed_cache_size=16 << 20,
        memtable_size=16 << 20,
    )
    for start in range(0, MEMBERS, BATCH):
        p = db.pipeline(transaction=False)
        p.zadd("big", {b"member:%040d" % i: i for i in range(start, start + BATCH)})
        p.execute()
    out = {
        "zcard": db.zcard("big"),
        "range": db.zrangebyscore("big", 1_234_567, "+inf", start=0, num=3, withscores=True),
        "revrange": db.zrevrange("big", 0, 1),
        "score": db.zscore("big", b"member:%040d" % 1_999_999),
        "rank": db.zrank("big", b"member:%040d" % 5),
        "count": db.zcount("big", 100, 199),
    }
    db.engine.compact()
    out["after_compact"] = db.zrange("big", 1_000_000, 1_000_001, withscores=True)
    out["sst_bytes"] = db.engine.stats()["sst_bytes"]
    db.close()
    out["peak_rss"] = peak_rss()
    print(json.dumps(out, default=lambda x: x.decode() if isinstance(x, bytes) else str(x)))


if __name__ == "__main__":
    main(sys.argv[1])
