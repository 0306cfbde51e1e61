"""DEL, overwrite and expiry of big collections are O(1) for the caller; the
compaction filter gives the space back later, and never drops live data."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shalekv
from shalekv.types import encoding as enc
from shalekv.types.compaction_filter import make_filter

FIELDS = 20_000
VALUE_SIZE = 200  # random bytes: compression must not hide the space


def _sst_bytes(db) -> int:
    return db.engine.stats()["sst_bytes"]


def _fill_hash(db, key: str) -> None:
    p = db.pipeline(transaction=False)
    for start in range(0, FIELDS, 2_000):
        p.hset(key, mapping={f"f{i}": os.urandom(VALUE_SIZE) for i in range(start, start + 2_000)})
    p.execute()


def _wal_growth(db, fn) -> int:
    before = db.engine.stats()["wal_bytes_written"]
    fn()
    return db.engine.stats()["wal_bytes_written"] - before


def _compact_files_only(engine) -> None:
    """A manual compaction that leaves the memtable alone (compact() flushes first)."""
    with engine._compaction_lock:
        while (c := engine._manual_pick(None, None)) is not None:
            engine._run_compaction(c)
        c = engine._manual_bottom(None, None)
        if c is not None:
            engine._run_compaction(c)


@pytest.mark.parametrize("how", ["delete", "overwrite", "expire"])
def test_space_comes_back(tmp_path, how: str) -> None:
    # compaction_workers=1: the filter runs in a worker process, imported by path.
    db = shalekv.open(tmp_path, compaction_workers=1, active_expiry=how != "expire")
    _fill_hash(db, "big")
    db.set("small", "kept")
    db.engine.compact()
    full = _sst_bytes(db)
    assert full > FIELDS * VALUE_SIZE
    if how == "delete":
        grew = _wal_growth(db, lambda: db.delete("big"))
    elif how == "overwrite":
        grew = _wal_growth(db, lambda: db.set("big", "now a string"))
    else:
        grew = _wal_growth(db, lambda: db.pexpire("big", 50))
        time.sleep(0.1)
    assert grew < 200  # one small batch, whatever the collection's size
    db.engine.compact()
    db.engine.compact()  # the second pass sees the first pass's dropped-key tombstones gone
    assert _sst_bytes(db) < full / 20
    assert db.get("small") == b"kept"
    if how == "overwrite":
        assert db.get("big") == b"now a string"
    else:
        assert db.hlen("big") == 0
    db.close()


def test_new_version_after_delete_is_not_confused_with_the_old(tmp_path) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.hset("h", mapping={"a": 1, "b": 2})
    db.engine.flush()
    db.delete("h")
    db.hset("h", "c", 3)
    assert db.hgetall("h") == {b"c": b"3"}
    db.engine.compact()
    assert db.hgetall("h") == {b"c": b"3"}
    db.close()
    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db.hgetall("h") == {b"c": b"3"}
    db.close()


def test_persist_in_a_memtable_protects_elements(tmp_path) -> None:
    """The expired-collection rule must not trust a deadline a newer, unflushed write
    (PERSIST) has lifted."""
    db = shalekv.open(tmp_path, compaction_workers=0, active_expiry=False)
    db.hset("h", mapping={f"f{i}": i for i in range(100)})
    db.pexpire("h", 1000)  # margin: flush and PERSIST must land before the deadline
    db.engine.flush()  # the files now say: expires in 1 s
    assert db.persist("h") == 1  # only in the memtable
    time.sleep(1.1)
    _compact_files_only(db.engine)
    assert db.hlen("h") == 100
    db.engine.compact()
    assert len(db.hgetall("h")) == 100
    assert db.ttl("h") == -1
    db.close()


class _View:
    def __init__(self, records: dict[bytes, bytes], unflushed_since_ms: int) -> None:
        self.records = records
        self.unflushed_since_ms = unflushed_since_ms

    def get(self, key: bytes) -> bytes | None:
        return self.records.get(key)


def _list_indexes(db, key: bytes) -> tuple[list[int], int, int]:
    """(the indexes of every element key of list key's version, head, tail)."""
    m = db.engine.get(enc.meta_key(0, key))
    assert m is not None
    _, _, _, version, _, head, tail = enc.LISTMETA.unpack(m)
    p = enc.elem_prefix(0, key, version)
    return [enc.unpack_u64(k, len(p)) for k, _ in db.engine.items(p, enc.prefix_end(p))], head, tail


def test_list_indexes_given_up_are_one_write_and_reclaimed(tmp_path) -> None:
    """LTRIM and the pops write only the metadata (one engine write each); the indexes
    they give up stay until the compaction filter drops them, and it drops none while
    the files' metadata (older than the memtable's) still counts them in; a push over a
    given-up index writes it anew."""
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.rpush("big", *range(2000))
    db.engine.flush()
    seq = db.engine.stats()["last_sequence"]
    db.ltrim("big", 10, 13)
    db.rpop("big")
    db.lpop("big")
    assert db.engine.stats()["last_sequence"] == seq + 3  # three writes of one key each
    assert db.lrange("big", 0, -1) == [b"11", b"12"]
    idx, head, tail = _list_indexes(db, b"big")
    assert len(idx) == 2000 and tail - head == 2
    _compact_files_only(db.engine)  # the files' metadata says [head - 11, head + 1989)
    assert len(_list_indexes(db, b"big")[0]) == 2000
    assert db.lrange("big", 0, -1) == [b"11", b"12"]
    db.engine.compact()  # flushes the new metadata first
    assert _list_indexes(db, b"big")[0] == list(range(head, tail))
    db.rpush("big", "x", "y")  # over indexes given up (and reclaimed) before
    db.rpop("big")
    db.lpush("big", "w")
    db.engine.compact()
    assert db.lrange("big", 0, -1) == [b"w", b"11", b"12", b"x"]
    idx, head, tail = _list_indexes(db, b"big")
    assert idx == list(range(head, tail))
    db.close()
    with shalekv.open(tmp_path, compaction_workers=0) as db:
        assert db.lrange("big", 0, -1) == [b"w", b"11", b"12", b"x"]


def test_ltrim_of_a_big_list_is_reclaimed_in_whole_chunks(tmp_path) -> None:
    """Compaction asks may_drop about a chunk of one list's keys at once: the keys a
    trim gave up at either end of the chunk must still go (5,000 elements fill chunks
    of one list version)."""
    db = shalekv.open(tmp_path, compaction_workers=0)
    db.rpush("big", *range(5000))
    db.engine.compact()
    db.ltrim("big", 0, 3000)
    db.engine.compact()
    idx, head, tail = _list_indexes(db, b"big")
    assert tail - head == 3001 and idx == list(range(head, tail))
    db.ltrim("big", 1000, -1)
    db.engine.compact()
    idx, head, tail = _list_indexes(db, b"big")
    assert tail - head == 2001 and idx == list(range(head, tail))
    assert db.lrange("big", 0, 1) == [b"1000", b"1001"]
    db.close()


def test_filter_rules() -> None:
    now = int(time.time() * 1000)
    mk = enc.meta_key(0, b"h")
    elem = enc.elem_prefix(0, b"h", 7) + b"field"
    score = enc.score_prefix(0, b"h", 7) + enc.encode_score(1.0) + b"m"

    def dead(meta: bytes | None, unflushed: int = now, key: bytes = elem) -> bool:
        return make_filter("", _View({mk: meta} if meta else {}, unflushed))(key, b"x")

    assert not dead(enc.encode_coll(enc.HASH, 0, 7, 1))  # live
    assert not dead(enc.encode_coll(enc.ZSET, 0, 7, 1), key=score)
    assert dead(None)  # deleted
    assert dead(enc.encode_coll(enc.HASH, 0, 8, 1))  # recreated with another version
    assert dead(enc.encode_string(b"s", 0))  # overwritten by a string
    assert dead(enc.encode_coll(enc.HASH, now - 10, 7, 1))  # expired before any unflushed write
    assert not dead(enc.encode_coll(enc.HASH, now - 10, 7, 1), unflushed=now - 20)
    assert not dead(enc.encode_coll(enc.HASH, now + 1000, 7, 1))
    flt = make_filter("", _View({}, now))
    assert not flt(mk, b"x") and not flt(enc.VERSION_KEY, b"x")  # never metadata
    lm = enc.meta_key(0, b"l")

    def list_dead(index: int, version: int = 7) -> bool:
        meta = enc.encode_list(0, 7, 3, 5, 8)  # indexes [5, 8) live
        key = enc.elem_prefix(0, b"l", version) + enc.pack_u64(index)
        return make_filter("", _View({lm: meta}, now))(key, b"x")

    assert [list_dead(i) for i in range(3, 10)] == [True, True, False, False, False, True, True]
    assert list_dead(6, version=6)


_NOW = int(time.time() * 1000)
# Collections h0..h3 of versions 1..2 (v1 is live for h0 and h2, v2 for h1; h3 is gone),
# a string s, plus metadata keys: what compaction chunks hold, in any mix.
_RECORDS = {
    enc.meta_key(0, b"h0"): enc.encode_coll(enc.HASH, 0, 1, 1),
    enc.meta_key(0, b"h1"): enc.encode_coll(enc.ZSET, 0, 2, 1),
    enc.meta_key(0, b"h2"): enc.encode_coll(enc.SET, _NOW - 10, 1, 1),  # expired
    enc.meta_key(0, b"s"): enc.encode_string(b"v", 0),
    enc.meta_key(0, b"l0"): enc.encode_list(0, 1, 3, 5, 8),  # list: indexes [5, 8) live
}
_KEYS = sorted(
    {
        *_RECORDS,
        enc.VERSION_KEY,
        *(
            p(0, user, version) + sub
            for p in (enc.elem_prefix, enc.score_prefix)
            for user in (b"h0", b"h1", b"h2", b"h3", b"s")
            for version in (1, 2)
            for sub in (b"", b"a", b"b\xff")
        ),
        *(enc.elem_prefix(0, b"l0", v) + enc.pack_u64(i) for v in (1, 2) for i in range(3, 10)),
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=12, unique=True), st.booleans())
def test_may_drop_is_any_dead(keys: list[bytes], expired_is_safe: bool) -> None:
    """The chunk verdict compaction uses for its fast path equals asking per key."""
    keys.sort()
    unflushed = _NOW if expired_is_safe else _NOW - 20
    flt = make_filter("", _View(_RECORDS, unflushed))
    assert flt.may_drop(keys) == any(flt(k, b"x") for k in keys)


def test_versions_are_never_reused_across_reopen(tmp_path) -> None:
    db = shalekv.open(tmp_path, compaction_workers=0)
    first = db._store.new_version()
    db.close()
    db = shalekv.open(tmp_path, compaction_workers=0)
    assert db._store.new_version() > first
    db.close()
    assert os.path.isdir(tmp_path)
