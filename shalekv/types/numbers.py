"""Numbers as Redis reads and writes them: strict 64-bit integers, doubles for
scores, and INCRBYFLOAT's long-double arithmetic (emulated with 19-digit decimals)."""

from __future__ import annotations

import math
import re
from decimal import Context, Decimal, InvalidOperation

from shalekv.errors import NOT_FLOAT, NOT_INTEGER, ResponseError

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
_LD = Context(prec=19)  # an x87 long double carries about 19 significant digits


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


def parse_long_double(b: bytes, message: str = NOT_FLOAT) -> Decimal:
    """INCRBYFLOAT operands: strtold, no spaces, not nan."""
    if not b or b[:1].isspace() or b[-1:].isspace() or b"_" in b:
        raise ResponseError(message)
    try:
        d = Decimal(b.decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        raise ResponseError(message) from None
    if d.is_nan():
        raise ResponseError(message)
    return d


def add_long_double(a: Decimal, b: Decimal) -> Decimal | None:
    """a + b rounded as a long double would; None if infinite or NaN."""
    if a.is_infinite() or b.is_infinite():
        return None
    r = _LD.add(a, b)
    if r.is_infinite() or r.is_nan() or abs(r) > Decimal("1.18e4932"):
        return None
    return r


def format_long_double(d: Decimal) -> bytes:
    """Redis's ld2string(LD_STR_HUMAN): %.17Lf with trailing zeros trimmed."""
    s = f"{d:.17f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s == "-0":
        s = "0"
    return s.encode()


def format_int(v: int) -> bytes:
    return str(v).encode()
