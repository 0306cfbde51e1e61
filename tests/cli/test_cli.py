"""The `shalekv` command line: inspect and verify print what the engine found, and the
exit code tells a script whether the DB is intact (0), damaged (1) or not a DB (2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from shalekv.cli.main import app
from shalekv.engine import DB
from shalekv.engine import inspect as ins
from tests.dbfiles import SMALL, flip, k

runner = CliRunner()


@pytest.fixture
def db_dir(tmp_path):
    """A closed DB: tables on several levels, blob files, and a live WAL segment."""
    path = str(tmp_path / "db")
    with DB.open(path, **SMALL) as db:
        for i in range(3000):
            db.put(k(i), (b"B" * 1500) if i % 50 == 0 else b"v%d" % i)
        for i in range(0, 3000, 11):
            db.delete(k(i))
        db.flush()
        db.put(b"[not markup]", b"unflushed")
    return path


def run(*args: str):
    return runner.invoke(app, list(args))


def test_inspect_db_tables_and_json(db_dir):
    expected = ins.inspect_db(db_dir)
    r = run("inspect", db_dir)
    assert r.exit_code == 0, r.output
    for title in ("Levels", "Tables", "Blob files", "WAL segments"):
        assert title in r.output
    for f in expected["files"]:
        assert f"│ {f['number']:>6} │" in r.output  # every table number in its column
    assert f"last_sequence {expected['last_sequence']}" in r.output
    r = run("inspect", db_dir, "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert [lv["files"] for lv in data["levels"]] == [lv["files"] for lv in expected["levels"]]
    assert len(data["files"]) == len(expected["files"]) > 1
    assert data["wal_segments"][-1]["records"] == 1


def test_inspect_sst_and_dump(db_dir):
    f = ins.inspect_db(db_dir)["files"][0]["path"]
    r = run("inspect", f)
    assert r.exit_code == 0, r.output
    for word in ("Footer", "Properties", "Meta blocks", "Data blocks", "0x53484c4b56535354"):
        assert word in r.output
    assert "Entries" not in r.output
    r = run("inspect", f, "--dump", "--limit", "3")
    assert r.exit_code == 0, r.output
    assert "Entries (3 shown)" in r.output
    data = json.loads(run("inspect", f, "--dump", "--json").output)
    assert len(data["entries"]) == data["properties"]["entries"]
    first = bytes.fromhex(data["entries"][0]["key"])
    assert repr(first) in r.output  # key shown as bytes repr ...
    assert first.hex() in r.output  # ... and as hex


def test_inspect_wal_shows_keys_verbatim(db_dir):
    [w] = [w for w in ins.inspect_db(db_dir)["wal_segments"] if w["records"]]
    r = run("inspect", w["path"], "--dump")
    assert r.exit_code == 0, r.output
    assert "b'[not markup]'" in r.output  # rich markup is not applied to keys


def test_verify_good_db(db_dir):
    r = run("verify", db_dir)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("OK: ")
    data = json.loads(run("verify", db_dir, "--json").output)
    assert data["ok"] and data["errors"] == []
    assert data["files"] == len(data["checked"]) >= 4
    assert f"{data['files']} files, {data['blocks']} blocks" in r.output


def _victim(db_dir: str, kind: str) -> tuple[str, int]:
    info = ins.inspect_db(db_dir)
    if kind == "sst":
        f = info["files"][-1]["path"]
        blk = ins.inspect_sst(f)["data_blocks"][0]
        flip(f, blk["offset"] + 5)
        return f, blk["offset"]
    if kind == "blob":
        f = info["blob_files"][-1]["path"]
        flip(f, os.path.getsize(f) - 16 - 3)  # the last value's last bytes
        rec = ins.blob_records(f)
        return f, [r["offset"] for r in rec][-1]
    [w] = [w for w in info["wal_segments"] if w["records"]]
    flip(w["path"], 7 + 14)  # inside the only record
    return w["path"], 0


@pytest.mark.parametrize("kind", ["sst", "blob", "wal"])
def test_verify_names_the_damaged_file(db_dir, kind):
    path, offset = _victim(db_dir, kind)
    r = run("verify", db_dir)
    assert r.exit_code == 1
    assert f"corruption in {path} at offset {offset}: " in r.output
    assert "FAILED (1 problems)" in r.output
    data = json.loads(run("verify", db_dir, "--json").output)
    assert not data["ok"]
    assert [(e["path"], e["offset"]) for e in data["errors"]] == [(path, offset)]
    r = run("verify", path)  # the single file alone
    assert r.exit_code == 1 and path in r.output


def test_inspect_damaged_table_marks_the_block(db_dir):
    path, offset = _victim(db_dir, "sst")
    r = run("inspect", path)
    assert r.exit_code == 1
    assert "BAD" in r.output
    assert "1 data block(s) fail their checksum" in r.output


def test_not_a_db_is_a_usage_error(tmp_path):
    r = run("verify", str(tmp_path))
    assert r.exit_code == 2 and "no CURRENT" in r.output
    r = run("inspect", str(tmp_path / "missing"))
    assert r.exit_code == 2
    r = run("inspect", str(tmp_path))
    assert r.exit_code == 2


def test_console_script(db_dir):
    """The installed `shalekv` script (pyproject's [project.scripts]) reaches main()."""
    script = os.path.join(os.path.dirname(sys.executable), "shalekv")
    assert os.path.exists(script), "pip install -e . should have created the script"
    p = subprocess.run([script, "verify", db_dir, "--json"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ok"]
    f = ins.inspect_db(db_dir)["files"][0]["path"]
    flip(f, os.path.getsize(f) - 1)
    p = subprocess.run([script, "verify", db_dir], capture_output=True, timeout=60)
    assert p.returncode == 1
    assert f"corruption in {f}".encode() in p.stdout
