"""Block codecs. The type byte stored with each block never changes meaning."""

from __future__ import annotations

import threading

import cramjam
import zstandard

from shalekv.errors import CorruptionError

NONE, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3
CODES = {"none": NONE, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
NAMES = {v: k for k, v in CODES.items()}

_local = threading.local()


def _zstd_c() -> zstandard.ZstdCompressor:
    c = getattr(_local, "zc", None)
    if c is None:
        c = _local.zc = zstandard.ZstdCompressor(level=3)
    return c


def _zstd_d() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "zd", None)
    if d is None:
        d = _local.zd = zstandard.ZstdDecompressor()
    return d


def compress(codec: int, data: bytes) -> tuple[int, bytes]:
    """Compress data; fall back to NONE when it saves less than 1/8 (as LevelDB)."""
    if codec == NONE:
        return NONE, data
    if codec == SNAPPY:
        out = bytes(cramjam.snappy.compress_raw(data))
    elif codec == LZ4:
        out = bytes(cramjam.lz4.compress_block(data))
    elif codec == ZSTD:
        out = _zstd_c().compress(data)
    else:
        raise ValueError(f"unknown codec {codec}")
    if len(out) >= len(data) - (len(data) >> 3):
        return NONE, data
    return codec, out


def decompress(codec: int, data: bytes | memoryview, path: str = "?", offset: int = 0) -> bytes:
    """Inverse of compress; a codec error is reported as corruption of path@offset."""
    try:
        if codec == NONE:
            return bytes(data)
        if codec == SNAPPY:
            return bytes(cramjam.snappy.decompress_raw(data))
        if codec == LZ4:
            return bytes(cramjam.lz4.decompress_block(data))
        if codec == ZSTD:
            return _zstd_d().decompress(data)
    except (cramjam.DecompressionError, zstandard.ZstdError, ValueError) as e:
        raise CorruptionError(f"cannot decompress block ({e})", path, offset) from None
    raise CorruptionError(f"unknown compression type {codec}", path, offset)
