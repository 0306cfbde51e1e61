"""The framed log shared by WAL and MANIFEST: round trips, torn tails, corruption."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shalekv.engine import DB
from shalekv.engine.log_format import BLOCK_SIZE, HEADER_SIZE, LogReader, LogWriter
from shalekv.errors import CorruptionError


def write_records(path, records):
    w = LogWriter(path)
    for r in records:
        w.add_record([r[:3], r[3:]])
    w.close()


@given(
    st.lists(
        st.one_of(st.binary(max_size=200), st.integers(0, 3 * BLOCK_SIZE).map(lambda n: b"x" * n)),
        max_size=12,
    )
)
def test_round_trip(tmp_path_factory, records):
    path = str(tmp_path_factory.mktemp("log") / "a.log")
    write_records(path, records)
    assert [r for _, r in LogReader(path)] == records


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK_SIZE - HEADER_SIZE, BLOCK_SIZE - HEADER_SIZE + 1, 5 * BLOCK_SIZE]
)
def test_block_edges(tmp_path, size):
    path = str(tmp_path / "a.log")
    recs = [b"a" * (BLOCK_SIZE - 20), os.urandom(size), b"tail"]
    write_records(path, recs)
    assert [r for _, r in LogReader(path)] == recs


def test_torn_tail_recovers_complete_records(tmp_path):
    path = str(tmp_path / "a.log")
    recs = [os.urandom(100) for _ in range(10)] + [os.urandom(70000)]
    write_records(path, recs)
    full = os.path.getsize(path)
    for cut in (full - 1, full - 40000, full - 70000):
        os.truncate(path, cut)
        reader = LogReader(path)
        got = [r for _, r in reader]
        assert got == recs[: len(got)]
        assert len(got) == 10
        assert reader.torn_offset is not None


def test_flipped_byte_is_corruption_with_offset(tmp_path):
    path = str(tmp_path / "a.log")
    write_records(path, [b"a" * 100, b"b" * 100, b"c" * 100])
    data = bytearray(open(path, "rb").read())
    data[107 + 50] ^= 0x01  # inside the second record's payload
    open(path, "wb").write(bytes(data))
    with pytest.raises(CorruptionError) as ei:
        list(LogReader(path))
    assert ei.value.path == path
    assert ei.value.offset == 107


def test_record_starting_seven_bytes_before_a_block_edge(tmp_path):
    """An empty FIRST fragment at a block's end must be followed by LAST, not FULL."""
    path = str(tmp_path / "a.log")
    first = b"a" * (BLOCK_SIZE - 2 * HEADER_SIZE)  # leaves exactly HEADER_SIZE bytes
    recs = [first, b"b" * 100, b"c" * 50]
    write_records(path, recs)
    assert [r for _, r in LogReader(path)] == recs


# ---------------------------------------------------------------- deferred writes


@given(
    st.lists(
        st.tuples(
            st.one_of(st.binary(max_size=300), st.integers(0, 2 * BLOCK_SIZE).map(b"y".__mul__)),
            st.booleans(),  # write what is pending after this record
        ),
        max_size=20,
    )
)
def test_deferred_writes_the_same_bytes(tmp_path_factory, records):
    """Deferred records reach the file only on write_pending/sync/close, and the file
    is byte for byte what immediate writes make (large records flush what is pending
    first, so the order holds)."""
    d = tmp_path_factory.mktemp("log")
    write_records(str(d / "now.log"), [r for r, _ in records])
    w = LogWriter(str(d / "later.log"))
    w.deferred = True
    for r, flush in records:
        w.add_record([r[:3], r[3:]])
        on_disk = os.path.getsize(w.path)
        assert on_disk == w.size - sum(map(len, w.pending))
        if flush:
            w.write_pending()
            assert os.path.getsize(w.path) == w.size
    w.close()
    assert (d / "later.log").read_bytes() == (d / "now.log").read_bytes()


_FAILING_WRITER = r"""
import json, os, resource, signal, sys
from shalekv.engine import DB
from shalekv.errors import BackgroundError
path, limit = sys.argv[1], int(sys.argv[2])
db = DB.open(path, fsync="no", memtable_size=64 << 20)
db.defer_wal()
acked = []
for i in range(20):
    db.put(b"a%02d" % i, b"v" * 100)
db.write_wal()
acked = [i for i in range(20)]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
wal = db._wal.path
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(wal) + 500, resource.RLIM_INFINITY))
for i in range(20):
    db.put(b"b%02d" % i, b"w" * 100)
out = {"wal_before": os.path.getsize(wal)}
try:
    db.write_wal()
    out["write_wal"] = "ok"
except BackgroundError as e:
    out["write_wal"] = str(e)
out["wal_after"] = os.path.getsize(wal)
try:
    db.put(b"c", b"x")
    out["put_after"] = "ok"
except BackgroundError as e:
    out["put_after"] = str(e)
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)  # as a crash: the DB is not closed
"""


def test_deferred_write_failure_stops_writes_and_loses_only_unacknowledged(tmp_path):
    """write_wal() hitting EFBIG: the file is cut back to its last whole record, the
    DB refuses further writes, and a reopen holds exactly the acknowledged writes."""
    db_path = tmp_path / "db"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITER, str(db_path), "0"],
        capture_output=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    assert "WAL write failed" in out["write_wal"]
    assert out["wal_after"] == out["wal_before"]  # nothing of the failed group remains
    assert "writes stopped after a background error" in out["put_after"]
    with DB.open(db_path) as db:
        keys = [k for k, _ in db.items()]
    assert keys == [b"a%02d" % i for i in range(20)]
