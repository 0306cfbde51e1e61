"""String commands (Redis t_string.c / bitops.c): argument parsing and replies."""

from __future__ import annotations

from shalekv.commands.keys import abs_ms
from shalekv.commands.registry import OK, Context, Status, command, syntax
from shalekv.errors import BIT_OFFSET, BIT_VALUE, INVALID_EXPIRE, ResponseError
from shalekv.types import strings as st
from shalekv.types.encoding import STRING
from shalekv.types.numbers import INT64_MIN, parse_int

_EXPIRE_UNITS = {b"EX": (1000, False), b"PX": (1, False), b"EXAT": (1000, True), b"PXAT": (1, True)}


def _expire_arg(ctx: Context, name: str, opt: bytes, value: bytes) -> int:
    unit, absolute = _EXPIRE_UNITS[opt]
    v = parse_int(value)
    if v <= 0:
        raise ResponseError(INVALID_EXPIRE.format(name))
    return abs_ms(ctx, [b"", b"", value], unit, absolute, name)


@command("set", -3, "write denyoom")
def set_(ctx: Context, a: list[bytes]) -> bytes | None:
    nx = xx = get = keepttl = False
    expire_at = 0
    expire_seen = False
    i = 3
    while i < len(a):
        o = a[i].upper()
        if o == b"NX" and not xx:
            nx = True
        elif o == b"XX" and not nx:
            xx = True
        elif o == b"GET":
            get = True
        elif o == b"KEEPTTL" and not expire_seen:
            keepttl = True
        elif o in _EXPIRE_UNITS and not keepttl and not expire_seen and i + 1 < len(a):
            expire_seen = True
            i += 1
            expire_at = _expire_arg(ctx, "set", o, a[i])
        else:
            raise syntax()
        i += 1
    done, old = st.set_value(ctx.t, ctx.db, a[1], a[2], expire_at, keepttl, nx, xx, get)
    if get:
        return old
    return OK if done else None


@command("setnx", 3, "write denyoom fast")
def setnx(ctx: Context, a: list[bytes]) -> int:
    return int(st.set_value(ctx.t, ctx.db, a[1], a[2], nx=True)[0])


def _setex(ctx: Context, a: list[bytes], unit: bytes) -> Status:
    name = a[0].decode().lower()
    at = _expire_arg(ctx, name, unit, a[2])
    st.set_value(ctx.t, ctx.db, a[1], a[3], at)
    return OK


@command("setex", 4, "write denyoom")
def setex(ctx: Context, a: list[bytes]) -> Status:
    return _setex(ctx, a, b"EX")


@command("psetex", 4, "write denyoom")
def psetex(ctx: Context, a: list[bytes]) -> Status:
    return _setex(ctx, a, b"PX")


@command("get", 2, "readonly fast")
def get(ctx: Context, a: list[bytes]) -> bytes | None:
    return st.get(ctx.t, ctx.db, a[1])


@command("getset", 3, "write denyoom fast")
def getset(ctx: Context, a: list[bytes]) -> bytes | None:
    return st.set_value(ctx.t, ctx.db, a[1], a[2], get_old=True)[1]


@command("getdel", 2, "write fast")
def getdel(ctx: Context, a: list[bytes]) -> bytes | None:
    return st.getdel(ctx.t, ctx.db, a[1])


@command("getex", -2, "write fast")
def getex(ctx: Context, a: list[bytes]) -> bytes | None:
    expire_at: int | None = None
    persist = False
    i = 2
    while i < len(a):
        o = a[i].upper()
        if o in _EXPIRE_UNITS and expire_at is None and not persist and i + 1 < len(a):
            i += 1
            expire_at = _expire_arg(ctx, "getex", o, a[i])
        elif o == b"PERSIST" and expire_at is None and not persist:
            persist = True
        else:
            raise syntax()
        i += 1
    return st.getex(ctx.t, ctx.db, a[1], expire_at, persist)


@command("mget", -2, "readonly fast", 1, -1)
def mget(ctx: Context, a: list[bytes]) -> list[bytes | None]:
    return st.mget(ctx.t, ctx.db, a[1:])


def _pairs(a: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(a) % 2 == 0:
        raise ResponseError(f"wrong number of arguments for '{a[0].decode().lower()}' command")
    return list(zip(a[1::2], a[2::2], strict=True))


@command("mset", -3, "write denyoom", 1, -1, 2)
def mset(ctx: Context, a: list[bytes]) -> Status:
    st.mset(ctx.t, ctx.db, _pairs(a))
    return OK


@command("msetnx", -3, "write denyoom", 1, -1, 2)
def msetnx(ctx: Context, a: list[bytes]) -> int:
    return int(st.mset(ctx.t, ctx.db, _pairs(a), nx=True))


@command("append", 3, "write denyoom fast")
def append(ctx: Context, a: list[bytes]) -> int:
    return st.append(ctx.t, ctx.db, a[1], a[2])


@command("strlen", 2, "readonly fast")
def strlen(ctx: Context, a: list[bytes]) -> int:
    return st.strlen(ctx.t, ctx.db, a[1])


@command("getrange", 4, "readonly")
def getrange(ctx: Context, a: list[bytes]) -> bytes:
    return st.getrange(ctx.t, ctx.db, a[1], parse_int(a[2]), parse_int(a[3]))


command("substr", 4, "readonly")(getrange)


@command("setrange", 4, "write denyoom")
def setrange(ctx: Context, a: list[bytes]) -> int:
    return st.setrange(ctx.t, ctx.db, a[1], parse_int(a[2]), a[3])


@command("incr", 2, "write denyoom fast")
def incr(ctx: Context, a: list[bytes]) -> int:
    return st.incrby(ctx.t, ctx.db, a[1], 1)


@command("decr", 2, "write denyoom fast")
def decr(ctx: Context, a: list[bytes]) -> int:
    return st.incrby(ctx.t, ctx.db, a[1], -1)


@command("incrby", 3, "write denyoom fast")
def incrby(ctx: Context, a: list[bytes]) -> int:
    return st.incrby(ctx.t, ctx.db, a[1], parse_int(a[2]))


@command("decrby", 3, "write denyoom fast")
def decrby(ctx: Context, a: list[bytes]) -> int:
    d = parse_int(a[2])
    if d == INT64_MIN:
        raise ResponseError("decrement would overflow")
    return st.incrby(ctx.t, ctx.db, a[1], -d)


@command("incrbyfloat", 3, "write denyoom fast")
def incrbyfloat(ctx: Context, a: list[bytes]) -> bytes:
    return st.incrbyfloat(ctx.t, ctx.db, a[1], a[2])


def _bit_offset(b: bytes) -> int:
    """getBitOffsetFromArgument: checked (range included) before the bit value."""
    v = parse_int(b, BIT_OFFSET)
    if not 0 <= v < st.MAX_STRING * 8:
        raise ResponseError(BIT_OFFSET)
    return v


@command("setbit", 4, "write denyoom")
def setbit(ctx: Context, a: list[bytes]) -> int:
    offset = _bit_offset(a[2])
    if a[3] not in (b"0", b"1"):
        raise ResponseError(BIT_VALUE)
    return st.setbit(ctx.t, ctx.db, a[1], offset, int(a[3]))


@command("getbit", 3, "readonly fast")
def getbit(ctx: Context, a: list[bytes]) -> int:
    return st.getbit(ctx.t, ctx.db, a[1], _bit_offset(a[2]))


def _unit(a: list[bytes], i: int) -> bool:
    """BYTE|BIT at position i (absent means BYTE)."""
    if len(a) <= i:
        return False
    if len(a) > i + 1:
        raise syntax()
    u = a[i].upper()
    if u == b"BIT":
        return True
    if u == b"BYTE":
        return False
    raise syntax()


@command("bitcount", -2, "readonly")
def bitcount(ctx: Context, a: list[bytes]) -> int:
    """BITCOUNT key [start end [BYTE|BIT]]: as Redis 7.0 bitcountCommand, the key is
    looked up first (a missing key answers 0 whatever follows, a wrong type wins),
    then start, end and the unit."""
    if ctx.t.lookup(ctx.db, a[1], STRING) is None:
        return 0
    if len(a) not in (2, 4, 5):
        raise syntax()
    start = end = None
    bits = False
    if len(a) >= 4:
        start, end = parse_int(a[2]), parse_int(a[3])
        bits = _unit(a, 4)
    return st.bitcount(ctx.t, ctx.db, a[1], start, end, bits)


@command("bitpos", -3, "readonly")
def bitpos(ctx: Context, a: list[bytes]) -> int:
    """BITPOS key bit [start [end [BYTE|BIT]]], in Redis 7.0 bitposCommand's order: the
    bit, then the key (a missing key answers before any other argument is read, a
    wrong type before the range), then start, the unit, end."""
    bit = parse_int(a[2])
    if bit not in (0, 1):
        raise ResponseError("The bit argument must be 1 or 0.")
    if ctx.t.lookup(ctx.db, a[1], STRING) is None:
        return -1 if bit else 0
    if len(a) > 6:
        raise syntax()
    start = parse_int(a[3]) if len(a) > 3 else None
    bits = False
    if len(a) == 6:
        u = a[5].upper()
        if u not in (b"BIT", b"BYTE"):
            raise syntax()
        bits = u == b"BIT"
    end = parse_int(a[4]) if len(a) > 4 else None
    return st.bitpos(ctx.t, ctx.db, a[1], bit, start, end, bits)


@command("bitop", -4, "write denyoom", 2, -1)
def bitop(ctx: Context, a: list[bytes]) -> int:
    op = a[1].upper().decode("utf-8", "replace")
    if op not in ("AND", "OR", "XOR", "NOT"):
        raise syntax()
    if op == "NOT" and len(a) != 4:
        raise ResponseError("BITOP NOT must be called with a single source key.")
    return st.bitop(ctx.t, ctx.db, op, a[2], a[3:])
