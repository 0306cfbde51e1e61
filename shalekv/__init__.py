"""ShaleKV: a persistent key-value store with Redis data types on an LSM engine.

import shalekv
db = shalekv.open("data/")
db.set("k", "v"); db.get("k")  # -> b"v"
"""

from __future__ import annotations

from shalekv.errors import (
    CorruptionError,
    DataError,
    LockError,
    ResponseError,
    ShaleError,
    WatchError,
    WrongTypeError,
)

__version__ = "0.1.0"


def open(path, **options):  # type: ignore[no-untyped-def]  # noqa: A001
    """Open (creating if needed) a store at path; see shalekv.embedded.ShaleKV."""
    from shalekv.embedded import open as _open

    return _open(path, **options)


__all__ = [
    "CorruptionError",
    "DataError",
    "LockError",
    "ResponseError",
    "ShaleError",
    "WatchError",
    "WrongTypeError",
    "__version__",
    "open",
]
