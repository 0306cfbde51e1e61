"""Blob files: large values stored apart from the LSM tree (key-value separation,
as WiscKey and RocksDB's BlobDB). Byte layout: docs/format/blob.md.

  header: magic u64 | version u32
  record: masked CRC32C u32 (of key and value) | key_len u32 | value_len u64 | key | value
  footer: record count u64 | magic u64

An SSTable entry of kind BLOB_INDEX holds a pointer: file number u64, record
offset u64, value length u64.
"""

from __future__ import annotations

import os
import struct

from shalekv.engine import checksum, filenames
from shalekv.errors import ClosedError, CorruptionError

MAGIC = 0x53484C4B56424C42  # "SHLKVBLB"
FORMAT_VERSION = 1
HEADER = struct.Struct("<QI")
RECORD = struct.Struct("<IIQ")
FOOTER = struct.Struct("<QQ")
POINTER = struct.Struct("<QQQ")


def encode_pointer(number: int, offset: int, size: int) -> bytes:
    return POINTER.pack(number, offset, size)


def decode_pointer(data: bytes) -> tuple[int, int, int]:
    return POINTER.unpack(data)


class BlobWriter:
    """Appends records to a new blob file (worker side)."""

    def __init__(self, path: str, number: int) -> None:
        self.path = path
        self.number = number
        self.f = open(path, "xb")
        self.f.write(HEADER.pack(MAGIC, FORMAT_VERSION))
        self.offset = HEADER.size
        self.count = 0
        self.value_bytes = 0

    def add(self, key: bytes, value: bytes | memoryview) -> bytes:
        """Store one value; return the pointer to put in the LSM."""
        crc = checksum.masked(value, checksum.value(key))
        off = self.offset
        self.f.write(RECORD.pack(crc, len(key), len(value)))
        self.f.write(key)
        self.f.write(value)
        self.offset += RECORD.size + len(key) + len(value)
        self.count += 1
        self.value_bytes += len(value)
        return POINTER.pack(self.number, off, len(value))

    def finish(self) -> int:
        """Write the footer, fsync, close; return the file size."""
        self.f.write(FOOTER.pack(self.count, MAGIC))
        self.offset += FOOTER.size
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        return self.offset

    def abandon(self) -> None:
        """Remove the partial file."""
        filenames.abandon(self.f, self.path)


class BlobReader:
    """Reads values by pointer with pread: one copy of the value, checksum verified."""

    def __init__(self, path: str, number: int) -> None:
        self.path = path
        self.number = number
        self.fd = os.open(path, os.O_RDONLY)
        head = os.pread(self.fd, HEADER.size, 0)
        if len(head) != HEADER.size or HEADER.unpack(head)[0] != MAGIC:
            os.close(self.fd)
            raise CorruptionError("bad blob file header", path, 0)
        self.size = os.fstat(self.fd).st_size

    def read(self, offset: int, size: int) -> tuple[bytes, bytes]:
        """(key, value) of the record at offset; ClosedError once closed (DB.close)."""
        if self.fd < 0:
            raise ClosedError("DB is closed")
        head = os.pread(self.fd, RECORD.size, offset)
        if len(head) != RECORD.size:
            raise CorruptionError("blob record header past end of file", self.path, offset)
        crc, klen, vlen = RECORD.unpack(head)
        if klen > self.size - offset:
            raise CorruptionError(
                f"blob record key length {klen} past end of file", self.path, offset
            )
        if vlen != size:
            raise CorruptionError(
                f"blob record length {vlen} != pointer length {size}", self.path, offset
            )
        key = os.pread(self.fd, klen, offset + RECORD.size)
        value = _pread_exact(self.fd, vlen, offset + RECORD.size + klen)
        if len(key) != klen or len(value) != vlen:
            raise CorruptionError("blob record past end of file", self.path, offset)
        if checksum.masked(value, checksum.value(key)) != crc:
            raise CorruptionError("blob record checksum mismatch", self.path, offset)
        return key, value

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _pread_exact(fd: int, n: int, offset: int) -> bytes:
    data = os.pread(fd, n, offset)
    if len(data) == n or not data:
        return data
    # Large reads may come back short; fill a single buffer without extra copies.
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.preadv(fd, [view[got:]], offset + got)
        if k == 0:
            break
        got += k
    return bytes(buf) if got == n else bytes(buf[:got])


def scan(path: str) -> tuple[int, int]:
    """Check every record of a blob file; return (records, value bytes). For verify."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size + FOOTER.size or HEADER.unpack_from(data, 0)[0] != MAGIC:
        raise CorruptionError("bad blob file header", path, 0)
    count, magic = FOOTER.unpack_from(data, len(data) - FOOTER.size)
    if magic != MAGIC:
        raise CorruptionError("bad blob file footer", path, len(data) - FOOTER.size)
    pos = HEADER.size
    end = len(data) - FOOTER.size
    n = vbytes = 0
    mv = memoryview(data)
    while pos < end:
        if pos + RECORD.size > end:
            raise CorruptionError("truncated blob record", path, pos)
        crc, klen, vlen = RECORD.unpack_from(data, pos)
        kstart = pos + RECORD.size
        vstart = kstart + klen
        if vstart + vlen > end:
            raise CorruptionError("blob record past end of data", path, pos)
        if checksum.masked(mv[vstart : vstart + vlen], checksum.value(mv[kstart:vstart])) != crc:
            raise CorruptionError("blob record checksum mismatch", path, pos)
        n += 1
        vbytes += vlen
        pos = vstart + vlen
    if n != count:
        raise CorruptionError(f"blob footer says {count} records, found {n}", path, end)
    return n, vbytes
