"""CRC32C checksums, masked as in LevelDB so a CRC of data that embeds CRCs stays strong.

Uses the `crc32c` package (hardware CRC32C where the CPU has it); unlike
google-crc32c it accepts memoryviews, so large values are checksummed without a copy.
"""

from __future__ import annotations

from crc32c import crc32c as _crc32c

MASK_DELTA = 0xA282EAD8


def value(data: bytes | memoryview) -> int:
    """Plain CRC32C of data."""
    return _crc32c(data)


def extend(crc: int, data: bytes | memoryview) -> int:
    """CRC32C of (whatever gave crc) followed by data."""
    return _crc32c(data, crc)


def mask(crc: int) -> int:
    """Rotate right 15 bits and add a constant (LevelDB's crc32c::Mask)."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def masked(data: bytes | memoryview, initial: int = 0) -> int:
    """Masked CRC32C of data, continuing from initial."""
    crc = _crc32c(data, initial)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def unmask(masked_crc: int) -> int:
    """Inverse of mask(), for tools that compare raw CRCs."""
    rot = (masked_crc - MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
