"""The framed log shared by WAL and MANIFEST: round trips, torn tails, corruption."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
