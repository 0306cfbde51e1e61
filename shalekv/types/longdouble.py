"""The x87 80-bit long double INCRBYFLOAT and HINCRBYFLOAT compute in (Redis on x86-64
uses `long double`), emulated exactly with rationals: 64-bit significand, exponents
down to -16382 (subnormals to 2**-16445), round half to even, overflow to infinity.

Values are Fractions (exact binary values) or +-math.inf. Parsing follows glibc's
strtold as Redis's string2ld calls it; formatting is `%.17Lf` (exact decimal of the
binary value, rounded half to even at 17 places), as ld2string(LD_STR_HUMAN) prints it
before trimming zeros.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

PRECISION = 64  # significand bits, the integer bit included
MIN_EXP = -16382  # of a normal value 1.f * 2**e
MAX_EXP = 16383
MAX_CHARS = 5 * 1024  # MAX_LONG_DOUBLE_CHARS: longer inputs are refused
_HEX = re.compile(
    r"([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?\Z"
)
_INF = re.compile(r"[+-]?(?:inf|infinity)\Z", re.IGNORECASE)
_DEC = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

LongDouble = Fraction | float  # float only for +-inf


def round_ld(q: Fraction) -> LongDouble:
    """The long double nearest q (ties to even); +-inf past the largest finite."""
    if q == 0:
        return Fraction(0)
    neg = q < 0
    a = -q if neg else q
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < Fraction(2) ** e:  # now 2**e <= a < 2**(e+1)
        e -= 1
    quantum = max(e, MIN_EXP) - (PRECISION - 1)
    scaled = a / Fraction(2) ** quantum
    n = round(scaled)  # Fraction.__round__ rounds half to even
    if n == 0:
        return Fraction(0)
    value = n * Fraction(2) ** quantum
    if value >= Fraction(2) ** (MAX_EXP + 1):
        return -math.inf if neg else math.inf
    return -value if neg else value


def parse(s: bytes) -> LongDouble | None:
    """strtold of the whole string as string2ld accepts it; None if refused (empty,
    spaces, trailing junk, nan, too long, or out of range as strtold's ERANGE)."""
    if not s or len(s) >= MAX_CHARS or s[:1].isspace():
        return None
    try:
        text = s.decode("ascii")
    except UnicodeDecodeError:
        return None
    if _INF.match(text):
        return -math.inf if text[0] == "-" else math.inf
    m = _HEX.match(text)
    if m is not None:
        sign, whole, frac, only_frac, exp = m.groups()
        digits = (whole or "") + (frac if whole is not None else only_frac)
        nfrac = len(frac) if whole is not None else len(only_frac)
        q = Fraction(int(digits, 16)) * Fraction(2) ** (int(exp or 0) - 4 * nfrac)
        if sign == "-":
            q = -q
    elif _DEC.match(text):
        try:
            q = Fraction(Decimal(text))
        except InvalidOperation:
            return None
    else:
        return None
    r = round_ld(q)
    if isinstance(r, float) or (r == 0 and q != 0):
        return None  # ERANGE: overflow to HUGE_VALL, or underflow to zero
    return r


def add(a: LongDouble, b: LongDouble) -> LongDouble | None:
    """a + b in long double; None if the result is infinite or NaN."""
    if isinstance(a, float) or isinstance(b, float):
        return None  # an infinite operand: inf, or nan for inf - inf
    r = round_ld(a + b)
    return None if isinstance(r, float) else r


def format_human(v: Fraction) -> bytes:
    """ld2string(LD_STR_HUMAN): `%.17Lf`, then trailing zeros and a bare point trimmed,
    and "-0" as "0"."""
    neg = v < 0
    scaled = abs(v) * 10**17
    n = round(scaled)  # glibc rounds the exact value, ties to even
    whole, frac = divmod(n, 10**17)
    # via Decimal: str() of an int refuses more than 4300 digits (a long double has
    # up to 4933 before the point)
    s = f"{Decimal(whole):f}.{frac:017d}".rstrip("0").rstrip(".")
    if neg and s != "0":
        s = "-" + s
    return s.encode()
