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

A set whose entries fit in half the budget gets an `OrderIndex` instead (D21): the
same buckets, each also holding its entries (the keys after the set's prefix, packed
into one bytes object with their offsets, ~len + 4 bytes an entry). Ranks, the keys
at a rank and short ranges by score or lex (ZRANGEBYSCORE ... LIMIT) are then bisects
and slices in memory, no engine read. ZRANK builds an index on first use (it needs
the answer now); range reads start an OrderIndex once a set's reads without one have
cost about as much as the build (ski rental, `RankIndexes.ripe`, each read weighed by
the sorted runs it merges), and build it a slice per read (`OrderBuild`: no read waits
for a whole scan of a big set).

Exactness: an index describes committed engine state. The sorted-set code reports the
score-index entries each transaction adds or removes (`Txn.index_deltas`); commit()
hands the net changes to `RankIndexes.apply` after the batch is written, under the
store lock that every command holds. Splitting a bucket re-counts it from the engine;
a count that disagrees drops the index (rebuilt on next use) and is counted. An
OrderIndex checks each change against its entries instead (an added key already there,
a removed one missing: dropped the same way).
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from itertools import accumulate
from time import perf_counter
from typing import Any

log = logging.getLogger(__name__)

BUCKET = 32  # entries per bucket: split above 2x, merged with a neighbour below 1/2x
GROUP = 64  # buckets per group: split above 2x, merged with a neighbour below 1/4x
# A short range read of a set without an index costs about what building its OrderIndex
# costs for RIPE entries per sorted run the read merges (DB.runs_at). Measured on 1 M
# members in one hour: a read 95 µs over 2 runs, build 0.81 µs an entry (settled tree,
# ratio 117); a read 250-316 µs over 4 runs, build 0.92-0.96 µs (right after the fill:
# L0 files, two memtables, a cold cache; ratio 260-340).
RIPE = 60
BUILD_STEP = 2048  # entries an OrderBuild adds per range read (~2-4 ms of scanning)
STALE = 64  # reads of other ripe sets after which a build no one advances gives way
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

    __slots__ = (
        "sp",
        "end",
        "bucket",
        "gfirst",
        "gtotal",
        "gbounds",
        "gcounts",
        "total",
        "buckets",
    )

    def __init__(self, sp: bytes, end: bytes, bounds: list[bytes], counts: list[int], bucket: int):
        self.sp = sp
        self.end = end
        self.bucket = bucket
        self.gbounds = [bounds[i : i + GROUP] for i in range(0, len(bounds), GROUP)]
        self.gcounts = [counts[i : i + GROUP] for i in range(0, len(counts), GROUP)]
        self.gfirst = [b[0] for b in self.gbounds]
        self.gtotal = [sum(c) for c in self.gcounts]
        self.total = sum(counts)
        self.buckets = len(bounds)

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

    def _position(self, r: int) -> tuple[int, int, int]:
        """(group, bucket, entries before r in the bucket) of rank r, 0 <= r < total."""
        cum = list(accumulate(self.gtotal))
        g = min(bisect_right(cum, r), len(cum) - 1)
        r -= cum[g] - self.gtotal[g]
        counts = self.gcounts[g]
        cc = list(accumulate(counts))
        i = min(bisect_right(cc, r), len(cc) - 1)
        return g, i, r - (cc[i] - counts[i])

    def seek(self, r: int) -> tuple[bytes, int]:
        """(a bucket's lower bound, entries to skip from it) of rank r, 0 <= r < total."""
        g, i, skip = self._position(r)
        return self.gbounds[g][i], skip

    # ------------------------------------------------------------ changes

    def apply(self, engine: Any, deltas: dict[bytes, int]) -> None:
        """Committed changes: +1 for an index key added, -1 for one removed. Buckets
        that grew past 2x or shrank below 1/2x are split (re-counted) or merged."""
        touched: set[bytes] = set()  # bounds of the buckets to split or merge
        lo, hi = self.bucket // 2, 2 * self.bucket
        for key, d in deltas.items():
            if not d:
                continue
            g, i = self._locate(key)
            self._change(g, i, key, d)
            counts = self.gcounts[g]
            counts[i] += d
            self.gtotal[g] += d
            self.total += d
            if not lo <= counts[i] <= hi:  # its last change leaves it out of range
                touched.add(self.gbounds[g][i])
        self._rebalance(engine, touched)

    def _change(self, g: int, i: int, key: bytes, d: int) -> None:
        """What else a change to bucket i of group g updates (an OrderIndex: its entries)."""

    def _rebalance(self, engine: Any, touched: set[bytes]) -> None:
        """Split the buckets (named by their bounds) that grew past 2x, merge the ones
        that shrank below 1/2x."""
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
        self.buckets += parts - 1
        if len(self.gbounds[g]) > 2 * GROUP:
            self._split_group(g)

    def _split_group(self, g: int) -> None:
        """Cut group g (past 2 * GROUP buckets) into groups of GROUP (one batch can
        split a bucket into many)."""
        bounds, counts = self.gbounds[g], self.gcounts[g]
        cuts = range(0, len(bounds), GROUP)
        self.gbounds[g : g + 1] = [bounds[c : c + GROUP] for c in cuts]
        self.gcounts[g : g + 1] = [counts[c : c + GROUP] for c in cuts]
        self.gfirst[g : g + 1] = [bounds[c] for c in cuts]
        self.gtotal[g : g + 1] = [sum(counts[c : c + GROUP]) for c in cuts]

    def _merge(self, g: int, i: int) -> None:
        """Fold a small bucket into a neighbour of its group (the next one into it, or
        it into the previous one: a group's first bound never moves), then a small
        group into a neighbouring group."""
        bounds, counts = self.gbounds[g], self.gcounts[g]
        if len(bounds) > 1:
            j = i + 1 if i + 1 < len(bounds) else i
            if counts[j - 1] + counts[j] <= 2 * self.bucket:
                self._fold(g, j)
        if len(bounds) < GROUP // 4 and len(self.gbounds) > 1:
            h = g if g > 0 else 1  # fold group h into group h - 1
            if len(self.gbounds[h - 1]) + len(self.gbounds[h]) <= 2 * GROUP:
                self._fold_group(h)

    def _fold(self, g: int, j: int) -> None:
        """Bucket j of group g into bucket j - 1."""
        counts = self.gcounts[g]
        counts[j - 1] += counts[j]
        del self.gbounds[g][j], counts[j]
        self.buckets -= 1

    def _fold_group(self, h: int) -> None:
        """Group h into group h - 1."""
        self.gbounds[h - 1] += self.gbounds[h]
        self.gcounts[h - 1] += self.gcounts[h]
        self.gtotal[h - 1] += self.gtotal[h]
        del self.gbounds[h], self.gcounts[h], self.gfirst[h], self.gtotal[h]


# An OrderIndex bucket's entries: its score-index keys without the set's prefix,
# concatenated, and the offset where each starts plus the end offset. Two objects per
# bucket, not one per entry: about len(entry) + 4 bytes an entry (a bytes object per
# entry would cost ~len + 45).
Run = tuple[bytes, "array[int]"]
# Bytes per bucket besides the entries: the tuple, the bytes and array headers, a slot.
_RUN_OVERHEAD = 56 + 33 + 80 + 8


def _run(entries: list[bytes]) -> Run:
    return b"".join(entries), array("I", accumulate(map(len, entries), initial=0))


def _find(run: Run, s: bytes) -> int:
    """How many entries of run are < s: a bisect over the offsets."""
    blob, offs = run
    lo, hi = 0, len(offs) - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if blob[offs[mid] : offs[mid + 1]] < s:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _edit(run: Run, s: bytes, d: int) -> Run:
    """run with entry s added (d = 1) or removed (d = -1); Mismatch when it already is
    (or is not) there."""
    blob, offs = run
    j = _find(run, s)
    there = j < len(offs) - 1 and blob[offs[j] : offs[j + 1]] == s
    n = len(s)
    if d == 1 and not there:
        o = offs[j]
        return blob[:o] + s + blob[o:], offs[: j + 1] + array("I", [x + n for x in offs[j:]])
    if d == -1 and there:
        return (
            blob[: offs[j]] + blob[offs[j + 1] :],
            offs[: j + 1] + array("I", [x - n for x in offs[j + 2 :]]),
        )
    raise Mismatch(f"change {d:+d} of an entry {'' if there else 'not '}indexed")


def _entries(run: Run, a: int, b: int) -> list[bytes]:
    blob, offs = run
    return [blob[offs[x] : offs[x + 1]] for x in range(a, b)]


class OrderIndex(RankIndex):
    """A rank index whose buckets also hold their entries: the set's whole order in
    memory (Redis's skiplist, as a bounded cache). Ranks, keys at a rank and short
    ranges by score or lex are answered without an engine read; the buckets' entries
    change with the same committed deltas, and a delta that does not fit them (an
    added key already there, a removed one missing) is a Mismatch."""

    __slots__ = ("gruns", "payload")

    def __init__(
        self, sp: bytes, end: bytes, counts: list[int], bucket: int, runs: list[Run]
    ) -> None:
        bounds = [sp] + [sp + r[0][: r[1][1]] for r in runs[1:]]  # each run's first key
        super().__init__(sp, end, bounds, counts, bucket)
        self.gruns = [runs[i : i + GROUP] for i in range(0, len(runs), GROUP)]
        self.payload = sum(len(r[0]) for r in runs)

    def nbytes(self) -> int:
        return (
            self.buckets * (_bucket_bytes(self.sp) + _RUN_OVERHEAD) + self.payload + 4 * self.total
        )

    # ------------------------------------------------------------ reads

    def _at(self, key: bytes) -> tuple[int, int, int]:
        """(group, bucket, entries before key in the bucket) of the first entry >= key
        (key >= sp; the set's end, or past it, is after the last entry)."""
        if key >= self.end:
            g = len(self.gruns) - 1
            i = len(self.gruns[g]) - 1
            return g, i, len(self.gruns[g][i][1]) - 1
        g, i = self._locate(key)
        return g, i, _find(self.gruns[g][i], key[len(self.sp) :])

    def rank_of(self, engine: Any, key: bytes) -> int:
        g, i, j = self._at(key)
        return sum(self.gtotal[:g]) + sum(self.gcounts[g][:i]) + j

    def seek(self, r: int) -> tuple[bytes, int]:
        """(the key at rank r, 0)."""
        return self.keys_at(r, 1)[0], 0

    def keys_at(self, r: int, n: int) -> list[bytes]:
        """Up to n keys from rank r on, 0 <= r < total."""
        return self._forward(*self._position(r), n)

    def keys_from(self, key: bytes, n: int) -> list[bytes]:
        """Up to n keys >= key, in order."""
        return self._forward(*self._at(key), n)

    def keys_before(self, key: bytes, n: int) -> list[bytes]:
        """Up to n keys < key, nearest first."""
        g, i, j = self._at(key)
        sp, gruns = self.sp, self.gruns
        out: list[bytes] = []
        while True:
            blob, offs = gruns[g][i]
            start = max(0, j - (n - len(out)))
            out += [sp + blob[offs[x] : offs[x + 1]] for x in range(j - 1, start - 1, -1)]
            if len(out) >= n:
                return out
            if i == 0:
                if g == 0:
                    return out
                g -= 1
                i = len(gruns[g])
            i -= 1
            j = len(gruns[g][i][1]) - 1

    def _forward(self, g: int, i: int, j: int, n: int) -> list[bytes]:
        """Up to n keys from entry j of bucket i of group g on."""
        sp, gruns = self.sp, self.gruns
        out: list[bytes] = []
        while True:
            blob, offs = gruns[g][i]
            stop = min(len(offs) - 1, j + n - len(out))
            out += [sp + blob[offs[x] : offs[x + 1]] for x in range(j, stop)]
            if len(out) >= n:
                return out
            j = 0
            i += 1
            if i == len(gruns[g]):
                g += 1
                i = 0
                if g == len(gruns):
                    return out

    # ------------------------------------------------------------ changes

    def _change(self, g: int, i: int, key: bytes, d: int) -> None:
        s = key[len(self.sp) :]
        runs = self.gruns[g]
        runs[i] = _edit(runs[i], s, d)  # a Mismatch leaves the index to be dropped
        self.payload += d * len(s)

    def _split(self, engine: Any, g: int, i: int) -> None:
        c = self.gcounts[g][i]
        entries = _entries(self.gruns[g][i], 0, c)
        parts = c // self.bucket
        cuts = [c * j // parts for j in range(parts + 1)]
        pairs = list(zip(cuts, cuts[1:], strict=False))
        self.gruns[g][i : i + 1] = [_run(entries[a:b]) for a, b in pairs]
        self.gbounds[g][i + 1 : i + 1] = [self.sp + entries[a] for a, _ in pairs[1:]]
        self.gcounts[g][i : i + 1] = [b - a for a, b in pairs]
        self.buckets += parts - 1
        if len(self.gbounds[g]) > 2 * GROUP:
            self._split_group(g)

    def _split_group(self, g: int) -> None:
        runs = self.gruns[g]
        self.gruns[g : g + 1] = [runs[c : c + GROUP] for c in range(0, len(runs), GROUP)]
        super()._split_group(g)

    def _fold(self, g: int, j: int) -> None:
        runs = self.gruns[g]
        (b1, o1), (b2, o2) = runs[j - 1], runs[j]
        n = len(b1)
        runs[j - 1] = (b1 + b2, o1 + array("I", [x + n for x in o2[1:]]))
        del runs[j]
        super()._fold(g, j)

    def _fold_group(self, h: int) -> None:
        self.gruns[h - 1] += self.gruns[h]
        del self.gruns[h]
        super()._fold_group(h)


class OrderBuild:
    """An OrderIndex being built, a slice of the set at a time: a range read that finds
    the set ripe (RankIndexes.advance) adds the next `step` entries and still reads the
    engine, so no read waits for a whole scan (a 1 M-member set: 1-2 s). Each slice is
    read from the committed state of its time; committed changes below the cursor are
    applied to the entries read so far (RankIndexes.apply), changes above it are read
    by later slices, so the entries below the cursor are always the set's."""

    __slots__ = (
        "sp",
        "end",
        "bucket",
        "limit",
        "cursor",
        "runs",
        "firsts",
        "pend",
        "size",
        "per",
        "idle",
    )

    def __init__(self, sp: bytes, end: bytes, bucket: int, limit: int) -> None:
        self.sp = sp
        self.end = end
        self.bucket = bucket
        self.limit = limit
        self.cursor = sp  # the entries < cursor are in runs and pend
        self.runs: list[Run] = []
        self.firsts: list[bytes] = []  # each run's first entry when made: its lower bound
        self.pend: list[bytes] = []  # the last, not yet full bucket's entries
        self.size = 0  # estimated bytes of the entries read so far
        self.per = _bucket_bytes(sp) + _RUN_OVERHEAD + 4 * bucket
        self.idle = 0  # reads of other ripe sets since this one last advanced

    def add(self, keys: list[bytes]) -> bool:
        """The next keys of the set, in order; False once past limit bytes."""
        ls = len(self.sp)
        pend = self.pend
        pend += [k[ls:] for k in keys]
        bucket = self.bucket
        full = len(pend) - len(pend) % bucket
        for a in range(0, full, bucket):
            run = _run(pend[a : a + bucket])
            self.runs.append(run)
            self.firsts.append(pend[a])
            self.size += len(run[0]) + self.per
        del pend[:full]
        if keys:
            self.cursor = keys[-1] + b"\x00"
        return self.size <= self.limit

    def step(self, engine: Any, n: int) -> OrderIndex | None:
        """Add the next entries: one `DB.key_step` from the cursor (n or so from each
        source, a few times n in all when several sources share the set); the
        OrderIndex once the set is read to its end. Raises TooBig past the limit."""
        keys, nxt = engine.key_step(self.cursor, self.end, n)
        if not self.add(keys):
            raise TooBig
        if nxt is None:
            return self._done()
        self.cursor = nxt
        return None

    def finish(self, engine: Any) -> OrderIndex | None:
        """The rest of the set in one go (`DB.key_chunks`): the OrderIndex, None past
        the limit."""
        chunks = engine.key_chunks(self.cursor, self.end)
        try:
            for keys in chunks:
                if not self.add(keys):
                    return None
        finally:
            chunks.close()
        return self._done()

    def apply(self, deltas: dict[bytes, int]) -> None:
        """Committed changes: the ones below the cursor (already read) edit the entries
        read so far; the ones above are for later slices to read. Mismatch when a
        change does not fit them."""
        ls = len(self.sp)
        cursor, pend, runs = self.cursor, self.pend, self.runs
        for key, d in deltas.items():
            if not d or key >= cursor:
                continue
            s = key[ls:]
            if not runs or (pend and s >= pend[0]):
                j = bisect_left(pend, s)
                there = j < len(pend) and pend[j] == s
                if d == 1 and not there:
                    pend.insert(j, s)
                elif d == -1 and there:
                    del pend[j]
                else:
                    raise Mismatch(f"change {d:+d} of an entry read or not")
            else:
                i = max(bisect_right(self.firsts, s) - 1, 0)
                runs[i] = _edit(runs[i], s, d)
            self.size += d * (len(s) + 4)

    def _done(self) -> OrderIndex:
        runs = [r for r in self.runs if len(r[1]) > 1]  # changes may have emptied some
        if self.pend or not runs:
            runs.append(_run(self.pend))
        return OrderIndex(self.sp, self.end, [len(r[1]) - 1 for r in runs], self.bucket, runs)


class TooBig(Exception):
    """A set's entries grew past the memory an OrderIndex may take."""


class RankIndexes:
    """The store's rank indexes, least recently used evicted past max_bytes: an
    OrderIndex for a set whose entries fit in order_bytes (half the budget), else bucket
    counts (a set too big for a quarter of the budget at the base bucket size gets
    bigger buckets); and at most one OrderBuild under way for range reads."""

    def __init__(self, engine: Any, max_bytes: int = 128 << 20, bucket: int = BUCKET) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        self.bucket = bucket
        self.order_bytes = max_bytes // 2  # the most one OrderIndex may take
        self._idx: OrderedDict[bytes, RankIndex] = OrderedDict()
        self._sizes: dict[bytes, int] = {}
        # Sets found too big for an OrderIndex, with their size then (insertion order:
        # the oldest forgotten); tried again once a set has shrunk to half that size
        self._unordered: dict[bytes, int] = {}
        self._reads: dict[bytes, int] = {}  # range reads that found no index, per set
        self._building: dict[bytes, OrderBuild] = {}  # OrderIndexes built a slice a read
        self.build_step = BUILD_STEP
        self.nbytes = 0
        self.builds = 0
        self.build_seconds = 0.0  # time spent building (scans of sets), callers waiting
        self.mismatches = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._idx)

    def ordered(self) -> int:
        """How many of the indexes keep their set's order (OrderIndex)."""
        return sum(isinstance(i, OrderIndex) for i in self._idx.values())

    def min_count(self) -> int:
        """Smaller sets are counted by scanning (no index is worth it)."""
        return 2 * self.bucket

    def get(self, sp: bytes, end: bytes, committed: int) -> RankIndex | None:
        """sp's index, built now if missing (ZRANK needs it to answer); committed is the
        set's committed size (a check: an index whose total differs is rebuilt). A set
        whose entries fit in half the budget gets an OrderIndex (an OrderBuild under way
        is finished), a bigger one bucket counts. None when disabled (max_bytes 0)."""
        if self.max_bytes <= 0:
            return None
        idx = self.peek(sp, committed)
        if idx is not None:
            return idx
        t0 = perf_counter()
        b = self._building.pop(sp, None)
        if b is None and self._fits(sp, end, committed):
            b = OrderBuild(sp, end, 2 * self.bucket, self.order_bytes)
        idx = b.finish(self.engine) if b is not None else None
        if idx is None:
            if self.order_bytes > 0 and not self._known_too_big(sp, committed):
                self._too_big(sp, committed)  # measured now (by _fits or the scan)
            per = _bucket_bytes(sp)
            bucket = max(self.bucket, -(-committed * per // max(self.max_bytes // 4, 1)))
            idx = RankIndex.build(self.engine, sp, end, bucket)
        self.build_seconds += perf_counter() - t0  # the caller waited for it
        return self._install(sp, idx, committed)

    def advance(self, sp: bytes, end: bytes, committed: int) -> OrderIndex | None:
        """A range read of set sp found no index: count it, and once the set is ripe
        build its OrderIndex a slice (`build_step` entries) per such read; the index when
        complete. Sets too big for one never start (D21). One build at a time, its
        entries counted against the budget as it grows (indexes evicted to make room);
        one whose set is no longer read gives way after STALE reads of other ripe sets."""
        b = self._building.get(sp)
        if b is None:
            if not self.ripe(sp, committed):  # the usual case: kept short
                return None
            if (
                self.order_bytes <= 0
                or committed < self.min_count()
                or self._known_too_big(sp, committed)
            ):
                return None
            for other, ob in list(self._building.items()):  # at most one
                ob.idle += 1
                if ob.idle <= STALE:
                    return None  # this set waits its turn, ripe
                del self._building[other]
            if not self._fits(sp, end, committed):
                self._too_big(sp, committed)
                return None
            self._reads.pop(sp, None)
            b = self._building[sp] = OrderBuild(sp, end, 2 * self.bucket, self.order_bytes)
        b.idle = 0
        t0 = perf_counter()
        try:
            idx = b.step(self.engine, self.build_step)
        except TooBig:
            idx = None
            del self._building[sp]
            self._too_big(sp, committed)
        self.build_seconds += perf_counter() - t0
        if idx is None:
            if sp in self._building:
                self._evict(b.size)
            return None
        del self._building[sp]
        out = self._install(sp, idx, committed)
        return out if isinstance(out, OrderIndex) else None

    def _install(self, sp: bytes, idx: RankIndex, committed: int) -> RankIndex | None:
        self.builds += 1
        if idx.total != committed:
            # The engine holds another count than the caller worked out from the set's
            # size and its transaction's changes: writes it cannot see (a COPY in the
            # same transaction, then ZADDs over every copied member). Count by scanning.
            return None
        self._idx[sp] = idx
        self._account(sp, idx)
        return idx

    def ripe(self, sp: bytes, committed: int) -> bool:
        """Whether range reads of set sp that found no index have by now cost about what
        building its OrderIndex costs (ski rental: never more than twice the better
        choice made knowing the future). Each read counts as RIPE x the sorted runs
        the engine merges for it now, in entries of build: ripe once they add up to the
        set's size. A read right after a fill, over L0 files and a second memtable,
        costs two or three times one over a settled tree, and the build starts that
        much sooner. Counted for the last 4096 sets read so."""
        reads = self._reads
        cost = reads.pop(sp, 0) + RIPE * self.engine.runs_at(sp)
        if len(reads) >= 4096:
            reads.pop(next(iter(reads)))
        reads[sp] = cost  # kept until its build starts
        return cost >= committed

    def _fits(self, sp: bytes, end: bytes, committed: int) -> bool:
        """Whether the set's entries look like they fit an OrderIndex (half the budget),
        measured on its first keys (the build checks again as it goes)."""
        if self.order_bytes <= 0 or self._known_too_big(sp, committed):
            return False
        first = self.engine.head_keys(sp, end, 64)
        per_entry = sum(map(len, first)) / max(len(first), 1) - len(sp) + 4
        per_bucket = _bucket_bytes(sp) + _RUN_OVERHEAD
        return committed * (per_entry + per_bucket / (2 * self.bucket)) <= self.order_bytes

    def _too_big(self, sp: bytes, size: int) -> None:
        """Remember sp as too big for an OrderIndex at size (1024 sets; the oldest
        forgotten)."""
        if sp not in self._unordered and len(self._unordered) >= 1024:
            self._unordered.pop(next(iter(self._unordered)))
        self._unordered[sp] = size

    def _known_too_big(self, sp: bytes, size: int) -> bool:
        """Found too big before, and not shrunk to half since."""
        was = self._unordered.get(sp)
        return was is not None and size > was // 2

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
                b = self._building.get(sp)
                if b is not None:
                    try:
                        b.apply(d)
                    except Mismatch:
                        del self._building[sp]  # cannot happen while exact: start over
                        self.mismatches += 1
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
                size = idx.nbytes()
                if isinstance(idx, OrderIndex) and size > self.order_bytes:
                    self.drop(sp)  # grew past its share: rebuilt with counts when next used
                    self._too_big(sp, idx.total)
                else:
                    self._account(sp, idx, size)

    def drop(self, sp: bytes) -> None:
        self._building.pop(sp, None)
        if self._idx.pop(sp, None) is not None:
            self.nbytes -= self._sizes.pop(sp)

    def clear(self) -> None:
        self._idx.clear()
        self._building.clear()
        self._unordered.clear()
        self._reads.clear()
        self._sizes.clear()
        self.nbytes = 0

    def _account(self, sp: bytes, idx: RankIndex, size: int | None = None) -> None:
        if size is None:
            size = idx.nbytes()
        self.nbytes += size - self._sizes.get(sp, 0)
        self._sizes[sp] = size
        self._evict(0, keep=1)

    def _evict(self, extra: int, keep: int = 0) -> None:
        """Drop least recently used indexes while they and extra bytes (a build's)
        exceed the budget, keeping the newest keep of them."""
        while self.nbytes + extra > self.max_bytes and len(self._idx) > keep:
            old, _ = self._idx.popitem(last=False)
            self.nbytes -= self._sizes.pop(old)
            self.evictions += 1
