"""Small DBs that hold every kind of file, and byte flips to damage them (shared by
the inspect, verify and CLI tests)."""

from __future__ import annotations

# Tiny sizes: a few thousand keys give tables on two levels and blob files.
SMALL = {
    "compaction_workers": 0,
    "memtable_size": 32 << 10,
    "target_file_size": 16 << 10,
    "level_base_size": 48 << 10,
    "l0_compaction_trigger": 2,
    "blob_threshold": 1000,
}


def k(i: int) -> bytes:
    return b"key%06d" % i


def flip(path: str, offset: int) -> None:
    """Invert every bit of the byte at offset."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
