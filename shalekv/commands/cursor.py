"""Arguments the collection commands share: *SCAN cursors and options (SCAN, HSCAN,
SSCAN, ZSCAN) and the count of the random-member commands."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from shalekv.commands.registry import Context, syntax
from shalekv.errors import INVALID_CURSOR, LONG_RANGE, ResponseError
from shalekv.types.glob import compile_glob
from shalekv.types.numbers import INT64_MAX, parse_int

_CURSOR_RX = re.compile(rb"[+-]?[0-9]+\Z")
_ULONG = 1 << 64


def scan_cursor(b: bytes) -> int:
    """A *SCAN cursor as Redis's parseScanCursorOrReply (strtoul: sign allowed and
    wrapped, no leading space, the empty string is 0)."""
    if not b:
        return 0
    if not _CURSOR_RX.match(b):
        raise ResponseError(INVALID_CURSOR)
    v = int(b)
    if abs(v) >= _ULONG:
        raise ResponseError(INVALID_CURSOR)
    return v % _ULONG


def scan_options(a: list[bytes], i: int) -> tuple[int, Callable[[bytes], object] | None]:
    """COUNT and MATCH of HSCAN/SSCAN from a[i:] (as Redis's scanGenericCommand)."""
    count = 10
    match = None
    while i < len(a):
        o = a[i].upper()
        if i + 1 >= len(a):
            raise syntax()
        if o == b"COUNT":
            count = parse_int(a[i + 1])
            if count < 1:
                raise syntax()
        elif o == b"MATCH":
            match = None if a[i + 1] == b"*" else compile_glob(a[i + 1])
        else:
            raise syntax()
        i += 2
    return count, match


def scan_start(ctx: Context, cursor: int) -> bytes | None:
    """The element a cursor resumes after (None: from the start; unknown cursors
    restart, as keys.py's SCAN)."""
    return ctx.store.scan_cursors.get(cursor) if cursor else None


def scan_reply(ctx: Context, last: bytes | None, items: list[bytes]) -> list[Any]:
    nxt = 0 if last is None else ctx.store.save_cursor(last)
    return [str(nxt).encode(), items]


def random_count(b: bytes) -> int:
    """SRANDMEMBER/HRANDFIELD count: an integer in [-LONG_MAX, LONG_MAX]."""
    v = parse_int(b)
    if v < -INT64_MAX:
        raise ResponseError(LONG_RANGE)
    return v
