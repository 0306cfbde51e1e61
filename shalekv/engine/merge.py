"""Merging sorted runs a chunk at a time.

heapq.merge moves one item per Python-level step. Here each source hands over a
sorted list (a block's worth), and the merger takes from every source the prefix up to
the smallest "last key" among them, sorts that in C (timsort merges the runs) and hands
the sorted list on. Every round empties at least one source's chunk, so the work per
item is a slice, a share of one C sort, and nothing else.

Items are tuples whose first element is the key and whose first two elements are
unique across all sources (key + source index, or key + negated sequence), so the sort
never compares further.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

_first = itemgetter(0)

Chunk = list[Any]


def _next_chunk(source: Iterator[Chunk]) -> Chunk | None:
    for chunk in source:
        if chunk:
            return chunk
    return None


def _prefix_at_least(chunk: Chunk, bound: bytes) -> int:
    """Length of the prefix of a descending chunk whose keys are >= bound."""
    lo, hi = 0, len(chunk)
    while lo < hi:
        mid = (lo + hi) // 2
        if chunk[mid][0] >= bound:
            lo = mid + 1
        else:
            hi = mid
    return lo


def merge_chunks(
    sources: list[Iterator[Chunk]],
    reverse: bool = False,
    starts: list[bytes | None] | None = None,
) -> Iterator[Chunk]:
    """Sorted lists covering every item of the sources, in order (descending by key if
    reverse). Each source yields lists sorted the same way, consecutive lists in order;
    a key never continues from one list of a source into its next.

    starts[i], when known, is a bound on source i's first key (its smallest key, or
    its largest when reverse; a file's boundary from the MANIFEST): such a source is
    not opened until the merge reaches that key, as RocksDB's level iterators, so a
    short scan does not read a block from every file that merely overlaps the range."""
    heads: list[list[Any]] = []  # [current chunk, source]
    parked: list[tuple[bytes, int, Iterator[Chunk]]] = []
    for i, s in enumerate(sources):
        start = starts[i] if starts is not None else None
        if start is None:
            c = _next_chunk(s)
            if c is not None:
                heads.append([c, s])
        else:
            parked.append((start, i, s))
    parked.sort(key=_first, reverse=not reverse)  # the next one to open is at the end
    while heads or parked:
        if not heads:
            src = parked.pop()[2]
            c = _next_chunk(src)
            if c is not None:
                heads.append([c, src])
            continue
        while parked:
            # Open every parked source that may hold keys up to the current bound.
            if reverse:
                if parked[-1][0] < max(h[0][-1][0] for h in heads):
                    break
            elif parked[-1][0] > min(h[0][-1][0] for h in heads):
                break
            src = parked.pop()[2]
            c = _next_chunk(src)
            if c is not None:
                heads.append([c, src])
        if len(heads) == 1 and not parked:
            c, s = heads[0]
            yield c
            yield from s
            return
        if reverse:
            bound = max(h[0][-1][0] for h in heads)
        else:
            bound = min(h[0][-1][0] for h in heads)
        out: Chunk = []
        keep: list[list[Any]] = []
        for h in heads:
            c = h[0]
            j = _prefix_at_least(c, bound) if reverse else bisect_right(c, bound, key=_first)
            if j == len(c):
                out += c
                nxt = _next_chunk(h[1])
                if nxt is None:
                    continue
                h[0] = nxt
            elif j:
                out += c[:j]
                h[0] = c[j:]
            keep.append(h)
        heads = keep
        out.sort(reverse=reverse)
        yield out
