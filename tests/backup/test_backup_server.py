"""Online backups (shalekv/server/commands/backup.py): BACKUP CREATE while a client
keeps running MULTI/EXEC transactions; each restored backup holds every transaction
up to some point and none half-applied; INFO persistence reports the result; the
CLI's `--server` path; a running server's data dir is refused offline."""

from __future__ import annotations

import json
import threading

import pytest
import redis
from typer.testing import CliRunner

import shalekv
from shalekv.cli.main import app
from tests.shalekv_server import shalekv_server

runner = CliRunner()


def pairs(reply: list) -> dict[str, object]:
    return {k.decode(): v for k, v in zip(reply[::2], reply[1::2], strict=True)}


def check_transactions(path: str) -> int:
    """A restored store: a == b == len(log) and log == 1..n (all-or-nothing, in order)."""
    db = shalekv.open(path)
    try:
        n = len(db.lrange("log", 0, -1))
        assert [int(x) for x in db.lrange("log", 0, -1)] == list(range(1, n + 1))
        assert int(db.get("a") or 0) == n and int(db.get("b") or 0) == n
        assert db.hlen("h") == min(n, 50)
        return n
    finally:
        db.close()


def test_backup_while_a_client_writes(tmp_path):
    bk = str(tmp_path / "bk")
    with shalekv_server(str(tmp_path / "data")) as sp:
        r = redis.Redis(port=sp.port)
        stop = threading.Event()
        done = [0]
        errors: list[BaseException] = []

        def writer() -> None:
            w = redis.Redis(port=sp.port)
            try:
                while not stop.is_set() and done[0] < 50000:
                    i = done[0] + 1
                    p = w.pipeline(transaction=True)
                    p.incr("a").rpush("log", i).hset("h", f"f{i % 50}", "x" * 200).incr("b")
                    p.execute()
                    done[0] = i
            except BaseException as e:  # noqa: BLE001  # reported by the test
                errors.append(e)
            finally:
                w.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            while done[0] < 300 and t.is_alive():
                stop.wait(0.01)
            first = pairs(r.execute_command("BACKUP", "CREATE", bk))
            assert r.ping()  # the connection is usable again after the reply
            while done[0] < 600 and t.is_alive():
                stop.wait(0.01)
            res = runner.invoke(
                app,
                [
                    "backup",
                    "create",
                    "--server",
                    f"127.0.0.1:{sp.port}",
                    "--backup-dir",
                    bk,
                    "--json",
                ],
            )
            assert res.exit_code == 0, res.output
            second = json.loads(res.stdout)
            persistence = r.info("persistence")
        finally:
            stop.set()
            t.join()
        assert not errors
        assert first["id"] == 1 and second["id"] == 2
        assert int(second["sequence"]) > int(first["sequence"])  # type: ignore[arg-type]
        assert persistence["last_backup_status"] == "ok"
        assert persistence["last_backup_id"] == 2 and persistence["backup_in_progress"] == 0
        assert persistence["last_backup_sequence"] == second["sequence"]
        listed = [pairs(x) for x in r.execute_command("BACKUP", "LIST", bk)]
        assert [x["id"] for x in listed] == [1, 2]

        with pytest.raises(redis.ResponseError, match="absolute path"):
            r.execute_command("BACKUP", "CREATE", "relative/bk")
        # The running server holds its dir: an offline backup of it is refused.
        res = runner.invoke(
            app, ["backup", "create", "--dir", str(tmp_path / "data"), "--backup-dir", bk]
        )
        assert res.exit_code == 2 and "--server" in res.output
        r.close()

    seen = []
    for i in (1, 2):
        target = str(tmp_path / f"r{i}")
        res = runner.invoke(
            app, ["backup", "restore", "--backup-dir", bk, "--id", str(i), "--to", target]
        )
        assert res.exit_code == 0, res.output
        seen.append(check_transactions(target))
    assert 0 < seen[0] <= seen[1] <= done[0]


def test_backup_failure_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with shalekv_server(str(tmp_path / "data")) as sp:
        r = redis.Redis(port=sp.port)
        r.set("k", "v")
        with pytest.raises(redis.ResponseError, match="backup failed"):
            r.execute_command("BACKUP", "CREATE", str(blocker / "bk"))
        st = pairs(r.execute_command("BACKUP", "STATUS"))
        assert st["last_backup_status"] == b"err" and st["backup_in_progress"] == 0
        assert r.info("persistence")["last_backup_status"] == "err"
        assert r.get("k") == b"v"  # the server goes on
        p = r.pipeline(transaction=True)
        p.execute_command("BACKUP", "CREATE", str(tmp_path / "bk"))
        with pytest.raises(redis.ResponseError, match="not allowed inside MULTI"):
            p.execute()
        assert not (tmp_path / "bk").exists()
        r.close()
