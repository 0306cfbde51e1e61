"""Memtable: the sorted view, active and frozen, against a sorted list."""

from __future__ import annotations

import sys
import threading
import time
from bisect import bisect_left, bisect_right
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sortedcontainers import SortedList

from shalekv.engine.memtable import MemTable, _walk
from shalekv.engine.write_batch import PUT

keys_st = st.lists(st.binary(min_size=0, max_size=3), max_size=40)


def expected(keys, start, inclusive, limit, reverse):
    s = sorted(set(keys))
    if reverse:
        hi = len(s) if start is None else (bisect_right if inclusive else bisect_left)(s, start)
        return s[max(0, hi - limit) : hi][::-1]
    lo = 0 if start is None else (bisect_left if inclusive else bisect_right)(s, start)
    return s[lo : lo + limit]


@given(
    keys_st,
    st.one_of(st.none(), st.binary(max_size=3)),
    st.booleans(),
    st.integers(1, 50),
    st.booleans(),
    st.booleans(),
)
def test_keys_from_matches_a_sorted_list(keys, start, inclusive, limit, reverse, frozen):
    mem = MemTable(1)
    for i, k in enumerate(keys):
        mem.apply(i + 1, [(PUT, k, b"v")], keep_history=False)
    mem.keys_from(None, True, 1)  # build the view once, then add more
    for i, k in enumerate(keys):
        mem.apply(len(keys) + i + 1, [(PUT, k + b"x", b"v")], keep_history=False)
    if frozen:
        mem.freeze()
    all_keys = keys + [k + b"x" for k in keys]
    assert mem.keys_from(start, inclusive, limit, reverse) == expected(
        all_keys, start, inclusive, limit, reverse
    )


@given(
    keys_st,
    st.one_of(st.none(), st.binary(max_size=3)),
    st.booleans(),
    st.integers(0, 50),
    st.booleans(),
    st.one_of(st.none(), st.binary(max_size=3)),
    st.integers(1, 6),
)
def test_walk_over_sublists_matches_irange(keys, start, inclusive, limit, reverse, end, load):
    """The active memtable's range read walks SortedList's sublists itself: with a tiny
    load factor the keys span many sublists, and it must agree with irange."""
    sl = SortedList()
    sl._reset(load)  # sublists of about `load` keys
    sl.update(set(keys))
    if reverse:
        it = sl.irange(maximum=start, inclusive=(True, inclusive), reverse=True)
        end = None  # reverse reads take no end
    else:
        it = sl.irange(minimum=start, maximum=end, inclusive=(inclusive, False))
    want = list(islice(it, limit))
    assert _walk(sl, start, inclusive, limit, reverse, end) == want
    assert len(sl._lists) > 1 or len(set(keys)) <= 2 * load  # the test reaches sublists


@pytest.mark.parametrize("path", ["apply", "apply_items", "put"])
def test_scan_never_sorts_in_a_key_before_its_entry(path: str) -> None:
    """A writer adds a key's entry before queueing the key for the sorted view: a
    reader sorting the queue in (entries_from on the active memtable) must find every
    key's entry. Threads switch often; bounded by time and count."""
    mem = MemTable(1)
    stop = threading.Event()

    def writer() -> None:
        seq, g = 1, 0
        while not stop.is_set() and g < 1_000_000:
            keys = [b"m%08d" % (3 * g + i) for i in range(3)]
            if path == "apply":
                mem.apply(seq, [(PUT, k, b"x") for k in keys], keep_history=False)
            elif path == "apply_items":
                mem.apply_items(seq, dict.fromkeys(keys, b"x"), 30, 0)
            else:
                for i, k in enumerate(keys):
                    mem.put(seq + i, k, b"x", keep_history=False)
            seq += 3
            g += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    t = threading.Thread(target=writer)
    t.start()
    reads = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and reads < 200_000:
            mem.entries_from(b"m", True, 3)
            mem.entries_from(None, True, 2, reverse=True)
            reads += 1
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert reads > 100
