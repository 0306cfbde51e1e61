"""DB.head (and head_keys) reads without registering a snapshot (it takes the last sequence after its
view of memtables and tables): a writer thread committing batches, with memtable
switches, flushes and compactions under it, must never show a reader a half-applied
batch or a mix of two generations. A sequence older than the view (tables holding
entries past it) fails here. Bounded by count and time."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from shalekv.engine import DB, WriteBatch

KEYS = 24


def _batch(g: int) -> WriteBatch:
    """Generation g: keys i with i % m == 0 hold b"g", the others are deleted."""
    m = g % 3 + 1
    b = WriteBatch()
    for i in range(KEYS):
        k = b"k%02d" % i
        if i % m == 0:
            b.put(k, b"%d" % g)
        else:
            b.delete(k)
    return b


@pytest.mark.parametrize(("reverse", "keys_only"), [(False, False), (True, False), (False, True)])
def test_head_sees_whole_batches(tmp_path, reverse: bool, keys_only: bool) -> None:
    patterns = [[b"k%02d" % i for i in range(KEYS) if i % m == 0] for m in (1, 2, 3)]
    db = DB.open(
        str(tmp_path / "db"),
        compaction_workers=0,
        memtable_size=4096,
        block_size=128,
        l0_compaction_trigger=2,
    )
    db.write(_batch(0))
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            g = 1
            while not stop.is_set() and g < 20_000:
                db.write(_batch(g))
                if g % 97 == 0:
                    db.flush()
                if g % 401 == 0:
                    db.compact()
                g += 1
        except BaseException as e:  # noqa: BLE001  # reported by the main thread
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: inside head() too
    t = threading.Thread(target=writer)
    t.start()
    reads = 0
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and reads < 20_000 and t.is_alive():
            if keys_only:  # head_keys: the key set of one generation, whole
                got = db.head_keys(b"k", b"l", KEYS)
                reads += 1
                assert got in patterns, f"keys of no single generation: {got}"
                continue
            keys, values = db.head(b"k", b"l", KEYS, reverse)
            reads += 1
            assert values, "every generation keeps key k00"
            g = int(values[0])
            assert set(values) == {values[0]}, f"values of two generations: {values}"
            m = g % 3 + 1
            want = [b"k%02d" % i for i in range(KEYS) if i % m == 0]
            assert keys == (want[::-1] if reverse else want), f"generation {g}: {keys}"
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
        db.close()
    assert not errors, errors
    assert reads > 100
