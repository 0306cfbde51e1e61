"""Sorted-set commands (Redis t_zset.c): argument parsing and replies over
`shalekv.types.zsets`.

Scores go out as Python floats where redis-py's RESP2 callbacks float() the reply
(ZSCORE, ZRANGE ...); ZDIFF, ZRANDMEMBER and ZMPOP have no such callback, so their
scores are `DoubleText`, the text Redis 7.0's addReplyDouble sends ("%.17g", "inf",
"-inf"): a bulk in RESP2 and for the embedded API, a double in RESP3. ZSCAN's scores
are bulk strings in both protocols, as in Redis. Score pairs are `Pairs` (RESP3 nests
them), except ZPOPMIN/ZPOPMAX without a count, which stay flat in RESP3 too.
"""

from __future__ import annotations

import math
import re
from typing import Any

from shalekv.commands.cursor import scan_cursor, scan_options, scan_reply, scan_start
from shalekv.commands.lists import mpop_args
from shalekv.commands.registry import Context, command, syntax
from shalekv.commands.reply import NULL_ARRAY, DoubleText, Pairs
from shalekv.errors import (
    LIMIT_NEGATIVE,
    LONG_RANGE,
    MIN_MAX_FLOAT,
    MIN_MAX_LEX,
    NOT_FLOAT,
    POSITIVE,
    SETOP_NO_KEYS,
    VALUE_OUT_OF_RANGE,
    WEIGHT_NOT_FLOAT,
    ZADD_GT_LT_NX,
    ZADD_INCR_PAIR,
    ZADD_NX_XX,
    ZRANGE_LIMIT_NEEDS_BY,
    ZRANGE_WITHSCORES_BYLEX,
    ResponseError,
)
from shalekv.types import zsets as zs
from shalekv.types.numbers import INT64_MAX, parse_int

# ---------------------------------------------------------------- numbers as strtod

_SPACE = b" \t\n\v\f\r"
_DEC = re.compile(rb"[ \t\n\v\f\r]*([+-]?)((?:[0-9]+\.?[0-9]*|\.[0-9]+))((?:[eE][+-]?[0-9]+)?)\Z")
_HEX = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    rb"(?:[pP][+-]?[0-9]+)?)\Z"
)
_INF = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(?:inf|infinity)\Z", re.IGNORECASE)
_SIGNS = (b"-", b"+")
_INF_WORDS = {b"+inf": math.inf, b"-inf": -math.inf, b"inf": math.inf}


def _strtod(b: bytes) -> tuple[float, bool] | None:
    """(value, ERANGE) when glibc's strtod consumes all of b (leading blanks allowed,
    an empty string reads as 0), else None. NaN spellings come back as None."""
    d = b[1:] if b[:1] in _SIGNS else b
    if len(d) < 300 and d.replace(b".", b"", 1).isdigit():
        # a plain decimal (most scores): float() reads it as strtod does (correctly
        # rounded); under 300 characters and no exponent it cannot overflow or underflow
        return float(b), False
    inf = _INF_WORDS.get(b)  # the usual range ends, without three regex matches
    if inf is not None:
        return inf, False
    if not b:
        return 0.0, False
    m = _DEC.match(b)
    if m is not None:
        v = float(m.group(1) + m.group(2) + m.group(3))
        if math.isinf(v):
            return v, True
        if v == 0.0 and m.group(2).strip(b"0.") != b"":
            return v, True  # underflow to zero
        return v, False
    m = _HEX.match(b)
    if m is not None:
        body = m.group(2).decode()
        try:
            v = float.fromhex(body)
        except OverflowError:
            return -math.inf if m.group(1) == b"-" else math.inf, True
        if m.group(1) == b"-":
            v = -v
        mant = body.split("p")[0].split("P")[0]
        if v == 0.0 and mant.strip("0.") != "":
            return v, True
        return v, False
    m = _INF.match(b)
    if m is not None:
        return (-math.inf if m.group(1) == b"-" else math.inf), False
    return None


def parse_score(b: bytes, message: str = NOT_FLOAT) -> float:
    """getDoubleFromObject: strtod over the whole string, no leading blank, no
    overflow or underflow to zero, not NaN."""
    if not b or b[0] in _SPACE:
        raise ResponseError(message)
    r = _strtod(b)
    if r is None or (r[1] and (math.isinf(r[0]) or r[0] == 0.0)):
        raise ResponseError(message)
    return r[0]


def _range_item(b: bytes) -> tuple[float, bool]:
    ex = b[:1] == b"("
    r = _strtod(b[1:] if ex else b)
    if r is None:
        raise ResponseError(MIN_MAX_FLOAT)
    return r[0], ex


def parse_score_range(lo: bytes, hi: bytes) -> zs.ScoreRange:
    """zslParseRange: "(" makes an end exclusive; strtod rules, NaN rejected."""
    mn, minex = _range_item(lo)
    mx, maxex = _range_item(hi)
    return mn, minex, mx, maxex


def _lex_item(b: bytes) -> tuple[zs.LexItem, bool]:
    c = b[:1]
    if c == b"+" or c == b"-":
        if b[1:2] not in (b"", b"\x00"):  # C reads the argument up to its NUL
            raise ResponseError(MIN_MAX_LEX)
        return (zs.LEX_MAX if c == b"+" else zs.LEX_MIN), True
    if c == b"(":
        return b[1:], True
    if c == b"[":
        return b[1:], False
    raise ResponseError(MIN_MAX_LEX)


def parse_lex_range(lo: bytes, hi: bytes) -> zs.LexRange:
    """zslParseLexRange: "[x" inclusive, "(x" exclusive, "-" and "+" the ends."""
    mn, minex = _lex_item(lo)
    mx, maxex = _lex_item(hi)
    return mn, minex, mx, maxex


def format_score(d: float) -> bytes:
    """addReplyDouble in RESP2 (Redis 7.0): "%.17g", inf as "inf"/"-inf"."""
    if math.isinf(d):
        return b"inf" if d > 0 else b"-inf"
    return b"%.17g" % d


def _range_long(b: bytes, lo: int, hi: int, message: str) -> int:
    """getRangeLongFromObjectOrReply with a message (also for non-integers)."""
    v = parse_int(b, message)
    if not lo <= v <= hi:
        raise ResponseError(message)
    return v


def _flat(pairs: zs.Pairs) -> list[Any]:
    return [x for p in pairs for x in p]


def _flat_raw(pairs: zs.Pairs) -> Pairs:
    """Score pairs with scores as addReplyDouble text: bulks in RESP2 (what the
    embedded API returns for them), doubles in RESP3."""
    return Pairs(x for m, s in pairs for x in (m, DoubleText(format_score(s))))


# ---------------------------------------------------------------- ZADD, ZINCRBY, ZREM


_ZADD_FLAGS = {b"NX", b"XX", b"CH", b"INCR", b"GT", b"LT"}


@command("zadd", -4, "write denyoom fast")
def zadd(ctx: Context, a: list[bytes]) -> int | float | None:
    if len(a) == 4 and a[2].upper() not in _ZADD_FLAGS:  # one pair, no option
        return zs.add(ctx.t, ctx.db, a[1], [(parse_score(a[2]), a[3])])[0]
    i = 2
    flags: set[bytes] = set()
    while i < len(a):
        o = a[i].upper()
        if o not in _ZADD_FLAGS:
            break
        flags.add(o)
        i += 1
    n = len(a) - i
    if n % 2 or not n:
        raise syntax()
    nx, xx, gt, lt = b"NX" in flags, b"XX" in flags, b"GT" in flags, b"LT" in flags
    incr = b"INCR" in flags
    if nx and xx:
        raise ResponseError(ZADD_NX_XX)
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise ResponseError(ZADD_GT_LT_NX)
    if incr and n > 2:
        raise ResponseError(ZADD_INCR_PAIR)
    pairs = [(parse_score(a[j]), a[j + 1]) for j in range(i, len(a), 2)]
    added, updated, last = zs.add(ctx.t, ctx.db, a[1], pairs, nx, xx, gt, lt, incr)
    if incr:
        return _incr_reply(pairs[0][0], added, last)
    return added + updated if b"CH" in flags else added


def _incr_reply(incr: float, added: int, last: float | None) -> float | None:
    """ZADD INCR / ZINCRBY reply: a new member's score is the increment as given, so
    Redis answers -0 for an increment of -0 (the stored score is 0, as ours)."""
    if added and last == 0.0 and math.copysign(1.0, incr) < 0:
        return -0.0
    return last


@command("zincrby", 4, "write denyoom fast")
def zincrby(ctx: Context, a: list[bytes]) -> float | None:
    incr = parse_score(a[2])
    added, _, last = zs.add(ctx.t, ctx.db, a[1], [(incr, a[3])], incr=True)
    return _incr_reply(incr, added, last)


@command("zrem", -3, "write fast")
def zrem(ctx: Context, a: list[bytes]) -> int:
    return zs.rem(ctx.t, ctx.db, a[1], a[2:])


# ---------------------------------------------------------------- point reads


@command("zscore", 3, "readonly fast")
def zscore(ctx: Context, a: list[bytes]) -> float | None:
    return zs.score(ctx.t, ctx.db, a[1], a[2])


@command("zmscore", -3, "readonly fast")
def zmscore(ctx: Context, a: list[bytes]) -> list[float | None]:
    return zs.mscore(ctx.t, ctx.db, a[1], a[2:])


@command("zcard", 2, "readonly fast")
def zcard(ctx: Context, a: list[bytes]) -> int:
    return zs.card(ctx.t, ctx.db, a[1])


# Redis 7.0's ZRANK takes no WITHSCORE (7.2): arity 3 gives 7.0's error for it.
@command("zrank", 3, "readonly fast")
def zrank(ctx: Context, a: list[bytes]) -> int | None:
    return zs.rank(ctx.t, ctx.db, a[1], a[2])


@command("zrevrank", 3, "readonly fast")
def zrevrank(ctx: Context, a: list[bytes]) -> int | None:
    return zs.rank(ctx.t, ctx.db, a[1], a[2], reverse=True)


@command("zcount", 4, "readonly fast")
def zcount(ctx: Context, a: list[bytes]) -> int:
    return zs.count(ctx.t, ctx.db, a[1], parse_score_range(a[2], a[3]))


@command("zlexcount", 4, "readonly fast")
def zlexcount(ctx: Context, a: list[bytes]) -> int:
    return zs.lexcount(ctx.t, ctx.db, a[1], parse_lex_range(a[2], a[3]))


# ---------------------------------------------------------------- the range family

_AUTO = -1


def zrange_generic(
    ctx: Context, a: list[bytes], first: int, store: bool, kind: int, reverse: int
) -> Any:
    """zrangeGenericCommand: Z[REV]RANGE[BYSCORE|BYLEX] and ZRANGESTORE. first is the
    index of the source key; kind/reverse are _AUTO when options may set them."""
    withscores = False
    offset, limit = 0, -1
    j = first + 3
    while j < len(a):
        o = a[j].upper()
        left = len(a) - j - 1
        if not store and o == b"WITHSCORES":
            withscores = True
        elif o == b"LIMIT" and left >= 2:
            offset = parse_int(a[j + 1])
            limit = parse_int(a[j + 2])
            j += 2
        elif reverse == _AUTO and o == b"REV":
            reverse = 1
        elif kind == _AUTO and o == b"BYLEX":
            kind = zs.LEX
        elif kind == _AUTO and o == b"BYSCORE":
            kind = zs.SCORE
        else:
            raise syntax()
        j += 1
    rev = reverse == 1
    if kind == _AUTO:
        kind = zs.RANK
    if limit != -1 and kind == zs.RANK:
        raise ResponseError(ZRANGE_LIMIT_NEEDS_BY)
    if withscores and kind == zs.LEX:
        raise ResponseError(ZRANGE_WITHSCORES_BYLEX)
    lo_arg, hi_arg = a[first + 1], a[first + 2]
    if rev and kind != zs.RANK:  # the range is given as max, min
        lo_arg, hi_arg = hi_arg, lo_arg
    lo: object
    hi: object = None
    if kind == zs.RANK:
        lo, hi = parse_int(lo_arg), parse_int(hi_arg)
    elif kind == zs.SCORE:
        lo = parse_score_range(lo_arg, hi_arg)
    else:
        lo = parse_lex_range(lo_arg, hi_arg)
    t, db = ctx.t, ctx.db
    if store:
        return zs.rangestore(t, db, a[1], a[first], kind, lo, hi, rev, offset, limit)
    r = zs.range_(t, db, a[first], kind, lo, hi, rev, offset, limit, withscores)
    return Pairs(_flat(r)) if withscores else r  # type: ignore[arg-type]


@command("zrange", -4, "readonly")
def zrange(ctx: Context, a: list[bytes]) -> Any:
    return zrange_generic(ctx, a, 1, False, _AUTO, _AUTO)


@command("zrangestore", -5, "write denyoom", 1, 2)
def zrangestore(ctx: Context, a: list[bytes]) -> Any:
    return zrange_generic(ctx, a, 2, True, _AUTO, _AUTO)


@command("zrevrange", -4, "readonly")
def zrevrange(ctx: Context, a: list[bytes]) -> Any:
    return zrange_generic(ctx, a, 1, False, zs.RANK, 1)


@command("zrangebyscore", -4, "readonly")
def zrangebyscore(ctx: Context, a: list[bytes]) -> Any:
    return zrange_generic(ctx, a, 1, False, zs.SCORE, 0)


@command("zrevrangebyscore", -4, "readonly")
def zrevrangebyscore(ctx: Context, a: list[bytes]) -> Any:
    return zrange_generic(ctx, a, 1, False, zs.SCORE, 1)


@command("zrangebylex", -4, "readonly")
def zrangebylex(ctx: Context, a: list[bytes]) -> Any:
    return zrange_generic(ctx, a, 1, False, zs.LEX, 0)


@command("zrevrangebylex", -4, "readonly")
def zrevrangebylex(ctx: Context, a: list[bytes]) -> Any:
    return zrange_generic(ctx, a, 1, False, zs.LEX, 1)


@command("zremrangebyrank", 4, "write")
def zremrangebyrank(ctx: Context, a: list[bytes]) -> int:
    start, end = parse_int(a[2]), parse_int(a[3])
    return zs.remrange(ctx.t, ctx.db, a[1], zs.RANK, start, end)


@command("zremrangebyscore", 4, "write")
def zremrangebyscore(ctx: Context, a: list[bytes]) -> int:
    return zs.remrange(ctx.t, ctx.db, a[1], zs.SCORE, parse_score_range(a[2], a[3]))


@command("zremrangebylex", 4, "write")
def zremrangebylex(ctx: Context, a: list[bytes]) -> int:
    return zs.remrange(ctx.t, ctx.db, a[1], zs.LEX, parse_lex_range(a[2], a[3]))


# ---------------------------------------------------------------- pops


def _zpop(ctx: Context, a: list[bytes], highest: bool) -> list[Any]:
    if len(a) > 3:
        raise syntax()
    count = _range_long(a[2], 0, INT64_MAX, POSITIVE) if len(a) == 3 else 1
    # genericZpopCommand: with a count RESP3 nests [member, score] pairs; without
    # one the reply stays a flat [member, score].
    shape = Pairs if len(a) == 3 else list
    if not zs.check_type(ctx.t, ctx.db, a[1]) or count == 0:
        return shape()
    return shape(_flat(zs.pop(ctx.t, ctx.db, a[1], count, highest)))


@command("zpopmin", -2, "write fast")
def zpopmin(ctx: Context, a: list[bytes]) -> list[Any]:
    return _zpop(ctx, a, False)


@command("zpopmax", -2, "write fast")
def zpopmax(ctx: Context, a: list[bytes]) -> list[Any]:
    return _zpop(ctx, a, True)


ZSET_ENDS = {b"MIN": False, b"MAX": True}


@command("zmpop", -4, "write movablekeys", 0, 0, 0)
def zmpop(ctx: Context, a: list[bytes]) -> Any:
    keys, highest, count = mpop_args(a, 1, ZSET_ENDS)
    r = zs.mpop(ctx.t, ctx.db, keys, count, highest)
    if r is None:
        return NULL_ARRAY  # Redis: addReplyNullArray
    return [r[0], [[m, DoubleText(format_score(s))] for m, s in r[1]]]


# ---------------------------------------------------------------- union, inter, diff

_OPS = {b"zunion": zs.UNION, b"zinter": zs.INTER, b"zdiff": zs.DIFF}
_AGGREGATES = {b"SUM": zs.SUM, b"MIN": zs.MIN, b"MAX": zs.MAX}


def _setop(ctx: Context, a: list[bytes], numkeys_idx: int, store: bool, card: bool) -> Any:
    """zunionInterDiffGenericCommand: keys are looked up (WRONGTYPE) before the
    options are parsed, as in Redis."""
    name = a[0].lower()
    op = zs.INTER if card else next(v for k, v in _OPS.items() if name.startswith(k))
    setnum = parse_int(a[numkeys_idx])
    if setnum < 1:
        raise ResponseError(SETOP_NO_KEYS.format(name.decode()))
    if setnum > len(a) - (numkeys_idx + 1):
        raise syntax()
    j = numkeys_idx + 1 + setnum
    srcs = zs.sources(ctx.t, ctx.db, a[numkeys_idx + 1 : j])
    weights: list[float] | None = None
    agg = zs.SUM
    withscores = False
    limit = 0
    while j < len(a):
        remaining = len(a) - j
        o = a[j].upper()
        if op != zs.DIFF and not card and remaining >= setnum + 1 and o == b"WEIGHTS":
            weights = [parse_score(w, WEIGHT_NOT_FLOAT) for w in a[j + 1 : j + 1 + setnum]]
            j += 1 + setnum
        elif op != zs.DIFF and not card and remaining >= 2 and o == b"AGGREGATE":
            found = _AGGREGATES.get(a[j + 1].upper())
            if found is None:
                raise syntax()
            agg = found
            j += 2
        elif not store and not card and o == b"WITHSCORES":
            withscores = True
            j += 1
        elif card and remaining >= 2 and o == b"LIMIT":
            limit = _range_long(a[j + 1], 0, INT64_MAX, LIMIT_NEGATIVE)
            j += 2
        else:
            raise syntax()
    t = ctx.t
    if card:
        return zs.combine(t, srcs, op, card_limit=limit)
    pairs = zs.combine(t, srcs, op, weights, agg)
    assert isinstance(pairs, list)
    if store:
        return zs.store(t, ctx.db, a[1], pairs)
    if not withscores:
        return [m for m, _ in pairs]
    return _flat_raw(pairs) if op == zs.DIFF else Pairs(_flat(pairs))


@command("zunion", -3, "readonly movablekeys", 0, 0, 0)
def zunion(ctx: Context, a: list[bytes]) -> Any:
    return _setop(ctx, a, 1, False, False)


@command("zinter", -3, "readonly movablekeys", 0, 0, 0)
def zinter(ctx: Context, a: list[bytes]) -> Any:
    return _setop(ctx, a, 1, False, False)


@command("zdiff", -3, "readonly movablekeys", 0, 0, 0)
def zdiff(ctx: Context, a: list[bytes]) -> Any:
    return _setop(ctx, a, 1, False, False)


@command("zunionstore", -4, "write denyoom movablekeys")
def zunionstore(ctx: Context, a: list[bytes]) -> Any:
    return _setop(ctx, a, 2, True, False)


@command("zinterstore", -4, "write denyoom movablekeys")
def zinterstore(ctx: Context, a: list[bytes]) -> Any:
    return _setop(ctx, a, 2, True, False)


@command("zdiffstore", -4, "write denyoom movablekeys")
def zdiffstore(ctx: Context, a: list[bytes]) -> Any:
    return _setop(ctx, a, 2, True, False)


@command("zintercard", -3, "readonly movablekeys", 0, 0, 0)
def zintercard(ctx: Context, a: list[bytes]) -> Any:
    return _setop(ctx, a, 1, False, True)


# ---------------------------------------------------------------- random, scan

_LONG_MAX = INT64_MAX


@command("zrandmember", -2, "readonly")
def zrandmember(ctx: Context, a: list[bytes]) -> Any:
    if len(a) == 2:
        r = zs.randmember(ctx.t, ctx.db, a[1], None)
        return None if not r else r[0][0]
    count = parse_int(a[2])
    if count < -_LONG_MAX:
        raise ResponseError(LONG_RANGE)
    withscores = False
    if len(a) > 4 or (len(a) == 4 and a[3].upper() != b"WITHSCORES"):
        raise syntax()
    if len(a) == 4:
        withscores = True
        if count < -(_LONG_MAX // 2) or count > _LONG_MAX // 2:  # C truncates
            raise ResponseError(VALUE_OUT_OF_RANGE)
    pairs = zs.randmember(ctx.t, ctx.db, a[1], count) or []
    return _flat_raw(pairs) if withscores else [m for m, _ in pairs]


@command("zscan", -3, "readonly")
def zscan(ctx: Context, a: list[bytes]) -> list[Any]:
    cursor = scan_cursor(a[2])
    t, db = ctx.t, ctx.db
    if not zs.check_type(t, db, a[1]):
        return [b"0", []]
    count, match = scan_options(a, 3)
    last, pairs = zs.scan(t, db, a[1], scan_start(ctx, cursor), count, match)
    # Scores as bulk strings in both protocols, as Redis's scanGenericCommand.
    return scan_reply(ctx, last, [x for m, s in pairs for x in (m, format_score(s))])
