"""Read-only inspection and verification (shalekv.engine.inspect) on real DBs:
what inspect reports matches what the DB itself holds, and verify finds a flipped
byte in every kind of file, naming the file and the offset."""

from __future__ import annotations

import json
import os

import pytest

from shalekv.engine import DB
from shalekv.engine import inspect as ins
from shalekv.engine.sstable import FOOTER, TRAILER_SIZE
from shalekv.errors import CorruptionError
from tests.dbfiles import SMALL, flip, k

# Flushes never trigger a compaction: the files stay exactly where flush put them.
NO_COMPACTION = {
    "compaction_workers": 0,
    "l0_compaction_trigger": 50,
    "l0_slowdown_trigger": 60,
    "l0_stop_trigger": 70,
    "blob_threshold": 1000,
}


def build_db(path: str, **extra: object) -> tuple[DB, int]:
    """A closed DB with tables on more than one level, blob files, tombstones and a
    live WAL segment; returns the closed DB object and the number of sequences used."""
    db = DB.open(path, **{**SMALL, **extra})
    ops = 0
    for i in range(4000):
        db.put(k(i), (b"B" * 1500) if i % 40 == 0 else b"v%d" % i)
        ops += 1
    for i in range(0, 4000, 9):
        db.delete(k(i))
        ops += 1
    db.flush()
    for i in range(5):
        db.put(b"tail%d" % i, b"in the WAL only")
        ops += 1
    db.close()
    return db, ops


@pytest.fixture
def built(tmp_path):
    path = str(tmp_path / "db")
    db, ops = build_db(path, data_dirs=[str(tmp_path / "d0"), str(tmp_path / "d1")])
    return path, db, ops


def test_inspect_db_reports_the_files_the_db_holds(built, tmp_path):
    path, db, ops = built
    info = ins.inspect_db(path)
    live = db.live_files()  # the DB's own final version (threads joined at close)
    want = {
        (
            lvl,
            f.number,
            f.dir_index,
            f.size,
            f.entries,
            f.deletions,
            f.smallest.hex(),
            f.largest.hex(),
        )
        for lvl, f in live
    }
    got = {
        (
            f["level"],
            f["number"],
            f["dir"],
            f["size"],
            f["entries"],
            f["deletions"],
            f["smallest"],
            f["largest"],
        )
        for f in info["files"]
    }
    assert got == want
    per_level = [sum(1 for lvl, _ in live if lvl == i) for i in range(7)]
    assert [lv["files"] for lv in info["levels"]] == per_level
    assert sum(1 for n in per_level if n) >= 2, "expected tables on more than one level"
    assert info["totals"]["files"] == len(live)
    # Files live where the MANIFEST says, spread over both data dirs.
    assert info["data_dirs"] == [str(tmp_path / "d0"), str(tmp_path / "d1")]
    for f in info["files"]:
        assert f["path"] == os.path.join(
            info["data_dirs"][f["dir"]], "sst", f"{f['number']:06d}.sst"
        )
        assert os.path.getsize(f["path"]) == f["size"]
    assert {f["dir"] for f in info["files"]} == {0, 1}
    # Blob files: exactly those the tables point into, each on disk with its size.
    refs = {int(n) for f in info["files"] for n in f["blob_refs"]}
    assert {b["number"] for b in info["blob_files"]} == refs
    assert refs
    for b in info["blob_files"]:
        assert os.path.getsize(b["path"]) == b["size"]
    # The unflushed tail is in the live WAL segment; every sequence is accounted for.
    live_wals = [w for w in info["wal_segments"] if w["live"] and w["records"]]
    assert [w["entries"] for w in live_wals] == [5]
    assert live_wals[0]["last_seq"] == ops
    assert info["last_sequence"] == ops
    assert info["manifest_last_seq"] == ops - 5
    json.dumps(info)  # what --json prints


def test_inspect_open_db_needs_no_lock(tmp_path):
    path = str(tmp_path / "db")
    with DB.open(path, **NO_COMPACTION) as db:
        seq = 0
        for round_ in range(3):
            for i in range(100):
                db.put(k(i), b"r%d" % round_)
                seq += 1
            db.flush()
        db.put(b"unflushed", b"x")
        info = ins.inspect_db(path)  # DB open, LOCK held: inspect only reads
        assert [lv["files"] for lv in info["levels"]] == [3, 0, 0, 0, 0, 0, 0]
        assert [f["entries"] for f in info["files"]] == [100, 100, 100]
        # L0 is listed newest first, as reads search it.
        assert [f["max_seq"] for f in info["files"]] == [300, 200, 100]
        assert info["last_sequence"] == seq + 1
        assert info["manifest_last_seq"] == seq
        db.put(b"after", b"inspect")  # the DB is unaffected
        assert db.get(b"after") == b"inspect"
        assert ins.verify_db(path)["ok"]


def test_inspect_shows_range_deletions_and_blob_garbage(tmp_path):
    path = str(tmp_path / "db")
    with DB.open(path, **NO_COMPACTION, blob_gc_ratio=0.9) as db:
        for i in range(30):
            db.put(k(i), b"%04d" % i * 500)  # 2000-byte values: blob file
        db.flush()
        for i in range(10):
            db.delete(k(i))
        db.compact()  # drops the 10 deleted blob values: 20000 bytes of garbage
        info = ins.inspect_db(path)
        [b] = info["blob_files"]
        assert b["value_bytes"] == 30 * 2000
        assert b["garbage_bytes"] == 10 * 2000
        assert b["garbage_ratio"] == pytest.approx(1 / 3)
        with db.snapshot():  # keeps the covered entries, so the range deletion stays
            db.delete_range(k(20), k(25))
            db.flush()
            info = ins.inspect_db(path)
        assert info["range_deletions"] == [
            {"start": k(20).hex(), "end": k(25).hex(), "seq": info["last_sequence"]}
        ]


def test_compact_merges_a_db_whose_files_are_all_in_level0(tmp_path):
    """compact() with every table in L0 must still merge them (it once skipped L0
    when L0 was the bottom level, keeping overwritten versions), as inspect shows."""
    path = str(tmp_path / "db")
    with DB.open(path, **NO_COMPACTION) as db:
        for round_ in (b"a", b"b"):
            for i in range(30):
                db.put(k(i), round_ * 100)
            db.flush()
        db.compact()
        info = ins.inspect_db(path)
        assert db.get(k(0)) == b"b" * 100
    assert info["totals"]["entries"] == 30, [(f["level"], f["entries"]) for f in info["files"]]


def test_inspect_sst_layout_and_dump(tmp_path):
    path = str(tmp_path / "db")
    with DB.open(path, **NO_COMPACTION, block_size=1024) as db:
        for i in range(300):
            db.put(k(i), b"first")
        db.put(k(7), b"B" * 1200)  # a blob value
        with db.snapshot():  # both versions of key 1 go into the table
            db.put(k(1), b"second")
            db.delete(k(2))
            db.flush()
        [f] = ins.inspect_db(path)["files"]
    info = ins.inspect_sst(f["path"], dump=True)
    size = os.path.getsize(f["path"])
    foot = info["footer"]
    assert info["file_size"] == size
    assert foot["offset"] == size - FOOTER.size
    assert foot["magic"] == "0x53484c4b56535354" and foot["format_version"] == 2
    # Blocks tile the file exactly: data blocks, filter, properties, index, footer.
    blocks = info["data_blocks"] + info["meta_blocks"]
    assert info["num_data_blocks"] == info["properties"]["data_blocks"] > 1
    assert sum(b["size"] + TRAILER_SIZE for b in blocks) + FOOTER.size == size
    assert [m["name"] for m in info["meta_blocks"]] == ["filter", "properties", "index"]
    assert all(b["crc_ok"] for b in blocks) and info["bad_blocks"] == 0
    assert sum(b["entries"] for b in info["data_blocks"]) == info["properties"]["entries"]
    entries = info["entries"]
    assert len(entries) == info["properties"]["entries"] == 302
    keys = [(bytes.fromhex(e["key"]), -e["seq"]) for e in entries]
    assert keys == sorted(keys)
    k1 = [e for e in entries if e["key"] == k(1).hex()]
    assert [e["kind"] for e in k1] == ["PUT", "PUT"]
    assert [bytes.fromhex(e["value"]) for e in k1] == [b"second", b"first"]
    assert [e["kind"] for e in entries if e["key"] == k(2).hex()][0] == "DELETE"
    [blob_entry] = [e for e in entries if e["kind"] == "BLOB_INDEX"]
    assert blob_entry["blob"]["size"] == 1200
    assert str(blob_entry["blob"]["file"]) in info["properties"]["blob_refs"]


def test_inspect_wal_manifest_and_blob_files(built):
    path, _db, ops = built
    info = ins.inspect_db(path)
    [wal] = [w for w in info["wal_segments"] if w["records"]]
    w = ins.inspect_wal(wal["path"], dump=True)
    assert [r["seq"] for r in w["records"]] == list(range(ops - 4, ops + 1))
    assert bytes.fromhex(w["records"][0]["entries"][0]["key"]) == b"tail0"
    m = ins.inspect_manifest(os.path.join(path, info["manifest"]))
    assert m["edits"][0]["edit"]["reset"] == 1  # a MANIFEST starts with a snapshot
    assert m["files"] == info["totals"]["files"]
    b = info["blob_files"][0]
    blob_info = ins.inspect_blob(b["path"], dump=True)
    assert blob_info["records"] == blob_info["footer_count"] == len(blob_info["entries"])
    assert blob_info["value_bytes"] == b["value_bytes"]


# ---------------------------------------------------------------- verify


def test_verify_good_db_counts_every_file(built):
    path, _db, _ops = built
    info = ins.inspect_db(path)
    result = ins.verify_db(path)
    assert result["ok"], result["errors"]
    nwal = len(info["wal_segments"])
    assert result["files"] == 1 + len(info["files"]) + len(info["blob_files"]) + nwal
    kinds = sorted(c["kind"] for c in result["checked"])
    assert kinds.count("sst") == len(info["files"]) and kinds.count("manifest") == 1
    data_blocks = sum(ins.inspect_sst(f["path"])["num_data_blocks"] for f in info["files"])
    assert result["blocks"] == data_blocks + 3 * len(info["files"])
    assert result["bytes"] >= info["totals"]["sst_bytes"] + info["totals"]["blob_bytes"]
    assert result["errors"] == [] and result["warnings"] == []


def _damage(kind: str, path: str) -> tuple[str, int]:
    """Flip one byte inside a file of kind; return (file, offset the error must name)."""
    info = ins.inspect_db(path)
    if kind == "sst":
        f = info["files"][0]["path"]
        blk = ins.inspect_sst(f)["data_blocks"][-1]
        flip(f, blk["offset"] + blk["size"] // 2)
        return f, blk["offset"]
    if kind == "blob":
        f = info["blob_files"][0]["path"]
        rec = ins.inspect_blob(f, dump=True)["entries"][1]
        flip(f, rec["offset"] + 16 + 9 + 100)  # header, key, then inside the value
        return f, rec["offset"]
    if kind == "wal":
        [w] = [w for w in info["wal_segments"] if w["records"]]
        flip(w["path"], 7 + 2)  # inside the first record's sequence number
        return w["path"], 0
    f = os.path.join(path, info["manifest"])
    flip(f, 7 + 5)  # inside the first edit's JSON
    return f, 0


@pytest.mark.parametrize("kind", ["sst", "blob", "wal", "manifest"])
def test_verify_finds_a_flipped_byte(built, kind):
    path, _db, _ops = built
    damaged, offset = _damage(kind, path)
    result = ins.verify_db(path)
    assert not result["ok"]
    [err] = result["errors"]
    assert err["path"] == damaged
    assert err["offset"] == offset
    assert "checksum mismatch" in err["message"]
    assert damaged in err["message"] and f"offset {offset}" in err["message"]
    bad = [c for c in result["checked"] if not c["ok"]]
    assert [c["path"] for c in bad] == [damaged]
    # The other files were still checked (all of the WAL even without a MANIFEST).
    assert any(c["ok"] and c["kind"] == "wal" for c in result["checked"]) == (kind != "wal")


def test_record_starting_seven_bytes_before_a_block_edge(tmp_path):
    """Engine bug (log_format.LogWriter._add_fragmented): with exactly 7 bytes left in
    a 32 KiB block a record starts with an empty FIRST fragment, but the next fragment
    is then labelled FULL (`begin = done == 0` is still true), so every reader of the
    segment (verify, reopen, the flush job) sees "FULL fragment inside a record"."""
    path = str(tmp_path / "db")
    db = DB.open(path, compaction_workers=0)
    # Records of 7 + 12 + 5 + 8 + 4 + 145 = 181 bytes: 181 of them end at 32761.
    for i in range(182):
        db.put(b"key%05d" % i, b"v" * 145)
    db.close()
    result = ins.verify_db(path)
    assert result["ok"], result["errors"]
    with DB.open(path, compaction_workers=0) as db:
        assert db.get(b"key00181") == b"v" * 145


def test_verify_reports_a_missing_table(built):
    path, _db, _ops = built
    f = ins.inspect_db(path)["files"][0]["path"]
    os.unlink(f)
    result = ins.verify_db(path)
    assert not result["ok"]
    assert [e["path"] for e in result["errors"]] == [f]


def test_verify_torn_wal_tail_is_a_warning(built):
    path, _db, _ops = built
    [w] = [w for w in ins.inspect_db(path)["wal_segments"] if w["records"]]
    with open(w["path"], "ab") as f:
        f.write(b"\x01\x02\x03\x04\xff\x00\x01partial")  # a header promising 255 bytes
    result = ins.verify_db(path)
    assert result["ok"], result["errors"]
    assert [x["path"] for x in result["warnings"]] == [w["path"]]
    assert "torn" in result["warnings"][0]["message"]


def test_verify_single_files(built):
    path, _db, _ops = built
    info = ins.inspect_db(path)
    f = info["files"][0]["path"]
    assert ins.verify_path(f)["ok"]
    flip(f, os.path.getsize(f) - 1)  # the footer's magic
    r = ins.verify_path(f)
    assert not r["ok"] and "magic" in r["errors"][0]["message"]
    with pytest.raises(CorruptionError):
        ins.inspect_sst(f)
    with pytest.raises(ValueError):
        ins.verify_path(os.path.join(path, "OPTIONS"))


def test_not_a_db(tmp_path):
    with pytest.raises(FileNotFoundError):
        ins.inspect_db(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        ins.verify_db(str(tmp_path))
