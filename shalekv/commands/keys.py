"""Commands on keys of any type (Redis db.c / expire.c): DEL, EXISTS, TYPE, EXPIRE
family, TTL family, PERSIST, RENAME, COPY, MOVE, KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB."""

from __future__ import annotations

from typing import Any

from shalekv.commands.cursor import scan_cursor, scan_reply, scan_start
from shalekv.commands.registry import OK, Context, Status, command, syntax
from shalekv.errors import INVALID_EXPIRE, ResponseError
from shalekv.types import encoding as enc
from shalekv.types import keyspace as ks
from shalekv.types.glob import compile_glob
from shalekv.types.numbers import INT64_MAX, INT64_MIN, parse_int

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_TYPE_BYTES = {v.encode(): k for k, v in enc.TYPE_NAMES.items()}


@command("del", -2, "write", 1, -1)
def del_(ctx: Context, a: list[bytes]) -> int:
    return ks.delete(ctx.t, ctx.db, a[1:])


command("unlink", -2, "write fast", 1, -1)(del_)


@command("exists", -2, "readonly fast", 1, -1)
def exists(ctx: Context, a: list[bytes]) -> int:
    return ks.exists(ctx.t, ctx.db, a[1:])


command("touch", -2, "readonly fast", 1, -1)(exists)


@command("type", 2, "readonly fast")
def type_(ctx: Context, a: list[bytes]) -> Status:
    return Status(ks.type_name(ctx.t.meta(ctx.db, a[1])).encode())


def abs_ms(ctx: Context, a: list[bytes], unit_ms: int, absolute: bool, name: str) -> int:
    """An expire argument as an absolute time in ms, with Redis's overflow checks."""
    v = parse_int(a[2])
    if v > INT64_MAX // unit_ms or v < INT64_MIN // unit_ms:
        raise ResponseError(INVALID_EXPIRE.format(name))
    v *= unit_ms
    if not absolute:
        if v > INT64_MAX - ctx.t.now:
            raise ResponseError(INVALID_EXPIRE.format(name))
        v += ctx.t.now
    return v


def expire_generic(ctx: Context, a: list[bytes], unit_ms: int, absolute: bool) -> int:
    name = a[0].decode().lower()
    nx = xx = gt = lt = False
    for opt in a[3:]:
        o = opt.upper()
        if o == b"NX":
            nx = True
        elif o == b"XX":
            xx = True
        elif o == b"GT":
            gt = True
        elif o == b"LT":
            lt = True
        else:
            raise ResponseError(f"Unsupported option {opt.decode('utf-8', 'replace')}")
    if nx and (xx or gt or lt):
        raise ResponseError("NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise ResponseError("GT and LT options at the same time are not compatible")
    at = abs_ms(ctx, a, unit_ms, absolute, name)
    return ks.expire(ctx.t, ctx.db, a[1], at, nx, xx, gt, lt)


@command("expire", -3, "write fast")
def expire(ctx: Context, a: list[bytes]) -> int:
    return expire_generic(ctx, a, 1000, False)


@command("pexpire", -3, "write fast")
def pexpire(ctx: Context, a: list[bytes]) -> int:
    return expire_generic(ctx, a, 1, False)


@command("expireat", -3, "write fast")
def expireat(ctx: Context, a: list[bytes]) -> int:
    return expire_generic(ctx, a, 1000, True)


@command("pexpireat", -3, "write fast")
def pexpireat(ctx: Context, a: list[bytes]) -> int:
    return expire_generic(ctx, a, 1, True)


def _seconds(ms: int) -> int:
    return ms if ms < 0 else (ms + 500) // 1000


@command("ttl", 2, "readonly fast")
def ttl(ctx: Context, a: list[bytes]) -> int:
    return _seconds(ks.pttl(ctx.t, ctx.db, a[1]))


@command("pttl", 2, "readonly fast")
def pttl(ctx: Context, a: list[bytes]) -> int:
    return ks.pttl(ctx.t, ctx.db, a[1])


@command("expiretime", 2, "readonly fast")
def expiretime(ctx: Context, a: list[bytes]) -> int:
    return _seconds(ks.expiretime_ms(ctx.t, ctx.db, a[1]))


@command("pexpiretime", 2, "readonly fast")
def pexpiretime(ctx: Context, a: list[bytes]) -> int:
    return ks.expiretime_ms(ctx.t, ctx.db, a[1])


@command("persist", 2, "write fast")
def persist(ctx: Context, a: list[bytes]) -> int:
    return ks.persist(ctx.t, ctx.db, a[1])


@command("rename", 3, "write", 1, 2)
def rename(ctx: Context, a: list[bytes]) -> Status:
    ks.rename(ctx.t, ctx.db, a[1], a[2], nx=False)
    return OK


@command("renamenx", 3, "write fast", 1, 2)
def renamenx(ctx: Context, a: list[bytes]) -> int:
    return ks.rename(ctx.t, ctx.db, a[1], a[2], nx=True)


@command("copy", -3, "write", 1, 2)
def copy(ctx: Context, a: list[bytes]) -> int:
    dst_db = ctx.db
    replace = False
    i = 3
    while i < len(a):
        o = a[i].upper()
        if o == b"REPLACE":
            replace = True
        elif o == b"DB" and i + 1 < len(a):
            i += 1
            dst_db = parse_int(a[i])
            ctx.store.check_db(dst_db)
        else:
            raise syntax()
        i += 1
    return ks.copy(ctx.t, ctx.db, a[1], dst_db, a[2], replace)


@command("move", 3, "write fast")
def move(ctx: Context, a: list[bytes]) -> int:
    """MOVE key db: errors in moveCommand's order (the db index is checked before
    the key is looked up)."""
    dst_db = parse_int(a[2])
    if not INT32_MIN <= dst_db <= INT32_MAX:  # getIntFromObjectOrReply
        raise ResponseError(
            f"value is out of range, value must between {INT32_MIN} and {INT32_MAX}"
        )
    ctx.store.check_db(dst_db)
    if dst_db == ctx.db:
        raise ResponseError("source and destination objects are the same")
    return ks.move(ctx.t, ctx.db, a[1], dst_db)


@command("keys", 2, "readonly", 0, 0, 0)
def keys(ctx: Context, a: list[bytes]) -> list[bytes]:
    match = compile_glob(a[1])
    _, out = ks.scan(ctx.t, ctx.db, None, 1 << 62, match)
    return out


@command("scan", -2, "readonly", 0, 0, 0)
def scan(ctx: Context, a: list[bytes]) -> list[Any]:
    cursor = scan_cursor(a[1])
    match = None
    count = 10
    type_byte: int | None = None
    i = 2
    while i < len(a):
        o = a[i].upper()
        if i + 1 >= len(a):
            raise syntax()
        if o == b"MATCH":
            match = compile_glob(a[i + 1])
        elif o == b"COUNT":
            count = parse_int(a[i + 1])
            if count < 1:
                raise syntax()
        elif o == b"TYPE":
            type_byte = _TYPE_BYTES.get(a[i + 1].lower(), -1)
        else:
            raise syntax()
        i += 2
    last, out = ks.scan(ctx.t, ctx.db, scan_start(ctx, cursor), count, match, type_byte)
    return scan_reply(ctx, last, out)


@command("randomkey", 1, "readonly", 0, 0, 0)
def randomkey(ctx: Context, a: list[bytes]) -> bytes | None:
    return ks.random_key(ctx.t, ctx.db)


@command("dbsize", 1, "readonly fast", 0, 0, 0)
def dbsize(ctx: Context, a: list[bytes]) -> int:
    c = ctx.store.counts[ctx.db][0]
    pending = ctx.t.counts.get(ctx.db)
    return c + (pending[0] if pending else 0)


def _flush_mode(a: list[bytes]) -> None:
    if len(a) > 2 or (len(a) == 2 and a[1].upper() not in (b"ASYNC", b"SYNC")):
        raise syntax()


@command("flushdb", -1, "write", 0, 0, 0)
def flushdb(ctx: Context, a: list[bytes]) -> Status:
    _flush_mode(a)
    ks.flushdb(ctx.t, ctx.db)
    return OK


@command("flushall", -1, "write", 0, 0, 0)
def flushall(ctx: Context, a: list[bytes]) -> Status:
    _flush_mode(a)
    ks.flushall(ctx.t)
    return OK


@command("select", 2, "fast", 0, 0, 0)
def select(ctx: Context, a: list[bytes]) -> Status:
    db = parse_int(a[1])
    ctx.store.check_db(db)
    ctx.db = db
    return OK


@command("ping", -1, "fast", 0, 0, 0)
def ping(ctx: Context, a: list[bytes]) -> bytes:
    if len(a) > 2:
        raise ResponseError("wrong number of arguments for 'ping' command")
    return a[1] if len(a) == 2 else Status(b"PONG")


@command("echo", 2, "fast", 0, 0, 0)
def echo(ctx: Context, a: list[bytes]) -> bytes:
    return a[1]
