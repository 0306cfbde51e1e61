"""The dump codec (shalekv/backup/dump.py, docs/format/dump.md): what is written reads
back exactly (all five types, binary keys, empty strings, infinite scores, expiries),
collections stream in bounded frames, and any damage -- a truncation, a flipped
byte, a dropped frame -- is a CorruptionError with the file and offset, never wrong
data."""

from __future__ import annotations

import io
import math
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shalekv.backup import dump
from shalekv.backup.dump import DumpReader, DumpWriter
from shalekv.backup.transfer_record import Entry, KeyType
from shalekv.errors import CorruptionError

DOC = Path(__file__).resolve().parents[2] / "docs" / "format" / "dump.md"

# (key, type, expire_at_ms, items) -- items flattened over chunks
Plain = tuple[bytes, KeyType, int | None, list[Any]]


def entry(p: Plain, chunk: int = 3) -> Entry:
    key, kind, exp, items = p
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    return Entry(key, kind, exp, iter(chunks))


def write(plains: list[Plain], chunk: int = 3) -> bytes:
    f = io.BytesIO()
    w = DumpWriter(f, created_ms=1_700_000_000_000)
    for p in plains:
        w.write(entry(p, chunk))
    w.finish()
    return f.getvalue()


def read(data: bytes, out: list[Plain] | None = None) -> list[Plain]:
    """Every key as (key, type, expiry, items); appends to out as it goes, so a test
    sees what was returned before an error."""
    got: list[Plain] = [] if out is None else out
    r = DumpReader(io.BytesIO(data), "test.dump")
    for e in r:
        items: list[Any] = []
        for c in e.chunks:
            items.extend(c)
        got.append((e.key, e.type, e.expire_at_ms, items))
    info = r.info()
    assert info.keys == len(got)
    assert info.size == len(data)
    return got


def normal(p: Plain) -> Plain:
    """A string's pieces joined: the writer may cut a value differently."""
    key, kind, exp, items = p
    if kind is KeyType.STRING:
        return (key, kind, exp, [b"".join(items)])
    return p


SAMPLE: list[Plain] = [
    (b"s", KeyType.STRING, None, [b"hello"]),
    (b"", KeyType.STRING, 1_800_000_000_123, [b""]),
    (b"\x00bin\xff", KeyType.LIST, None, [b"a", b"", b"\x00\xff", b"a"]),
    (b"h", KeyType.HASH, None, [(b"f1", b"v1"), (b"", b"")]),
    (b"set", KeyType.SET, 1, [b"m1", b"m2", b"m3", b"m4"]),
    (
        b"z",
        KeyType.ZSET,
        None,
        [(b"lo", -math.inf), (b"m", -0.0), (b"x", 0.1), (b"tiny", 5e-324), (b"hi", math.inf)],
    ),
]


def test_round_trip_all_types():
    assert [normal(p) for p in read(write(SAMPLE))] == SAMPLE


def test_scores_are_bit_exact():
    got = read(write(SAMPLE))[-1][3]
    for (_, want), (_, have) in zip(SAMPLE[-1][3], got, strict=True):
        assert struct.pack("<d", want) == struct.pack("<d", have)


keys = st.binary(max_size=12)
blobs = st.binary(max_size=40)
expiry = st.none() | st.integers(min_value=0, max_value=2**62)
scores = st.floats(allow_nan=False)
plain = st.one_of(
    st.tuples(keys, st.just(KeyType.STRING), expiry, st.lists(blobs, min_size=1, max_size=4)),
    st.tuples(keys, st.just(KeyType.LIST), expiry, st.lists(blobs, min_size=1, max_size=30)),
    st.tuples(keys, st.just(KeyType.SET), expiry, st.lists(blobs, min_size=1, max_size=30)),
    st.tuples(
        keys,
        st.just(KeyType.HASH),
        expiry,
        st.lists(st.tuples(blobs, blobs), min_size=1, max_size=20),
    ),
    st.tuples(
        keys,
        st.just(KeyType.ZSET),
        expiry,
        st.lists(st.tuples(blobs, scores), min_size=1, max_size=20),
    ),
)


@given(
    st.lists(plain, max_size=12),
    st.integers(min_value=1, max_value=7),
    st.sampled_from([8, 64, 1 << 20]),
)
def test_round_trip_random(plains, chunk, frame_target):
    old = dump.FRAME_TARGET
    dump.FRAME_TARGET = frame_target  # small frames: values cut across many of them
    try:
        data = write(plains, chunk)
    finally:
        dump.FRAME_TARGET = old
    got = read(data)
    assert [normal(p) for p in got] == [normal(p) for p in plains]
    for (_, kind, _, a), (_, _, _, b) in zip(got, plains, strict=True):
        if kind is KeyType.ZSET:  # -0.0 == 0.0: compare the bits
            assert [struct.pack("<d", s) for _, s in a] == [struct.pack("<d", s) for _, s in b]


def test_big_collection_streams_in_bounded_frames(monkeypatch):
    monkeypatch.setattr(dump, "FRAME_TARGET", 4096)
    n = 200_000

    def chunks():
        for i in range(0, n, 10_000):
            yield [b"%08d" % j for j in range(i, i + 10_000)]

    f = io.BytesIO()
    w = DumpWriter(f)
    w.write(Entry(b"big", KeyType.LIST, None, chunks()))
    w.finish()
    f.seek(0)
    r = DumpReader(f, "big.dump")
    e = next(iter(r))
    total = 0
    sizes = []
    for c in e.chunks:
        assert c[0] == b"%08d" % total  # order kept across frames
        total += len(c)
        sizes.append(len(c))
    assert total == n
    assert max(sizes) * 12 <= 4096 + 12  # a frame holds about FRAME_TARGET bytes
    assert len(sizes) > 100


def test_unread_chunks_are_skipped():
    r = DumpReader(io.BytesIO(write(SAMPLE, chunk=1)), "t")
    assert [e.key for e in r] == [p[0] for p in SAMPLE]
    assert r.info().items == sum(len(p[3]) for p in SAMPLE)


def test_empty_dump_and_empty_collection():
    assert read(write([])) == []
    f = io.BytesIO()
    w = DumpWriter(f)
    assert w.write(Entry(b"gone", KeyType.SET, None, iter([[]]))) == 0  # vanished: nothing
    w.finish()
    assert read(f.getvalue()) == []


def test_nan_score_refused():
    with pytest.raises(ValueError, match="NaN"):
        write([(b"z", KeyType.ZSET, None, [(b"m", math.nan)])])


# ------------------------------------------------------------------ damage


def _damaged(data: bytes) -> tuple[CorruptionError, list[Plain]]:
    seen: list[Plain] = []
    with pytest.raises(CorruptionError) as ei:
        read(data, seen)
    return ei.value, seen


def _assert_prefix(seen: list[Plain], good: list[Plain]) -> None:
    """The keys returned before the error are exactly the first keys of the real
    content: damage stops the reader, it never alters what it returns."""
    assert seen == good[: len(seen)]


@pytest.mark.parametrize("frame_target", [1 << 20, 8])
def test_every_truncation_is_detected(monkeypatch, frame_target):
    monkeypatch.setattr(dump, "FRAME_TARGET", frame_target)
    good_plains = SAMPLE * 3
    data = write(good_plains, chunk=2)
    good = read(data)
    for cut in range(len(data)):
        err, seen = _damaged(data[:cut])
        assert err.path == "test.dump"
        assert err.offset is not None and err.offset <= cut
        assert "test.dump" in str(err) and f"offset {err.offset}" in str(err)
        _assert_prefix(seen, good)


@pytest.mark.parametrize("frame_target", [1 << 20, 8])
def test_every_flipped_byte_is_detected(monkeypatch, frame_target):
    monkeypatch.setattr(dump, "FRAME_TARGET", frame_target)
    data = write(SAMPLE, chunk=2)
    good = read(data)
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            err, seen = _damaged(bytes(bad))
            assert err.offset is not None and err.offset <= i
            _assert_prefix(seen, good)


def _frames(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, end, kind) of every frame after the header."""
    out = []
    at = 28
    while at < len(data):
        kind, length = struct.unpack_from("<BI", data, at)
        end = at + 5 + length + 4
        out.append((at, end, kind))
        at = end
    return out


@pytest.mark.parametrize("frame_target", [1 << 20, 8])
def test_dropped_or_swapped_frames_are_detected(monkeypatch, frame_target):
    monkeypatch.setattr(dump, "FRAME_TARGET", frame_target)  # 8: keys of many frames
    data = write(SAMPLE, chunk=2)
    frames = _frames(data)
    if frame_target == 8:
        assert {dump.FRAME_CHUNK, dump.FRAME_END} <= {f[2] for f in frames}
    assert frames[-1][2] == dump.FRAME_TRAILER
    for at, end, _ in frames[:-1]:  # drop any one frame
        _damaged(data[:at] + data[end:])
    # a whole key removed: the chained CRC still breaks at the next frame
    keys = [f for f in frames if f[2] == dump.FRAME_KEY]
    err, _ = _damaged(data[: keys[1][0]] + data[keys[2][0] :])
    assert err.offset == keys[1][0]
    # two keys swapped
    a = data[keys[0][0] : keys[1][0]]
    b = data[keys[1][0] : keys[2][0]]
    _damaged(data[: keys[0][0]] + b + a + data[keys[2][0] :])
    # data after the trailer
    err, _ = _damaged(data + b"\x00")
    assert "after the trailer" in str(err)


def test_not_a_dump_and_unknown_version():
    with pytest.raises(CorruptionError, match="not a dump file") as ei:
        DumpReader(io.BytesIO(b"SHLKVSST" + bytes(40)), "x.sst")
    assert ei.value.offset == 0
    data = bytearray(write([]))
    struct.pack_into("<I", data, 8, 2)
    from crc32c import crc32c

    struct.pack_into("<I", data, 24, dump.mask(crc32c(bytes(data[:24]))))
    with pytest.raises(CorruptionError, match="version 2"):
        DumpReader(io.BytesIO(bytes(data)), "v2.dump")


# ------------------------------------------------------------------ the documented example


def test_worked_example_in_docs_matches_the_writer():
    """docs/format/dump.md's hexdump is what the writer produces for its example."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- example-hexdump -->", 1)[1].split("```", 2)[1]
    hexbytes = []
    for line in block.strip().splitlines():
        fields = line.split("|")[0].split()
        assert re.fullmatch("[0-9a-f]{8}", fields[0]), line
        hexbytes.extend(fields[1:])
    doc_bytes = bytes(int(h, 16) for h in hexbytes)
    f = io.BytesIO()
    w = DumpWriter(f, created_ms=1_700_000_000_000)
    w.write(Entry(b"k", KeyType.STRING, None, iter([[b"v"]])))
    w.write(Entry(b"z", KeyType.ZSET, 1_700_000_060_000, iter([[(b"m", 1.5)]])))
    w.finish()
    assert f.getvalue() == doc_bytes
    assert read(doc_bytes) == [
        (b"k", KeyType.STRING, None, [b"v"]),
        (b"z", KeyType.ZSET, 1_700_000_060_000, [(b"m", 1.5)]),
    ]
