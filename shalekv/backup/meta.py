"""The backup meta file (`meta/NNNNNN`): what one backup is made of.

One meta file per backup, as RocksDB's BackupEngine keeps `meta/<id>`: the backup's id,
time, sequence number and every file with its size and CRC32C. A backup exists exactly
when its meta file does (it is renamed into place last), and the set of shared files
the meta files name is the reference count: no separate counter that could drift.
Byte layout and a worked example: docs/format/backup.md.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from shalekv.engine import checksum
from shalekv.errors import CorruptionError

META_MAGIC = 0x53484C4B56424B4D  # "SHLKVBKM"
META_FORMAT_VERSION = 1
_HEADER = struct.Struct("<QII")  # magic, format_version, body_length
_CRC = struct.Struct("<I")
MAX_META_BYTES = 1 << 30  # a sanity bound on body_length, far above any real backup


@dataclass(frozen=True)
class BackupFile:
    """One file of a backup: `name` in the restored DB dir, `path` in the backup dir."""

    name: str  # e.g. "sst/000012.sst", "MANIFEST-000015"
    path: str  # e.g. "shared/000012_1a2b3c4d_4096.sst", "private/000001/CURRENT"
    size: int
    crc32c: int  # masked CRC32C of the whole file (docs/format/README.md)
    shared: bool  # immutable (table, blob file), kept once in shared/ for every backup
    new: bool  # this backup wrote it (false: an earlier backup already had it)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "size": self.size,
            "crc32c": f"{self.crc32c:08x}",
            "shared": self.shared,
            "new": self.new,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BackupFile:
        return cls(
            str(d["name"]),
            str(d["path"]),
            int(d["size"]),
            int(d["crc32c"], 16),
            bool(d["shared"]),
            bool(d["new"]),
        )


@dataclass(frozen=True)
class BackupInfo:
    """A backup as its meta file describes it."""

    id: int
    timestamp_ms: int  # wall-clock time the checkpoint was taken
    sequence: int  # the checkpoint's sequence: every write up to it, none after
    files: list[BackupFile] = field(default_factory=list)
    source: str = ""  # the DB directory backed up (informational)

    @property
    def size(self) -> int:
        """Bytes a restore writes (every file of the backup)."""
        return sum(f.size for f in self.files)

    @property
    def new_bytes(self) -> int:
        """Bytes this backup copied: its new shared files and its private files."""
        return sum(f.size for f in self.files if f.new)

    def to_json(self, files: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "timestamp_ms": self.timestamp_ms,
            "sequence": self.sequence,
            "size": self.size,
            "new_bytes": self.new_bytes,
            "num_files": len(self.files),
            "source": self.source,
        }
        if files:
            d["files"] = [f.to_json() for f in self.files]
        return d


def encode(info: BackupInfo) -> bytes:
    """The meta file's bytes: header, JSON body, masked CRC32C of everything before it."""
    body = json.dumps(
        {
            "id": info.id,
            "timestamp_ms": info.timestamp_ms,
            "sequence": info.sequence,
            "source": info.source,
            "files": [f.to_json() for f in info.files],
        },
        separators=(",", ":"),
    ).encode()
    head = _HEADER.pack(META_MAGIC, META_FORMAT_VERSION, len(body)) + body
    return head + _CRC.pack(checksum.masked(head))


def decode(data: bytes, path: str) -> BackupInfo:
    """Parse a meta file; any damage is CorruptionError naming path."""
    if len(data) < _HEADER.size + _CRC.size:
        raise CorruptionError(f"meta file truncated ({len(data)} bytes)", path)
    magic, version, length = _HEADER.unpack_from(data)
    if magic != META_MAGIC:
        raise CorruptionError(f"bad magic {magic:#x} (not a backup meta file)", path, 0)
    end = _HEADER.size + length
    if length > MAX_META_BYTES or len(data) != end + _CRC.size:
        raise CorruptionError(
            f"meta file is {len(data)} bytes, its header says {end + _CRC.size}", path, 12
        )
    (stored,) = _CRC.unpack_from(data, end)
    if stored != checksum.masked(memoryview(data)[:end]):
        raise CorruptionError("meta file checksum mismatch", path, end)
    if version != META_FORMAT_VERSION:
        raise CorruptionError(f"unsupported meta format version {version}", path, 8)
    try:
        d = json.loads(data[_HEADER.size : end])
        return BackupInfo(
            int(d["id"]),
            int(d["timestamp_ms"]),
            int(d["sequence"]),
            [BackupFile.from_json(f) for f in d["files"]],
            str(d.get("source", "")),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptionError(f"malformed meta body ({e})", path, _HEADER.size) from None


__all__ = ["META_FORMAT_VERSION", "BackupFile", "BackupInfo", "decode", "encode"]
