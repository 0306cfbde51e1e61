"""DB.key_chunks (the live keys of a range, sliced from blocks when one level holds the
range), DB.key_step (a step of such a scan, every source read in bulk) and DB.count_keys (their number, counted from block positions) against
collect() on random histories: held snapshots make multi-version
blocks, tombstones and blobs are mixed in, and the sliced path must be taken. Seeded,
bounded."""

from __future__ import annotations

import random

import pytest

from shalekv.engine import DB
from shalekv.engine.sstable import SSTableReader


@pytest.mark.parametrize("seed", range(6))
def test_key_chunks_match_collect(tmp_path, monkeypatch, seed: int) -> None:
    rnd = random.Random(seed)
    sliced = [0, 0]
    live_keys = SSTableReader.live_keys
    count_live = SSTableReader.count_live

    def counted(self, lower, upper):
        sliced[0] += 1
        return live_keys(self, lower, upper)

    def counted_count(self, lower, upper):
        sliced[1] += 1
        return count_live(self, lower, upper)

    monkeypatch.setattr(SSTableReader, "live_keys", counted)
    monkeypatch.setattr(SSTableReader, "count_live", counted_count)
    with DB.open(
        str(tmp_path / "db"),
        compaction_workers=0,
        memtable_size=rnd.choice([2048, 16384]),
        block_size=rnd.choice([64, 512]),
        target_file_size=rnd.choice([1024, 8192]),
        blob_threshold=rnd.choice([30, 1 << 20]),
        l0_compaction_trigger=2,
    ) as db:
        held = []
        for step in range(3000):
            k = b"k%04d" % rnd.randrange(600)
            c = rnd.random()
            if c < 0.55:
                db.put(k, bytes([97 + step % 26]) * rnd.choice([1, 40]))
            elif c < 0.8:
                db.delete(k)
            elif c < 0.81:
                db.flush()
            elif c < 0.815:
                db.compact()
            elif c < 0.83:
                held.append(db.snapshot())  # older versions stay: multi-version blocks
                if len(held) > 2:
                    held.pop(0).close()
            else:
                lo = b"k%04d" % rnd.randrange(600)
                hi = lo[:-2] + b"\xff"
                want = db.collect(lo, hi)[0]
                got = [x for chunk in db.key_chunks(lo, hi) for x in chunk]
                assert got == want, (step, lo, hi)
                assert _stepped(db, lo, hi, rnd.choice([1, 2, 3, 7, 50])) == want, (step, lo)
                # expect below and above the count: the short scan and the chunk path
                expect = rnd.choice([1, 5, 64])
                assert db.count_keys(lo, hi, expect) == len(want), (step, lo, hi, expect)
        for s in held:
            s.close()
        db.compact()
        got = [x for chunk in db.key_chunks(b"k", b"l") for x in chunk]
        assert got == db.collect(b"k", b"l")[0]
        assert db.count_keys(b"k", b"l") == len(got)
    assert sliced[0] > 0 and sliced[1] > 0


def _stepped(db: DB, lo: bytes, hi: bytes, n: int) -> list[bytes]:
    """The keys of [lo, hi) read by DB.key_step, n at a time, checking each step."""
    out: list[bytes] = []
    nxt: bytes | None = lo
    while nxt is not None:
        cur = nxt
        keys, nxt = db.key_step(cur, hi, n)
        assert keys == sorted(set(keys)) and all(cur <= k < hi for k in keys)
        assert nxt is None or (nxt > cur and (not keys or keys[-1] < nxt))
        out += keys
    return out


def test_reads_keep_their_files_through_a_compaction(tmp_path, monkeypatch) -> None:
    """A paused key_chunks and a count_keys whose tables a compaction replaces
    mid-call must still read them: the call holds its view's Version, and a file is
    deleted only once no live Version lists it (they raised FileNotFoundError / EBADF
    when only the file list was kept)."""
    with DB.open(
        str(tmp_path / "db"),
        compaction_workers=0,
        memtable_size=4096,
        block_size=64,
        target_file_size=1024,
    ) as db:
        for i in range(400):
            db.put(b"k%04d" % i, b"v" * 10)
        db.compact()
        chunks = db.key_chunks(b"k", b"l")
        first = next(chunks)
        for i in range(0, 400, 3):
            db.put(b"k%04d" % i, b"w" * 10)
        db.compact()  # replaces every file the paused generator reads
        assert len(first) + sum(map(len, chunks)) == 400

        sole_tables = DB._sole_tables

        def compact_meanwhile(self, lower, upper, sv):
            got = sole_tables(self, lower, upper, sv)
            monkeypatch.setattr(DB, "_sole_tables", sole_tables)  # once
            for i in range(1, 400, 3):
                self.put(b"k%04d" % i, b"x" * 10)
            self.compact()
            return got

        monkeypatch.setattr(DB, "_sole_tables", compact_meanwhile)
        assert db.count_keys(b"k", b"l") == 400
