"""Redis's partial quicksort (pqsort.c, from NetBSD's qsort): sorts only as much of a
list as needed for the positions lo..hi to hold what a full sort would put there.

GEORADIUS/GEOSEARCH with COUNT use it, and it is not stable: points at the same
distance come out in the order this exact algorithm leaves them, which is what a
client of Redis sees. A full sort is glibc's qsort, a merge sort (stable), which
Python's list.sort matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Cmp = Callable[[Any, Any], int]


def pqsort(v: list[Any], cmp: Cmp, lo: int, hi: int) -> None:
    """Sort v in place enough that v[lo..hi] (inclusive) are in their sorted places."""
    _pqsort(v, 0, len(v), cmp, lo, hi)


def _insertion(v: list[Any], a: int, n: int, cmp: Cmp) -> None:
    for pm in range(a + 1, a + n):
        pl = pm
        while pl > a and cmp(v[pl - 1], v[pl]) > 0:
            v[pl], v[pl - 1] = v[pl - 1], v[pl]
            pl -= 1


def _med3(v: list[Any], a: int, b: int, c: int, cmp: Cmp) -> int:
    if cmp(v[a], v[b]) < 0:
        return b if cmp(v[b], v[c]) < 0 else (c if cmp(v[a], v[c]) < 0 else a)
    return b if cmp(v[b], v[c]) > 0 else (a if cmp(v[a], v[c]) < 0 else c)


def _vecswap(v: list[Any], a: int, b: int, n: int) -> None:
    for i in range(n):
        v[a + i], v[b + i] = v[b + i], v[a + i]


def _pqsort(v: list[Any], a: int, n: int, cmp: Cmp, lo: int, hi: int) -> None:
    while True:
        if n < 7:
            _insertion(v, a, n, cmp)
            return
        pm = a + n // 2
        if n > 7:
            pl, pn = a, a + n - 1
            if n > 40:
                d = n // 8
                pl = _med3(v, pl, pl + d, pl + 2 * d, cmp)
                pm = _med3(v, pm - d, pm, pm + d, cmp)
                pn = _med3(v, pn - 2 * d, pn - d, pn, cmp)
            pm = _med3(v, pl, pm, pn, cmp)
        v[a], v[pm] = v[pm], v[a]
        pa = pb = a + 1
        pc = pd = a + n - 1
        while True:
            while pb <= pc:
                r = cmp(v[pb], v[a])
                if r > 0:
                    break
                if r == 0:
                    v[pa], v[pb] = v[pb], v[pa]
                    pa += 1
                pb += 1
            while pb <= pc:
                r = cmp(v[pc], v[a])
                if r < 0:
                    break
                if r == 0:
                    v[pc], v[pd] = v[pd], v[pc]
                    pd -= 1
                pc -= 1
            if pb > pc:
                break
            v[pb], v[pc] = v[pc], v[pb]
            pb += 1
            pc -= 1
        pn = a + n
        r = min(pa - a, pb - pa)
        _vecswap(v, a, pb - r, r)
        r = min(pd - pc, pn - pd - 1)
        _vecswap(v, pb, pn - r, r)
        r = pb - pa
        if r > 1 and not (hi < a or lo > a + r - 1):
            _pqsort(v, a, r, cmp, lo, hi)  # the part below the pivot
        r = pd - pc
        if r > 1:
            a, n = pn - r, r  # the part above it: iterate
            if not (hi < a or lo > a + r - 1):
                continue
        return
