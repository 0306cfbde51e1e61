"""The data block hash index (SSTable format 2, FLAG_HASH8/16): a point lookup through
it finds exactly what a binary search finds (a key's newest entry, or nothing), for
blocks of one and of several versions per key, with u8 and u16 buckets; format-1
blocks and tables (no index) still read; a damaged index is a clear error."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xxhash import xxh64_intdigest

from shalekv.engine import sstable
from shalekv.engine.block_cache import BlockCache
from shalekv.engine.sstable import (
    FLAG_HASH8,
    FLAG_HASH16,
    DecodedBlock,
    SSTableReader,
    SSTableWriter,
    encode_data_block,
)
from shalekv.engine.write_batch import PUT
from shalekv.errors import CorruptionError

small_keys = st.binary(min_size=0, max_size=6)


def _block(versions: dict[bytes, int], hashed: bool = True) -> tuple[bytes, list[bytes]]:
    """A block holding each key with its number of versions (newest first)."""
    keys, tags, values = [], [], []
    for k in sorted(versions):
        for v in range(versions[k], 0, -1):
            keys.append(k)
            tags.append(v << 8 | PUT)
            values.append(b"%s@%d" % (k, v))
    multi = any(n > 1 for n in versions.values())
    return encode_data_block(keys, tags, values, multi, hashed), keys


def _first(keys: list[bytes], key: bytes) -> int:
    return keys.index(key) if key in keys else -1


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(small_keys, st.integers(1, 3), min_size=1, max_size=80),
    st.lists(small_keys, max_size=30),
)
def test_lookup_matches_a_search(versions: dict[bytes, int], probes: list[bytes]) -> None:
    payload, keys = _block(versions)
    blk = DecodedBlock(payload)
    assert blk.flags & FLAG_HASH8 and blk.buckets is not None
    assert len(blk.buckets) == 2 * len(versions)
    plain = DecodedBlock(_block(versions, hashed=False)[0])
    assert plain.buckets is None and not plain.flags & (FLAG_HASH8 | FLAG_HASH16)
    for k in [*versions, *probes]:
        want = _first(keys, k)
        assert blk.lookup(k, xxh64_intdigest(k)) == want, k
        assert plain.lookup(k, xxh64_intdigest(k)) == want, k
        if want >= 0:
            assert blk.value(want) == b"%s@%d" % (k, versions[k])  # the newest


def test_wide_buckets_for_big_blocks() -> None:
    versions = {b"k%05d" % i: 1 + i % 2 for i in range(300)}  # 450 entries
    payload, keys = _block(versions)
    blk = DecodedBlock(payload)
    assert blk.flags & FLAG_HASH16 and not blk.flags & FLAG_HASH8
    assert blk.n == 450 and len(blk.buckets) == 600
    for k in [*versions, b"k", b"k00000\x00", b"z"]:
        assert blk.lookup(k, xxh64_intdigest(k)) == _first(keys, k)
    few = DecodedBlock(_block({b"k%03d" % i: 1 for i in range(254)})[0])
    assert few.flags & FLAG_HASH8  # 254 entries: one-byte buckets still fit


def test_damaged_index_is_an_error() -> None:
    payload, keys = _block({b"a": 1, b"b": 2, b"c": 1})
    blk = DecodedBlock(payload)
    nb = len(blk.buckets)
    # a bucket naming an entry past the block's end (not the empty mark)
    i = next(j for j in range(nb) if blk.buckets[j] != 0xFF)
    bad = bytearray(payload)
    bad[len(payload) - nb + i] = 9
    broken = DecodedBlock(bytes(bad))
    with pytest.raises(ValueError, match="hash bucket"):
        for k in (b"a", b"b", b"c"):
            broken.lookup(k, xxh64_intdigest(k))
    # an index region whose size cannot be u16 buckets, and one cut off entirely
    head = struct.unpack_from("<IB", payload)
    wide = bytearray(payload)
    struct.pack_into("<IB", wide, 0, head[0], head[1] ^ FLAG_HASH8 | FLAG_HASH16)
    with pytest.raises(ValueError, match="hash index"):
        DecodedBlock(bytes(wide) + b"\x00")
    with pytest.raises(ValueError):
        DecodedBlock(payload[: len(payload) - nb])


def _set_bucket_bytes(payload: bytes, nb: int, buckets: list[int]) -> bytes:
    return payload[: len(payload) - nb] + bytes(buckets)


def test_index_not_fitting_the_block_is_an_error() -> None:
    """Damage the format can see without a checksum: bucket counts other than two per
    distinct key (the values' end moved into the index), both widths flagged, a
    bucket naming an older version, an index without an empty bucket."""
    versions = {b"k%d" % i: 1 for i in range(10)}
    payload, _ = _block(versions)
    n = 10
    moved = bytearray(payload)
    vend_last = 5 + 4 * n + 4 * (n - 1)  # value_end[n-1]
    struct.pack_into("<I", moved, vend_last, struct.unpack_from("<I", payload, vend_last)[0] - 2)
    with pytest.raises(ValueError, match="hash index"):
        DecodedBlock(bytes(moved))  # 22 buckets for 10 keys
    both = bytearray(payload)
    both[4] |= FLAG_HASH16
    with pytest.raises(ValueError, match="hash index"):
        DecodedBlock(bytes(both))
    multi, keys = _block({b"apple": 2, b"fig": 1})
    blk = DecodedBlock(multi)
    nb = len(blk.buckets)
    older = [1 if j == 0 else (0xFF if j != 2 else 2) for j in blk.buckets]  # apple -> 1
    broken = DecodedBlock(_set_bucket_bytes(multi, nb, older))
    with pytest.raises(ValueError, match="not its key's first"):
        broken.lookup(b"apple", xxh64_intdigest(b"apple"))
    full = DecodedBlock(_set_bucket_bytes(multi, nb, [2] * nb))  # every bucket: fig
    with pytest.raises(ValueError, match="no empty bucket"):
        full.lookup(b"kiwi", xxh64_intdigest(b"kiwi"))
    blk.check_index()  # the written one leads to every key
    lost = DecodedBlock(_set_bucket_bytes(multi, nb, [0xFF if j == 2 else j for j in blk.buckets]))
    with pytest.raises(ValueError, match="does not lead to entry 2"):
        lost.check_index()  # fig's bucket emptied: a lookup would say "absent"


def _write_table(path: str, n: int) -> None:
    w = SSTableWriter(path, block_size=512, codec=0)
    for i in range(n):
        w.add(b"key%05d" % i, i + 1, PUT, b"v%d" % i)
    w.finish()


def test_format_1_tables_still_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = str(tmp_path / "old.sst")
    with monkeypatch.context() as m:
        m.setattr(sstable, "FORMAT_VERSION", 1)
        m.setattr(sstable, "encode_data_block", functools.partial(encode_data_block, hashed=False))
        _write_table(old, 400)
    new = str(tmp_path / "new.sst")
    _write_table(new, 400)
    for path, version in ((old, 1), (new, 2)):
        r = SSTableReader(path, 1, None)
        try:
            assert r.props["format_version"] == version
            assert (r.block(0).buckets is None) == (version == 1)
            for i in range(0, 400, 7):
                assert r.get(b"key%05d" % i, None) == (i + 1, PUT, b"v%d" % i)
            for k in (b"key", b"key00003\x00", b"kez"):
                assert r.get(k, None) is None
        finally:
            r.close()


def test_verify_checks_the_index(tmp_path) -> None:
    from shalekv.engine.inspect import verify_table

    path = str(tmp_path / "t.sst")
    _write_table(path, 40)
    assert verify_table(path)["records"] == 40
    r = SSTableReader(path, 1, None)
    blk = r.block(0)
    nb, off, size = len(blk.buckets), r.block_offsets[0], r.block_sizes[0]
    r.close()
    with open(path, "r+b") as f:  # every bucket empty, and the CRC made to match
        f.seek(off)
        payload = bytearray(f.read(size))
        payload[size - nb :] = b"\xff" * nb
        f.seek(off)
        f.write(payload)
        f.write(
            sstable.TRAILER.pack(
                0, sstable.checksum.masked(b"\x00", sstable.checksum.value(bytes(payload)))
            )
        )
    with pytest.raises(CorruptionError, match="does not lead to entry 0"):
        verify_table(path)


def test_reader_reports_a_damaged_index(tmp_path) -> None:
    path = str(tmp_path / "t.sst")
    _write_table(path, 40)
    r = SSTableReader(path, 1, None, verify=False)  # so the CRC does not catch it first
    try:
        blk = r.block(0)
        nb = len(blk.buckets)
        off, size = r.block_offsets[0], r.block_sizes[0]
        with open(path, "r+b") as f:  # codec none: the payload is stored as is
            f.seek(off + size - nb)
            f.write(bytes([blk.n] * nb))  # every bucket names a missing entry
        with pytest.raises(CorruptionError, match="hash bucket"):
            r.get(blk.key(0), None)
    finally:
        r.close()


@pytest.mark.parametrize("cached", [False, True])
def test_reader_reports_each_kind_of_index_damage(tmp_path, cached: bool) -> None:
    """The point-read path probes the hash index inline (SSTableReader.find_entry),
    with and without a block cache: each damage DecodedBlock.lookup reports is a
    CorruptionError of the table there too, never a wrong answer."""
    path = str(tmp_path / "t.sst")
    w = SSTableWriter(path, block_size=1 << 16, codec=0)
    w.add(b"apple", 3, PUT, b"new")
    w.add(b"apple", 2, PUT, b"old")  # two versions: the block is multi-version
    w.add(b"fig", 1, PUT, b"f")
    w.finish()
    with open(path, "rb") as f:
        original = f.read()

    def damaged(buckets: Callable[[DecodedBlock], list[int]], key: bytes) -> str:
        with open(path, "wb") as f:
            f.write(original)
        r = SSTableReader(path, 1, None, verify=False)
        blk, off, size = r.block(0), r.block_offsets[0], r.block_sizes[0]
        r.close()
        nb = len(blk.buckets)
        with open(path, "r+b") as f:  # codec none: the payload is stored as is
            f.seek(off + size - nb)
            f.write(bytes(buckets(blk)))
        r = SSTableReader(path, 1, BlockCache(1 << 20, 0) if cached else None, verify=False)
        try:
            with pytest.raises(CorruptionError) as e:  # past the bloom filter (banana is absent)
                r.find_entry(key, None, xxh64_intdigest(key))
            return str(e.value)
        finally:
            r.close()

    assert "hash bucket names entry 3 of 3" in damaged(lambda b: [3] * len(b.buckets), b"fig")
    older = lambda b: [1 if j == 0 else j for j in b.buckets]  # noqa: E731 apple -> entry 1
    assert "not its key's first" in damaged(older, b"apple")
    assert "no empty bucket" in damaged(lambda b: [2] * len(b.buckets), b"banana")


def test_worked_example_in_docs_matches_the_writer(tmp_path) -> None:
    """docs/format/sstable.md's hexdump (lines elided by "...") is what the writer
    produces for its three entries, hash index included."""
    import re
    from pathlib import Path

    from shalekv.engine.write_batch import DELETE

    doc = Path(__file__).resolve().parents[2] / "docs" / "format" / "sstable.md"
    text = doc.read_text(encoding="utf-8").split("## Worked example", 1)[1]
    block = text.split("```", 2)[1]
    path = str(tmp_path / "ex.sst")
    w = SSTableWriter(path, codec=0, bloom_bits_per_key=10)
    w.add(b"apple", 2, PUT, b"red")
    w.add(b"apple", 1, PUT, b"green")
    w.add(b"fig", 3, DELETE, b"")
    w.finish()
    data = Path(path).read_bytes()
    assert f"— {len(data)} bytes" in text
    shown = 0
    for line in block.strip().splitlines():
        fields = line.split("|")[0].split()
        if not fields or not re.fullmatch("[0-9a-f]{8}", fields[0]):
            assert "..." in line, line  # an elided stretch
            continue
        offset = int(fields[0], 16)
        want = bytes(int(h, 16) for h in fields[1:])
        assert data[offset : offset + len(want)] == want, line
        shown += len(want)
    assert shown > 200 and data.endswith(b"TSSVKLHS")
