"""Ranks in big sorted sets: an order-statistics index kept in memory.

A sorted set's score index (S keys) is in rank order, but an LSM keeps no counts per
key range, so without help a rank is a count of entries: O(rank). Each big sorted set
(one set version, named by its score prefix) can get a `RankIndex`: its score index is
cut into buckets of about `bucket` consecutive entries, and the index keeps each
bucket's lower bound (a key position; that key may since have gone) and its count, in
groups of buckets so that a prefix sum is two C-level sums over short lists:

    rank of a key = entries before its bucket + entries of its bucket before it
    key at a rank = the bucket where the running count passes it + a skip inside it

Each is a bisect or two plus one engine scan of at most 2 * bucket entries.

Why memory and not engine keys (docs/decisions.md D15): persisted counts would add
writes up a counted tree to every ZADD/ZREM; the in-memory index costs a bisect per
change, is rebuilt by one scan of the set after a restart or eviction, and its size is
bounded (LRU over sets, `zset-rank-index-size`).

Exactness: an index describes committed engine state. The sorted-set code reports the
score-index entries each transaction adds or removes (`Txn.index_deltas`); commit()
hands the net changes to `RankIndexes.apply` after the batch is written, under the
store lock that every command holds. Splitting a bucket re-counts it from the engine;
a count that disagrees drops the index (rebuilt on next use) and is counted.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import OrderedDict
from itertools import accumulate
from typing import Any

log = logging.getLogger(__name__)

BUCKET = 32  # entries per bucket: split above 2x, merged with a neighbour below 1/2x
GROUP = 64  # buckets per group: split above 2x, merged with a neighbour below 1/4x
# Estimated bytes per bucket besides its bound key: the bytes object's header, two list
# slots and a share of the group lists.
_BUCKET_OVERHEAD = 56


def _bucket_bytes(sp: bytes) -> int:
    """Estimated memory of one bucket of the set under prefix sp (its bound key is
    about the prefix, an 8-byte score and a short member long)."""
    return _BUCKET_OVERHEAD + len(sp) + 24


class Mismatch(Exception):
    """The index disagrees with the engine: it is dropped and rebuilt."""


class RankIndex:
    """Bucket bounds and counts of one sorted set version's score index [sp, end)."""

    __slots__ = ("sp", "end", "bucket", "gfirst", "gtotal", "gbounds", "gcounts", "total")

    def __init__(self, sp: bytes, end: bytes, bounds: list[bytes], counts: list[int], bucket: int):
        self.sp = sp
        self.end = end
        self.bucket = bucket
        self.gbounds = [bounds[i : i + GROUP] for i in range(0, len(bounds), GROUP)]
        self.gcounts = [counts[i : i + GROUP] for i in range(0, len(counts), GROUP)]
        self.gfirst = [b[0] for b in self.gbounds]
        self.gtotal = [sum(c) for c in self.gcounts]
        self.total = sum(counts)

    @classmethod
    def build(cls, engine: Any, sp: bytes, end: bytes, bucket: int) -> RankIndex:
        """One scan of the set's index: every bucket-th key becomes a bound."""
        bounds = [sp]
        total = 0
        for keys in engine.key_chunks(sp, end):
            # the entries at positions bucket, 2 * bucket, ... of the whole scan
            bounds += keys[bucket if total == 0 else -total % bucket :: bucket]
            total += len(keys)
        counts = [bucket] * len(bounds)
        counts[-1] = total - bucket * (len(bounds) - 1)
        return cls(sp, end, bounds, counts, bucket)

    @property
    def buckets(self) -> int:
        return sum(map(len, self.gbounds))

    def nbytes(self) -> int:
        """Estimated memory: bound keys (about as long as the set's index keys) and
        their slots."""
        return self.buckets * _bucket_bytes(self.sp)

    # ------------------------------------------------------------ reads

    def _locate(self, key: bytes) -> tuple[int, int]:
        """(group, bucket) whose range holds key (every key >= sp)."""
        g = max(bisect_right(self.gfirst, key) - 1, 0)
        return g, max(bisect_right(self.gbounds[g], key) - 1, 0)

    def _next_bound(self, g: int, i: int) -> bytes:
        bounds = self.gbounds[g]
        if i + 1 < len(bounds):
            return bounds[i + 1]
        return self.gfirst[g + 1] if g + 1 < len(self.gfirst) else self.end

    def rank_of(self, engine: Any, key: bytes) -> int:
        """How many committed index entries are < key."""
        g, i = self._locate(key)
        lo = self.gbounds[g][i]
        before = sum(self.gtotal[:g]) + sum(self.gcounts[g][:i])
        if lo >= key:
            return before
        # a bucket holds up to 2x its size: one short scan counts it when not settled
        return before + engine.count_keys(lo, key, 2 * self.bucket + 1)

    def seek(self, r: int) -> tuple[bytes, int]:
        """(a bucket's lower bound, entries to skip from it) of rank r, 0 <= r < total."""
        cum = list(accumulate(self.gtotal))
        g = min(bisect_right(cum, r), len(cum) - 1)
        r -= cum[g] - self.gtotal[g]
        counts = self.gcounts[g]
        cc = list(accumulate(counts))
        i = min(bisect_right(cc, r), len(cc) - 1)
        return self.gbounds[g][i], r - (cc[i] - counts[i])

    # ------------------------------------------------------------ changes

    def apply(self, engine: Any, deltas: dict[bytes, int]) -> None:
        """Committed changes: +1 for an index key added, -1 for one removed. Buckets
        that grew past 2x or shrank below 1/2x are split (re-counted) or merged."""
        touched: set[bytes] = set()
        for key, d in deltas.items():
            if not d:
                continue
            g, i = self._locate(key)
            self.gcounts[g][i] += d
            self.gtotal[g] += d
            self.total += d
            touched.add(self.gbounds[g][i])
        for lo in sorted(touched, reverse=True):  # later buckets first: earlier stay put
            g, i = self._locate(lo)
            if self.gbounds[g][i] != lo:
                continue  # merged away already
            c = self.gcounts[g][i]
            if c < 0:
                raise Mismatch(f"negative bucket count {c}")
            if c > 2 * self.bucket:
                self._split(engine, g, i)
            elif c < self.bucket // 2:
                self._merge(g, i)

    def _split(self, engine: Any, g: int, i: int) -> None:
        lo = self.gbounds[g][i]
        c = self.gcounts[g][i]
        keys = engine.collect(lo, self._next_bound(g, i))[0]
        if len(keys) != c:
            raise Mismatch(f"bucket holds {len(keys)} entries, index says {c}")
        parts = c // self.bucket
        cuts = [c * j // parts for j in range(parts + 1)]
        # keys[0] >= lo, so every new bound is above lo and they are strictly rising.
        self.gbounds[g][i : i + 1] = [lo] + [keys[x] for x in cuts[1:-1]]
        self.gcounts[g][i : i + 1] = [b - a for a, b in zip(cuts, cuts[1:], strict=False)]
        if len(self.gbounds[g]) > 2 * GROUP:
            bounds, counts = self.gbounds[g], self.gcounts[g]
            h = len(bounds) // 2
            self.gbounds[g : g + 1] = [bounds[:h], bounds[h:]]
            self.gcounts[g : g + 1] = [counts[:h], counts[h:]]
            self.gfirst[g : g + 1] = [bounds[0], bounds[h]]
            self.gtotal[g : g + 1] = [sum(counts[:h]), sum(counts[h:])]

    def _merge(self, g: int, i: int) -> None:
        """Fold a small bucket into a neighbour of its group (the next one into it, or
        it into the previous one: a group's first bound never moves), then a small
        group into a neighbouring group."""
        bounds, counts = self.gbounds[g], self.gcounts[g]
        if len(bounds) > 1:
            j = i + 1 if i + 1 < len(bounds) else i
            if counts[j - 1] + counts[j] <= 2 * self.bucket:
                counts[j - 1] += counts[j]
                del bounds[j], counts[j]
        if len(bounds) < GROUP // 4 and len(self.gbounds) > 1:
            h = g if g > 0 else 1  # fold group h into group h - 1
            if len(self.gbounds[h - 1]) + len(self.gbounds[h]) <= 2 * GROUP:
                self.gbounds[h - 1] += self.gbounds[h]
                self.gcounts[h - 1] += self.gcounts[h]
                self.gtotal[h - 1] += self.gtotal[h]
                del self.gbounds[h], self.gcounts[h], self.gfirst[h], self.gtotal[h]


class RankIndexes:
    """The store's rank indexes, least recently used evicted past max_bytes. A set too
    big for a quarter of the budget at the base bucket size gets bigger buckets."""

    def __init__(self, engine: Any, max_bytes: int = 32 << 20, bucket: int = BUCKET) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        self.bucket = bucket
        self._idx: OrderedDict[bytes, RankIndex] = OrderedDict()
        self._sizes: dict[bytes, int] = {}
        self.nbytes = 0
        self.builds = 0
        self.mismatches = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._idx)

    def min_count(self) -> int:
        """Smaller sets are counted by scanning (no index is worth it)."""
        return 2 * self.bucket

    def get(self, sp: bytes, end: bytes, committed: int) -> RankIndex | None:
        """sp's index, built if missing; committed is the set's committed size (a check:
        an index whose total differs is rebuilt). None when disabled (max_bytes 0)."""
        if self.max_bytes <= 0:
            return None
        idx = self.peek(sp, committed)
        if idx is not None:
            return idx
        per = _bucket_bytes(sp)
        bucket = max(self.bucket, -(-committed * per // max(self.max_bytes // 4, 1)))
        idx = RankIndex.build(self.engine, sp, end, bucket)
        self.builds += 1
        if idx.total != committed:
            # The engine holds another count than the caller worked out from the set's
            # size and its transaction's changes: writes it cannot see (a COPY in the
            # same transaction, then ZADDs over every copied member). Count by scanning.
            return None
        self._idx[sp] = idx
        self._account(sp, idx)
        return idx

    def peek(self, sp: bytes, committed: int) -> RankIndex | None:
        """sp's index if there is one (and it agrees with the committed size)."""
        idx = self._idx.get(sp)
        if idx is None:
            return None
        if idx.total != committed:
            self.mismatches += 1
            self.drop(sp)
            return None
        self._idx.move_to_end(sp)
        return idx

    def apply(self, deltas: dict[bytes, dict[bytes, int]]) -> None:
        """A transaction's committed index changes, per score prefix."""
        for sp, d in deltas.items():
            idx = self._idx.get(sp)
            if idx is None:
                continue
            try:
                idx.apply(self.engine, d)
            except Exception as e:  # noqa: BLE001  # a cache: drop it, keep the commit
                if not isinstance(e, Mismatch):
                    log.warning("rank index of %r dropped: %s", sp, e)
                self.mismatches += 1
                self.drop(sp)
                continue
            if idx.total <= 0:
                self.drop(sp)
            else:
                self._account(sp, idx)

    def drop(self, sp: bytes) -> None:
        if self._idx.pop(sp, None) is not None:
            self.nbytes -= self._sizes.pop(sp)

    def clear(self) -> None:
        self._idx.clear()
        self._sizes.clear()
        self.nbytes = 0

    def _account(self, sp: bytes, idx: RankIndex) -> None:
        size = idx.nbytes()
        self.nbytes += size - self._sizes.get(sp, 0)
        self._sizes[sp] = size
        while self.nbytes > self.max_bytes and len(self._idx) > 1:
            old, _ = self._idx.popitem(last=False)
            self.nbytes -= self._sizes.pop(old)
            self.evictions += 1
