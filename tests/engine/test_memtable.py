"""Memtable: the sorted view, active and frozen, against a sorted list."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from hypothesis import given
from hypothesis import strategies as st

from shalekv.engine.memtable import MemTable
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
