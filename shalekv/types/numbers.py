"""Numbers as Redis reads and writes them: strict 64-bit integers, doubles for
scores, and INCRBYFLOAT's long-double arithmetic (types/longdouble.py)."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from shalekv.errors import NOT_FLOAT, NOT_INTEGER, ResponseError
from shalekv.types import longdouble
from shalekv.types.longdouble import LongDouble

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_INT_RX = re.compile(rb"(?:-?[1-9][0-9]{0,19}|0)\Z")
# strtod accepts these spellings of infinity (case-insensitive), Redis rejects nan
_INF = {
    b"inf": math.inf,
    b"+inf": math.inf,
    b"-inf": -math.inf,
    b"infinity": math.inf,
    b"+infinity": math.inf,
    b"-infinity": -math.inf,
}


def parse_int(b: bytes, message: str = NOT_INTEGER) -> int:
    """Redis's string2ll: optional minus, no leading zeros or spaces, within int64."""
    if _INT_RX.match(b):
        v = int(b)
        if INT64_MIN <= v <= INT64_MAX:
            return v
    raise ResponseError(message)


def is_int(b: bytes) -> bool:
    return bool(_INT_RX.match(b)) and INT64_MIN <= int(b) <= INT64_MAX


def parse_float(b: bytes, message: str = NOT_FLOAT) -> float:
    """A double as strtod reads it (inf allowed, nan and spaces rejected)."""
    low = b.lower()
    if low in _INF:
        return _INF[low]
    if not b or b[:1].isspace() or b[-1:].isspace():
        raise ResponseError(message)
    try:
        v = float(b)
    except ValueError:
        raise ResponseError(message) from None
    if math.isnan(v) or b"_" in b:
        raise ResponseError(message)
    return v


def parse_long_double(b: bytes, message: str = NOT_FLOAT) -> LongDouble:
    """INCRBYFLOAT operands: string2ld (strtold, no spaces, not nan, in range)."""
    v = longdouble.parse(b)
    if v is None:
        raise ResponseError(message)
    return v


def add_long_double(a: LongDouble, b: LongDouble) -> Fraction | None:
    """a + b as a long double; None if infinite or NaN."""
    r = longdouble.add(a, b)
    return r if isinstance(r, Fraction) else None


def format_long_double(d: Fraction) -> bytes:
    """Redis's ld2string(LD_STR_HUMAN): %.17Lf with trailing zeros trimmed."""
    return longdouble.format_human(d)


def format_int(v: int) -> bytes:
    return str(v).encode()
