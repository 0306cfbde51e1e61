"""The engine compaction filter that reclaims what DEL, overwrite and expiry left
behind: element and score-index keys whose collection version no longer exists, and
list elements outside their list's [head, tail) (pops, LTRIM and LREM move head and
tail without deleting the elements they give up: docs/format/encoding.md).

Runs inside engine worker processes, so it imports only `encoding`. It sees the DB's
files (a FileView), not the memtables; that is safe because a collection's metadata is
always written no later than its elements, and versions are never reused. A list's
metadata in the files may be older than its newest (in a memtable), but an index it
puts outside [head, tail) was given up by then, and can only come back by a push that
writes that element anew (a newer version of the key, which the drop cannot hide). Expired
collections are reclaimed only when their deadline is before `unflushed_since_ms`: a
later PERSIST may still sit in a memtable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shalekv.types import encoding as enc


def make_filter(arg: str, view: Any) -> Callable[[bytes, bytes | None], bool]:
    """Engine factory (Options.compaction_filter = "module:make_filter")."""
    safe_before = int(getattr(view, "unflushed_since_ms", 0))
    last: list[Any] = [None, None]  # (meta key, metadata) of the last collection seen

    def dead(key: bytes, value: bytes | None) -> bool:
        tag = key[:1]
        if tag != enc.ELEM and tag != enc.SCORE:
            return False
        db, user, version, _ = enc.parse_sub_key(key)
        mkey = enc.meta_key(db, user)
        if last[0] != mkey:
            last[0] = mkey
            last[1] = view.get(mkey)
        m = last[1]
        if m is None or m[0] == enc.STRING:
            return True
        if enc.unpack_u64(m, 10) != version:
            return True
        if m[0] == enc.LIST:  # an index given up by a pop, LTRIM or LREM
            head, tail = enc.list_bounds(m)
            if not head <= enc.unpack_u64(key, len(key) - 8) < tail:
                return True
        exp = enc.expire_of(m)
        return bool(exp) and exp < safe_before

    def may_drop(keys: list[bytes]) -> bool:
        """Would dead() drop any of these sorted keys? One check when they all belong
        to one collection version (or none is an element key), else one per key."""
        first, last = keys[0], keys[-1]
        tag = first[:1]
        if tag == last[:1]:
            if tag != enc.ELEM and tag != enc.SCORE:
                return False  # metadata or strings only: the filter keeps those
            end = enc.parse_sub_key(first)[3]
            if last[:end] == first[:end]:
                # One collection version: one verdict, but a list's indexes are sorted
                # and only those at either end can lie outside [head, tail).
                return dead(first, None) or dead(last, None)
        return any(dead(k, None) for k in keys)

    dead.may_drop = may_drop  # type: ignore[attr-defined]
    return dead


# The engine option naming this module's factory (embedded API and server install it).
COMPACTION_FILTER = "shalekv.types.compaction_filter:make_filter"
