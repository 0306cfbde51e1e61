"""Copying and checksumming whole files in bounded chunks, reporting bytes as they go.

Backups checksum every file they copy and restores check every file they write back,
so a copy and its CRC32C come from the same read (one pass over the data).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from shalekv.engine import checksum

CHUNK = 1 << 20  # 1 MiB: large enough that the per-chunk Python cost is noise

Advance = Callable[[int], None]  # told how many more bytes were read


def _noop(n: int) -> None:
    pass


def file_crc(path: str, advance: Advance = _noop) -> tuple[int, int]:
    """(masked CRC32C of the file's bytes, its size), reading it once."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    crc = 0
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            crc = checksum.extend(crc, view[:n])
            size += n
            advance(n)
    return checksum.mask(crc), size


def copy_file(src: str, dst: str, advance: Advance = _noop) -> tuple[int, int]:
    """Copy src to a new file dst (which must not exist) and fsync it; returns the
    (masked CRC32C, size) of the bytes written, computed from the same reads."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    crc = 0
    size = 0
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with open(src, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                chunk = view[:n]
                crc = checksum.extend(crc, chunk)
                while chunk:
                    written = os.write(fd, chunk)
                    chunk = chunk[written:]
                size += n
                advance(n)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(dst)
        except FileNotFoundError:
            pass
        raise
    os.close(fd)
    return checksum.mask(crc), size
