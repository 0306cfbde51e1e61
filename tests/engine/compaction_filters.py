"""Compaction filters used by tests (imported by path inside worker processes)."""

from __future__ import annotations

from typing import Any


def drop_prefix(arg: str, view: Any):
    """Drop every key that starts with arg."""
    prefix = arg.encode()

    def flt(key: bytes, value: bytes | None) -> bool:
        return key.startswith(prefix)

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
