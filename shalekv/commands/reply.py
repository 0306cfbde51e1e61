"""Reply shapes a handler can return beyond bytes/int/float/None/list.

Handlers return the RESP2 shape (what redis-py's RESP2 callbacks expect, and what the
embedded API consumes); these markers, subclasses of bytes and list, carry what RESP3
needs on top: a map, a set, score pairs, a verbatim string, a null array.
"""

from __future__ import annotations


class Status(bytes):
    """A simple-string reply (`+OK`), as opposed to a bulk string."""


OK = Status(b"OK")


class Verbatim(bytes):
    """Text Redis sends as a RESP3 verbatim string (`=`; INFO, CLIENT LIST); bulk in RESP2."""


class DoubleText(bytes):
    """A double already formatted as addReplyDouble's text ("%.17g", "inf"): a bulk in
    RESP2, a double (`,`) in RESP3. For the replies redis-py has no RESP2 callback
    for (ZRANDMEMBER, ZDIFF, ZMPOP), so the embedded API keeps seeing bytes."""


class Map(list):  # type: ignore[type-arg]
    """A flat [k1, v1, k2, v2, ...] that RESP3 sends as a map (`%`)."""


class SetReply(list):  # type: ignore[type-arg]
    """An array RESP3 sends as a set (`~`): SMEMBERS, SINTER, ..."""


class Pairs(list):  # type: ignore[type-arg]
    """A flat [member, score, ...] that RESP3 sends as an array of 2-element arrays
    (ZRANGE ... WITHSCORES, HRANDFIELD ... WITHVALUES)."""


class Push(list):  # type: ignore[type-arg]
    """An out-of-band message (pub/sub): a RESP3 push (`>`), an array in RESP2."""


class _NullArray:
    """Redis's null array (`*-1` in RESP2, `_` in RESP3): BLPOP timeout, EXEC aborted,
    LPOP key count on a missing key. The embedded API sees None."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()
