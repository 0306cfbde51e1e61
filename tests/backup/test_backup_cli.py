"""`shalekv backup ...` (shalekv/cli/backup.py): JSON outputs, exit codes (0 ok, 1
damage naming the file, 2 usage), a DB dir a process holds refused, progress bars on a
terminal only; and kill -9 in the middle of a create (a subprocess), after which list,
verify and create work and the earlier backup is intact."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shalekv.backup.engine import BackupEngine
from shalekv.cli.main import app
from shalekv.engine import DB
from tests.dbfiles import SMALL, flip, k

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["backup", *args])


def fill(path: str, start: int, n: int, big_every: int = 40, **opts) -> dict[bytes, bytes]:
    with DB.open(path, **{**SMALL, **opts}) as db:
        for i in range(start, start + n):
            db.put(k(i), os.urandom(1500) if i % big_every == 0 else b"v%d" % i)
        return dict(db.items())


def contents(path: str) -> dict[bytes, bytes]:
    with DB.open(path, compaction_workers=0) as db:
        return dict(db.items())


def test_cli_round_trip_with_json(tmp_path):
    db, bk = str(tmp_path / "db"), str(tmp_path / "bk")
    fill(db, 0, 1500)
    r = run("create", "--dir", db, "--backup-dir", bk, "--json")
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["id"] == 1 and first["new_bytes"] == first["size"] > 0
    expected = fill(db, 1500, 30)
    second = json.loads(run("create", "--dir", db, "--backup-dir", bk, "--json").stdout)
    assert second["id"] == 2 and 0 < second["new_bytes"] < second["size"]
    assert second["sequence"] > first["sequence"]

    listed = json.loads(run("list", "--backup-dir", bk, "--json").stdout)
    assert [(b["id"], b["sequence"], b["new_bytes"]) for b in listed] == [
        (1, first["sequence"], first["new_bytes"]),
        (2, second["sequence"], second["new_bytes"]),
    ]
    r = run("list", "--backup-dir", bk)
    assert r.exit_code == 0 and "new bytes" in r.stdout and "sequence" in r.stdout

    r = run("verify", "--backup-dir", bk, "--json")
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)
    assert v["ok"] and v["backups"] == [1, 2] and v["problems"] == []

    target = str(tmp_path / "restored")
    r = run("restore", "--backup-dir", bk, "--to", target, "--json")  # default: newest
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["id"] == 2
    assert contents(target) == expected
    r = run("restore", "--backup-dir", bk, "--to", target)
    assert r.exit_code == 2 and "not empty" in r.output

    r = run("purge", "--backup-dir", bk, "--keep", "1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["deleted_backups"] == [1]
    assert [b["id"] for b in json.loads(run("list", "--backup-dir", bk, "--json").stdout)] == [2]


def test_cli_damage_exits_1_naming_the_file(tmp_path):
    db, bk = str(tmp_path / "db"), str(tmp_path / "bk")
    fill(db, 0, 1200)
    assert run("create", "--dir", db, "--backup-dir", bk).exit_code == 0
    info = BackupEngine(bk).get(1)
    blob = next(f for f in info.files if f.name.startswith("blob/"))
    path = os.path.join(bk, blob.path)
    flip(path, 100)
    r = run("verify", "--backup-dir", bk)
    assert r.exit_code == 1 and path in r.output and "FAILED" in r.output
    r = run("verify", "--backup-dir", bk, "--json")
    assert r.exit_code == 1
    assert [p["path"] for p in json.loads(r.stdout)["problems"]] == [path]
    r = run("restore", "--backup-dir", bk, "--to", str(tmp_path / "r"))
    assert r.exit_code == 1 and path in r.output
    assert not (tmp_path / "r").exists() or os.listdir(tmp_path / "r") == []
    flip(BackupEngine(bk).meta_path(1), 30)  # the meta file itself
    r = run("verify", "--backup-dir", bk, "--id", "1")
    assert r.exit_code == 1 and BackupEngine(bk).meta_path(1) in r.output


def test_cli_usage_errors_exit_2(tmp_path):
    bk = str(tmp_path / "bk")
    assert run("create", "--backup-dir", bk).exit_code == 2  # neither --dir nor --server
    assert run("verify", "--backup-dir", bk).exit_code == 2  # no backups
    assert run("restore", "--backup-dir", bk, "--to", str(tmp_path / "r")).exit_code == 2
    r = run("create", "--dir", str(tmp_path / "none"), "--backup-dir", bk)
    assert r.exit_code == 2 and "not a directory" in r.output
    db = str(tmp_path / "db")
    fill(db, 0, 100)
    assert run("verify", "--backup-dir", bk, "--id", "4").exit_code == 2
    assert run("purge", "--backup-dir", bk, "--keep", "-1").exit_code == 2
    with DB.open(db, compaction_workers=0):  # held, as a running server holds its dir
        r = run("create", "--dir", db, "--backup-dir", bk)
    assert r.exit_code == 2 and "--server" in r.output and "LOCK" in r.output
    assert BackupEngine(bk).ids() == []


def test_progress_bar_only_on_a_terminal(tmp_path):
    db, bk = str(tmp_path / "db"), str(tmp_path / "bk")
    fill(db, 0, 600)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "shalekv.cli.main", "backup", "create", "--dir", db]
    master, slave = pty.openpty()
    try:
        p = subprocess.run(
            [*cmd, "--backup-dir", bk],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            cwd=REPO,
            timeout=60,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert p.returncode == 0, shown
    assert b"copying" in shown and b"/s" in shown  # the bar, with its transfer rate
    p = subprocess.run(
        [*cmd, "--backup-dir", bk], capture_output=True, env=env, cwd=REPO, timeout=60
    )
    assert p.returncode == 0 and p.stderr == b""  # not a terminal: no bar
    assert b"backup 2 created" in p.stdout


# ---------------------------------------------------------------- kill -9 mid-create

_CREATE = """
import sys, time
from shalekv.backup.engine import BackupEngine
db, bk, point = sys.argv[1:4]
def progress(stage, done, total):
    if stage == point and (point == "commit" or done * 2 >= total > 0):
        print("AT", stage, done, total, flush=True)
        time.sleep(60)
BackupEngine(bk).create(db, progress)
print("DONE", flush=True)
"""


def create_killed(db: str, bk: str, point: str) -> None:
    """A subprocess creating a backup of db, killed with SIGKILL at point."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CREATE, db, bk, point],
        stdout=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    guard = threading.Timer(60, proc.kill)  # never left running, whatever happens
    guard.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(b"AT " + point.encode()), line
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("point", ["copy", "commit"])
def test_kill_9_during_create(tmp_path, point):
    db, bk = str(tmp_path / "db"), str(tmp_path / "bk")
    big = {"memtable_size": 1 << 20, "target_file_size": 1 << 20, "blob_threshold": 20000}
    first = fill(db, 0, 800, big_every=20, **big)
    engine = BackupEngine(bk)
    engine.create(db)
    with DB.open(db, **{**SMALL, **big}) as d:  # ~6 MB more: several 1 MiB copy chunks
        for i in range(60):
            d.put(b"big%03d" % i, os.urandom(64 << 10))
        for i in range(800, 2800):
            d.put(k(i), os.urandom(1000))
        second = dict(d.items())
    create_killed(db, bk, point)

    # Nothing half-done is visible; the earlier backup is intact.
    assert engine.ids() == [1]
    assert [i.id for i in engine.list()] == [1]
    assert engine.verify().ok
    leftovers = os.listdir(os.path.join(bk, "tmp")) + [
        n for n in os.listdir(os.path.join(bk, "meta")) if n.endswith(".tmp")
    ]
    assert leftovers  # the killed create did leave something behind
    r = run("list", "--backup-dir", bk, "--json")
    assert r.exit_code == 0 and [b["id"] for b in json.loads(r.stdout)] == [1]

    # The next create cleans up and succeeds.
    info = engine.create(db)
    assert info.id == 2 and engine.ids() == [1, 2]
    assert os.listdir(os.path.join(bk, "tmp")) == []
    assert sorted(os.listdir(os.path.join(bk, "meta"))) == ["000001", "000002"]
    referenced = {f.path for i in engine.list() for f in i.files if f.shared}
    assert {f"shared/{n}" for n in os.listdir(os.path.join(bk, "shared"))} == referenced
    assert sorted(os.listdir(os.path.join(bk, "private"))) == ["000001", "000002"]
    assert run("verify", "--backup-dir", bk).exit_code == 0
    engine.restore(1, tmp_path / "r1")
    engine.restore(2, tmp_path / "r2")
    assert contents(str(tmp_path / "r1")) == first
    assert contents(str(tmp_path / "r2")) == second
