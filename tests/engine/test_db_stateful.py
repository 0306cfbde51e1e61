"""DB against a dict model: random interleavings of writes, reads, snapshots, flushes,
compactions and reopens (hypothesis stateful testing, as Pebble's metamorphic test).

Keys come from a tiny alphabet so overwrites, deletes and range deletes collide; some
values pass blob_threshold so reads also go through blob files and blob GC.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shalekv.engine import DB, Snapshot, WriteBatch, workers
from shalekv.errors import InvalidArgumentError

BLOB_THRESHOLD = 256

# 1..3 letters of "abcd": 84 keys, short ones drawn most, so writes collide often.
keys = st.text(alphabet="abcd", min_size=1, max_size=3).map(str.encode)
bounds = st.none() | keys
small_values = st.binary(max_size=24)
# Large values are cheap to generate (a fill byte and a length) and straddle the blob
# threshold so both sides of it are exercised.
large_values = st.builds(
    lambda fill, n, tag: tag + bytes([fill]) * n,
    st.integers(0, 255),
    st.integers(BLOB_THRESHOLD - 8, 3000),
    st.binary(min_size=1, max_size=8),
)
values = st.one_of(small_values, small_values, small_values, large_values)

Op = tuple[str, bytes, bytes]
batch_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, values),
        st.tuples(st.just("delete"), keys, st.just(b"")),
        st.tuples(st.just("delete_range"), keys, keys).filter(lambda t: t[1] < t[2]),
    ),
    min_size=1,
    max_size=8,
)


def expected_items(
    model: dict[bytes, bytes], lower: bytes | None, upper: bytes | None, reverse: bool
) -> list[tuple[bytes, bytes]]:
    out = [
        (k, v)
        for k, v in sorted(model.items())
        if (lower is None or k >= lower) and (upper is None or k < upper)
    ]
    if reverse:
        out.reverse()
    return out


def delete_range_in(model: dict[bytes, bytes], start: bytes, end: bytes) -> None:
    for k in [k for k in model if start <= k < end]:
        del model[k]


class DBMachine(RuleBasedStateMachine):
    """One DB directory per example; `options` set by the subclass factory below."""

    options: dict[str, Any] = {}
    root: Path = Path()
    _counter = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.path = self.root / f"example-{next(self._counter)}"
        self.model: dict[bytes, bytes] = {}
        self.snaps: dict[int, tuple[Snapshot, dict[bytes, bytes]]] = {}
        self._snap_ids = itertools.count()
        self.db: DB | None = None

    @initialize()
    def open_db(self) -> None:
        self.db = DB.open(self.path, **self.options)

    def teardown(self) -> None:
        for snap, _ in self.snaps.values():
            snap.close()
        self.snaps.clear()
        if self.db is not None:
            self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # -------------------------------------------------------------- writes

    @rule(key=keys, value=values)
    def put(self, key: bytes, value: bytes) -> None:
        assert self.db is not None
        self.db.put(key, value)
        self.model[key] = value

    @rule(pairs=st.lists(st.tuples(keys, values), min_size=1, max_size=40))
    def put_many(self, pairs: list[tuple[bytes, bytes]]) -> None:
        """Separate puts in a burst: fills memtables so tables reach deeper levels."""
        assert self.db is not None
        for key, value in pairs:
            self.db.put(key, value)
            self.model[key] = value

    @rule(key=keys)
    def delete(self, key: bytes) -> None:
        assert self.db is not None
        self.db.delete(key)
        self.model.pop(key, None)

    @rule(start=keys, end=keys)
    def delete_range(self, start: bytes, end: bytes) -> None:
        assert self.db is not None
        if start >= end:
            with pytest.raises(InvalidArgumentError):
                self.db.delete_range(start, end)
            return
        self.db.delete_range(start, end)
        delete_range_in(self.model, start, end)

    @rule(ops=batch_ops)
    def write_batch(self, ops: list[Op]) -> None:
        assert self.db is not None
        batch = WriteBatch()
        for kind, a, b in ops:
            if kind == "put":
                batch.put(a, b)
                self.model[a] = b
            elif kind == "delete":
                batch.delete(a)
                self.model.pop(a, None)
            else:
                batch.delete_range(a, b)
                delete_range_in(self.model, a, b)
        self.db.write(batch)

    @rule(items=st.dictionaries(keys, st.one_of(st.none(), values), max_size=12))
    def write_items(self, items: dict[bytes, bytes | None]) -> None:
        """A data-type transaction's write: {key: value, None to delete}, no batch."""
        assert self.db is not None
        self.db.write_items(items)
        for k, v in items.items():
            if v is None:
                self.model.pop(k, None)
            else:
                self.model[k] = v

    # -------------------------------------------------------------- reads

    @rule(key=keys)
    def get(self, key: bytes) -> None:
        assert self.db is not None
        assert self.db.get(key) == self.model.get(key)

    @rule(lower=bounds, upper=bounds, reverse=st.booleans())
    def items(self, lower: bytes | None, upper: bytes | None, reverse: bool) -> None:
        assert self.db is not None
        got = list(self.db.items(lower, upper, reverse))
        assert got == expected_items(self.model, lower, upper, reverse)
        keys, values = self.db.collect(lower, upper, reverse)  # the same, as two lists
        assert list(zip(keys, values, strict=True)) == got

    @rule(lower=keys, upper=bounds, n=st.integers(0, 12), reverse=st.booleans())
    def head(self, lower: bytes, upper: bytes | None, n: int, reverse: bool) -> None:
        """The short-scan path: the first (or last) n items, whichever sources hold
        them."""
        assert self.db is not None
        keys, values = self.db.head(lower, upper, n, reverse)
        assert (
            list(zip(keys, values, strict=True))
            == expected_items(self.model, lower, upper, reverse)[:n]
        )

    @invariant()
    def full_scan_matches(self) -> None:
        if self.db is not None:
            assert dict(self.db.items()) == self.model

    # -------------------------------------------------------------- snapshots

    @precondition(lambda self: len(self.snaps) < 4)
    @rule()
    def take_snapshot(self) -> None:
        assert self.db is not None
        self.snaps[next(self._snap_ids)] = (self.db.snapshot(), dict(self.model))

    @precondition(lambda self: self.snaps)
    @rule(data=st.data(), key=keys)
    def snapshot_get(self, data: st.DataObject, key: bytes) -> None:
        sid = data.draw(st.sampled_from(sorted(self.snaps)), label="snapshot")
        snap, frozen = self.snaps[sid]
        assert snap.get(key) == frozen.get(key)

    @precondition(lambda self: self.snaps)
    @rule(data=st.data(), lower=bounds, upper=bounds, reverse=st.booleans())
    def snapshot_items(
        self, data: st.DataObject, lower: bytes | None, upper: bytes | None, reverse: bool
    ) -> None:
        sid = data.draw(st.sampled_from(sorted(self.snaps)), label="snapshot")
        snap, frozen = self.snaps[sid]
        assert list(snap.items(lower, upper, reverse)) == expected_items(
            frozen, lower, upper, reverse
        )

    @precondition(lambda self: self.snaps)
    @rule(data=st.data())
    def release_snapshot(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.snaps)), label="snapshot")
        snap, frozen = self.snaps.pop(sid)
        # Last look before release: what it pinned must still be there.
        assert dict(snap.items()) == frozen
        snap.close()

    # -------------------------------------------------------------- maintenance

    @rule()
    def flush(self) -> None:
        assert self.db is not None
        self.db.flush()

    @rule()
    def compact_all(self) -> None:
        assert self.db is not None
        self.db.compact()

    @rule(lower=bounds, upper=bounds)
    def compact_range(self, lower: bytes | None, upper: bytes | None) -> None:
        assert self.db is not None
        self.db.compact(lower, upper)

    @rule()
    def reopen(self) -> None:
        assert self.db is not None
        for snap, _ in self.snaps.values():
            snap.close()
        self.snaps.clear()
        self.db.close()
        self.db = None
        self.db = DB.open(self.path, **self.options)


BASE_OPTIONS: dict[str, Any] = {
    "memtable_size": 2 << 10,
    "target_file_size": 1 << 10,
    "level_base_size": 1 << 10,
    "level_size_ratio": 2,
    "block_size": 512,
    "blob_threshold": BLOB_THRESHOLD,
    "deletion_min_entries": 16,
    "fsync": "no",
}


def _run(tmp_path: Path, options: dict[str, Any], max_examples: int, steps: int) -> None:
    """Run the machine with the active profile's settings, capped so the file stays
    well under a minute (the "ci" profile asks for 60 examples; "dev" for fewer)."""
    machine = type("Machine", (DBMachine,), {"options": options, "root": tmp_path})
    base = settings()  # the loaded profile
    limits = settings(
        base, max_examples=min(base.max_examples, max_examples), stateful_step_count=steps
    )
    run_state_machine_as_test(machine, settings=limits)


def test_db_matches_dict_model_inline_jobs(tmp_path: Path) -> None:
    _run(tmp_path, {**BASE_OPTIONS, "compaction_workers": 0}, max_examples=60, steps=100)


def test_db_matches_dict_model_worker_process(tmp_path: Path) -> None:
    try:
        _run(tmp_path, {**BASE_OPTIONS, "compaction_workers": 1}, max_examples=15, steps=60)
    finally:
        workers.shutdown()  # stop the worker processes this test started


def test_db_matches_dict_model_partitioned(tmp_path: Path) -> None:
    """Tables partitioned by the keys' first byte (a, b, c, d): prefix cuts, L0->L1
    compactions with fences, L0 counted in runs."""
    opts = {**BASE_OPTIONS, "compaction_workers": 0, "partition_prefix_len": 1}
    _run(tmp_path, opts, max_examples=60, steps=100)
