#!/usr/bin/env python3
"""The pure-Python ceiling for ``shalekv server`` (issue 5): an asyncio + uvloop +
hiredis server over plain dicts, implementing only what redis-benchmark's tests send.

It does what any Python Redis-protocol server must do per request (parse with hiredis,
dispatch on the command name, touch a dict, encode a reply, write once per read) and
nothing else: no store, no transactions, no expiry, no stats, no persistence. ShaleKV
at ``-P 16`` is measured against it (target: >= 0.5x), because at that depth the cost is
Python per request, not the socket.

Commands: PING, SET, GET, INCR, LPUSH, RPUSH, LPOP, RPOP, SADD, HSET, SPOP, ZADD,
ZPOPMIN, LRANGE, MSET, CONFIG GET (redis-benchmark asks for ``save`` and ``appendonly``
at start: answered as redis-server without persistence answers, any other name gets an
empty array), FLUSHALL, FLUSHDB, DBSIZE. Sorted
sets are a member -> score dict (ZPOPMIN is a scan): the ceiling is the protocol plus a
dict operation, not Redis's skiplist.

    python bench/ceiling_server.py --port 7400
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

import hiredis

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
NIL = b"$-1\r\n"
EMPTY = b"*0\r\n"
WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"
SYNTAX = b"-ERR syntax error\r\n"

DB: dict[bytes, Any] = {}


def bulk(v: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(v), v)


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


def arity(n: int) -> Callable[[Callable[[list[Any]], bytes]], Callable[[list[Any]], bytes]]:
    """Redis's arity convention (negative: at least); a wrong count is an error reply."""

    def wrap(fn: Callable[[list[Any]], bytes]) -> Callable[[list[Any]], bytes]:
        def checked(a: list[Any]) -> bytes:
            if (n > 0 and len(a) != n) or len(a) < -n:
                return b"-ERR wrong number of arguments for '%s' command\r\n" % a[0].lower()
            return fn(a)

        return checked

    return wrap


@arity(-1)
def ping(a: list[Any]) -> bytes:
    return PONG if len(a) == 1 else bulk(a[1])


@arity(3)
def set_(a: list[Any]) -> bytes:
    DB[a[1]] = a[2]
    return OK


@arity(2)
def get(a: list[Any]) -> bytes:
    v = DB.get(a[1])
    if v is None:
        return NIL
    if type(v) is not bytes:
        return WRONGTYPE
    return b"$%d\r\n%s\r\n" % (len(v), v)


@arity(2)
def incr(a: list[Any]) -> bytes:
    v = DB.get(a[1], b"0")
    if type(v) is not bytes:
        return WRONGTYPE
    try:
        n = int(v) + 1
    except ValueError:
        return NOT_INT
    DB[a[1]] = b"%d" % n
    return b":%d\r\n" % n


def _typed(key: bytes, kind: type, create: bool) -> Any:
    v = DB.get(key)
    if v is None:
        if not create:
            return None
        v = DB[key] = kind()
    elif type(v) is not kind:
        raise TypeError
    return v


def _push(a: list[Any], left: bool) -> bytes:
    try:
        d = _typed(a[1], deque, True)
    except TypeError:
        return WRONGTYPE
    if left:
        d.extendleft(a[2:])
    else:
        d.extend(a[2:])
    return b":%d\r\n" % len(d)


@arity(-3)
def lpush(a: list[Any]) -> bytes:
    return _push(a, True)


@arity(-3)
def rpush(a: list[Any]) -> bytes:
    return _push(a, False)


def _pop(a: list[Any], left: bool) -> bytes:
    try:
        d = _typed(a[1], deque, False)
    except TypeError:
        return WRONGTYPE
    if not d:
        return NIL
    v = d.popleft() if left else d.pop()
    if not d:
        del DB[a[1]]
    return b"$%d\r\n%s\r\n" % (len(v), v)


@arity(2)
def lpop(a: list[Any]) -> bytes:
    return _pop(a, True)


@arity(2)
def rpop(a: list[Any]) -> bytes:
    return _pop(a, False)


@arity(4)
def lrange(a: list[Any]) -> bytes:
    try:
        d = _typed(a[1], deque, False)
        start, stop = int(a[2]), int(a[3])
    except TypeError:
        return WRONGTYPE
    except ValueError:
        return NOT_INT
    if not d:
        return EMPTY
    n = len(d)
    if start < 0:
        start = max(0, n + start)
    if stop < 0:
        stop += n
    stop = min(stop, n - 1)
    if start > stop:
        return EMPTY
    items = list(islice(d, start, stop + 1))
    parts = [b"*%d\r\n" % len(items)]
    parts += [b"$%d\r\n%s\r\n" % (len(v), v) for v in items]
    return b"".join(parts)


@arity(-3)
def sadd(a: list[Any]) -> bytes:
    try:
        s = _typed(a[1], set, True)
    except TypeError:
        return WRONGTYPE
    before = len(s)
    s.update(a[2:])
    return b":%d\r\n" % (len(s) - before)


@arity(-2)
def spop(a: list[Any]) -> bytes:
    try:
        s = _typed(a[1], set, False)
    except TypeError:
        return WRONGTYPE
    if not s:
        return NIL
    v = s.pop()
    if not s:
        del DB[a[1]]
    return bulk(v)


@arity(-4)
def hset(a: list[Any]) -> bytes:
    if len(a) % 2:
        return b"-ERR wrong number of arguments for 'hset' command\r\n"
    try:
        h = _typed(a[1], dict, True)
    except TypeError:
        return WRONGTYPE
    before = len(h)
    it = iter(a[2:])
    h.update(zip(it, it, strict=True))
    return b":%d\r\n" % (len(h) - before)


class ZSet(dict):  # type: ignore[type-arg]
    """member -> score; a type of its own so that a hash is not a sorted set."""


@arity(-4)
def zadd(a: list[Any]) -> bytes:
    if len(a) % 2:
        return SYNTAX
    try:
        z = _typed(a[1], ZSet, True)
        pairs = [(a[i + 1], float(a[i])) for i in range(2, len(a), 2)]
    except TypeError:
        return WRONGTYPE
    except ValueError:
        return b"-ERR value is not a valid float\r\n"
    before = len(z)
    z.update(pairs)
    return b":%d\r\n" % (len(z) - before)


@arity(-2)
def zpopmin(a: list[Any]) -> bytes:
    try:
        z = _typed(a[1], ZSet, False)
    except TypeError:
        return WRONGTYPE
    if not z:
        return EMPTY
    m = min(z, key=lambda k: (z[k], k))
    score = z.pop(m)
    if not z:
        del DB[a[1]]
    return b"*2\r\n" + bulk(m) + bulk(b"%.17g" % score)


@arity(-3)
def mset(a: list[Any]) -> bytes:
    if len(a) % 2 == 0:
        return b"-ERR wrong number of arguments for 'mset' command\r\n"
    it = iter(a[1:])
    DB.update(zip(it, it, strict=True))
    return OK


# What redis-server --save "" --appendonly no answers; anything else is an empty array.
CONFIG = {b"save": b"", b"appendonly": b"no"}


@arity(-2)
def config(a: list[Any]) -> bytes:
    if a[1].lower() != b"get":
        return b"-ERR unknown subcommand\r\n"
    out = []
    for name in a[2:]:
        value = CONFIG.get(name.lower())
        if value is not None:
            out += [bulk(name.lower()), bulk(value)]
    return b"*%d\r\n" % len(out) + b"".join(out)


@arity(-1)
def flushall(a: list[Any]) -> bytes:
    DB.clear()
    return OK


@arity(1)
def dbsize(a: list[Any]) -> bytes:
    return integer(len(DB))


COMMANDS: dict[bytes, Callable[[list[Any]], bytes]] = {
    b"ping": ping,
    b"set": set_,
    b"get": get,
    b"incr": incr,
    b"lpush": lpush,
    b"rpush": rpush,
    b"lpop": lpop,
    b"rpop": rpop,
    b"lrange": lrange,
    b"sadd": sadd,
    b"spop": spop,
    b"hset": hset,
    b"zadd": zadd,
    b"zpopmin": zpopmin,
    b"mset": mset,
    b"config": config,
    b"flushall": flushall,
    b"flushdb": flushall,
    b"dbsize": dbsize,
}


class Connection(asyncio.Protocol):
    """Parse every complete request of a read, run them in order, write once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.reader = hiredis.Reader()

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        out = []
        commands = COMMANDS
        while True:
            try:
                req = reader.gets()
            except hiredis.ProtocolError:
                out.append(b"-ERR Protocol error\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            if req is False:
                break
            if type(req) is not list or not req:
                continue  # inline requests are not needed by redis-benchmark's tests
            fn = commands.get(req[0].lower())
            if fn is None:
                out.append(b"-ERR unknown command '%s'\r\n" % req[0][:128])
            else:
                out.append(fn(req))
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(Connection, host, port, reuse_address=True)
    print(f"ceiling server pid {os.getpid()} on {host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7400)
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:  # still a ceiling, just a lower one
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
