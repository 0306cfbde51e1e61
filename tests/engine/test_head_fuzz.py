"""DB.head and head_keys (the short-scan paths) against collect() on random histories with many small
blocks and files: tiny memtables and blocks, several L1 files, held snapshots (multi-
version tables), tombstones, range deletions and blob values. Seeded, bounded."""

from __future__ import annotations

import random

import pytest

from shalekv.engine import DB


@pytest.mark.parametrize("seed", range(8))
def test_head_matches_collect(tmp_path, seed: int) -> None:
    rnd = random.Random(seed)
    db = DB.open(
        str(tmp_path / "db"),
        compaction_workers=0,
        memtable_size=rnd.choice([2048, 8192, 65536]),
        block_size=rnd.choice([64, 256, 1024]),
        blob_threshold=rnd.choice([40, 1 << 20]),
        target_file_size=rnd.choice([1024, 8192]),
        l0_compaction_trigger=2,
    )
    range_deletes = seed % 3 == 0

    def key() -> bytes:
        return b"k%04d" % rnd.randrange(400)

    held = []
    fast = [0, 0, 0]  # calls answered without the general path: head forward / reverse,
    # head_keys
    slow = db._head_slow

    def counted_slow(lower, upper, n, reverse=False):
        fast[2 if keys_call else reverse] -= 1
        return slow(lower, upper, n, reverse)

    keys_call = False

    db._head_slow = counted_slow  # type: ignore[method-assign]
    try:
        for _ in range(4000):
            c = rnd.random()
            if c < 0.5:
                db.put(key(), bytes([65 + rnd.randrange(26)]) * rnd.choice([1, 5, 60]))
            elif c < 0.7:
                db.delete(key())
            elif c < 0.705 and range_deletes:
                a = key()
                db.delete_range(a, a + b"\xff")
            elif c < 0.72:
                db.flush()
            elif c < 0.725:
                db.compact()
            elif c < 0.75:
                it = db.items(key())  # holds a snapshot until closed
                held.append(it)
                if len(held) > 3:
                    held.pop(0).close()
            else:
                lo = key()
                hi = rnd.choice([None, key(), lo + b"\x00"])
                n = rnd.randrange(0, 40)
                reverse = rnd.random() < 0.5
                fast[reverse] += 1
                got = db.head(lo, hi, n, reverse)
                keys, values = db.collect(lo, hi, reverse)
                assert got == (keys[:n], values[:n]), (lo, hi, n, reverse)
                if not reverse:
                    fast[2] += 1
                    keys_call = True
                    assert db.head_keys(lo, hi, n) == keys[:n], (lo, hi, n)
                    keys_call = False
    finally:
        for it in held:
            it.close()
        db.close()
    assert min(fast) > 0  # each took the short path sometimes
