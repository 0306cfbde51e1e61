"""Memtable: the sorted view, active and frozen, against a sorted list."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import islice

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
