"""Redis's glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE) on bytes, as stringmatchlen().

`*` any run, `?` one byte, `[abc]`, `[^abc]`, `[a-z]`, and `\\x` a literal x. Translated
once into a compiled bytes regex, so matching runs in C.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], object]:
    """A predicate: does a key match pattern (the whole key, as Redis)?"""
    if pattern == b"*":
        return lambda key: True
    out = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # *
            while i + 1 < n and pattern[i + 1] == 0x2A:
                i += 1
            out += b".*"
        elif c == 0x3F:  # ?
            out += b"."
        elif c == 0x5C and i + 1 < n:  # backslash escapes the next byte
            i += 1
            out += re.escape(pattern[i : i + 1])
        elif c == 0x5B:  # [
            i += 1
            negate = i < n and pattern[i] == 0x5E
            if negate:
                i += 1
            items: list[bytes] = []
            while i < n and pattern[i] != 0x5D:
                if pattern[i] == 0x5C and i + 1 < n:
                    i += 1
                    items.append(re.escape(pattern[i : i + 1]))
                elif i + 2 < n and pattern[i + 1] == 0x2D and pattern[i + 2] != 0x5D:
                    lo, hi = pattern[i], pattern[i + 2]
                    if lo > hi:  # Redis accepts reversed ranges
                        lo, hi = hi, lo
                    items.append(re.escape(bytes([lo])) + b"-" + re.escape(bytes([hi])))
                    i += 2
                else:
                    items.append(re.escape(pattern[i : i + 1]))
                i += 1
            # An unterminated class ends at the pattern's end, as in Redis.
            body = b"".join(items)
            if not body:
                out += b"[^\\x00-\\xff]" if not negate else b"[\\x00-\\xff]"
            else:
                out += b"[" + (b"^" if negate else b"") + body + b"]"
        else:
            out += re.escape(pattern[i : i + 1])
        i += 1
    rx = re.compile(bytes(out) + rb"\Z", re.DOTALL)
    return rx.match
