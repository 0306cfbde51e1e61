"""The key encoding: order-preserving numbers, prefixes, glob patterns."""

from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from shalekv.types import encoding as enc
from shalekv.types.glob import compile_glob

FLOATS = st.floats(allow_nan=False)


@given(FLOATS, FLOATS)
def test_score_bytes_sort_as_the_numbers(a: float, b: float) -> None:
    ea, eb = enc.encode_score(a), enc.encode_score(b)
    assert (ea < eb) == (a < b)
    assert (ea == eb) == (a == b)  # -0.0 == 0.0 as in Redis
    assert enc.decode_score(ea) == a


def test_score_edges() -> None:
    order = [-math.inf, -1e308, -1.0, -5e-324, 0.0, 5e-324, 1.0, 1e308, math.inf]
    assert sorted(order, key=enc.encode_score) == order
    assert enc.encode_score(-0.0) == enc.encode_score(0.0)


@given(st.binary(max_size=8), st.binary(max_size=8), st.integers(0, 2**64 - 1))
def test_element_prefixes_never_collide(k1: bytes, k2: bytes, version: int) -> None:
    p1, p2 = enc.elem_prefix(0, k1, version), enc.elem_prefix(0, k2, version)
    if k1 != k2:
        assert not p1.startswith(p2) and not p2.startswith(p1)
    db, key, v, off = enc.parse_sub_key(p1 + b"field")
    assert (db, key, v, p1[off:] + b"field") == (0, k1, version, b"field")


@given(st.binary(min_size=1, max_size=6).filter(lambda b: b != b"\xff" * len(b)), st.binary())
def test_prefix_end_bounds_the_prefix(prefix: bytes, rest: bytes) -> None:
    assert prefix + rest < enc.prefix_end(prefix)
    assert enc.prefix_end(prefix) > prefix


def test_metadata_round_trip() -> None:
    m = enc.encode_list(123, 7, 2, enc.LIST_MID - 1, enc.LIST_MID + 1)
    assert enc.LISTMETA.unpack(m) == (enc.LIST, 1, 123, 7, 2, enc.LIST_MID - 1, enc.LIST_MID + 1)
    assert enc.expire_of(enc.with_expire(m, 999)) == 999
    s = enc.encode_string(b"value", 5)
    assert s[enc.STRING_HEADER :] == b"value" and enc.expire_of(s) == 5


def _redis_glob_reference(pattern: bytes, key: bytes) -> bool:
    """A slow, direct transcription of Redis's stringmatchlen for the cases tested."""
    rx = re.escape(pattern).replace(rb"\*", rb".*").replace(rb"\?", rb".")
    return re.fullmatch(rx, key, re.DOTALL) is not None


@given(st.text(alphabet="ab*?", max_size=6), st.text(alphabet="ab", max_size=6))
def test_glob_star_and_question(pattern: str, key: str) -> None:
    p, k = pattern.encode(), key.encode()
    assert bool(compile_glob(p)(k)) == _redis_glob_reference(p, k)


def test_glob_classes_and_escapes() -> None:
    m = compile_glob
    assert m(b"h[ae]llo")(b"hello") and not m(b"h[ae]llo")(b"hillo")
    assert m(b"h[^e]llo")(b"hallo") and not m(b"h[^e]llo")(b"hello")
    assert m(b"h[a-b]llo")(b"hbllo") and not m(b"h[a-b]llo")(b"hcllo")
    assert m(b"h[b-a]llo")(b"hallo")  # reversed range, as Redis
    assert m(b"a\\*b")(b"a*b") and not m(b"a\\*b")(b"axb")
    assert m(b"*")(b"\x00\xff\n") and m(b"a*")(b"a\nb")


@given(st.integers(0, 65535), st.binary(max_size=40), st.integers(0, 2**64 - 1))
def test_score_prefix_is_elem_prefix_with_its_class(db: int, key: bytes, version: int) -> None:
    """zsets._Z derives a set's score prefix from its element prefix."""
    ep = enc.elem_prefix(db, key, version)
    assert enc.score_prefix(db, key, version) == enc.SCORE + ep[1:]
    assert ep[:1] == enc.ELEM
