"""The keyspace: metadata lookups with expiry, transactions over the engine, and the
commands that act on keys of any type (DEL, EXPIRE, RENAME, SCAN ...).

Every command runs inside one `Txn`: reads see the engine plus the transaction's own
writes, which gather and are committed as one WriteBatch at the end, so a command (or a
whole MULTI/EXEC pipeline) is atomic, also across a crash. Writers are serialized by the
store's lock, which is what makes read-modify-write commands and transactions isolated
from other threads.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from shalekv.engine.db import DB
from shalekv.engine.write_batch import WriteBatch
from shalekv.errors import (
    DB_INDEX,
    NO_SUCH_KEY,
    InvalidArgumentError,
    ResponseError,
    WrongTypeError,
)
from shalekv.types import encoding as enc
from shalekv.types.zrank import RankIndexes

_U16 = struct.Struct(">H")
_I64 = struct.Struct(">q")
_COUNTS = struct.Struct(">QQ")  # keys, keys with an expire
_U64 = struct.Struct(">Q")
EXPIRY = b"X"  # expiry index: X | db | expire-at (8) | user key -> b""
COUNTS_KEY = b"\x00keys"  # + db: key counts, updated in the batch that changes them
VERSION_BLOCK = 1 << 16
_SCORE_END = enc.prefix_end(enc.SCORE)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def expiry_key(db: int, expire_at: int, key: bytes) -> bytes:
    return EXPIRY + _U16.pack(db) + _I64.pack(expire_at) + key


class Store:
    """Shared state of one open data directory: the engine, the writer lock, the
    version allocator, per-database key counts and WATCH bookkeeping."""

    def __init__(
        self,
        engine: DB,
        databases: int = 16,
        rank_index_size: int = 128 << 20,
        rank_bucket: int | None = None,
    ) -> None:
        self.engine = engine
        self.databases = databases
        # Each database's metadata-key prefix (enc.meta_key(db, b"")): the inline GET
        # prepends it with one concatenation
        self.meta_prefixes = tuple(enc.meta_key(db, b"") for db in range(databases))
        self.lock = threading.RLock()
        # Order statistics of big sorted sets (types/zrank.py), kept by Txn.commit.
        self.ranks = RankIndexes(engine, rank_index_size, rank_bucket or 32)
        raw = engine.get(enc.VERSION_KEY)
        self._next_version = enc.unpack_u64(raw) if raw else 1
        self._reserved = self._next_version
        self.counts: list[list[int]] = []
        for db in range(databases):
            c = engine.get(COUNTS_KEY + _U16.pack(db))
            self.counts.append(list(_COUNTS.unpack(c)) if c else [0, 0])
        # (db, key) -> watcher tokens; a token is a one-element list [dirty]
        self.watchers: dict[tuple[int, bytes], list[list[bool]]] = {}
        self.scan_cursors: dict[int, bytes] = {}
        self._next_cursor = 1
        # INFO stats: reads of present/absent keys by read commands, keys expired
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.expired_keys = 0

    def watch(self, token: list[bool], db: int, key: bytes) -> int:
        """Register a WATCH of (db, key) for token, which every commit changing the key
        marks dirty (Txn._mark_watched). Call with the lock held. Returns the key's
        deadline if it is alive and has one (its expiring before EXEC fails the
        transaction, as Redis 7.0's isWatchedKeyExpired), else 0."""
        self.watchers.setdefault((db, key), []).append(token)
        m = self.engine.get(enc.meta_key(db, key))
        at = enc.expire_of(m) if m is not None else 0
        return at if at and at >= time.time_ns() // 1_000_000 else 0

    def unwatch(self, token: list[bool], keys: Iterable[tuple[int, bytes]]) -> None:
        w = self.watchers
        for key in keys:
            tokens = w.get(key)
            if tokens is not None:
                tokens[:] = [t for t in tokens if t is not token]
                if not tokens:
                    del w[key]

    @staticmethod
    def watch_failed(token: list[bool], deadlines: Iterable[int]) -> bool:
        """Must EXEC abort: a watched key changed, or one alive at WATCH has expired."""
        if token[0]:
            return True
        now = time.time_ns() // 1_000_000
        return any(at < now for at in deadlines)

    def new_version(self) -> int:
        """A collection version never used before in this store, also across restarts:
        blocks of versions are reserved in the engine before they are handed out."""
        v = self._next_version
        if v >= self._reserved:
            self._reserved = v + VERSION_BLOCK
            self.engine.put(enc.VERSION_KEY, enc.pack_u64(self._reserved))
        self._next_version = v + 1
        return v

    def check_db(self, db: int) -> None:
        if not 0 <= db < self.databases:
            raise ResponseError(DB_INDEX)

    def save_cursor(self, last_key: bytes) -> int:
        """An integer SCAN cursor for a key position (kept for the last 10,000 scans)."""
        c = self._next_cursor
        self._next_cursor += 1
        self.scan_cursors[c] = last_key
        if len(self.scan_cursors) > 10_000:
            del self.scan_cursors[next(iter(self.scan_cursors))]
        return c


class Txn:
    """One atomic unit of work: build it and commit() it while holding store.lock
    (commands.registry.dispatch does; nothing is written if commit() is not reached)."""

    __slots__ = (
        "store",
        "engine",
        "writes",
        "pending",
        "rdels",
        "now",
        "counts",
        "count_reads",
        "zdeltas",
        "touched",
        "expired",
    )

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        # The writes: the last value of each key written (None: deleted) after the range
        # deletions, which drop the keys they cover from it. The batch is made at commit:
        # a key written twice is written once, and a one-key command makes no batch.
        self.pending: dict[bytes, bytes | None] = {}
        self.rdels: list[tuple[bytes, bytes]] = []
        self.writes = 0  # calls of put/delete/delete_range (notifications: did it write)
        self.now = time.time_ns() // 1_000_000
        self.counts: dict[int, list[int]] = {}
        self.count_reads = False  # the server sets it for read commands (keyspace_hits)
        # score prefix -> {score-index key: net +1 added / -1 removed}, for the rank
        # indexes (types/zrank.py); only sorted-set code writes score-index keys this way
        self.zdeltas: dict[bytes, dict[bytes, int]] | None = None
        # WATCH tokens a range deletion touched (set at commit, with those of `pending`)
        self.touched: list[list[bool]] | None = None
        # metadata keys this transaction deleted because they had expired: no change
        # for a WATCH (a key expired at WATCH time: Redis's watchedKey.expired; one
        # that expired since fails EXEC by its deadline, Store.watch_failed)
        self.expired: set[bytes] | None = None

    # ------------------------------------------------------------ raw reads/writes

    def get(self, k: bytes) -> bytes | None:
        p = self.pending
        if p and k in p:
            return p[k]
        if self.rdels and any(lo <= k < hi for lo, hi in self.rdels):
            return None
        return self.engine.get(k)

    def put(self, k: bytes, v: bytes) -> None:
        self.pending[k] = v
        self.writes += 1

    def delete(self, k: bytes) -> None:
        self.pending[k] = None
        self.writes += 1

    def index_deltas(self, sp: bytes) -> dict[bytes, int]:
        """Where sorted-set code counts the score-index keys it adds (+1) and removes
        (-1) under prefix sp; applied to the store's rank index at commit."""
        zd = self.zdeltas
        if zd is None:
            zd = self.zdeltas = {}
        d = zd.get(sp)
        if d is None:
            d = zd[sp] = {}
        return d

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        if lo >= hi:
            raise InvalidArgumentError("delete_range needs start < end")
        if lo < _SCORE_END and hi > enc.SCORE:
            self.store.ranks.clear()  # FLUSHDB/FLUSHALL: no index is worth keeping
        dropped = [k for k in self.pending if lo <= k < hi]
        if self.store.watchers:
            self._touch_range(lo, hi, dropped)
        for k in dropped:
            del self.pending[k]
        self.rdels.append((lo, hi))
        self.writes += 1

    def _touch_range(self, lo: bytes, hi: bytes, dropped: list[bytes]) -> None:
        """The WATCHed keys a range deletion (FLUSHDB, FLUSHALL) changes, as Redis's
        touchAllWatchedKeysInDb: those alive when it runs, and those this transaction
        wrote before it (their writes leave `pending` now). A key that was already
        expired is no change (one that expired since WATCH fails EXEC anyway)."""
        touched = self.touched
        if touched is None:
            touched = self.touched = []
        touched += self._tokens_of(dropped)
        for (db, key), tokens in self.store.watchers.items():
            mk = enc.meta_key(db, key)
            if lo <= mk < hi and tokens:
                m = self.get(mk)
                if m is not None:
                    exp = enc.expire_of(m)
                    if not exp or exp >= self.now:
                        touched += tokens

    def scan(self, lo: bytes, hi: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) in [lo, hi), merged with this transaction's writes as they were
        when iteration started (the engine side is a snapshot). Writing while iterating
        is safe only for keys already passed."""
        it: Iterator[tuple[bytes, bytes]] = self.engine.items(lo, hi, reverse)
        if self.rdels:
            rd = [(a, b) for a, b in self.rdels if a < hi and b > lo]
            if rd:
                it = ((k, v) for k, v in it if not any(a <= k < b for a, b in rd))
        p = self.pending
        mine = sorted((k for k in p if lo <= k < hi), reverse=reverse) if p else None
        if not mine:
            return it  # the usual case: no generator of ours between caller and engine
        return self._merge_pending(it, mine, reverse)

    def _wrote_in(self, lo: bytes, hi: bytes) -> bool:
        """Did this transaction write (or range-delete) anything in [lo, hi)?"""
        p = self.pending
        return bool(p and any(lo <= k < hi for k in p)) or any(
            a < hi and b > lo for a, b in self.rdels
        )

    def head(self, lo: bytes, hi: bytes, n: int, reverse: bool = False) -> list[bytes]:
        """The first n keys of scan(lo, hi, reverse): the engine's short-scan path when
        this transaction wrote nothing in the range."""
        if self._wrote_in(lo, hi):
            return [k for k, _ in islice(self.scan(lo, hi, reverse), n)]
        return self.engine.head_keys(lo, hi, n, reverse)

    def scan_values(
        self, lo: bytes, hi: bytes, reverse: bool = False, expect: int = 0
    ) -> list[bytes]:
        """The values of scan(lo, hi, reverse) as a list; without writes of ours in the
        range, straight from the engine's chunks (no Python step per item), or its
        short-scan path when the caller expects at most `expect` (<= 1024) items."""
        if self._wrote_in(lo, hi):
            return [v for _, v in self.scan(lo, hi, reverse)]
        if 0 < expect <= 1024 and not reverse:
            return self.engine.head(lo, hi, expect)[1]
        return self.engine.collect(lo, hi, reverse)[1]

    def _merge_pending(
        self, it: Iterator[tuple[bytes, bytes]], mine: list[bytes], reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        p = self.pending
        i = 0
        for k, v in it:
            while i < len(mine) and (mine[i] > k if reverse else mine[i] < k):
                pv = p[mine[i]]
                if pv is not None:
                    yield mine[i], pv
                i += 1
            if i < len(mine) and mine[i] == k:
                pv = p[k]
                i += 1
                if pv is not None:
                    yield k, pv
                continue
            yield k, v
        for k in mine[i:]:
            pv = p[k]
            if pv is not None:
                yield k, pv

    def commit(self) -> None:
        """Write what this transaction wrote, as one atomic batch: range deletions
        first, then each key's last value (equivalent to the calls in order, as a range
        deletion removed the keys it covered from `pending`), then the key counts."""
        pending = self.pending
        rdels = self.rdels
        store = self.store
        if (
            len(pending) == 1
            and not rdels
            and not self.counts
            and self.zdeltas is None
            and not store.watchers
        ):
            # The hot path (SET over a value, HSET of an existing field, a pop ...): one
            # key, nothing to count or undo, no batch.
            ((k, v),) = pending.items()
            if v is not None:
                self.engine.put(k, v)
            else:
                self.engine.delete(k)
            self.pending = {}
            return
        if not pending and not rdels:
            return
        if store.watchers:
            self._mark_watched()
        counts = self.counts
        zd = self.zdeltas
        counted = False  # store.counts updated (undone if the write fails)
        try:
            if len(pending) == 1 and not rdels and not counts:  # one key, no batch
                for k, v in pending.items():
                    if v is not None:
                        store.engine.put(k, v)
                    else:
                        store.engine.delete(k)
            elif not rdels and not counts:
                store.engine.write_items(pending)
            else:
                batch = WriteBatch()
                for lo, hi in rdels:
                    batch.delete_range(lo, hi)
                batch.put_items(pending)
                counted = bool(counts)
                for db, (dk, de) in counts.items():
                    c = store.counts[db]
                    c[0] += dk
                    c[1] += de
                    batch.put(COUNTS_KEY + _U16.pack(db), _COUNTS.pack(max(c[0], 0), max(c[1], 0)))
                store.engine.write(batch)
        except BaseException:
            if counted:  # not written: the counts in memory go back to what is on disk
                for db, (dk, de) in counts.items():
                    c = store.counts[db]
                    c[0] -= dk
                    c[1] -= de
                self.counts = {}
            if zd:
                for sp in zd:
                    store.ranks.drop(sp)
            raise
        self.counts = {}
        if zd:
            store.ranks.apply(zd)  # never raises: an index it cannot update is dropped
            self.zdeltas = None
        self.pending = {}
        self.rdels = []

    def _mark_watched(self) -> None:
        for token in self._tokens_of(self.pending):
            token[0] = True
        if self.touched:
            for token in self.touched:
                token[0] = True
            self.touched = None

    def _tokens_of(self, keys: Iterable[bytes]) -> list[list[bool]]:
        """The WATCH tokens of the user keys these records belong to."""
        w = self.store.watchers
        out: list[list[bool]] = []
        expired = self.expired
        pending = self.pending
        for k in keys:
            tag = k[:1]
            if tag == enc.META:
                if expired and k in expired and pending.get(k, b"") is None:
                    continue  # deleted by expiry (and not written again since)
                uk = (_U16.unpack_from(k, 1)[0], k[3:])
            elif tag in (enc.ELEM, enc.SCORE):
                db, key, _, _ = enc.parse_sub_key(k)
                uk = (db, key)
            else:
                continue
            out += w.get(uk, ())
        return out

    # ------------------------------------------------------------ metadata

    def meta(self, db: int, key: bytes) -> bytes | None:
        """The key's metadata, or None if absent or expired (deleting it, as Redis's
        lazy expiry does)."""
        m = self.get(enc.META + _U16.pack(db) + key)
        if m is not None:
            exp = _I64.unpack_from(m, 2)[0]
            if exp and exp < self.now:
                self.expire_key(db, key, m)
                m = None
        if self.count_reads:
            if m is None:
                self.store.keyspace_misses += 1
            else:
                self.store.keyspace_hits += 1
        return m

    def lookup(self, db: int, key: bytes, kind: int) -> bytes | None:
        """Metadata of a key that must hold kind (WRONGTYPE otherwise), or None."""
        m = self.meta(db, key)
        if m is not None and m[0] != kind:
            raise WrongTypeError()
        return m

    def _count(self, db: int, dk: int, de: int) -> None:
        c = self.counts.get(db)
        if c is None:
            self.counts[db] = [dk, de]
        else:
            c[0] += dk
            c[1] += de

    def set_meta(self, db: int, key: bytes, new: bytes, old: bytes | None) -> None:
        """Write a key's metadata, keeping the expiry index and the key counts."""
        self.put(enc.META + _U16.pack(db) + key, new)
        new_exp = _I64.unpack_from(new, 2)[0]
        old_exp = _I64.unpack_from(old, 2)[0] if old is not None else 0
        if old is None:
            self._count(db, 1, 0)
        if new_exp != old_exp:
            if old_exp:
                self.delete(expiry_key(db, old_exp, key))
                self._count(db, 0, -1)
            if new_exp:
                self.put(expiry_key(db, new_exp, key), b"")
                self._count(db, 0, 1)

    def update_meta(self, db: int, key: bytes, new: bytes) -> None:
        """Write the new metadata of a key that exists and keeps its expiry (a pop, a
        push onto an existing list): set_meta without the expiry and count upkeep."""
        self.pending[enc.META + _U16.pack(db) + key] = new  # put(), inline
        self.writes += 1

    def expire_key(self, db: int, key: bytes, old: bytes) -> None:
        """Delete a key whose deadline passed (lazy or active expiry)."""
        self.del_key(db, key, old)
        if self.expired is None:
            self.expired = set()
        self.expired.add(enc.meta_key(db, key))
        self.store.expired_keys += 1

    def del_key(self, db: int, key: bytes, old: bytes) -> None:
        """Remove a key in O(1): its elements become garbage for the compaction filter."""
        self.delete(enc.META + _U16.pack(db) + key)
        old_exp = _I64.unpack_from(old, 2)[0]
        self._count(db, -1, -1 if old_exp else 0)
        if old_exp:
            self.delete(expiry_key(db, old_exp, key))
        if old[0] == enc.ZSET:  # its rank index serves no one now (dropping is always safe)
            self.store.ranks.drop(enc.score_prefix(db, key, enc.COLL.unpack_from(old)[3]))


# ---------------------------------------------------------------- generic key commands


def type_name(m: bytes | None) -> str:
    return "none" if m is None else enc.TYPE_NAMES[m[0]]


def delete(t: Txn, db: int, keys: list[bytes]) -> int:
    n = 0
    for key in keys:
        m = t.meta(db, key)
        if m is not None:
            t.del_key(db, key, m)
            n += 1
    return n


def exists(t: Txn, db: int, keys: list[bytes]) -> int:
    return sum(1 for key in keys if t.meta(db, key) is not None)


def expire(
    t: Txn,
    db: int,
    key: bytes,
    at_ms: int,
    nx: bool = False,
    xx: bool = False,
    gt: bool = False,
    lt: bool = False,
) -> int:
    """Set an absolute expire time (ms) with Redis 7's NX/XX/GT/LT (no TTL counts as
    infinite for GT/LT). A time in the past deletes the key."""
    m = t.meta(db, key)
    if m is None:
        return 0
    cur = enc.expire_of(m)
    if (nx and cur) or (xx and not cur):
        return 0
    if gt and (not cur or at_ms <= cur):
        return 0
    if lt and cur and at_ms >= cur:
        return 0
    if at_ms <= t.now:  # as Redis's checkAlreadyExpired
        t.del_key(db, key, m)
        return 1
    t.set_meta(db, key, enc.with_expire(m, at_ms), m)
    return 1


def pttl(t: Txn, db: int, key: bytes) -> int:
    m = t.meta(db, key)
    if m is None:
        return -2
    exp = enc.expire_of(m)
    return -1 if not exp else max(exp - t.now, 0)


def expiretime_ms(t: Txn, db: int, key: bytes) -> int:
    m = t.meta(db, key)
    if m is None:
        return -2
    exp = enc.expire_of(m)
    return exp if exp else -1


def persist(t: Txn, db: int, key: bytes) -> int:
    m = t.meta(db, key)
    if m is None or not enc.expire_of(m):
        return 0
    t.set_meta(db, key, enc.with_expire(m, 0), m)
    return 1


def copy_value(
    t: Txn, src_db: int, src: bytes, dst_db: int, dst: bytes, m: bytes, keep_expire: bool = True
) -> None:
    """Write a copy of src (metadata m) at dst, replacing whatever dst holds. O(N)."""
    old = t.meta(dst_db, dst)
    if old is not None:
        t.del_key(dst_db, dst, old)
        old = None
    exp = enc.expire_of(m) if keep_expire else 0
    if m[0] == enc.STRING:
        t.set_meta(dst_db, dst, enc.with_expire(m, exp), None)
        return
    version = t.store.new_version()
    fields = list(enc.COLL.unpack_from(m))
    old_version = fields[3]
    new_meta = bytearray(m)
    new_meta[0:26] = enc.COLL.pack(fields[0], fields[1], exp, version, fields[4])
    for prefix_fn in (enc.elem_prefix, enc.score_prefix):
        lo = prefix_fn(src_db, src, old_version)
        to = prefix_fn(dst_db, dst, version)
        start, end = lo, enc.prefix_end(lo)
        if m[0] == enc.LIST and prefix_fn is enc.elem_prefix:  # [head, tail): the rest is garbage
            head, tail = enc.list_bounds(m)
            start, end = lo + _U64.pack(head), lo + _U64.pack(tail)
        for k, v in list(t.scan(start, end)):
            t.put(to + k[len(lo) :], v)
    t.set_meta(dst_db, dst, bytes(new_meta), None)


def rename(t: Txn, db: int, src: bytes, dst: bytes, nx: bool) -> int:
    m = t.meta(db, src)
    if m is None:
        raise ResponseError(NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else 1
    if nx and t.meta(db, dst) is not None:
        return 0
    copy_value(t, db, src, db, dst, m)
    t.del_key(db, src, m)
    return 1


def copy(t: Txn, db: int, src: bytes, dst_db: int, dst: bytes, replace: bool) -> int:
    if src == dst and db == dst_db:  # checked first, as Redis's copyCommand
        raise ResponseError("source and destination objects are the same")
    m = t.meta(db, src)
    if m is None:
        return 0
    if not replace and t.meta(dst_db, dst) is not None:
        return 0
    copy_value(t, db, src, dst_db, dst, m)
    return 1


def move(t: Txn, db: int, key: bytes, dst_db: int) -> int:
    """MOVE to another db (Redis's moveCommand): 1, or 0 if key is absent or dst_db
    already holds it (expired keys count as absent in both). The expiry moves along.
    O(1) for strings, O(N) for collections (their element keys carry the db number)."""
    m = t.meta(db, key)
    if m is None or t.meta(dst_db, key) is not None:
        return 0
    copy_value(t, db, key, dst_db, key, m)
    t.del_key(db, key, m)
    return 1


def scan(
    t: Txn,
    db: int,
    start_after: bytes | None,
    count: int,
    match: Any = None,
    type_byte: int | None = None,
) -> tuple[bytes | None, list[bytes]]:
    """Examine up to count keys after start_after; (last key examined or None at the
    end, matching live keys)."""
    lo, hi = enc.meta_range(db)
    if start_after is not None:
        lo = enc.META + _U16.pack(db) + start_after + b"\x00"
    out: list[bytes] = []
    last = None
    n = 0
    now = t.now
    for mk, m in t.scan(lo, hi):
        key = mk[3:]
        last = key
        n += 1
        exp = _I64.unpack_from(m, 2)[0]
        if (
            not (exp and exp < now)
            and (match is None or match(key))
            and (type_byte is None or m[0] == type_byte)
        ):
            out.append(key)
        if n >= count:
            return last, out
    return None, out


def random_key(t: Txn, db: int) -> bytes | None:
    """A key chosen near a random point of the keyspace (not uniform: an LSM has no
    O(1) random access; each live key is reachable)."""
    lo, hi = enc.meta_range(db)
    for start in (lo + os.urandom(4), lo):
        for mk, m in t.scan(start, hi):
            exp = _I64.unpack_from(m, 2)[0]
            if exp and exp < t.now:
                continue
            return mk[3:]
    return None


def flushdb(t: Txn, db: int) -> None:
    """Delete every key of one database in O(1): one range deletion per record kind."""
    for lo, hi in enc.db_range(db):
        t.delete_range(lo, hi)
    t.delete_range(EXPIRY + _U16.pack(db), EXPIRY + _U16.pack(db + 1))
    c = t.store.counts[db]
    t.counts[db] = [-c[0], -c[1]]  # whatever this transaction counted before is gone too


def flushall(t: Txn) -> None:
    """Every database at once: one range deletion over all record kinds (E, M, S, X),
    so repeated FLUSHALLs do not pile up range tombstones the reads must check."""
    t.delete_range(enc.ELEM, bytes([EXPIRY[0] + 1]))
    for db, c in enumerate(t.store.counts):
        if c[0] or c[1] or db in t.counts:
            t.counts[db] = [-c[0], -c[1]]


def expire_cycle(t: Txn, db: int, limit: int) -> int:
    """Delete up to limit keys whose deadline passed, found in the expiry index (exact,
    not sampled: the index is ordered by deadline). Returns how many went."""
    lo = EXPIRY + _U16.pack(db)
    hi = lo + _I64.pack(t.now)  # deadlines < now
    n = 0
    # At most limit entries: a backlog of a million due keys is taken a batch a time.
    for xk, _ in list(islice(t.scan(lo, hi), limit)):
        exp = _I64.unpack_from(xk, 3)[0]
        key = xk[11:]
        m = t.get(enc.META + _U16.pack(db) + key)
        if m is not None and enc.expire_of(m) == exp:
            t.expire_key(db, key, m)
        else:  # stale entry: cannot happen while every path keeps the index
            t.delete(xk)
        n += 1
    return n
