"""Compaction filters used by tests (imported by path inside worker processes)."""

from __future__ import annotations

from typing import Any


def drop_prefix(arg: str, view: Any):
    """Drop every key that starts with arg."""
    prefix = arg.encode()

    def flt(key: bytes, value: bytes | None) -> bool:
        return key.startswith(prefix)

    return flt


def drop_prefix_chunked(arg: str, view: Any):
    """drop_prefix with the optional chunk verdict: compaction asks may_drop(keys)
    first and keeps a chunk whole, on the fast path, when it says False."""
    flt = drop_prefix(arg, view)
    prefix = arg.encode()

    def may_drop(keys: list[bytes]) -> bool:
        return any(k.startswith(prefix) for k in keys)

    flt.may_drop = may_drop
    return flt


def drop_orphans(arg: str, view: Any):
    """Drop 'e|<owner>|...' element keys whose owner key 'm|<owner>' is absent from the
    DB's files: the pattern the data-model layer uses for deleted collections."""

    def flt(key: bytes, value: bytes | None) -> bool:
        if not key.startswith(b"e|"):
            return False
        owner = key.split(b"|")[1]
        return view.get(b"m|" + owner) is None

    return flt
