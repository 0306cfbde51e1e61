"""Set commands (Redis t_set.c): argument parsing and replies."""

from __future__ import annotations

from typing import Any

from shalekv.commands.cursor import random_count, scan_cursor, scan_options, scan_reply, scan_start
from shalekv.commands.registry import Context, command, syntax
from shalekv.commands.reply import SetReply
from shalekv.errors import (
    LIMIT_NEGATIVE,
    NUMKEYS_POSITIVE,
    NUMKEYS_TOO_MANY,
    POSITIVE,
    ResponseError,
)
from shalekv.types import sets as st
from shalekv.types.numbers import parse_int

# ---------------------------------------------------------------- commands


@command("sadd", -3, "write denyoom fast")
def sadd(ctx: Context, a: list[bytes]) -> int:
    return st.sadd(ctx.t, ctx.db, a[1], a[2:])


@command("srem", -3, "write fast")
def srem(ctx: Context, a: list[bytes]) -> int:
    return st.srem(ctx.t, ctx.db, a[1], a[2:])


@command("smembers", 2, "readonly")
def smembers(ctx: Context, a: list[bytes]) -> list[bytes]:
    return SetReply(st.smembers(ctx.t, ctx.db, a[1]))  # RESP3 set, as Redis


@command("sismember", 3, "readonly fast")
def sismember(ctx: Context, a: list[bytes]) -> int:
    return st.smismember(ctx.t, ctx.db, a[1], a[2:3])[0]


@command("smismember", -3, "readonly fast")
def smismember(ctx: Context, a: list[bytes]) -> list[int]:
    return st.smismember(ctx.t, ctx.db, a[1], a[2:])


@command("scard", 2, "readonly fast")
def scard(ctx: Context, a: list[bytes]) -> int:
    return st.scard(ctx.t, ctx.db, a[1])


@command("spop", -2, "write fast")
def spop(ctx: Context, a: list[bytes]) -> bytes | None | list[bytes]:
    if len(a) > 3:
        raise syntax()
    count = None
    if len(a) == 3:
        count = parse_int(a[2], POSITIVE)
        if count < 0:
            raise ResponseError(POSITIVE)
    r = st.spop(ctx.t, ctx.db, a[1], count)
    # With a count Redis 7.0 replies a set (spopWithCountCommand), also when empty.
    return SetReply(r) if isinstance(r, list) else r


@command("srandmember", -2, "readonly")
def srandmember(ctx: Context, a: list[bytes]) -> bytes | None | list[bytes]:
    if len(a) > 3:
        raise syntax()
    count = random_count(a[2]) if len(a) == 3 else None
    return st.srandmember(ctx.t, ctx.db, a[1], count)


@command("smove", 4, "write fast", 1, 2)
def smove(ctx: Context, a: list[bytes]) -> int:
    return st.smove(ctx.t, ctx.db, a[1], a[2], a[3])


@command("sinter", -2, "readonly", 1, -1)
def sinter(ctx: Context, a: list[bytes]) -> list[bytes]:
    return SetReply(st.combine(ctx.t, ctx.db, "inter", a[1:]))


@command("sunion", -2, "readonly", 1, -1)
def sunion(ctx: Context, a: list[bytes]) -> list[bytes]:
    return SetReply(st.combine(ctx.t, ctx.db, "union", a[1:]))


@command("sdiff", -2, "readonly", 1, -1)
def sdiff(ctx: Context, a: list[bytes]) -> list[bytes]:
    return SetReply(st.combine(ctx.t, ctx.db, "diff", a[1:]))


@command("sinterstore", -3, "write denyoom", 1, -1)
def sinterstore(ctx: Context, a: list[bytes]) -> int:
    return st.combine_store(ctx.t, ctx.db, "inter", a[1], a[2:])


@command("sunionstore", -3, "write denyoom", 1, -1)
def sunionstore(ctx: Context, a: list[bytes]) -> int:
    return st.combine_store(ctx.t, ctx.db, "union", a[1], a[2:])


@command("sdiffstore", -3, "write denyoom", 1, -1)
def sdiffstore(ctx: Context, a: list[bytes]) -> int:
    return st.combine_store(ctx.t, ctx.db, "diff", a[1], a[2:])


@command("sintercard", -3, "readonly movablekeys", 0, 0, 0)
def sintercard(ctx: Context, a: list[bytes]) -> int:
    numkeys = parse_int(a[1], NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise ResponseError(NUMKEYS_POSITIVE)
    if numkeys > len(a) - 2:
        raise ResponseError(NUMKEYS_TOO_MANY)
    limit = 0
    i = 2 + numkeys
    while i < len(a):
        if a[i].upper() == b"LIMIT" and i + 1 < len(a):
            i += 1
            limit = parse_int(a[i], LIMIT_NEGATIVE)
            if limit < 0:
                raise ResponseError(LIMIT_NEGATIVE)
        else:
            raise syntax()
        i += 1
    return st.sintercard(ctx.t, ctx.db, a[2 : 2 + numkeys], limit)


@command("sscan", -3, "readonly")
def sscan(ctx: Context, a: list[bytes]) -> list[Any]:
    cursor = scan_cursor(a[2])
    # As Redis: the key's type is checked, and a missing key answered, before options.
    if st.scard(ctx.t, ctx.db, a[1]) == 0:
        return [b"0", []]
    count, match = scan_options(a, 3)
    last, items = st.sscan(ctx.t, ctx.db, a[1], scan_start(ctx, cursor), count, match)
    return scan_reply(ctx, last, items)
