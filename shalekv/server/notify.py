"""Keyspace notifications (Redis's notify.c, `notify-keyspace-events`): the events the
data commands emit, published to `__keyspace@<db>__:<key>` (message: the event) and
`__keyevent@<db>__:<event>` (message: the key).

The data commands (`shalekv.commands`, shared with the embedded API) know nothing of
pub/sub, so the events are derived around them, from a table command -> emitter that
copies the notifyKeyspaceEvent() calls of Redis 7.0's t_*.c, db.c and expire.c. The
emitter sees the arguments, the reply, whether each key existed before, whether the
command wrote anything, and the keys' state after; events are staged during the
command and published from the after-call hook once its transaction committed. With
notifications off (the default) the wrapper costs one attribute test.

Approximations: "expired" is emitted for keys the active
expiry deletes and for the keys at a command's key positions found expired on access;
keys found expired elsewhere (inside LMPOP's or ZUNIONSTORE's numkeys lists) emit
nothing. Read commands emit "expired" for what they found expired and "keymiss" (m)
for each key argument that does not exist. Pops served later to a blocked client are
notified by the blocking module through the same emitters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from shalekv.types import encoding as enc
from shalekv.types.expiry import ExpiryCycle
from shalekv.types.keyspace import Txn, expiry_key

if TYPE_CHECKING:
    from shalekv.commands.registry import Command
    from shalekv.server.app import Server
    from shalekv.server.client import Client

# notify.c's flags (server.h NOTIFY_*)
K = 1 << 0  # keyspace channel
E = 1 << 1  # keyevent channel
G = 1 << 2  # generic: del, expire, rename, ...
STR = 1 << 3  # $
LST = 1 << 4  # l
SET = 1 << 5  # s
HSH = 1 << 6  # h
ZST = 1 << 7  # z
EXP = 1 << 8  # x
EVI = 1 << 9  # e
STM = 1 << 10  # t
MISS = 1 << 11  # m
MOD = 1 << 13  # d
NEW = 1 << 14  # n
ALL = G | STR | LST | SET | HSH | ZST | EXP | EVI | STM | MOD  # 'A' (without m and n)

_CHARS = {
    "g": G, "$": STR, "l": LST, "s": SET, "h": HSH, "z": ZST, "x": EXP, "e": EVI,
    "K": K, "E": E, "t": STM, "m": MISS, "d": MOD, "n": NEW, "A": ALL,
}  # fmt: skip
INVALID = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def parse_flags(s: str) -> int:
    """keyspaceEventsStringToFlags (ValueError with Redis's text on a bad class)."""
    flags = 0
    for ch in s:
        bit = _CHARS.get(ch)
        if bit is None:
            raise ValueError(INVALID)
        flags |= bit
    return flags


def flags_string(flags: int) -> str:
    """keyspaceEventsFlagsToString: what CONFIG GET shows ("AKE", "gxE" ...)."""
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(ch for ch in "g$lshzxetd" if flags & _CHARS[ch])
    # Redis 7.0.15 leaves "n" out of the string (a Redis bug, copied: CONFIG GET and
    # CONFIG REWRITE show what Redis shows)
    for ch in "KEm":
        if flags & _CHARS[ch]:
            out += ch
    return out


Event = tuple[int, bytes, int, bytes]  # class, event, db, key


class Notifier:
    """Per-server state: the parsed flags, events staged by the running command."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.flags = 0
        self.raw_flags = 0  # as configured (flags is 0 unless K or E is on)
        self.pending: dict[int, list[Event]] = {}  # by id() of the command's args
        self.on_config("notify-keyspace-events", server.config["notify-keyspace-events"])

    def set_flags(self, value: object) -> None:
        flags = value if isinstance(value, int) else parse_flags(str(value))
        self.raw_flags = flags
        # As notifyKeyspaceEvent: nothing is sent unless K or E is on as well.
        self.flags = flags if flags & (K | E) else 0
        self.server.set_hook(self.after_call, bool(self.flags))

    def on_config(self, name: str, value: Any) -> None:
        """Parse and normalize the option as Redis does (CONFIG GET shows "AKE" for
        "KEA"); a bad class character restores the old value and fails the set."""
        if name != "notify-keyspace-events":
            return
        values = self.server.config.values
        try:
            self.set_flags(value)
        except ValueError:
            values[name] = flags_string(self.raw_flags)
            from shalekv.server.config import ConfigError

            raise ConfigError(INVALID) from None
        values[name] = flags_string(self.raw_flags)

    def publish(self, events: list[Event]) -> None:
        """notifyKeyspaceEvent: keyspace message first, then keyevent."""
        from shalekv.server.pubsub import hub

        h = hub(self.server)
        flags = self.flags
        for cls, event, db, key in events:
            if not flags & cls:
                continue
            if flags & K:
                h.publish(b"__keyspace@%d__:%b" % (db, key), event)
            if flags & E:
                h.publish(b"__keyevent@%d__:%b" % (db, event), key)

    def after_call(
        self, c: Client, cmd: Command, args: list[bytes], dur: int, failed: bool
    ) -> None:
        events = self.pending.pop(id(args), None) if self.pending else None
        if failed and cmd.name == "exec":
            self.pending.clear()  # the transaction did not commit: nothing happened
        if events and not failed:
            self.publish(events)


def emit(server: Server, cls: int, event: bytes, db: int, key: bytes) -> None:
    """Publish one event now (for code outside a command: blocked pops served later)."""
    n: Notifier = server.extensions["notify"]
    if n.flags & cls:
        n.publish([(cls, event, db, key)])


# ---------------------------------------------------------------- one command's view


class Call:
    """What an emitter sees of one successful command."""

    __slots__ = ("c", "t", "db", "a", "r", "pre", "wrote", "extra", "events")

    def __init__(self, c: Client, t: Txn, a: list[bytes], pre: dict[bytes, bool]) -> None:
        self.c = c
        self.t = t
        self.db = c.db
        self.a = a
        self.r: Any = None
        self.pre = pre  # key -> existed before the command
        self.wrote = False
        self.extra: Any = None
        self.events: list[Event] = []

    def emit(self, cls: int, event: bytes, key: bytes, db: int | None = None) -> None:
        self.events.append((cls, event, self.db if db is None else db, key))

    def gone(self, key: bytes, db: int | None = None) -> bool:
        return self.t.meta(self.db if db is None else db, key) is None

    def del_if_gone(self, key: bytes) -> None:
        """Redis deletes a list/set/hash/zset that a pop or rem emptied: "del"."""
        if self.gone(key):
            self.emit(G, b"del", key)

    def num(self) -> int:
        r = self.r
        return r if isinstance(r, int) else 0


Emitter = Callable[[Call], None]


def _on(cls: int, event: bytes, when: str = "ok", then_del: bool = False) -> Emitter:
    """`event` on the first key when: ok (the command succeeded), num (reply > 0), one
    (reply == 1), wrote (it changed something: no reply says so), some (reply not nil)."""

    def emitter(e: Call) -> None:
        r = e.r
        if (
            (when == "num" and e.num() <= 0)
            or (when == "one" and r != 1)
            or (when == "wrote" and not e.wrote)
            or (when == "some" and (r is None or not e.wrote))
        ):
            return
        key = e.a[1]
        e.emit(cls, event, key)
        if then_del:
            e.del_if_gone(key)

    return emitter


def _has(e: Call, start: int, *words: bytes) -> bool:
    return any(w.upper() in words for w in e.a[start:])


def _set(e: Call) -> None:  # setGenericCommand
    if e.wrote:
        e.emit(STR, b"set", e.a[1])
        if _has(e, 3, b"EX", b"PX", b"EXAT", b"PXAT"):
            e.emit(G, b"expire", e.a[1])


def _setex(e: Call) -> None:
    e.emit(STR, b"set", e.a[1])
    e.emit(G, b"expire", e.a[1])


def _mset(e: Call) -> None:
    if e.a[0].lower() == b"msetnx" and e.r != 1:
        return
    for key in e.a[1::2]:
        e.emit(STR, b"set", key)


def _getex(e: Call) -> None:
    if e.r is None:
        return
    key = e.a[1]
    if _has(e, 2, b"PERSIST"):
        if e.wrote:
            e.emit(G, b"persist", key)
    elif _has(e, 2, b"EX", b"PX", b"EXAT", b"PXAT"):
        e.emit(G, b"del" if e.gone(key) else b"expire", key)


def _del(e: Call) -> None:
    seen = set()
    for key in e.a[1:]:
        if e.pre.get(key) and key not in seen:
            seen.add(key)
            e.emit(G, b"del", key)


def _expire(e: Call) -> None:  # expireGenericCommand: a time in the past deletes
    if e.r == 1:
        e.emit(G, b"del" if e.gone(e.a[1]) else b"expire", e.a[1])


def _rename(e: Call) -> None:
    src, dst = e.a[1], e.a[2]
    if src != dst and (e.a[0].lower() == b"rename" or e.r == 1):
        e.emit(G, b"rename_from", src)
        e.emit(G, b"rename_to", dst)


def _added_to(e: Call, key: bytes, db: int) -> None:
    """dbAdd of key into another db than the command's: "expired" if a copy there had
    expired (looked up by the command, deleted then), then "new". (For the command's
    own db the wrapper derives both from the key positions.)"""
    if e.t.expired and enc.meta_key(db, key) in e.t.expired:
        e.emit(EXP, b"expired", key, db)
    e.emit(NEW, b"new", key, db)


def _copy(e: Call) -> None:
    if e.r != 1:
        return
    db = e.db
    for i in range(3, len(e.a) - 1):
        if e.a[i].upper() == b"DB":
            db = int(e.a[i + 1])
    dst = e.a[2]
    if db != e.db:
        _added_to(e, dst, db)
    elif e.pre.get(dst):  # REPLACE: dbDelete then dbAdd, "new" although it existed
        e.emit(NEW, b"new", dst)
    e.emit(G, b"copy_to", dst, db)


def _move(e: Call) -> None:
    if e.r == 1:
        dst = int(e.a[2])
        _added_to(e, e.a[1], dst)
        e.emit(G, b"move_from", e.a[1])
        e.emit(G, b"move_to", e.a[1], dst)


def _store(cls: int, event: bytes, dst_at: int = 1) -> Emitter:
    """*STORE: the result replaces dst; an empty result deletes it ("del" if it was)."""

    def emitter(e: Call) -> None:
        dst = e.a[dst_at]
        if e.gone(dst):
            if e.pre.get(dst):
                e.emit(G, b"del", dst)
        else:
            e.emit(cls, event, dst)

    return emitter


def _geo_dst(a: list[bytes], base: int) -> int | None:
    """Where GEORADIUS[BYMEMBER]'s STORE|STOREDIST key is (the last one named)."""
    at = None
    for i in range(base, len(a) - 1):
        if a[i].lower() in (b"store", b"storedist"):
            at = i + 1
    return at


def _geo_store(event: bytes, base: int) -> tuple[Emitter, Callable[..., object]]:
    """GEORADIUS[BYMEMBER] ... STORE|STOREDIST dst: as a *STORE (no event without the
    option); dst is not at a table key position, so whether it existed is noted first."""

    def before(c: Client, t: Txn, a: list[bytes]) -> object:
        at = _geo_dst(a, base)
        return None if at is None else t.meta(c.db, a[at]) is not None

    def emitter(e: Call) -> None:
        at = _geo_dst(e.a, base)
        if at is None:
            return
        e.pre[e.a[at]] = bool(e.extra)
        _store(ZST, event, at)(e)

    return emitter, before


GEORADIUS_STORE = _geo_store(b"georadiusstore", 6)
GEORADIUSBYMEMBER_STORE = _geo_store(b"georadiusstore", 5)


def _pop_reply(cls: int, left: bytes, right: bytes, dir_words: tuple[bytes, bytes]) -> Emitter:
    """BLPOP/LMPOP/BZPOPMIN/ZMPOP...: the reply names the key it popped from."""

    def emitter(e: Call) -> None:
        r = e.r
        if not isinstance(r, list) or not r or not isinstance(r[0], bytes):
            return
        name = e.a[0].lower()
        if name.endswith(b"mpop"):
            first = any(w.upper() == dir_words[0] for w in e.a)
        else:
            first = name in (b"blpop", b"bzpopmin")
        key = r[0]
        e.emit(cls, left if first else right, key)
        e.del_if_gone(key)

    return emitter


def _lmove(e: Call) -> None:
    if e.r is None or not isinstance(e.r, bytes):
        return
    name = e.a[0].lower()
    if name in (b"rpoplpush", b"brpoplpush"):
        src_left, dst_left = False, True
    else:
        src_left, dst_left = e.a[3].upper() == b"LEFT", e.a[4].upper() == b"LEFT"
    src, dst = e.a[1], e.a[2]
    # lmoveGenericCommand: the push on dst is notified first, then the pop, then "del"
    e.emit(LST, b"lpush" if dst_left else b"rpush", dst)
    e.emit(LST, b"lpop" if src_left else b"rpop", src)
    e.del_if_gone(src)


def _smove_before(c: Client, t: Txn, a: list[bytes]) -> object:
    from shalekv.errors import ResponseError
    from shalekv.types import sets

    try:
        return sets.smismember(t, c.db, a[2], [a[3]])[0]
    except ResponseError:
        return None  # the command reports its own error


def _smove(e: Call) -> None:
    src, dst = e.a[1], e.a[2]
    if e.r != 1 or src == dst:
        return
    e.emit(SET, b"srem", src)
    e.del_if_gone(src)
    if not e.extra:
        e.emit(SET, b"sadd", dst)


def _bitop(e: Call) -> None:
    dst = e.a[2]
    if e.gone(dst):
        if e.pre.get(dst):
            e.emit(G, b"del", dst)
    else:
        e.emit(STR, b"set", dst)


def _zadd(e: Call) -> None:
    if e.wrote:
        e.emit(ZST, b"zincr" if _has(e, 2, b"INCR") else b"zadd", e.a[1])


LIST_POP = _pop_reply(LST, b"lpop", b"rpop", (b"LEFT", b"RIGHT"))
ZSET_POP = _pop_reply(ZST, b"zpopmin", b"zpopmax", (b"MIN", b"MAX"))

EMITTERS: dict[bytes, Emitter] = {
    # strings (t_string.c)
    b"set": _set,
    b"setnx": _on(STR, b"set", "one"),
    b"setex": _setex,
    b"psetex": _setex,
    b"getset": _on(STR, b"set"),
    b"mset": _mset,
    b"msetnx": _mset,
    b"append": _on(STR, b"append"),
    b"incr": _on(STR, b"incrby"),
    b"decr": _on(STR, b"incrby"),
    b"incrby": _on(STR, b"incrby"),
    b"decrby": _on(STR, b"incrby"),
    b"incrbyfloat": _on(STR, b"incrbyfloat"),
    b"setrange": _on(STR, b"setrange", "wrote"),
    b"setbit": _on(STR, b"setbit"),
    b"bitop": _bitop,
    b"getdel": _on(G, b"del", "some"),
    b"getex": _getex,
    # keys (db.c, expire.c)
    b"del": _del,
    b"unlink": _del,
    b"expire": _expire,
    b"pexpire": _expire,
    b"expireat": _expire,
    b"pexpireat": _expire,
    b"persist": _on(G, b"persist", "one"),
    b"rename": _rename,
    b"renamenx": _rename,
    b"copy": _copy,
    b"move": _move,
    # lists (t_list.c)
    b"lpush": _on(LST, b"lpush"),
    b"rpush": _on(LST, b"rpush"),
    b"lpushx": _on(LST, b"lpush", "num"),
    b"rpushx": _on(LST, b"rpush", "num"),
    b"lpop": _on(LST, b"lpop", "wrote", then_del=True),
    b"rpop": _on(LST, b"rpop", "wrote", then_del=True),
    b"lmpop": LIST_POP,
    b"blpop": LIST_POP,
    b"brpop": LIST_POP,
    b"blmpop": LIST_POP,
    b"lmove": _lmove,
    b"blmove": _lmove,
    b"rpoplpush": _lmove,
    b"brpoplpush": _lmove,
    b"linsert": _on(LST, b"linsert", "num"),
    b"lset": _on(LST, b"lset"),
    b"ltrim": _on(LST, b"ltrim", "wrote", then_del=True),
    b"lrem": _on(LST, b"lrem", "num", then_del=True),
    # hashes (t_hash.c)
    b"hset": _on(HSH, b"hset"),
    b"hmset": _on(HSH, b"hset"),
    b"hsetnx": _on(HSH, b"hset", "one"),
    b"hdel": _on(HSH, b"hdel", "num", then_del=True),
    b"hincrby": _on(HSH, b"hincrby"),
    b"hincrbyfloat": _on(HSH, b"hincrbyfloat"),
    # sets (t_set.c)
    b"sadd": _on(SET, b"sadd", "num"),
    b"srem": _on(SET, b"srem", "num", then_del=True),
    b"spop": _on(SET, b"spop", "wrote", then_del=True),
    b"smove": _smove,
    b"sinterstore": _store(SET, b"sinterstore"),
    b"sunionstore": _store(SET, b"sunionstore"),
    b"sdiffstore": _store(SET, b"sdiffstore"),
    # sorted sets (t_zset.c)
    b"zadd": _zadd,
    b"zincrby": _on(ZST, b"zincr"),
    b"zrem": _on(ZST, b"zrem", "num", then_del=True),
    b"zremrangebyscore": _on(ZST, b"zremrangebyscore", "num", then_del=True),
    b"zremrangebyrank": _on(ZST, b"zremrangebyrank", "num", then_del=True),
    b"zremrangebylex": _on(ZST, b"zremrangebylex", "num", then_del=True),
    b"zpopmin": _on(ZST, b"zpopmin", "wrote", then_del=True),
    b"zpopmax": _on(ZST, b"zpopmax", "wrote", then_del=True),
    b"zmpop": ZSET_POP,
    b"bzpopmin": ZSET_POP,
    b"bzpopmax": ZSET_POP,
    b"bzmpop": ZSET_POP,
    b"zunionstore": _store(ZST, b"zunionstore"),
    b"zinterstore": _store(ZST, b"zinterstore"),
    b"zdiffstore": _store(ZST, b"zdiffstore"),
    b"zrangestore": _store(ZST, b"zrangestore"),
    # geo (geo.c): GEOADD is a ZADD; stores replace their destination
    b"geoadd": _on(ZST, b"zadd", "wrote"),
    b"georadius": GEORADIUS_STORE[0],
    b"georadiusbymember": GEORADIUSBYMEMBER_STORE[0],
    b"geosearchstore": _store(ZST, b"geosearchstore"),
}

BEFORE: dict[bytes, Callable[[Client, Txn, list[bytes]], object]] = {
    b"smove": _smove_before,
    b"georadius": GEORADIUS_STORE[1],
    b"georadiusbymember": GEORADIUSBYMEMBER_STORE[1],
}


def _keys(cmd: Command, a: list[bytes]) -> list[bytes]:
    """The key arguments by the table's first/last/step (numkeys lists are not)."""
    if cmd.first_key <= 0 or cmd.first_key >= len(a):
        return []
    last = cmd.last_key if cmd.last_key >= 0 else len(a) + cmd.last_key
    return a[cmd.first_key : last + 1 : max(cmd.step, 1)]


def _ops(t: Txn) -> int:
    return t.writes


# Read commands whose keys follow a numkeys argument (the table cannot say where)
NUMKEYS_AT = {b"zunion": 1, b"zinter": 1, b"zdiff": 1, b"zintercard": 1, b"sintercard": 1}


def read_keys(cmd: Command, a: list[bytes]) -> list[bytes]:
    at = NUMKEYS_AT.get(cmd.name.encode())
    if at is None:
        return _keys(cmd, a)
    try:
        n = int(a[at])
    except ValueError:
        return []
    return a[at + 1 : at + 1 + n] if n > 0 else []


def wrap_read(cmd: Command, notifier: Notifier) -> Command:
    """A read command: "expired" for keys it found expired, "keymiss" (m) for each key
    argument it did not find, as lookupKeyRead (in argument order, per key)."""
    orig = cmd.handler

    def handler(c: Client, a: list[bytes]) -> Any:
        flags = notifier.flags
        t = c.txn
        if not flags & (EXP | MISS) or t is None:
            return orig(c, a)
        store = c.store
        expired_before = store.expired_keys
        r = orig(c, a)
        db = c.db
        prefix = enc.meta_range(db)[0]
        expired: list[bytes] = []
        if store.expired_keys != expired_before:
            # a read deletes nothing but expired keys: its deletions are the expiries
            n = len(prefix)
            expired = [k[n:] for k, v in t.pending.items() if v is None and k[:n] == prefix]
        keys = read_keys(cmd, a)
        events: list[Event] = [(EXP, b"expired", db, k) for k in expired if k not in keys]
        for key in keys:
            if key in expired:
                events.append((EXP, b"expired", db, key))
                expired.remove(key)
            if flags & MISS and t.get(prefix + key) is None:
                events.append((MISS, b"keymiss", db, key))
        if events:
            notifier.pending.setdefault(id(a), []).extend(events)
        return r

    return dataclasses.replace(cmd, handler=handler)


def wrap(cmd: Command, emitter: Emitter, notifier: Notifier) -> Command:
    """The command with a handler that stages its events around the real one."""
    orig = cmd.handler
    before = BEFORE.get(cmd.name.encode())

    def handler(c: Client, a: list[bytes]) -> Any:
        flags = notifier.flags
        if not flags:
            return orig(c, a)
        t = c.txn
        if t is None:  # a command that runs its own transactions: look afterwards
            r = orig(c, a)
            with c.store.lock:
                e = Call(c, Txn(c.store), a, {})
                e.r = r
                e.wrote = True
                emitter(e)
            if e.events:
                notifier.pending.setdefault(id(a), []).extend(e.events)
            return r
        db = c.db
        store = c.store
        events: list[Event] = []
        pre: dict[bytes, bool] = {}
        for key in _keys(cmd, a):
            if key in pre:
                continue
            expired = store.expired_keys
            pre[key] = t.meta(db, key) is not None  # lazy expiry happens here, not later
            if store.expired_keys != expired:
                events.append((EXP, b"expired", db, key))
        e = Call(c, t, a, pre)
        if before is not None:
            e.extra = before(c, t, a)
        ops = _ops(t)
        e.r = orig(c, a)
        e.wrote = _ops(t) > ops
        emitter(e)
        if flags & NEW and e.wrote:  # dbAdd's "new", before the command's own events
            events += [(NEW, b"new", db, k) for k, was in pre.items() if not was and not e.gone(k)]
        events += e.events
        if events:
            notifier.pending.setdefault(id(a), []).extend(events)
        return e.r

    return dataclasses.replace(cmd, handler=handler)


# ---------------------------------------------------------------- active expiry


class NotifyingExpiry(ExpiryCycle):
    """The server's expiry cycle, also publishing "expired" for the keys it deletes:
    the keys due are listed first, and those gone after the cycle expired."""

    PEEK = 1000  # keys listed per database and cycle (more wait for the next cycle)
    # The cycle's own transactions start a little later than the listing: keys whose
    # deadline falls in between are deleted too, so the listing looks this far ahead
    # (a key listed but not yet due stays, and is not reported).
    AHEAD_MS = 1000

    def __init__(self, old: ExpiryCycle, notifier: Notifier) -> None:
        super().__init__(old.store, thread=False)
        self.expired = old.expired
        self.notifier = notifier

    def run_once(self) -> int:
        n = self.notifier
        if not n.flags & EXP:
            return super().run_once()
        store = self.store
        due: list[tuple[int, bytes]] = []
        with store.lock:
            t = Txn(store)
            for db in range(store.databases):
                if store.counts[db][1] <= 0:
                    continue
                lo = expiry_key(db, 0, b"")
                hi = expiry_key(db, t.now + self.AHEAD_MS, b"")
                due += [(db, xk[len(lo) :]) for xk, _ in islice(t.scan(lo, hi), self.PEEK)]
        done = super().run_once()
        if due:
            with store.lock:
                t = Txn(store)
                gone = [(db, k) for db, k in due if t.get(enc.meta_range(db)[0] + k) is None]
            n.publish([(EXP, b"expired", db, k) for db, k in gone])
        return done


def install(server: Server) -> None:
    """SERVER_INIT: wrap the commands that emit events; publish after each call."""
    n = Notifier(server)
    server.extensions["notify"] = n
    server.config.listeners.append(n.on_config)
    server.add_hook(n.after_call, on=bool(n.flags))
    table = server.table = dict(server.table)
    for name, cmd in list(table.items()):
        emitter = EMITTERS.get(name)
        if emitter is not None:
            table[name] = wrap(cmd, emitter, n)
        elif "readonly" in cmd.flags and (cmd.first_key > 0 or name in NUMKEYS_AT):
            table[name] = wrap_read(cmd, n)

    def swap_expiry() -> None:
        # the cycle is made when the server opens its store, after SERVER_INIT
        if server.expiry is not None and not isinstance(server.expiry, NotifyingExpiry):
            server.expiry = NotifyingExpiry(server.expiry, n)

    server.cron_hooks.append(swap_expiry)
