"""Read keys from, and write keys to, a Redis or ShaleKV server (`redis.Redis`) or a
ShaleKV DB directory (`shalekv.open(dir)`), through batches of raw commands
(transfer_conn).

Reading follows Redis's own migration tools (redis-shake, RIOT): SCAN, then one
pipelined round trip for TYPE + PEXPIRETIME of the whole batch, then one for the
first chunk of every value (GET, LRANGE, HSCAN, SSCAN, ZRANGE WITHSCORES); only
collections larger than one chunk need further round trips. Writing makes each key
appear whole: small keys go in MULTI/EXEC batches (DEL + write + PEXPIREAT), larger
ones are built under a temporary name and RENAMEd into place (RENAME is atomic and
keeps the TTL, as in Redis's `renameGenericCommand`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ResponseError

from shalekv.backup.transfer_conn import Cmd, Conn, as_conn
from shalekv.backup.transfer_record import Chunk, Entry, KeyType, chunk_bytes

# Suffix of the temporary key a large value is built under before its RENAME. A run
# interrupted mid-key leaves it behind; the next run deletes it before reusing it.
TMP_SUFFIX = b"\x00shalekv-import-tmp"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _n(i: int) -> bytes:
    return b"%d" % i


def _check(replies: list[Any]) -> list[Any]:
    for r in replies:
        if isinstance(r, ResponseError):
            raise r
    return replies


class ClientSource:
    """Every key of one logical database of a server or embedded store, in SCAN order.

    Guarantee (Redis's SCAN): a key present for the whole run is read at least once;
    keys created, deleted or changed meanwhile may or may not be. A collection larger
    than one chunk is read in several commands, so it is not a point-in-time copy if
    it is written while read."""

    def __init__(self, client: Any, *, scan_count: int = 1000, chunk: int = 1000) -> None:
        self.conn: Conn = as_conn(client)
        self.scan_count = scan_count
        self.chunk = chunk
        self.changed = 0  # keys that vanished or changed type while being read
        self.unsupported = 0  # keys of types not carried (streams, modules)
        self.position = 0
        # PEXPIRETIME exists from Redis 7.0; before, PTTL (relative: an expiry read that
        # way may be off by the round-trip time).
        probe = self.conn.run([[b"PEXPIRETIME", b"\x00shalekv-probe"]])[0]
        self._expire_cmd = b"PTTL" if isinstance(probe, ResponseError) else b"PEXPIRETIME"

    def total_keys(self) -> int | None:
        """DBSIZE: the denominator of the progress bar (approximate if written to)."""
        r = self.conn.run([[b"DBSIZE"]])[0]
        return None if isinstance(r, ResponseError) else int(r)

    def batches(self, cursor: int = 0) -> Iterator[Iterator[Entry]]:
        """The entries of each SCAN call, starting at cursor (a saved position
        resumes the scan); after each, self.position is the next cursor (0: done)."""
        first = True
        while first or cursor != 0:
            first = False
            nxt, keys = _check(
                self.conn.run([[b"SCAN", _n(cursor), b"COUNT", _n(self.scan_count)]])
            )[0]
            cursor = int(nxt)
            self.position = cursor
            yield self._read(keys)

    def _expire_at(self, exp: int, now: int) -> int | None:
        if exp == -1:
            return None
        return exp if self._expire_cmd == b"PEXPIRETIME" else now + exp

    def _read(self, keys: list[bytes]) -> Iterator[Entry]:
        if not keys:
            return
        cmds: list[Cmd] = []
        for k in keys:
            cmds.append([b"TYPE", k])
            cmds.append([self._expire_cmd, k])
        meta = self.conn.run(cmds)
        now = _now_ms()
        todo: list[tuple[bytes, KeyType, int | None]] = []
        for i, k in enumerate(keys):
            tname, exp = meta[2 * i], meta[2 * i + 1]
            if isinstance(tname, Exception) or isinstance(exp, Exception):
                self.changed += 1
                continue
            kt = KeyType.from_name(tname)
            if kt is None:
                if bytes(tname) != b"none":
                    self.unsupported += 1
                continue
            if exp == -2:  # gone between SCAN and TYPE
                self.changed += 1
                continue
            todo.append((k, kt, self._expire_at(int(exp), now)))
        firsts = self.conn.run([self._first_cmd(k, kt) for k, kt, _ in todo])
        for (k, kt, expire_at), reply in zip(todo, firsts, strict=True):
            entry = self._entry(k, kt, expire_at, reply)
            if entry is None:
                entry = self._read_again(k)
            if entry is not None:
                yield entry

    def _first_cmd(self, k: bytes, kt: KeyType) -> Cmd:
        n = self.chunk
        if kt is KeyType.STRING:
            return [b"GET", k]
        if kt is KeyType.LIST:
            return [b"LRANGE", k, b"0", _n(n - 1)]
        if kt is KeyType.HASH:
            return [b"HSCAN", k, b"0", b"COUNT", _n(n)]
        if kt is KeyType.SET:
            return [b"SSCAN", k, b"0", b"COUNT", _n(n)]
        return [b"ZRANGE", k, b"0", _n(n - 1), b"WITHSCORES"]

    def _entry(self, k: bytes, kt: KeyType, expire_at: int | None, reply: Any) -> Entry | None:
        """The entry for a first-chunk reply; None if the key changed meanwhile."""
        if isinstance(reply, Exception) or reply is None:
            return None
        if kt is KeyType.STRING:
            return Entry(k, kt, expire_at, iter([[bytes(reply)]]))
        if kt in (KeyType.HASH, KeyType.SET):
            cursor = int(reply[0])
            first = _pairs(reply[1]) if kt is KeyType.HASH else list(reply[1])
            if not first and cursor == 0:
                return None
            more = self._scan_rest(k, kt, cursor) if cursor else iter(())
            return Entry(k, kt, expire_at, itertools.chain([first], more))
        if not reply:
            return None
        first = _scored(reply) if kt is KeyType.ZSET else list(reply)
        more = self._range_rest(k, kt, len(first)) if len(first) == self.chunk else iter(())
        return Entry(k, kt, expire_at, itertools.chain([first], more))

    def _read_again(self, k: bytes) -> Entry | None:
        """One retry for a key whose type or existence changed between round trips."""
        tname, exp = self.conn.run([[b"TYPE", k], [self._expire_cmd, k]])
        kt = None if isinstance(tname, Exception) else KeyType.from_name(tname)
        if kt is not None and not isinstance(exp, Exception) and exp != -2:
            expire_at = self._expire_at(int(exp), _now_ms())
            reply = self.conn.run([self._first_cmd(k, kt)])[0]
            entry = self._entry(k, kt, expire_at, reply)
            if entry is not None:
                return entry
        self.changed += 1
        return None

    def _scan_rest(self, k: bytes, kt: KeyType, cursor: int) -> Iterator[Chunk]:
        cmd = b"HSCAN" if kt is KeyType.HASH else b"SSCAN"
        while cursor:
            nxt, items = _check(self.conn.run([[cmd, k, _n(cursor), b"COUNT", _n(self.chunk)]]))[0]
            cursor = int(nxt)
            if items:
                yield _pairs(items) if kt is KeyType.HASH else list(items)

    def _range_rest(self, k: bytes, kt: KeyType, start: int) -> Iterator[Chunk]:
        n = self.chunk
        while True:
            stop = _n(start + n - 1)
            if kt is KeyType.LIST:
                got: Chunk = list(_check(self.conn.run([[b"LRANGE", k, _n(start), stop]]))[0])
            else:
                cmd = [b"ZRANGE", k, _n(start), stop, b"WITHSCORES"]
                got = _scored(_check(self.conn.run([cmd]))[0])
            if got:
                yield got
            if len(got) < n:
                return
            start += n


def _pairs(flat: list[bytes]) -> Chunk:
    it = iter(flat)
    return list(zip(it, it, strict=True))


def _scored(flat: list[Any]) -> Chunk:
    """ZRANGE WITHSCORES: RESP2 gives member, score, member, ... with scores as
    strings ("inf", "1.5", formatted %.17g so float() is exact) or, from the embedded
    store, floats; RESP3 gives [member, double] pairs."""
    if flat and isinstance(flat[0], list):
        return [(m, float(s)) for m, s in flat]
    it = iter(flat)
    return [(m, float(s)) for m, s in zip(it, it, strict=True)]


def _score(s: float) -> bytes:
    # repr() is the shortest string that reads back as the same double; "inf"/"-inf"
    # are what Redis's ZADD accepts for the infinities.
    return repr(float(s)).encode()


class ClientTarget:
    """Writes entries into a server or embedded store. A key is never visible half
    written: small keys are written in MULTI/EXEC batches of up to batch_keys keys, a
    key of several chunks in a MULTI/EXEC of its own, and a key of more than
    atomic_bytes (which a transaction would hold in memory, client and server side)
    under a temporary name, then RENAMEd. With replace=False, keys that already
    exist in the target are left as they are (checked just before writing; a key
    created concurrently after the check is overwritten)."""

    def __init__(
        self,
        client: Any,
        *,
        replace: bool = True,
        batch_keys: int = 1000,
        batch_bytes: int = 4 << 20,
        chunks_per_round_trip: int = 16,
        atomic_bytes: int = 32 << 20,
    ) -> None:
        self.conn: Conn = as_conn(client)
        self.replace = replace
        self.batch_keys = batch_keys
        self.batch_bytes = batch_bytes
        self.chunks_per_round_trip = chunks_per_round_trip
        self.atomic_bytes = atomic_bytes
        self.written = 0
        self.bytes = 0  # key and value bytes taken (written, or skipped as present)
        self.existing = 0  # skipped: present in the target, replace=False
        self.expired = 0  # skipped: its expiry passed before it could be written
        self._pending: list[tuple[Entry, list[Chunk]]] = []
        self._pending_bytes = 0

    def write(self, entry: Entry) -> None:
        """Queue or write one key (its chunks are consumed here)."""
        exp = entry.expire_at_ms
        if exp is not None and exp <= _now_ms():
            for _ in entry.chunks:
                pass
            self.expired += 1
            return
        self.bytes += len(entry.key)
        chunks = entry.chunks
        buf: list[Chunk] = []
        size = len(entry.key)
        for c in chunks:
            buf.append(c)
            n = chunk_bytes(entry.type, c)
            size += n
            self.bytes += n
            if size > self.atomic_bytes:
                self.flush()
                self._write_large(entry, self._counted(entry.type, chunks), buf)
                return
        if not buf:
            return
        if len(buf) > 1 or size > self.batch_bytes:
            self.flush()  # a key of several chunks: a transaction of its own
        self._pending.append((entry, buf))
        self._pending_bytes += size
        if len(buf) > 1 or len(self._pending) >= self.batch_keys:
            self.flush()
        elif self._pending_bytes >= self.batch_bytes:
            self.flush()

    def flush(self) -> None:
        """Write every queued key (one MULTI/EXEC)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_bytes = 0
        if not self.replace:
            present = _check(self.conn.run([[b"EXISTS", e.key] for e, _ in pending]))
            self.existing += sum(1 for x in present if x)
            pending = [ec for ec, x in zip(pending, present, strict=True) if not x]
        cmds: list[Cmd] = []
        for e, chunks in pending:
            if self.replace:
                cmds.append([b"DEL", e.key])
            for i, chunk in enumerate(chunks):
                cmds.append(_write_cmd(e.type, e.key, chunk, append=i > 0))
            if e.expire_at_ms is not None:
                cmds.append([b"PEXPIREAT", e.key, _n(e.expire_at_ms)])
        if cmds:
            self.conn.run(cmds, atomic=True)
        self.written += len(pending)

    def _counted(self, kind: KeyType, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        for c in chunks:
            self.bytes += chunk_bytes(kind, c)
            yield c

    def _write_large(self, entry: Entry, rest: Iterator[Chunk], buf: list[Chunk]) -> None:
        conn = self.conn
        chunks = itertools.chain(buf, rest)
        key = entry.key
        if not self.replace and _check(conn.run([[b"EXISTS", key]]))[0]:
            for _ in chunks:
                pass
            self.existing += 1
            return
        tmp = key + TMP_SUFFIX
        cmds: list[Cmd] = [[b"DEL", tmp]]
        for chunk in chunks:
            cmds.append(_write_cmd(entry.type, tmp, chunk, append=True))
            if len(cmds) >= self.chunks_per_round_trip:
                _check(conn.run(cmds))
                cmds = []
        _check(conn.run(cmds))
        exp = entry.expire_at_ms
        if exp is not None and exp <= _now_ms():
            conn.run([[b"DEL", tmp]])
            self.expired += 1
            return
        cmds = [] if exp is None else [[b"PEXPIREAT", tmp, _n(exp)]]
        cmds.append([b"RENAME" if self.replace else b"RENAMENX", tmp, key])
        renamed = conn.run(cmds, atomic=True)[-1]
        if renamed == 0:  # RENAMENX: the key appeared meanwhile
            conn.run([[b"DEL", tmp]])
            self.existing += 1
            return
        self.written += 1

    def finish(self) -> None:
        self.flush()


def _write_cmd(kind: KeyType, key: bytes, chunk: Chunk, append: bool = False) -> Cmd:
    """The command adding chunk to key (APPEND for string pieces after the first;
    a large string's first piece also goes by APPEND onto the just-deleted key)."""
    if kind is KeyType.STRING:
        return [b"APPEND" if append else b"SET", key, b"".join(chunk)]
    if kind is KeyType.LIST:
        return [b"RPUSH", key, *chunk]
    if kind is KeyType.SET:
        return [b"SADD", key, *chunk]
    if kind is KeyType.HASH:
        return [b"HSET", key, *itertools.chain.from_iterable(chunk)]
    return [b"ZADD", key, *itertools.chain.from_iterable((_score(s), m) for m, s in chunk)]
