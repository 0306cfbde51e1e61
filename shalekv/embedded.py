"""The embedded API: `shalekv.open(path)` returns a client with redis-py's methods.

The class reuses redis-py's command methods (their signatures, client-side checks and
reply callbacks), and runs each command in-process through the same command table the
server uses: code moves between a redis-py client and an embedded store unchanged
(decision D10).
"""

from __future__ import annotations

import math
import os
import struct
import time
from collections.abc import Callable
from typing import Any

from redis.commands.core import CoreCommands
from redis.connection import Encoder
from redis.utils import safe_str

from shalekv.commands import Context, dispatch
from shalekv.commands.registry import TABLE, Command, lookup
from shalekv.commands.reply import NULL_ARRAY
from shalekv.commands.zsets import parse_score_range
from shalekv.engine.db import DB
from shalekv.errors import ResponseError, ShaleError, WatchError
from shalekv.types import encoding as enc
from shalekv.types import hashes as hs
from shalekv.types import lists as ls
from shalekv.types import zsets as zs
from shalekv.types.compaction_filter import COMPACTION_FILTER
from shalekv.types.encoding import KEY_CLASS_PREFIX
from shalekv.types.expiry import ExpiryCycle
from shalekv.types.keyspace import Store, Txn

try:  # redis-py >= 6 selects callbacks by protocol
    from redis._parsers.helpers import get_response_callbacks

    try:
        _cbs = get_response_callbacks(user_protocol=2, legacy_responses=True)
    except TypeError:
        _cbs = get_response_callbacks(2)  # type: ignore[call-arg]
    _CALLBACKS: dict[str, Callable[..., Any]] = dict(_cbs)
except ImportError:  # redis-py 5
    from redis._parsers.helpers import _RedisCallbacks, _RedisCallbacksRESP2

    _CALLBACKS = {**_RedisCallbacks, **_RedisCallbacksRESP2}
_CALLBACKS = {k.upper(): v for k, v in _CALLBACKS.items()}


def _nested_nulls(cb: Callable[..., Any] | None) -> Callable[..., Any]:
    """A reply with null arrays inside (GEOPOS: a missing member), which redis-py reads
    as None, before the command's own callback."""

    def convert(r: Any, **options: Any) -> Any:
        if type(r) is list:
            r = [None if x is NULL_ARRAY else x for x in r]
        return cb(r, **options) if cb is not None else r

    return convert


_CALLBACKS["GEOPOS"] = _nested_nulls(_CALLBACKS.get("GEOPOS"))
_NOT_OPTIONS = ("keys", "_never_decode", "_empty_response")

_EXPIRE = struct.Struct(">q").unpack_from  # a value's expire-at (ms), after type and version
_STRING, _STRING_HEADER = enc.STRING, enc.STRING_HEADER
_EXACT = 1 << 53  # ints up to this are floats exactly, as strtod reads their digits
_I64 = 1 << 63  # a LIMIT outside [-_I64, _I64) is an error of the command path


def _decode(r: Any, enc: Encoder) -> Any:
    if isinstance(r, bytes):
        return enc.decode(r, force=True)
    if isinstance(r, list):
        return [_decode(x, enc) for x in r]
    return r


_UNSEEN: Any = object()

# The infinities as a score range's ends are usually spelled (strtod reads them so)
_INF_ARGS: dict[Any, float] = {
    w: v
    for word, v in (("+inf", math.inf), ("-inf", -math.inf), ("inf", math.inf))
    for w in (word, word.encode())
}


def _score_bound(x: Any) -> float | None:
    """An inclusive score bound as parse_score_range would read redis-py's encoding
    of x, without writing it out and reading it back: an int a double holds exactly,
    a float other than NaN (repr, then strtod, gives the same double), an infinity's
    usual spelling; None for anything else (the parser's business, errors included)."""
    t = type(x)
    if t is int:
        return float(x) if -_EXACT <= x <= _EXACT else None
    if t is float:
        return x if x == x else None  # type: ignore[no-any-return]
    if t is str or t is bytes:
        return _INF_ARGS.get(x)
    return None


# A command name as redis-py's methods pass it (an upper-case str) -> its Command and
# the name as bytes, or None for a name the general path handles (a subcommand
# container, several words, unknown, not upper case: its reply callback is found by
# another spelling). The command table is complete once shalekv.commands is imported
# and does not change afterwards.
_DIRECT: dict[str, tuple[Command, bytes] | None] = {}


def _direct(name: str) -> tuple[Command, bytes] | None:
    """(Command, name as bytes) for a name the direct path takes, cached."""
    got = None
    if name.isupper() and " " not in name and name.isascii():
        cmd = TABLE.get(name.lower().encode())
        if cmd is not None and cmd.subcommands is None:
            got = cmd, name.encode()
    if len(_DIRECT) < 4096:  # bounded: names come from callers
        _DIRECT[name] = got
    return got


class ShaleKV(CoreCommands):  # type: ignore[misc]
    """A persistent store with Redis's commands. Thread-safe: one object may be shared
    by threads; commands are atomic and serialized against each other."""

    _event_dispatcher: Any = None  # redis-py's abstract hook; nothing to dispatch here

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        db: int = 0,
        decode_responses: bool = False,
        encoding: str = "utf-8",
        encoding_errors: str = "strict",
        databases: int = 16,
        active_expiry: bool = True,
        zset_rank_index_size: int = 128 << 20,
        _rank_bucket: int | None = None,
        _store: Store | None = None,
        **engine_options: Any,
    ) -> None:
        if _store is None:
            engine_options.setdefault("compaction_filter", COMPACTION_FILTER)
            engine_options.setdefault("partition_prefix_len", KEY_CLASS_PREFIX)
            engine = DB.open(path, **engine_options)
            _store = Store(engine, databases, zset_rank_index_size, _rank_bucket)
            self._owner = True
            self._expiry: ExpiryCycle | None = ExpiryCycle(_store) if active_expiry else None
        else:
            self._owner = False
            self._expiry = None
        self._store = _store
        _store.check_db(db)
        self._db = db
        self._inline = True  # commands may skip the command table (not a pipeline)
        self._decode = decode_responses
        self._encoder = Encoder(encoding, encoding_errors, decode_responses)
        self.response_callbacks = dict(_CALLBACKS)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop background expiry and close the engine (flushing per its fsync)."""
        if self._expiry is not None:
            self._expiry.stop()
            self._expiry = None
        if self._owner:
            self._owner = False
            self._store.engine.close()

    def __enter__(self) -> ShaleKV:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> DB:
        """The LSM engine underneath (stats(), checkpoint(), compact())."""
        return self._store.engine

    @property
    def store(self) -> Store:
        """The data-model store (Txn, locks) for tools that write raw command batches
        (`shalekv import`); applications use the redis-py methods."""
        return self._store

    @property
    def db(self) -> int:
        """The logical database this client is on (SELECT changes it)."""
        return self._db

    # ------------------------------------------------------------ commands

    def _args(self, args: tuple[Any, ...], name: bytes | None = None) -> list[bytes]:
        """redis-py's Encoder.encode on each argument, with bytes, str and int (the
        usual ones) done inline: its isinstance chain is ~10 % of a short command.
        name: the command's name already encoded (the direct path), for args[0]."""
        out: list[bytes] = []
        if name is None:
            first = args[0]
            if isinstance(first, str) and " " in first:
                args = (*first.split(), *args[1:])
        else:
            out.append(name)
            args = args[1:]
        encoder = self._encoder
        charset = encoder.encoding
        errors = encoder.encoding_errors
        append = out.append
        for a in args:
            t = type(a)
            if t is bytes:
                append(a)
            elif t is str:
                append(a.encode(charset, errors))
            elif t is int:
                append(b"%d" % a)  # repr(a).encode(), as redis-py
            elif t is float:
                append(repr(a).encode())  # as redis-py
            else:
                append(encoder.encode(a))
        return out

    def _reply(self, name: str, r: Any, options: dict[str, Any]) -> Any:
        if r is NULL_ARRAY:  # RESP's null array is Python's None, as redis-py reads it
            r = None
        if options:
            if self._decode and not options.pop("_never_decode", False):
                r = _decode(r, self._encoder)
            for k in _NOT_OPTIONS:
                options.pop(k, None)
        elif self._decode:
            r = _decode(r, self._encoder)
        cbs = self.response_callbacks
        cb = cbs.get(name)
        if cb is None:
            cb = cbs.get(name.upper())
        return cb(r, **options) if cb is not None else r

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command. The names redis-py's methods pass ("GET", "ZADD" ...) map
        straight to their Command (`_direct`, the name encoded once): no lookup, no
        dispatch frame, and the reply callback is found by the name as given. Anything
        else takes dispatch."""
        name = args[0]
        direct = _DIRECT.get(name, _UNSEEN) if type(name) is str else None
        if direct is _UNSEEN:
            direct = _direct(name)
        if direct is None:
            a = self._args(args)
            ctx = Context(self._store, self._db)
            r = dispatch(ctx, a)
            self._db = ctx.db
            return self._reply(str(name), r, options)
        cmd, bname = direct
        a = self._args(args, bname)
        n = len(a)
        arity = cmd.arity
        if (arity > 0 and n != arity) or n < -arity:
            cmd.check_arity(n)
        store = self._store
        ctx = Context(store, self._db)
        with store.lock:
            t = ctx.txn = Txn(store)
            r = cmd.handler(ctx, a)
            t.commit()
        self._db = ctx.db
        if options:
            options.pop("keys", None)  # redis-py's hint for clusters and caches
            if "_never_decode" in options or "_empty_response" in options:
                return self._reply(name, r, options)
        if self._decode:
            return self._reply(name, r, options)
        if r is NULL_ARRAY:  # RESP's null array is Python's None, as redis-py reads it
            r = None
        cb = self.response_callbacks.get(name)
        if cb is None:
            return r
        return cb(r, **options) if options else cb(r)

    def set(  # type: ignore[override]
        self,
        name: Any,
        value: Any,
        ex: Any = None,
        px: Any = None,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
        get: bool = False,
        exat: Any = None,
        pxat: Any = None,
        **kwargs: Any,
    ) -> Any:
        """redis-py's set(); the plain form skips redis-py 8's argument-warning
        decorator, which costs more than the store's own work (~5 us per call)."""
        if (
            ex is None
            and px is None
            and exat is None
            and pxat is None
            and not (nx or xx or keepttl or get or kwargs)
        ):
            return self.execute_command("SET", name, value)
        return super().set(name, value, ex, px, nx, xx, keepttl, get, exat, pxat, **kwargs)  # type: ignore[misc]

    def zadd(  # type: ignore[override]
        self,
        name: Any,
        mapping: Any,
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Any:
        """redis-py's zadd(); a plain mapping skips its eleven option tests, and one
        member with a float (not NaN) or exact int score runs inline (`_inline_call`):
        the score is not written out as text and read back (repr, then strtod, gives
        the same double)."""
        if mapping and not (nx or xx or ch or incr or gt or lt):
            if self._inline and len(mapping) == 1:
                ((member, score),) = mapping.items()
                key, m = self._key(name), self._key(member)
                ts = type(score)
                if (
                    key is not None
                    and m is not None
                    and (
                        (ts is float and score == score)
                        or (ts is int and -_EXACT <= score <= _EXACT)
                    )
                ):
                    r = self._inline_call(zs.add, key, [(float(score), m)])[0]
                    return self._inline_reply("ZADD", r)
            return self.execute_command(
                "ZADD", name, *[x for m, s in mapping.items() for x in (s, m)]
            )
        return super().zadd(name, mapping, nx, xx, ch, incr, gt, lt)  # type: ignore[misc]

    def hset(  # type: ignore[override]
        self,
        name: Any,
        key: Any = None,
        value: Any = None,
        mapping: Any = None,
        items: Any = None,
    ) -> Any:
        """redis-py's hset(); one field given as key and value, inline (`_inline_call`;
        the value encoded as redis-py encodes it)."""
        if self._inline and not mapping and not items and key is not None:
            k, f, v = self._key(name), self._key(key), self._arg(value)
            if k is not None and f is not None and v is not None:
                return self._inline_reply("HSET", self._inline_call(hs.hset, k, [(f, v)]))
        return super().hset(name, key, value, mapping, items)  # type: ignore[misc]

    def rpop(self, name: Any, count: int | None = None) -> Any:  # type: ignore[override]
        """redis-py's rpop(); without count, inline (`_pop`)."""
        key = self._key(name) if count is None and self._inline else None
        if key is None:
            return super().rpop(name, count)  # type: ignore[misc]
        return self._inline_reply("RPOP", self._pop(key, False))

    def lpop(self, name: Any, count: int | None = None) -> Any:  # type: ignore[override]
        """redis-py's lpop(); without count, inline (`_pop`)."""
        key = self._key(name) if count is None and self._inline else None
        if key is None:
            return super().lpop(name, count)  # type: ignore[misc]
        return self._inline_reply("LPOP", self._pop(key, True))

    def _pop(self, key: bytes, left: bool) -> bytes | None:
        """One element off an end of a list, under the store lock: straight on the
        engine (`lists.pop_direct`), or in a transaction when that says SLOW."""
        store = self._store
        with store.lock:
            r = ls.pop_direct(store, self._db, key, left)
            if r is ls.SLOW:
                t = Txn(store)
                r = ls.pop_one(t, self._db, key, left)
                t.commit()
        return r  # type: ignore[return-value]

    def zrangebyscore(  # type: ignore[override]
        self,
        name: Any,
        min: Any,
        max: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Any = float,
    ) -> Any:
        """redis-py's zrangebyscore(); without WITHSCORES, inline (`_by_score`)."""
        r = self._by_score(name, min, max, start, num, withscores, False)
        if r is _UNSEEN:
            return super().zrangebyscore(  # type: ignore[misc]
                name, min, max, start, num, withscores, score_cast_func
            )
        return self._inline_reply(
            "ZRANGEBYSCORE", r, withscores=False, score_cast_func=score_cast_func
        )

    def zrevrangebyscore(  # type: ignore[override]
        self,
        name: Any,
        max: Any,
        min: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Any = float,
    ) -> Any:
        """redis-py's zrevrangebyscore(); without WITHSCORES, inline (`_by_score`)."""
        r = self._by_score(name, min, max, start, num, withscores, True)
        if r is _UNSEEN:
            return super().zrevrangebyscore(  # type: ignore[misc]
                name, max, min, start, num, withscores, score_cast_func
            )
        return self._inline_reply(
            "ZREVRANGEBYSCORE", r, withscores=False, score_cast_func=score_cast_func
        )

    def zrank(  # type: ignore[override]
        self, name: Any, value: Any, withscore: bool = False, score_cast_func: Any = float
    ) -> Any:
        """redis-py's zrank(); without WITHSCORE, inline (`_inline_call`)."""
        return self._rank(name, value, withscore, score_cast_func, False)

    def zrevrank(  # type: ignore[override]
        self, name: Any, value: Any, withscore: bool = False, score_cast_func: Any = float
    ) -> Any:
        """redis-py's zrevrank(); without WITHSCORE, inline (`_inline_call`)."""
        return self._rank(name, value, withscore, score_cast_func, True)

    def _rank(self, name: Any, value: Any, withscore: bool, cast: Any, rev: bool) -> Any:
        key = self._key(name) if self._inline and not withscore else None
        member = self._key(value) if key is not None else None
        if member is None:
            method = super().zrevrank if rev else super().zrank  # type: ignore[misc]
            return method(name, value, withscore, cast)
        r = self._inline_call(zs.rank, key, member, rev)
        return self._inline_reply(
            "ZREVRANK" if rev else "ZRANK", r, withscore=False, score_cast_func=cast
        )

    def _by_score(
        self, name: Any, lo: Any, hi: Any, start: Any, num: Any, withscores: bool, rev: bool
    ) -> Any:
        """Z[REV]RANGEBYSCORE's members inline, as its handler would find them (plain
        numbers and infinities read by `_score_bound`, other bounds encoded as redis-py
        encodes them and parsed by the handler's function); the
        _UNSEEN marker when the call needs the command path (WITHSCORES, a pipeline,
        other argument types, one of start/num, a LIMIT out of int64)."""
        key = self._key(name) if self._inline and not withscores else None
        if key is None:
            return _UNSEEN
        if start is None and num is None:
            offset, limit = 0, -1
        elif (
            type(start) is int
            and type(num) is int
            and -_I64 <= min(start, num) <= max(start, num) < _I64
        ):
            offset, limit = start, num
        else:
            return _UNSEEN
        mn, mx = _score_bound(lo), _score_bound(hi)
        if mn is not None and mx is not None:
            rng: zs.ScoreRange = (mn, False, mx, False)
        else:  # "(" bounds, other spellings, errors: encoded and parsed as the handler does
            lo_b, hi_b = self._arg(lo), self._arg(hi)
            if lo_b is None or hi_b is None:
                return _UNSEEN
            rng = parse_score_range(lo_b, hi_b)
        return self._inline_call(zs.range_, key, zs.SCORE, rng, None, rev, offset, limit)

    def _arg(self, x: Any) -> bytes | None:
        """A str, bytes, int or float argument as redis-py encodes it (`_args`); None
        for other types."""
        t = type(x)
        if t is int:
            return b"%d" % x
        if t is float:
            return repr(x).encode()
        return self._key(x)

    def _key(self, x: Any) -> bytes | None:
        """A str or bytes argument as redis-py encodes it; None for other types (the
        inline paths leave those to execute_command and redis-py's Encoder)."""
        t = type(x)
        if t is bytes:
            return x  # type: ignore[no-any-return]
        if t is str:
            e = self._encoder
            return x.encode(e.encoding, e.encoding_errors)  # type: ignore[no-any-return]
        return None

    def _inline_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(txn, db, *args) of the data-type layer as one command: under the store
        lock, in its own transaction, committed; what execute_command does once a
        command's handler has parsed its arguments. For the hot embedded calls whose
        arguments need no parsing (a float score, one pop): no argument list encoded
        and parsed back, no handler frame (ZADD -12.5 %, RPOP -5.8 % instructions)."""
        store = self._store
        with store.lock:
            t = Txn(store)
            r = fn(t, self._db, *args)
            t.commit()
        return r

    def _inline_reply(self, name: str, r: Any, **options: Any) -> Any:
        """The reply of an inline call as execute_command would give it: decoded when
        asked for, through the command's reply callback with the options redis-py's
        method passes."""
        if self._decode:
            return self._reply(name, r, options)
        cb = self.response_callbacks.get(name)
        if cb is None:
            return r
        return cb(r, **options) if options else cb(r)

    def get(self, name: Any) -> Any:
        """redis-py's get(). A live string is read with one engine lookup, without
        the store lock (a single lookup is atomic); anything else (missing type,
        expired key to delete, pipelines) takes the command path."""
        if self._inline:
            t = type(name)
            if t is str:  # the usual key types inline: redis-py's Encoder.encode is ~45
                encoder = self._encoder  # bytecodes of isinstance tests
                key = name.encode(encoder.encoding, encoder.encoding_errors)
            elif t is bytes:
                key = name
            else:
                key = self._encoder.encode(name)
            store = self._store
            m = store.engine.get(store.meta_prefixes[self._db] + key)
            if m is None:
                return None
            if m[0] == _STRING:
                exp = _EXPIRE(m, 2)[0]
                if not exp or exp >= time.time_ns() // 1_000_000:
                    v = m[_STRING_HEADER:]
                    return self._encoder.decode(v, force=True) if self._decode else v
        return self.execute_command("GET", name, keys=[name])

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return Pipeline(self, transaction)

    def transaction(self, func: Callable[[Pipeline], Any], *watches: Any, **kwargs: Any) -> Any:
        """Run func(pipe) as a WATCH/MULTI/EXEC transaction, retrying on WatchError."""
        value_from_callable = kwargs.pop("value_from_callable", False)
        with self.pipeline(True) as pipe:
            while True:
                try:
                    if watches:
                        pipe.watch(*watches)
                    func_value = func(pipe)
                    exec_value = pipe.execute()
                    return func_value if value_from_callable else exec_value
                except WatchError:
                    continue


class Pipeline(ShaleKV):
    """Queued commands run together under the store lock; with transaction=True they
    are one atomic write batch (all or nothing, also across a crash). WATCH as redis-py:
    after watch() commands run immediately until multi()."""

    def __init__(self, client: ShaleKV, transaction: bool) -> None:
        self._client = client
        self._store = client._store
        self._db = client._db
        self._decode = client._decode
        self._encoder = client._encoder
        self.response_callbacks = client.response_callbacks
        self._owner = False
        self._expiry = None
        self._inline = False  # every command queues, through execute_command
        self._transaction = transaction
        self.command_stack: list[tuple[list[bytes], tuple[Any, ...], dict[str, Any]]] = []
        self.queue_errors: list[tuple[int, Exception]] = []
        self.watching = False
        self.explicit_transaction = False
        self._token: list[bool] | None = None
        self._watched: list[tuple[int, bytes]] = []
        self._deadlines: list[int] = []  # of watched keys alive at watch() with a TTL

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()

    def __len__(self) -> int:
        return len(self.command_stack)

    def __bool__(self) -> bool:
        return True

    def reset(self) -> None:  # type: ignore[override]
        self.command_stack = []
        self.queue_errors = []
        self._unwatch()
        self.explicit_transaction = False

    def _unwatch(self) -> None:
        if self._token is not None:
            with self._store.lock:
                self._store.unwatch(self._token, self._watched)
        self._token = None
        self._watched = []
        self._deadlines = []
        self.watching = False

    def watch(self, *names: Any) -> bool:  # type: ignore[override]
        if self.explicit_transaction:
            raise ShaleError("Cannot issue a WATCH after a MULTI")
        token = self._token if self._token is not None else [False]
        self._token = token
        with self._store.lock:
            for n in names:
                key = self._encoder.encode(n)
                at = self._store.watch(token, self._db, key)
                if at:
                    self._deadlines.append(at)
                self._watched.append((self._db, key))
        self.watching = True
        return True

    def unwatch(self) -> bool:  # type: ignore[override]
        self._unwatch()
        return True

    def multi(self) -> None:
        if self.explicit_transaction:
            raise ShaleError("Cannot issue nested calls to MULTI")
        if self.command_stack:
            raise ShaleError("Commands without an initial WATCH have already been issued")
        self.explicit_transaction = True

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return ShaleKV.execute_command(self, *args, **options)
        a = self._args(args)
        try:
            lookup(a)
        except ResponseError as e:
            self.queue_errors.append((len(self.command_stack), e))
        self.command_stack.append((a, args, options))
        return self

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if not stack and not self.watching:
            return []
        try:
            return self._execute(stack, raise_on_error)
        finally:
            self.reset()

    def _execute(self, stack: list[Any], raise_on_error: bool) -> list[Any]:
        atomic = self._transaction or self.explicit_transaction
        if atomic and self.queue_errors:
            i, e = self.queue_errors[0]
            _annotate(e, i + 1, stack[i][1])
            raise e
        store = self._store
        results: list[Any] = []
        with store.lock:
            if self._token is not None and store.watch_failed(self._token, self._deadlines):
                raise WatchError("Watched variable changed.")
            ctx = Context(store, self._db)
            t = Txn(store)
            for a, _, _ in stack:
                if not atomic:
                    t = Txn(store)
                ctx.txn = t
                try:
                    results.append(lookup(a).handler(ctx, a))
                except ResponseError as e:
                    results.append(e)
                if not atomic:
                    t.commit()
            ctx.txn = None
            if atomic:
                t.commit()
            self._db = ctx.db
        if raise_on_error:
            for i, r in enumerate(results):
                if isinstance(r, ResponseError):
                    _annotate(r, i + 1, stack[i][1])
                    raise r
        return [
            r if isinstance(r, Exception) else self._reply(str(args[0]), r, dict(options))
            for r, (_, args, options) in zip(results, stack, strict=True)
        ]


def _annotate(e: Exception, number: int, args: tuple[Any, ...]) -> None:
    cmd = " ".join(map(safe_str, args))
    if len(cmd) > 100:
        cmd = cmd[:97] + "..."
    e.args = (f"Command # {number} ({cmd}) of pipeline caused error: {e.args[0]}",)


def open(path: str | os.PathLike[str], **options: Any) -> ShaleKV:  # noqa: A001
    """Open (creating if needed) a store at path. Options: decode_responses, db,
    databases, active_expiry, zset_rank_index_size (bytes of memory for the rank
    indexes of big sorted sets; 0 = none), and any engine option (fsync,
    block_cache_size, ...)."""
    return ShaleKV(path, **options)
