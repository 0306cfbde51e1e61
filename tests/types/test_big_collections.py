"""Collections far larger than the caches: memory stays bounded by the configured
caches and memtables, not by the collection (issue 4: a 2-million-member sorted set
with a 64 MiB block cache)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_two_million_member_zset_with_a_64_mib_cache(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.types.big_zset_worker", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["zcard"] == 2_000_000
    assert out["range"] == [
        [f"member:{i:040d}", float(i)] for i in (1_234_567, 1_234_568, 1_234_569)
    ]
    assert out["revrange"] == [f"member:{1_999_999:040d}", f"member:{1_999_998:040d}"]
    assert out["score"] == 1_999_999.0
    assert out["rank"] == 5
    assert out["count"] == 100
    assert out["after_compact"] == [[f"member:{i:040d}", float(i)] for i in (1_000_000, 1_000_001)]
    # The bound: caches (64 + 16 MiB) + memtables (16 MiB, up to 4 with the sealed
    # ones) + the interpreter and libraries, with slack. The set itself is bigger.
    budget = (64 + 16 + 4 * 16 + 160) << 20
    assert out["sst_bytes"] > (64 + 16) << 20, out["sst_bytes"]  # compressed, still > caches
    assert out["peak_rss"] < budget, f"peak RSS {out['peak_rss'] >> 20} MiB"
    print(f"peak RSS {out['peak_rss'] >> 20} MiB, {out['sst_bytes'] >> 20} MiB of tables")
