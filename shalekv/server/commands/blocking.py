"""Blocking pops (Redis 7.0's t_list.c, t_zset.c, blocked.c): BLPOP, BRPOP, BLMOVE,
BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, and CLIENT UNBLOCK.

Each handler parses its arguments in Redis's order, pops at once when there is
something to pop (the pops of `types.lists` / `types.zsets`, the reply shapes of the
non-blocking commands), and otherwise parks the client in the server's
`shalekv.server.blocking` registry with a function that does the same pop later, on
the key that became ready. Inside EXEC nothing blocks: an empty key answers as a
timeout would (BLMOVE: a null bulk, as Redis's CLIENT_DENY_BLOCKING path).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

from shalekv.commands.lists import LIST_ENDS, list_end, mpop_args
from shalekv.commands.registry import command, subcommand
from shalekv.commands.reply import NULL_ARRAY
from shalekv.commands.zsets import ZSET_ENDS
from shalekv.errors import ResponseError
from shalekv.server import blocking
from shalekv.server.blocking import EMPTY, SKIP, Serve
from shalekv.server.client import BLOCKED, Client, CodedError
from shalekv.server.commands.connection import CLIENT
from shalekv.server.commands.table import SERVER, SERVER_INIT
from shalekv.types import encoding as enc
from shalekv.types import lists as ls
from shalekv.types import zsets as zs
from shalekv.types.keyspace import Txn
from shalekv.types.numbers import parse_int

SERVER_INIT.append(blocking.install)

TIMEOUT_NOT_FLOAT = "timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "timeout is negative"
UNBLOCK_REASON = "CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"

# ---------------------------------------------------------------- timeouts

# What strtold accepts (glibc): decimal or hex floats, inf/infinity, nan (Redis's
# string2ld rejects nan). Leading spaces are refused by string2ld; trailing ones
# leave the end pointer short.
_DEC = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HEX = re.compile(
    rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?\Z"
)
_INF = re.compile(rb"[+-]?(?:inf|infinity)\Z", re.IGNORECASE)
_LD_MAX = Decimal("1.18973149535723176502e4932")  # LDBL_MAX (x87 80-bit)
_LD_TRUE_MIN = Decimal("3.64519953188247460253e-4951")  # the smallest denormal
_MAX_LONG_DOUBLE_CHARS = 5 * 1024
_INT64 = 1 << 63
_TOO_BIG = Decimal(2**64) / 1000  # seconds whose milliseconds cannot fit an int64
_TOO_SMALL = Decimal("0.0009")  # seconds under a millisecond, with room for rounding


def _strtold(b: bytes) -> Decimal | None:
    """Redis's string2ld: the value, or None where it fails (empty, too long, spaces,
    junk, nan, overflow to HUGE_VAL, underflow to zero)."""
    if not b or len(b) >= _MAX_LONG_DOUBLE_CHARS:
        return None
    if _DEC.match(b):
        d = Decimal(b.decode())
        if abs(d) > _LD_MAX or (d and abs(d) < _LD_TRUE_MIN / 2):
            return None  # ERANGE
        return d
    if _INF.match(b):
        return Decimal("-Infinity" if b[:1] == b"-" else "Infinity")
    if _HEX.match(b):
        try:
            return Decimal(float.fromhex(b.decode()))
        except OverflowError:  # beyond a double, still within a long double
            return Decimal("-Infinity" if b[:1] == b"-" else "Infinity")
    return None


def _round_ld(x: Fraction) -> Fraction:
    """x rounded to the nearest x87 long double (64-bit significand, ties to even)."""
    if x == 0:
        return x
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < Fraction(2) ** e:
        e -= 1  # now 2**e <= a < 2**(e + 1)
    scale = Fraction(2) ** (e - 63)
    m = round(a / scale)  # round() on a Fraction rounds half to even
    return (m * scale) if x > 0 else -(m * scale)


def parse_timeout(b: bytes) -> int:
    """getTimeoutFromObjectOrReply(UNIT_SECONDS): the timeout in milliseconds, 0 for
    none. As Redis 7.0.15: `(long long) ceill(seconds * 1000.0)` in long double
    arithmetic, so any positive timeout is at least 1 ms, -0.001 rounds up to 0
    (forever), and a product out of range converts to LLONG_MIN ("negative")."""
    d = _strtold(b)
    if d is None:
        raise ResponseError(TIMEOUT_NOT_FLOAT)
    if not d.is_finite() or abs(d) >= _TOO_BIG:
        tval = -_INT64
    elif abs(d) < _TOO_SMALL:
        tval = 1 if d > 0 else 0  # |ms| < 1 whatever the rounding
    else:
        ms = math.ceil(_round_ld(_round_ld(Fraction(d)) * 1000))
        tval = ms if -_INT64 <= ms < _INT64 else -_INT64
    if tval < 0:
        raise ResponseError(TIMEOUT_NEGATIVE)
    return tval


# ---------------------------------------------------------------- serving


def _kind(t: Txn, db: int, key: bytes, kind: int) -> Any:
    """None if key holds `kind`, else EMPTY (absent) or SKIP (another type)."""
    m = t.meta(db, key)
    if m is None:
        return EMPTY
    return None if m[0] == kind else SKIP


def _list_pop(left: bool, count: int | None) -> Serve:
    """BLPOP/BRPOP (count None: [key, element]) and BLMPOP ([key, [elements]])."""

    def serve(t: Txn, db: int, key: bytes) -> Any:
        no = _kind(t, db, key, enc.LIST)
        if no is not None:
            return no
        r = ls.pop(t, db, key, left, count or 1)
        if r is None:
            return EMPTY
        return [key, r[0]] if count is None else [key, r]

    return serve


def _list_move(dst: bytes, src_left: bool, dst_left: bool) -> Serve:
    """BLMOVE/BRPOPLPUSH: the element; WRONGTYPE for a destination of another type
    is the client's reply (serveClientBlockedOnList's checkType)."""

    def serve(t: Txn, db: int, key: bytes) -> Any:
        no = _kind(t, db, key, enc.LIST)
        if no is not None:
            return no
        r = ls.move(t, db, key, dst, src_left, dst_left)
        return EMPTY if r is None else r

    return serve


def _zset_pop(highest: bool, count: int | None) -> Serve:
    """BZPOPMIN/BZPOPMAX (count None: [key, member, score]) and BZMPOP."""

    def serve(t: Txn, db: int, key: bytes) -> Any:
        no = _kind(t, db, key, enc.ZSET)
        if no is not None:
            return no
        pairs = zs.pop(t, db, key, count or 1, highest)
        if not pairs:
            return EMPTY
        return _zpop_reply(key, pairs, count is not None)

    return serve


def _zpop_reply(key: bytes, pairs: zs.Pairs, nested: bool) -> list[Any]:
    """genericZpopCommand's reply: [key, member, score] or, for BZMPOP, [key, [[member,
    score], ...]]. Scores are doubles (RESP3 `,`; RESP2 bulk "%.17g")."""
    if nested:
        return [key, [[m, s] for m, s in pairs]]
    m, s = pairs[0]
    return [key, m, s]


def _block(c: Client, a: list[bytes], keys: list[bytes], ms: int, serve: Serve, **kw: Any) -> Any:
    blocking.registry(c.server).block(c, keys, ms, serve, a, **kw)
    return BLOCKED


# ---------------------------------------------------------------- lists


def _blpop(c: Client, a: list[bytes], left: bool) -> Any:
    ms = parse_timeout(a[-1])
    keys = a[1:-1]
    r = ls.mpop(c.t, c.db, keys, left, 1)  # WRONGTYPE at the first key of another type
    if r is not None:
        return [r[0], r[1][0]]
    if c.in_exec:
        return NULL_ARRAY
    return _block(c, a, keys, ms, _list_pop(left, None))


@command("blpop", -3, "write noscript blocking", 1, -2, 1, table=SERVER)
def blpop(c: Client, a: list[bytes]) -> Any:
    return _blpop(c, a, True)


@command("brpop", -3, "write noscript blocking", 1, -2, 1, table=SERVER)
def brpop(c: Client, a: list[bytes]) -> Any:
    return _blpop(c, a, False)


def _blmove(c: Client, a: list[bytes], src_left: bool, dst_left: bool, timeout: bytes) -> Any:
    ms = parse_timeout(timeout)
    src, dst = a[1], a[2]
    r = ls.move(c.t, c.db, src, dst, src_left, dst_left)
    if r is not None:
        return r
    if c.in_exec:
        return None  # blmoveGenericCommand: addReplyNull under CLIENT_DENY_BLOCKING
    return _block(c, a, [src], ms, _list_move(dst, src_left, dst_left), then=(dst,))


@command("blmove", 6, "write denyoom noscript blocking", 1, 2, 1, table=SERVER)
def blmove(c: Client, a: list[bytes]) -> Any:
    return _blmove(c, a, list_end(a[3]), list_end(a[4]), a[5])


@command("brpoplpush", 4, "write denyoom noscript blocking", 1, 2, 1, table=SERVER)
def brpoplpush(c: Client, a: list[bytes]) -> Any:
    return _blmove(c, a, False, True, a[3])


@command("blmpop", -5, "write blocking movablekeys", 0, 0, 0, table=SERVER)
def blmpop(c: Client, a: list[bytes]) -> Any:
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]."""
    keys, left, count = mpop_args(a, 2, LIST_ENDS)
    ms = parse_timeout(a[1])
    r = ls.mpop(c.t, c.db, keys, left, count)
    if r is not None:
        return [r[0], r[1]]
    if c.in_exec:
        return NULL_ARRAY
    return _block(c, a, keys, ms, _list_pop(left, count))


# ---------------------------------------------------------------- sorted sets


def _bzpop(c: Client, a: list[bytes], highest: bool) -> Any:
    ms = parse_timeout(a[-1])
    keys = a[1:-1]
    r = zs.mpop(c.t, c.db, keys, 1, highest)
    if r is not None:
        return _zpop_reply(r[0], r[1], False)
    if c.in_exec:
        return NULL_ARRAY
    return _block(c, a, keys, ms, _zset_pop(highest, None))


@command("bzpopmin", -3, "write noscript blocking fast", 1, -2, 1, table=SERVER)
def bzpopmin(c: Client, a: list[bytes]) -> Any:
    return _bzpop(c, a, False)


@command("bzpopmax", -3, "write noscript blocking fast", 1, -2, 1, table=SERVER)
def bzpopmax(c: Client, a: list[bytes]) -> Any:
    return _bzpop(c, a, True)


@command("bzmpop", -5, "write blocking movablekeys", 0, 0, 0, table=SERVER)
def bzmpop(c: Client, a: list[bytes]) -> Any:
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]."""
    keys, highest, count = mpop_args(a, 2, ZSET_ENDS)
    ms = parse_timeout(a[1])
    r = zs.mpop(c.t, c.db, keys, count, highest)
    if r is not None:
        return _zpop_reply(r[0], r[1], True)
    if c.in_exec:
        return NULL_ARRAY
    return _block(c, a, keys, ms, _zset_pop(highest, count))


# ---------------------------------------------------------------- CLIENT UNBLOCK


@subcommand(CLIENT, "unblock", -3, "admin noscript loading stale no_txn")
def client_unblock(c: Client, a: list[bytes]) -> int:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked on keys."""
    if len(a) > 4:  # clientCommand's fall-through for a wrong argument count
        raise ResponseError(  # addReplySubcommandSyntaxError: the name as sent
            f"unknown subcommand or wrong number of arguments for "
            f"'{a[1][:128].decode('utf-8', 'replace')}'. Try CLIENT HELP."
        )
    error = False
    if len(a) == 4:
        reason = a[3].lower()
        if reason == b"error":
            error = True
        elif reason != b"timeout":
            raise ResponseError(UNBLOCK_REASON)
    target_id = parse_int(a[2])
    target = c.server.clients.get(target_id)
    if target is None:
        return 0
    reply: object = CodedError(UNBLOCKED) if error else NULL_ARRAY
    return 1 if blocking.registry(c.server).unblock(target, reply) else 0
