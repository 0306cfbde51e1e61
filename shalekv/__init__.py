"""ShaleKV: a persistent key-value store with an LSM engine written in Python."""

from __future__ import annotations

from shalekv.errors import CorruptionError, LockError, ShaleError

__version__ = "0.1.0"

__all__ = ["CorruptionError", "LockError", "ShaleError", "__version__"]
