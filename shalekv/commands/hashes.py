"""Hash commands (Redis t_hash.c): argument parsing and replies."""

from __future__ import annotations

from typing import Any

from shalekv.commands.cursor import random_count, scan_cursor, scan_options, scan_reply, scan_start
from shalekv.commands.registry import OK, Context, Status, command, syntax
from shalekv.commands.reply import Map, Pairs
from shalekv.errors import VALUE_OUT_OF_RANGE, ResponseError
from shalekv.types import hashes as hs
from shalekv.types.numbers import INT64_MAX, parse_int

_HALF = INT64_MAX // 2  # HRANDFIELD WITHVALUES replies 2 * count items


def _pairs(a: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(a) % 2:
        raise ResponseError(f"wrong number of arguments for '{a[0].decode().lower()}' command")
    return list(zip(a[2::2], a[3::2], strict=True))


def _flat(pairs: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [x for pair in pairs for x in pair]


@command("hset", -4, "write denyoom fast")
def hset(ctx: Context, a: list[bytes]) -> int:
    return hs.hset(ctx.t, ctx.db, a[1], _pairs(a))


@command("hmset", -4, "write denyoom fast")
def hmset(ctx: Context, a: list[bytes]) -> Status:
    hs.hset(ctx.t, ctx.db, a[1], _pairs(a))
    return OK


@command("hsetnx", 4, "write denyoom fast")
def hsetnx(ctx: Context, a: list[bytes]) -> int:
    return hs.hset(ctx.t, ctx.db, a[1], [(a[2], a[3])], nx=True)


@command("hget", 3, "readonly fast")
def hget(ctx: Context, a: list[bytes]) -> bytes | None:
    return hs.hget(ctx.t, ctx.db, a[1], a[2])


@command("hmget", -3, "readonly fast")
def hmget(ctx: Context, a: list[bytes]) -> list[bytes | None]:
    return hs.hmget(ctx.t, ctx.db, a[1], a[2:])


@command("hgetall", 2, "readonly")
def hgetall(ctx: Context, a: list[bytes]) -> list[bytes]:
    return Map(_flat(hs.hgetall(ctx.t, ctx.db, a[1])))


@command("hkeys", 2, "readonly")
def hkeys(ctx: Context, a: list[bytes]) -> list[bytes]:
    return [f for f, _ in hs.hgetall(ctx.t, ctx.db, a[1])]


@command("hvals", 2, "readonly")
def hvals(ctx: Context, a: list[bytes]) -> list[bytes]:
    return [v for _, v in hs.hgetall(ctx.t, ctx.db, a[1])]


@command("hdel", -3, "write fast")
def hdel(ctx: Context, a: list[bytes]) -> int:
    return hs.hdel(ctx.t, ctx.db, a[1], a[2:])


@command("hexists", 3, "readonly fast")
def hexists(ctx: Context, a: list[bytes]) -> int:
    return 0 if hs.hget(ctx.t, ctx.db, a[1], a[2]) is None else 1


@command("hlen", 2, "readonly fast")
def hlen(ctx: Context, a: list[bytes]) -> int:
    return hs.hlen(ctx.t, ctx.db, a[1])


@command("hstrlen", 3, "readonly fast")
def hstrlen(ctx: Context, a: list[bytes]) -> int:
    return hs.hstrlen(ctx.t, ctx.db, a[1], a[2])


@command("hincrby", 4, "write denyoom fast")
def hincrby(ctx: Context, a: list[bytes]) -> int:
    return hs.hincrby(ctx.t, ctx.db, a[1], a[2], parse_int(a[3]))


@command("hincrbyfloat", 4, "write denyoom fast")
def hincrbyfloat(ctx: Context, a: list[bytes]) -> bytes:
    return hs.hincrbyfloat(ctx.t, ctx.db, a[1], a[2], a[3])


@command("hrandfield", -2, "readonly")
def hrandfield(ctx: Context, a: list[bytes]) -> bytes | None | list[bytes]:
    """HRANDFIELD key [count [WITHVALUES]]."""
    if len(a) == 2:
        one = hs.hrandfield(ctx.t, ctx.db, a[1], None)
        return None if one is None else one[0][0]
    count = random_count(a[2])
    if len(a) > 4 or (len(a) == 4 and a[3].upper() != b"WITHVALUES"):
        raise syntax()
    withvalues = len(a) == 4
    if withvalues and not -_HALF <= count <= _HALF:
        raise ResponseError(VALUE_OUT_OF_RANGE)
    picks = hs.hrandfield(ctx.t, ctx.db, a[1], count) or []
    # RESP3: an array of [field, value] pairs (Redis 7.0 hrandfieldWithCountCommand).
    return Pairs(_flat(picks)) if withvalues else [f for f, _ in picks]


@command("hscan", -3, "readonly")
def hscan(ctx: Context, a: list[bytes]) -> list[Any]:
    cursor = scan_cursor(a[2])
    # As Redis: the key's type is checked, and a missing key answered, before options.
    if hs.hlen(ctx.t, ctx.db, a[1]) == 0:
        return [b"0", []]
    count, match = scan_options(a, 3)
    last, items = hs.hscan(ctx.t, ctx.db, a[1], scan_start(ctx, cursor), count, match)
    return scan_reply(ctx, last, _flat(items))
