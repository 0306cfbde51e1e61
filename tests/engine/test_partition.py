"""Tables partitioned by key prefix (Options.partition_prefix_len, RocksDB's fixed-prefix
SST partitioner): no table spans two prefixes; an L0->L1 compaction takes only the L1
files some L0 file overlaps and cuts its output across the others (fences); level 0 is
counted in sorted runs. Checked on the output builder, on random histories against a
dict model, and on which files a compaction rewrites. Bounded in count."""

from __future__ import annotations

import random
import time

import pytest

from shalekv.engine import DB
from shalekv.engine.jobs import OutputBuilder, _after_prefix
from shalekv.engine.version import FileMeta, Version

PREFIXES = [b"\x00", b"E", b"M", b"S", b"X"]
# No compaction unless asked for: each flush stays an L0 file.
HELD = {
    "compaction_workers": 0,
    "l0_compaction_trigger": 50,
    "l0_slowdown_trigger": 50,
    "l0_stop_trigger": 50,
    "seek_compaction_bytes": 0,
}


def _spec(tmp_path, numbers: int, **extra) -> dict:
    (tmp_path / "sst").mkdir(exist_ok=True)
    (tmp_path / "blob").mkdir(exist_ok=True)
    return {
        "dirs": [str(tmp_path)],
        "numbers": list(range(1, numbers + 1)),
        "block_size": 256,
        "compression": "none",
        "bloom_bits_per_key": 10,
        "target_file_size": 1 << 30,
        "blob_threshold": 1 << 20,
        **extra,
    }


def _ranges(out: OutputBuilder) -> list[tuple[bytes, bytes]]:
    return [(bytes.fromhex(t["smallest"]), bytes.fromhex(t["largest"])) for t in out.tables]


@pytest.mark.parametrize("seed", range(6))
def test_output_cut_at_prefixes_and_fences(tmp_path, seed: int) -> None:
    rnd = random.Random(seed)
    keys = sorted({rnd.choice(PREFIXES) + b"%05d" % rnd.randrange(3000) for _ in range(600)})
    # fences: ranges between keys that hold none of them
    gaps = [(a, b) for a, b in zip(keys, keys[1:], strict=False) if b > a + b"\x00\x00"]
    fences = sorted(rnd.sample(gaps, min(5, len(gaps))))
    fence_ranges = [(a + b"\x00", a + b"\x00\x00") for a, _ in fences]  # strictly between
    out = OutputBuilder(
        _spec(
            tmp_path,
            40,
            partition_prefix_len=1,
            fences=[(a.hex(), b.hex()) for a, b in fence_ranges],
        )
    )
    i = 0
    while i < len(keys):  # single adds and chunks, mixed
        n = rnd.choice([1, 1, 7, 50])
        part = keys[i : i + n]
        if n == 1:
            out.add(part[0], 1, 1, b"v")
        else:
            out.add_chunk(part, [1] * len(part), [1] * len(part), [b"v"] * len(part))
        i += n
    out.finish()
    ranges = _ranges(out)
    assert sum(t["entries"] for t in out.tables) == len(keys)
    for lo, hi in ranges:
        assert lo[:1] == hi[:1], "a table spans two prefixes"
        for flo, fhi in fence_ranges:
            assert not (lo < flo and fhi < hi), "a table spans a fence"
    # and nothing cut without a reason: one table per prefix and fence crossing
    expected = len({k[:1] for k in keys}) + sum(
        1 for flo, _ in fence_ranges if keys[0] < flo < keys[-1] and
        keys[[k < flo for k in keys].index(False) - 1][:1] == min(k for k in keys if k > flo)[:1]
    )  # fmt: skip
    assert len(ranges) == expected


def test_prefix_cuts_stop_when_numbers_run_out(tmp_path) -> None:
    """Prefix cuts are an optimization: with the reserved numbers used up a table
    grows over several prefixes (one number stays for a blob file)."""
    out = OutputBuilder(_spec(tmp_path, 3, partition_prefix_len=1, split=False))
    for p in PREFIXES:
        out.add(p + b"k", 1, 1, b"v")
    out.finish()
    assert len(out.tables) == 2


def test_after_prefix() -> None:
    assert _after_prefix(b"E") == b"F"
    assert _after_prefix(b"a\xff") == b"b"
    assert _after_prefix(b"\xff\xff") is None


def _file(n: int, lo: bytes, hi: bytes) -> FileMeta:
    return FileMeta(n, 0, 1, lo, hi, 1, 0, 1, 1)


def test_l0_runs() -> None:
    levels: list[list[FileMeta]] = [[] for _ in range(7)]
    levels[0] = [_file(1, b"E1", b"E9"), _file(2, b"M1", b"M9"), _file(3, b"E5", b"E7")]
    v = Version(levels, {}, [])
    assert v.l0_runs(False) == 3
    assert v.l0_runs(True) == 2  # E5-E7 inside E1-E9; M apart
    levels[0] = [_file(i, b"K%03d" % i, b"K%03d~" % i) for i in range(20)]  # disjoint
    assert Version(levels, {}, []).l0_runs(True) == 3  # an eighth of the files


def test_l0_for_byte_and_point_reads_through_it(tmp_path) -> None:
    """Version.get tests only the L0 files whose first-byte range holds the key's first
    byte (l0_for_byte): every file that may hold a key is still tested, the empty key
    included, and the newest version wins across files of several first bytes."""
    levels: list[list[FileMeta]] = [[] for _ in range(7)]
    levels[0] = [_file(1, b"E1", b"E9"), _file(2, b"", b"C"), _file(3, b"D", b"F\x00")]
    v = Version(levels, {}, [])
    assert [f.number for _, f in v.l0_for_byte(ord("E"))] == [1, 3]
    assert [i for i, _ in v.l0_for_byte(ord("E"))] == [0, 2]  # positions in level 0
    assert [f.number for _, f in v.l0_for_byte(ord("C"))] == [2]
    assert [f.number for _, f in v.l0_for_byte(ord("F"))] == [3]
    assert [f.number for _, f in v.l0_for_byte(0)] == [2]
    assert v.l0_for_byte(ord("G")) == []
    # On a DB: each flush leaves one L0 file (no compaction), spanning first bytes.
    keys = [b"", b"\x00", b"A", b"Az", b"B", b"B\xff\xff", b"C", b"\xff", b"\xff\xff"]
    with DB.open(str(tmp_path / "db"), **HELD) as db:
        model: dict[bytes, bytes] = {}
        for rnd_round in range(6):
            for j, k in enumerate(keys):
                if (j + rnd_round) % 3 == 0:
                    db.put(k, b"v%d-%d" % (rnd_round, j))
                    model[k] = b"v%d-%d" % (rnd_round, j)
                elif (j + rnd_round) % 3 == 1 and k in model:
                    db.delete(k)
                    del model[k]
            db.put(b"A" + b"%d" % rnd_round, b"x")  # a file whose range spans A..B etc.
            model[b"A" + b"%d" % rnd_round] = b"x"
            db.flush()
        db.put(b"", b"empty")  # the empty key, alone in the newest file
        model[b""] = b"empty"
        db.flush()
        assert len(db._sv[2].levels[0]) == 7 and not any(db._sv[2].levels[1:])
        for k in [*keys, b"A0", b"A5", b"A9", b"@", b"D", b"\xfe"]:
            assert db.get(k) == model.get(k), k


@pytest.mark.parametrize("bloom_bits", [0, 10])
def test_point_reads_through_many_l0_files(tmp_path, bloom_bits: int) -> None:
    """Version.get tests an L0 file's filter before its bounds (the bounds only when
    the filter says maybe; a file without a filter is tested by its bounds alone): gets
    of present, deleted and never-written keys through ~30 overlapping and disjoint L0
    files, with and without filters, match a dict."""
    rnd = random.Random(bloom_bits)
    model: dict[bytes, bytes | None] = {}
    with DB.open(str(tmp_path / "db"), bloom_bits_per_key=bloom_bits, **HELD) as db:
        for f in range(30):
            lo = rnd.randrange(0, 900) if f % 3 else 0  # narrow runs and whole-range ones
            span = 100 if f % 3 else 1000
            for _ in range(40):
                k = rnd.choice(PREFIXES) + b"%04d" % rnd.randrange(lo, lo + span)
                if rnd.random() < 0.8:
                    model[k] = v = b"%d.%d" % (f, rnd.randrange(1000))
                    db.put(k, v)
                else:
                    model[k] = None
                    db.delete(k)
            db.flush()
        assert len(db._sv[2].levels[0]) >= 30
        for p in [*PREFIXES, b"", b"\xff"]:
            for i in range(0, 1000, 7):
                k = p + b"%04d" % i
                assert db.get(k) == model.get(k), k
        assert db.get(b"") is None


def test_runs_at_counts_what_a_read_merges(tmp_path) -> None:
    """DB.runs_at: the memtables, the L0 files whose first-byte range may hold the key,
    and the levels below with files."""
    with DB.open(str(tmp_path / "db"), partition_prefix_len=1, **HELD) as db:
        assert db.runs_at(b"S1") == db.runs_at(b"") == 1  # the memtable
        for i in range(3):
            db.put(b"S%d" % i, b"v")
            db.put(b"M%d" % i, b"v")
            db.flush()  # a file per first byte: S and M
        assert db.runs_at(b"S1") == db.runs_at(b"M") == 4
        assert db.runs_at(b"E") == 1  # no L0 file holds E keys
        assert db.runs_at(b"") == 7  # the empty key: every L0 file may matter
        db.compact()
        assert not db._sv[2].levels[0]
        deep = sum(1 for files in db._sv[2].levels[1:] if files)
        assert deep >= 1 and db.runs_at(b"S1") == db.runs_at(b"E") == 1 + deep


def _levels_ok(db: DB) -> None:
    for lvl, files in enumerate(db._sv[2].levels):
        for f in files:
            assert f.smallest[:1] == f.largest[:1], f"level {lvl} file {f.number} spans prefixes"


@pytest.mark.parametrize("seed", range(4))
def test_random_history_matches_model(tmp_path, seed: int) -> None:
    rnd = random.Random(seed)
    model: dict[bytes, bytes] = {}
    with DB.open(
        str(tmp_path / "db"),
        compaction_workers=0,
        partition_prefix_len=1,
        memtable_size=4096,
        block_size=128,
        target_file_size=2048,
        l0_compaction_trigger=2,
        level_base_size=8192,
    ) as db:
        for step in range(3000):
            k = rnd.choice(PREFIXES) + b"%04d" % rnd.randrange(500)
            c = rnd.random()
            if c < 0.65:
                v = b"%d" % step
                db.put(k, v)
                model[k] = v
            elif c < 0.85:
                db.delete(k)
                model.pop(k, None)
            elif c < 0.86:
                db.flush()
            elif c < 0.865:
                db.compact()
            if step % 500 == 499:
                _levels_ok(db)
                assert dict(db.items()) == model
        deadline = time.monotonic() + 10
        while db.stats()["pending_compaction_bytes"] and time.monotonic() < deadline:
            time.sleep(0.05)
        _levels_ok(db)
        assert dict(db.items()) == model
        for k in list(model)[:200]:
            assert db.get(k) == model[k]
    with DB.open(str(tmp_path / "db"), partition_prefix_len=1, compaction_workers=0) as db:
        assert dict(db.items()) == model


def test_l0_compaction_leaves_other_prefixes_files_alone(tmp_path) -> None:
    """Many E files in L1; then flushes writing an M key, an S key and an E key at the
    start of the E range: the L0->L1 compaction rewrites only the E file that overlaps
    and the M/S ones, not the E files in between."""
    with DB.open(
        str(tmp_path / "db"),
        compaction_workers=0,
        partition_prefix_len=1,
        target_file_size=4096,
        l0_compaction_trigger=2,
    ) as db:
        rnd = random.Random(7)
        for i in range(24000):  # compaction hands tables ~2048 entries at a time
            db.put(b"E%05d" % i, rnd.randbytes(40))
        db.put(b"M0", b"m")
        db.put(b"S0", b"s")
        db.compact()
        before = {f.number for f in db._sv[2].levels[1]}
        e_files = [f for f in db._sv[2].levels[1] if f.smallest[:1] == b"E"]
        assert len(e_files) >= 8
        for part in range(2):  # two flushes: two runs in L0 -> compaction
            db.put(b"M1", b"m%d" % part)
            db.put(b"S1", b"s%d" % part)
            db.put(b"E00005", b"y%d" % part)  # the same key: the two E files overlap
            db.flush()
        deadline = time.monotonic() + 10
        while db._sv[2].levels[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not db._sv[2].levels[0]
        after = {f.number for f in db._sv[2].levels[1]}
        kept = before & after
        # every E file but the first one (which holds E00005) is untouched, though
        # the flushes' span (E00005 ... S1) covers them all
        assert {f.number for f in e_files[1:]} <= kept
        assert e_files[0].number not in kept
        assert db.get(b"E00005") == b"y1" and db.get(b"M1") == b"m1" and db.get(b"S0") == b"s"
        _levels_ok(db)


def test_l0_partition_order() -> None:
    """One prefix's L0 files go down at a time: the one with the most runs, then the
    one range reads charged most, then the biggest."""
    from shalekv.engine.compaction_picker import l0_partition, pick
    from shalekv.engine.options import Options

    def f(n: int, lo: bytes, hi: bytes, size: int = 1) -> FileMeta:
        return FileMeta(n, 0, size, lo, hi, 1, 0, n, n)

    levels: list[list[FileMeta]] = [[] for _ in range(7)]
    levels[0] = [f(1, b"E1", b"E9", 50), f(2, b"E2", b"E8", 50), f(3, b"S1", b"S9"),
                 f(4, b"S2", b"S8"), f(5, b"M1", b"M2", 500)]  # fmt: skip
    v = Version(levels, {}, [])
    opts = Options(partition_prefix_len=1, l0_compaction_trigger=2)
    assert {x.number for x in l0_partition(v, opts)} == {1, 2}  # deepest, then bytes
    assert {x.number for x in l0_partition(v, opts, {4: 30})} == {3, 4}  # read most
    c = pick(v, opts, {}, [], set(), {3: 1})
    assert c is not None and {x.number for x in c.inputs} == {3, 4} and c.output_level == 1
    levels[0] = [*levels[0], f(6, b"M0", b"M3"), f(7, b"M1", b"M1")]
    assert {x.number for x in l0_partition(Version(levels, {}, []), opts)} == {5, 6, 7}


def test_fence_cuts_always_have_file_numbers(tmp_path) -> None:
    """Prefix and size cuts leave a reserved number for every fence still ahead: an L0
    table spanning many prefixes (a flush past its 8 tables) merged below two fences
    must not run the job out of numbers (it did, and the DB stayed stuck)."""
    path = str(tmp_path / "db")
    common = dict(
        compaction_workers=0,
        partition_prefix_len=1,
        target_file_size=1 << 20,
        memtable_size=1 << 20,
    )

    def settle(db: DB) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and db._bg_error is None and db._sv[2].levels[0]:
            time.sleep(0.05)

    with DB.open(path, l0_compaction_trigger=1, **common) as db:
        for k in (b"A7", b"Ab"):  # L1 = [A7], [Ab]
            db.put(k, b"fence")
            db.flush()
            settle(db)
        assert [f.smallest for f in db._sv[2].levels[1]] == [b"A7", b"Ab"]
    with DB.open(
        path, l0_compaction_trigger=3, l0_slowdown_trigger=20, l0_stop_trigger=30, **common
    ) as db:
        for p in range(0x10, 0x40):  # 48 prefixes: 7 tables of one, one of the other 41
            db.put(bytes([p]) + b"k", b"v")
        db.put(b"A5", b"v0")
        db.flush()
        for k in (b"A9", b"Ad", b"A5", b"A5"):
            db.put(k, b"v1")
            db.flush()
        deadline = time.monotonic() + 5
        while (
            time.monotonic() < deadline and db._bg_error is None and db.stats()["compactions"] == 0
        ):
            time.sleep(0.05)
        assert db._bg_error is None, db._bg_error
        assert db.stats()["compactions"] >= 1
        db.put(b"x", b"y")
        assert db.get(b"A5") == b"v1" and db.get(b"A7") == b"fence" and db.get(b"\x10k") == b"v"
