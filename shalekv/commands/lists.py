"""List commands (Redis t_list.c): argument parsing and replies over `types.lists`.

The argument checks follow Redis 7.0's order, which is not always "all numbers first":
LINDEX and LSET look the key up before parsing the index; LMPOP parses numkeys, the
direction and COUNT before touching any key.
"""

from __future__ import annotations

from shalekv.commands.registry import OK, Context, Status, command, syntax
from shalekv.commands.reply import NULL_ARRAY
from shalekv.errors import (
    LMPOP_COUNT_POSITIVE,
    LPOS_COUNT_NEGATIVE,
    LPOS_MAXLEN_NEGATIVE,
    LPOS_RANK_ZERO,
    NO_SUCH_KEY,
    NUMKEYS_POSITIVE,
    POSITIVE,
    ResponseError,
)
from shalekv.types import lists as ls
from shalekv.types.numbers import parse_int

_ENDS = {b"LEFT": True, b"RIGHT": False}


def list_end(arg: bytes) -> bool:
    """LEFT -> True, RIGHT -> False (any case), syntax error otherwise."""
    left = _ENDS.get(arg.upper())
    if left is None:
        raise syntax()
    return left


def _non_negative(arg: bytes, message: str) -> int:
    """As Redis's getPositiveLongFromObjectOrReply: one message for both failures."""
    v = parse_int(arg, message)
    if v < 0:
        raise ResponseError(message)
    return v


# ---------------------------------------------------------------- push


@command("lpush", -3, "write denyoom fast")
def lpush(ctx: Context, a: list[bytes]) -> int:
    return ls.push(ctx.t, ctx.db, a[1], a[2:], True)


@command("rpush", -3, "write denyoom fast")
def rpush(ctx: Context, a: list[bytes]) -> int:
    return ls.push(ctx.t, ctx.db, a[1], a[2:], False)


@command("lpushx", -3, "write denyoom fast")
def lpushx(ctx: Context, a: list[bytes]) -> int:
    return ls.push(ctx.t, ctx.db, a[1], a[2:], True, only_existing=True)


@command("rpushx", -3, "write denyoom fast")
def rpushx(ctx: Context, a: list[bytes]) -> int:
    return ls.push(ctx.t, ctx.db, a[1], a[2:], False, only_existing=True)


# ---------------------------------------------------------------- pop


def _pop_generic(ctx: Context, a: list[bytes], left: bool) -> object:
    """LPOP/RPOP key [count]: one element (bulk) without count, an array with it; a
    missing key answers a null bulk without count, a null array with it (Redis 7.0
    popGenericCommand: addReplyNullArray); count 0 answers [] for an existing list."""
    if len(a) > 3:
        raise ResponseError(f"wrong number of arguments for '{a[0].decode().lower()}' command")
    if len(a) == 2:
        return ls.pop_one(ctx.t, ctx.db, a[1], left)
    count = _non_negative(a[2], POSITIVE)
    if count == 0:
        return NULL_ARRAY if ls.llen(ctx.t, ctx.db, a[1]) == 0 else []
    r = ls.pop(ctx.t, ctx.db, a[1], left, count)
    return NULL_ARRAY if r is None else r


@command("lpop", -2, "write fast")
def lpop(ctx: Context, a: list[bytes]) -> object:
    return _pop_generic(ctx, a, True)


@command("rpop", -2, "write fast")
def rpop(ctx: Context, a: list[bytes]) -> object:
    return _pop_generic(ctx, a, False)


def mpop_args(a: list[bytes], at: int, ends: dict[bytes, bool]) -> tuple[list[bytes], bool, int]:
    """lmpopGenericCommand/zmpopGenericCommand arguments from a[at]: `numkeys key [key
    ...] END [COUNT count]` -> (keys, ends[END], count, 1 when absent). Shared by LMPOP,
    ZMPOP, BLMPOP and BZMPOP."""
    numkeys = parse_int(a[at], NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise ResponseError(NUMKEYS_POSITIVE)
    where = at + 1 + numkeys
    if where >= len(a):
        raise syntax()
    end = ends.get(a[where].upper())
    if end is None:
        raise syntax()
    count = -1
    i = where + 1
    while i < len(a):
        if count == -1 and a[i].upper() == b"COUNT" and i + 1 < len(a):
            count = parse_int(a[i + 1], LMPOP_COUNT_POSITIVE)
            if count < 1:
                raise ResponseError(LMPOP_COUNT_POSITIVE)
            i += 2
        else:
            raise syntax()
    return a[at + 1 : where], end, max(count, 1)


LIST_ENDS = {b"LEFT": True, b"RIGHT": False}


@command("lmpop", -4, "write movablekeys", 0, 0, 0)
def lmpop(ctx: Context, a: list[bytes]) -> object:
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] -> [key, [elements]]."""
    keys, left, count = mpop_args(a, 1, LIST_ENDS)
    r = ls.mpop(ctx.t, ctx.db, keys, left, count)
    return NULL_ARRAY if r is None else [r[0], r[1]]  # Redis: addReplyNullArray


def _move(ctx: Context, src: bytes, dst: bytes, src_left: bool, dst_left: bool) -> bytes | None:
    return ls.move(ctx.t, ctx.db, src, dst, src_left, dst_left)


@command("lmove", 5, "write denyoom", 1, 2)
def lmove(ctx: Context, a: list[bytes]) -> bytes | None:
    return _move(ctx, a[1], a[2], list_end(a[3]), list_end(a[4]))


@command("rpoplpush", 3, "write denyoom", 1, 2)
def rpoplpush(ctx: Context, a: list[bytes]) -> bytes | None:
    return _move(ctx, a[1], a[2], False, True)


# ---------------------------------------------------------------- reads


@command("llen", 2, "readonly fast")
def llen(ctx: Context, a: list[bytes]) -> int:
    return ls.llen(ctx.t, ctx.db, a[1])


@command("lrange", 4, "readonly")
def lrange(ctx: Context, a: list[bytes]) -> list[bytes]:
    start = parse_int(a[2])
    stop = parse_int(a[3])
    return ls.lrange(ctx.t, ctx.db, a[1], start, stop)


@command("lindex", 3, "readonly")
def lindex(ctx: Context, a: list[bytes]) -> bytes | None:
    # Redis 7.0 looks the key up before parsing the index: a missing key answers nil
    # and a wrong type WRONGTYPE even for a non-numeric index.
    try:
        index = parse_int(a[2])
    except ResponseError:
        if ls.llen(ctx.t, ctx.db, a[1]) == 0:  # WRONGTYPE first, then nil for no key
            return None
        raise
    return ls.lindex(ctx.t, ctx.db, a[1], index)


@command("lpos", -3, "readonly")
def lpos(ctx: Context, a: list[bytes]) -> int | list[int] | None:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]; later repeats of
    an option win, as in Redis."""
    rank = 1
    count: int | None = None
    maxlen = 0
    i = 3
    while i < len(a):
        o = a[i].upper()
        if i + 1 >= len(a):
            raise syntax()
        if o == b"RANK":
            rank = parse_int(a[i + 1])
            if rank == 0:
                raise ResponseError(LPOS_RANK_ZERO)
        elif o == b"COUNT":
            count = _non_negative(a[i + 1], LPOS_COUNT_NEGATIVE)
        elif o == b"MAXLEN":
            maxlen = _non_negative(a[i + 1], LPOS_MAXLEN_NEGATIVE)
        else:
            raise syntax()
        i += 2
    return ls.lpos(ctx.t, ctx.db, a[1], a[2], rank, count, maxlen)


# ---------------------------------------------------------------- edits


@command("lset", 4, "write denyoom")
def lset(ctx: Context, a: list[bytes]) -> Status:
    try:
        index = parse_int(a[2])
    except ResponseError:  # as LINDEX: the key is looked up before the index is parsed
        if ls.llen(ctx.t, ctx.db, a[1]) == 0:
            raise ResponseError(NO_SUCH_KEY) from None
        raise
    ls.lset(ctx.t, ctx.db, a[1], index, a[3])
    return OK


@command("linsert", 5, "write denyoom")
def linsert(ctx: Context, a: list[bytes]) -> int:
    where = a[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise syntax()
    return ls.linsert(ctx.t, ctx.db, a[1], where == b"BEFORE", a[3], a[4])


@command("lrem", 4, "write")
def lrem(ctx: Context, a: list[bytes]) -> int:
    return ls.lrem(ctx.t, ctx.db, a[1], parse_int(a[2]), a[3])


@command("ltrim", 4, "write")
def ltrim(ctx: Context, a: list[bytes]) -> Status:
    start = parse_int(a[2])
    stop = parse_int(a[3])
    ls.ltrim(ctx.t, ctx.db, a[1], start, stop)
    return OK
