"""Where each file of a DB lives. SSTables and blob files are spread over data_dirs by
a hash of their file number; the WAL, MANIFEST, CURRENT and LOCK stay in the DB dir."""

from __future__ import annotations

import os
from typing import IO

from xxhash import xxh64_intdigest


def place(number: int, ndirs: int) -> int:
    """Index of the data dir for a new table or blob file (stable hash of the number)."""
    if ndirs <= 1:
        return 0
    return xxh64_intdigest(number.to_bytes(8, "little")) % ndirs


def table_path(dirs: list[str], dir_index: int, number: int) -> str:
    return os.path.join(dirs[dir_index], "sst", f"{number:06d}.sst")


def blob_path(dirs: list[str], dir_index: int, number: int) -> str:
    return os.path.join(dirs[dir_index], "blob", f"{number:06d}.blob")


def wal_path(dbdir: str, number: int) -> str:
    return os.path.join(dbdir, "wal", f"{number:06d}.log")


def manifest_name(number: int) -> str:
    return f"MANIFEST-{number:06d}"


def abandon(f: IO[bytes], path: str) -> None:
    """Close and remove a partly written file; closing may fail on a full disk, and
    the file goes anyway."""
    try:
        f.close()
    except OSError:
        pass
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
