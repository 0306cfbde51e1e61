"""The bytes -> bytes LSM storage engine. Knows nothing of Redis."""

from __future__ import annotations

from shalekv.engine.db import DB, Snapshot
from shalekv.engine.options import Options
from shalekv.engine.write_batch import WriteBatch

__all__ = ["DB", "Options", "Snapshot", "WriteBatch"]
