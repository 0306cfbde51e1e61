"""The RESP codec, sans I/O (as h11): bytes in -> argument lists out; replies -> bytes.

Requests are parsed as Redis's processMultibulkBuffer/processInlineBuffer do, so that
every malformed input gets Redis's own `Protocol error: ...` text at the same point of
the stream. The common case, a buffer of well-formed multibulk requests, is parsed by
hiredis in C (16x faster); anything else, and the incomplete tail, goes through the
exact parser (docs/decisions.md D13). Replies are encoded for RESP2 or RESP3 from the
shapes in `shalekv.commands.reply`.
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Any

import hiredis

from shalekv.commands.reply import (
    NULL_ARRAY,
    DoubleText,
    Map,
    Pairs,
    Push,
    SetReply,
    Status,
    Verbatim,
)
from shalekv.errors import ResponseError, WrongTypeError

INLINE_MAX = 64 * 1024  # PROTO_INLINE_MAX_SIZE: a header or inline line longer is an error
BIG_ARG = 32 * 1024  # PROTO_MBULK_BIG_ARG: past this, a pending bulk is gathered in chunks
UNAUTH_MULTIBULK = 10  # Redis 7.0 caps request sizes until AUTH succeeds
UNAUTH_BULK = 16384
INT_MAX = 2**31 - 1
FAST_MAX = 256 * 1024  # buffers up to this size may take the hiredis path
KEEP_READER_MAX = 1024  # reads up to this size leave their hiredis reader for the next
# hiredis allocates a list of the announced size when it reads an aggregate header (and
# a 2**31 one takes seconds to free): a buffer with an array, map, set, push or
# attribute marker and 5+ digits anywhere takes the exact parser, which caps what it
# allocates (a RESP3 `~`/`%`/`>`/`|` header nested in a request is a protocol error).
_BIG_COUNT = re.compile(rb"[*%~>|]\d{5}")
_ARRAY_HDR = [b"*%d\r\n" % n for n in range(10000)]
_BULK_HDR = [b"$%d\r\n" % n for n in range(10000)]


class ProtocolError(Exception):
    """The request stream is malformed; the text is Redis's reply (without `ERR `)."""


def _ll(s: bytes) -> int | None:
    """Redis's string2ll: an optional '-', then 0 or digits not starting with 0; int64."""
    neg = s[:1] == b"-"
    d = s[1:] if neg else s
    if not d.isdigit() or (d[0] == 48 and (len(d) > 1 or neg)):
        return None
    v = int(d)
    if neg:
        v = -v
    return v if -(2**63) <= v < 2**63 else None


class RequestParser:
    """Feed bytes, take complete requests one at a time (the caller runs each before
    asking for the next: whether a client is authenticated changes the limits)."""

    __slots__ = (
        "buf",
        "pos",
        "chunks",
        "pending",
        "need",
        "max_bulk",
        "ready",
        "fast",
        "reader",
    )

    def __init__(self, max_bulk: int = 512 * 1024 * 1024, *, fast: bool = True) -> None:
        self.buf = b""
        self.pos = 0
        self.chunks: list[bytes] = []  # a large bulk arriving: joined once it is whole
        self.pending = 0
        self.need = 0
        self.max_bulk = max_bulk
        # Requests hiredis parsed ahead, with their sizes; buf[pos:] still holds them,
        # so that pos moves one request at a time and the exact parser can take over.
        self.ready: deque[tuple[list[bytes], int]] = deque()
        self.fast = fast  # False: the exact parser only (tests compare the two)
        self.reader: hiredis.Reader | None = None  # kept while it holds nothing

    def feed(self, data: bytes) -> None:
        if self.need:
            self.chunks.append(data)
            self.pending += len(data)
            if self.pending < self.need:
                return
            data = b"".join(self.chunks)
            self.chunks = []
            self.pending = self.need = 0
        if self.pos >= len(self.buf):
            self.buf = data
        else:
            self.buf = self.buf[self.pos :] + data
        self.pos = 0

    def buffered(self) -> int:
        """Bytes received and not yet consumed (for client-query-buffer-limit)."""
        return len(self.buf) - self.pos + self.pending

    def next(self, authenticated: bool = True) -> list[bytes] | None:
        """The next complete request, None if more bytes are needed; raises
        ProtocolError. Empty requests (`*0`, blank lines) are skipped."""
        ready = self.ready
        if ready:
            if authenticated:
                args, size = ready.popleft()
                self.pos += size
                return args
            ready.clear()  # RESET dropped authentication: the limits apply again
        if self.pos >= len(self.buf):
            return None
        if authenticated and self.fast and self._parse_fast():
            args, size = ready.popleft()  # never empty: `*0`/`*-1` stop the fast path
            self.pos += size
            return args
        while True:
            buf = self.buf
            pos = self.pos
            if pos >= len(buf):
                return None
            if buf[pos] == 42:  # '*'
                r = self._multibulk(buf, pos, authenticated)
            else:
                r = self._inline(buf, pos)
            if r is None or r:
                return r

    def _parse_fast(self) -> bool:
        """Parse the complete requests in buf[pos:] with hiredis into `ready`; False
        to use the exact parser. A request is taken only if its canonical encoding is
        byte for byte what was received: then the exact parser would have read the same
        arguments, and anything else (inline requests, non-bulk frames, odd numbers,
        junk after a bulk) stops the batch right there for the exact parser to judge.
        The hiredis reader is kept for the next read when every byte fed to it was a
        request taken, and the read was short (-P 1: making a reader allocates its
        buffers, a cost as large as the parse; a kept one holds at most ~2 KiB)."""
        buf = self.buf
        pos = self.pos
        n = len(buf) - pos
        if n > FAST_MAX or buf[pos] != 42 or _BIG_COUNT.search(buf, pos):
            return False
        reader = self.reader
        if reader is None:
            reader = self.reader = hiredis.Reader()
        reader.feed(buf, pos)
        ready = self.ready
        max_bulk = self.max_bulk
        bulk_hdr = _BULK_HDR
        o = pos
        try:
            while (req := reader.gets()) is not False:
                if type(req) is not list:
                    break
                k = len(req)
                # the common shapes built in one join, the rest piece by piece; an
                # element that is not bytes (an int, a nested array ...) fails here
                if k == 3:
                    a, b, c = req
                    e = b"".join(
                        (b"*3\r\n", bulk_hdr[len(a)], a, b"\r\n", bulk_hdr[len(b)], b,
                         b"\r\n", bulk_hdr[len(c)], c, b"\r\n")
                    )  # fmt: skip
                elif k == 2:
                    a, b = req
                    e = b"".join(
                        (b"*2\r\n", bulk_hdr[len(a)], a, b"\r\n", bulk_hdr[len(b)], b, b"\r\n")
                    )
                elif k == 1:
                    a = req[0]
                    e = b"".join((b"*1\r\n", bulk_hdr[len(a)], a, b"\r\n"))
                elif k == 0:
                    break
                else:
                    parts = [_ARRAY_HDR[k]]
                    for a in req:
                        parts += (bulk_hdr[len(a)], a, b"\r\n")
                    e = b"".join(parts)
                if not buf.startswith(e, o):
                    break
                if len(e) > max_bulk and max(map(len, req)) > max_bulk:
                    break
                ready.append((req, len(e)))
                o += len(e)
            else:
                if o == len(buf) and n <= KEEP_READER_MAX:
                    return bool(ready)  # it holds no partial request: keep it
        except (hiredis.ProtocolError, TypeError, IndexError):
            pass  # the exact parser reaches the same point and says what is wrong
        self.reader = None  # it holds bytes (or a partial request) we did not take
        return bool(ready)

    def _multibulk(self, buf: bytes, pos: int, authenticated: bool) -> list[bytes] | None:
        n = len(buf)
        nl = buf.find(b"\r", pos)
        if nl < 0:
            if n - pos > INLINE_MAX:
                raise ProtocolError("Protocol error: too big mbulk count string")
            return None
        if nl > n - 2:
            return None
        count = _ll(buf[pos + 1 : nl])
        if count is None or count > INT_MAX:
            if 0 in buf[pos:nl]:
                _stalled(n - pos, "mbulk count string")
                return None
            raise ProtocolError("Protocol error: invalid multibulk length")
        if count > UNAUTH_MULTIBULK and not authenticated:
            raise ProtocolError("Protocol error: unauthenticated multibulk length")
        p = nl + 2
        if count <= 0:
            self.pos = p
            return []
        args: list[bytes] = []
        append = args.append
        find = buf.find
        for _ in range(count):
            nl = find(b"\r", p)
            if nl < 0:
                if n - p > INLINE_MAX:
                    raise ProtocolError("Protocol error: too big bulk count string")
                return None
            if nl > n - 2:
                return None
            if buf[p] != 36:  # '$'
                if 0 in buf[p:nl]:
                    _stalled(n - p, "bulk count string")
                    return None
                # %c: the raw byte (surrogateescape gives it back in error_line).
                got = buf[p : p + 1].decode("utf-8", "surrogateescape")
                raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
            blen = _ll(buf[p + 1 : nl])
            if blen is None or blen < 0 or blen > self.max_bulk:
                if 0 in buf[p:nl]:
                    _stalled(n - p, "bulk count string")
                    return None
                raise ProtocolError("Protocol error: invalid bulk length")
            if blen > UNAUTH_BULK and not authenticated:
                raise ProtocolError("Protocol error: unauthenticated bulk length")
            p = nl + 2
            end = p + blen
            if end + 2 > n:
                if blen >= BIG_ARG:  # wait for the whole bulk before parsing again
                    self.buf = buf[self.pos :]
                    self.pos = 0
                    self.chunks = [self.buf]
                    self.pending = len(self.buf)
                    self.need = end + 2 - pos
                    self.buf = b""
                return None
            append(buf[p:end])  # as Redis, the 2 bytes after a bulk are not checked
            p = end + 2
        self.pos = p
        return args

    def _inline(self, buf: bytes, pos: int) -> list[bytes] | None:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if len(buf) - pos > INLINE_MAX:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        if 0 in buf[pos:nl]:
            _stalled(len(buf) - pos, "inline request")
            return None
        end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        args = split_args(buf[pos:end])
        if args is None:
            raise ProtocolError("Protocol error: unbalanced quotes in request")
        self.pos = nl + 1
        return args


def _stalled(pending: int, what: str) -> None:
    """Redis finds a line's end with strchr, which stops at a NUL: a NUL before the
    CR (LF for inline) reads as "no line end yet", until the 64 KiB limit."""
    if pending > INLINE_MAX:
        raise ProtocolError(f"Protocol error: too big {what}")


_SPACE = frozenset(b" \n\r\t\v\f")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def split_args(line: bytes) -> list[bytes] | None:
    """Redis's sdssplitargs: whitespace-separated words, "..." with \\xHH and \\n-style
    escapes, '...' with \\' only; None for unbalanced quotes."""
    if b'"' not in line and b"'" not in line:
        return line.split()
    out: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return out
        cur = bytearray()
        inq = insq = False
        while True:
            if inq:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == 120
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None  # closing quote must be followed by a space
                    i += 1
                    break
                else:
                    cur.append(c)
            elif insq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _SPACE:
                    break
                if c == 34:
                    inq = True
                elif c == 39:
                    insq = True
                else:
                    cur.append(c)
            i += 1
        out.append(bytes(cur))


# ---------------------------------------------------------------- replies

CRLF = b"\r\n"
NULL_BULK = b"$-1\r\n"
NULL_ARRAY2 = b"*-1\r\n"
NULL3 = b"_\r\n"
OK_REPLY = b"+OK\r\n"
QUEUED = b"+QUEUED\r\n"
PONG = b"+PONG\r\n"
_BIG = 16 * 1024  # bulks longer than this are appended as they are, not copied into a header


def error_line(e: BaseException) -> bytes:
    """`-ERR text` (or `-CODE text` for errors that carry their own code), with CR/LF
    turned into spaces as Redis's addReplyErrorFormat does."""
    text = str(e)
    # WRONGTYPE is its own code (shared.wrongtypeerr), not an ERR.
    prefix = getattr(e, "err_prefix", "" if isinstance(e, WrongTypeError) else "ERR ")
    line = (prefix + text).encode("utf-8", "surrogateescape")
    if b"\r" in line or b"\n" in line:
        line = line.replace(b"\r", b" ").replace(b"\n", b" ")
    return b"-" + line + CRLF


def format_double(d: float) -> bytes:
    """addReplyDouble (Redis 7.0): "%.17g", inf as "inf"/"-inf"."""
    if math.isinf(d):
        return b"inf" if d > 0 else b"-inf"
    return b"%.17g" % d


_ONLY_BYTES = {bytes}


def _bulk_array(v: list[bytes] | tuple[bytes, ...]) -> bytes | None:
    """An array of short bulks (LRANGE, HGETALL, MGET ...) encoded with C-level steps
    only: `*n`, then `$len` CRLF, bulk, CRLF for each. None if a bulk is too long for
    the header table."""
    lens = list(map(len, v))
    if max(lens) >= len(_BULK_HDR):
        return None
    parts: list[bytes] = [CRLF] * (3 * len(v))
    parts[::3] = map(_BULK_HDR.__getitem__, lens)
    parts[1::3] = v
    return b"*%d\r\n%b" % (len(v), b"".join(parts))


def encode(out: list[bytes], v: Any, proto: int) -> None:
    """Append the RESP encoding of reply v to out."""
    t = type(v)
    if t is bytes:
        n = len(v)
        if n < _BIG:
            out.append(b"$%d\r\n%b\r\n" % (n, v))
        else:
            out += (b"$%d\r\n" % n, v, CRLF)
    elif t is int:
        out.append(b":%d\r\n" % v)
    elif t is Status:
        out.append(b"+%b\r\n" % v)
    elif v is None:
        out.append(NULL_BULK if proto == 2 else NULL3)
    elif t is list or t is tuple:
        if len(v) >= 4 and _ONLY_BYTES == set(map(type, v)):
            packed = _bulk_array(v)
            if packed is not None:
                out.append(packed)
                return
        out.append(b"*%d\r\n" % len(v))
        append = out.append
        for x in v:
            if type(x) is bytes and len(x) < _BIG:  # the usual element: no call
                append(b"$%d\r\n%b\r\n" % (len(x), x))
            else:
                encode(out, x, proto)
    elif t is float:
        if proto == 2:
            s = format_double(v)
            out.append(b"$%d\r\n%b\r\n" % (len(s), s))
        else:
            out.append(b",%b\r\n" % format_double(v))
    elif t is DoubleText:
        out.append(b",%b\r\n" % v if proto == 3 else b"$%d\r\n%b\r\n" % (len(v), v))
    elif t is Map:
        out.append(b"%%%d\r\n" % (len(v) // 2) if proto == 3 else b"*%d\r\n" % len(v))
        for x in v:
            encode(out, x, proto)
    elif t is Pairs:
        if proto == 3:
            out.append(b"*%d\r\n" % (len(v) // 2))
            for i in range(0, len(v), 2):
                out.append(b"*2\r\n")
                encode(out, v[i], proto)
                encode(out, v[i + 1], proto)
        else:
            out.append(b"*%d\r\n" % len(v))
            for x in v:
                encode(out, x, proto)
    elif t is SetReply or t is Push:
        out.append(
            (b"~%d\r\n" if t is SetReply else b">%d\r\n") % len(v)
            if proto == 3
            else b"*%d\r\n" % len(v)
        )
        for x in v:
            encode(out, x, proto)
    elif v is NULL_ARRAY:
        out.append(NULL_ARRAY2 if proto == 2 else NULL3)
    elif t is Verbatim:
        if proto == 3:
            out.append(b"=%d\r\ntxt:%b\r\n" % (len(v) + 4, v))
        else:
            out.append(b"$%d\r\n%b\r\n" % (len(v), v))
    elif t is bool:
        out.append((b"#t\r\n" if v else b"#f\r\n") if proto == 3 else b":%d\r\n" % v)
    elif isinstance(v, BaseException):
        out.append(error_line(v))
    elif isinstance(v, bytes):  # another bytes subclass
        out.append(b"$%d\r\n%b\r\n" % (len(v), v))
    elif isinstance(v, int):
        out.append(b":%d\r\n" % v)
    elif isinstance(v, dict):
        flat = Map(x for kv in v.items() for x in kv)
        encode(out, flat, proto)
    elif isinstance(v, (set, frozenset)):
        encode(out, SetReply(v), proto)
    else:
        raise TypeError(f"no RESP encoding for {t.__name__}")


def encode_one(v: Any, proto: int = 2) -> bytes:
    out: list[bytes] = []
    encode(out, v, proto)
    return b"".join(out)


__all__ = [
    "ProtocolError",
    "RequestParser",
    "ResponseError",
    "encode",
    "encode_one",
    "error_line",
    "split_args",
]
