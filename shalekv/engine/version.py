"""Versions: which files make up the DB, per level, and the MANIFEST that records
every change as an edit (as LevelDB's version_set). Byte layout: docs/format/manifest.md.

A Version is immutable once built. Readers and iterators hold one; a file is deleted
only when no live Version lists it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from xxhash import xxh64_intdigest

from shalekv.engine import bloom, filenames
from shalekv.engine.log_format import LogReader, LogWriter
from shalekv.engine.options import NUM_LEVELS
from shalekv.errors import CorruptionError

_WORD_MASK = bloom.WORD_MASK
_NO_FILTER = ((1 << 64) - 1,)  # a filter word with every bit set: always "maybe"
_MASKS = bloom.MASKS

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class FileMeta:
    number: int
    dir_index: int
    size: int
    smallest: bytes
    largest: bytes
    entries: int
    deletions: int
    min_seq: int
    max_seq: int
    blob_refs: dict[int, int] = field(default_factory=dict, hash=False, compare=False)
    # Sequences of range deletions this file is known to hold nothing older than
    # (inside their range): once every file is, the range deletion can be forgotten.
    rdel_free: tuple[int, ...] = field(default=(), hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "dir": self.dir_index,
            "size": self.size,
            "smallest": self.smallest.hex(),
            "largest": self.largest.hex(),
            "entries": self.entries,
            "deletions": self.deletions,
            "min_seq": self.min_seq,
            "max_seq": self.max_seq,
            "blob_refs": {str(k): v for k, v in self.blob_refs.items()},
            "rdel_free": list(self.rdel_free),
        }

    def with_dir(self, dir_index: int) -> FileMeta:
        """The same file, recorded in another data dir (checkpoints)."""
        return dataclasses.replace(self, dir_index=dir_index)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileMeta:
        return cls(
            number=int(d["number"]),
            dir_index=int(d["dir"]),
            size=int(d["size"]),
            smallest=bytes.fromhex(d["smallest"]),
            largest=bytes.fromhex(d["largest"]),
            entries=int(d["entries"]),
            deletions=int(d["deletions"]),
            min_seq=int(d["min_seq"]),
            max_seq=int(d["max_seq"]),
            blob_refs={int(k): int(v) for k, v in d.get("blob_refs", {}).items()},
            rdel_free=tuple(int(q) for q in d.get("rdel_free", ())),
        )


@dataclass(frozen=True)
class BlobMeta:
    number: int
    dir_index: int
    size: int
    value_bytes: int
    garbage_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "dir": self.dir_index,
            "size": self.size,
            "value_bytes": self.value_bytes,
            "garbage_bytes": self.garbage_bytes,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BlobMeta:
        return cls(
            int(d["number"]),
            int(d["dir"]),
            int(d["size"]),
            int(d["value_bytes"]),
            int(d.get("garbage_bytes", 0)),
        )


RangeDel = tuple[bytes, bytes, int]


def range_deleted(
    rdels: Iterable[RangeDel], key: bytes, seq: int, snapshot: int | None = None
) -> bool:
    """Does a range deletion visible at snapshot (None: every one) hide the version of
    key written at seq? (A deletion hides what is older than it and inside [start, end).)"""
    for start, end, q in rdels:
        if q > seq and start <= key < end and (snapshot is None or q <= snapshot):
            return True
    return False


@dataclass
class VersionEdit:
    """One MANIFEST record: a delta applied to the current Version."""

    log_number: int | None = None
    next_file: int | None = None
    last_seq: int | None = None
    added: list[tuple[int, FileMeta]] = field(default_factory=list)
    deleted: list[tuple[int, int]] = field(default_factory=list)
    added_blobs: list[BlobMeta] = field(default_factory=list)
    deleted_blobs: list[int] = field(default_factory=list)
    blob_garbage: dict[int, int] = field(default_factory=dict)
    added_range_dels: list[RangeDel] = field(default_factory=list)
    deleted_range_dels: list[RangeDel] = field(default_factory=list)
    compact_pointers: dict[int, bytes] = field(default_factory=dict)
    reset: bool = False  # a full snapshot: start from an empty version

    def encode(self) -> bytes:
        d: dict[str, Any] = {}
        if self.reset:
            d["reset"] = MANIFEST_FORMAT
        if self.log_number is not None:
            d["log_number"] = self.log_number
        if self.next_file is not None:
            d["next_file"] = self.next_file
        if self.last_seq is not None:
            d["last_seq"] = self.last_seq
        if self.added:
            d["add"] = [[lvl, f.to_json()] for lvl, f in self.added]
        if self.deleted:
            d["delete"] = [[lvl, n] for lvl, n in self.deleted]
        if self.added_blobs:
            d["add_blobs"] = [b.to_json() for b in self.added_blobs]
        if self.deleted_blobs:
            d["delete_blobs"] = list(self.deleted_blobs)
        if self.blob_garbage:
            d["blob_garbage"] = {str(k): v for k, v in self.blob_garbage.items()}
        if self.added_range_dels:
            d["add_range_dels"] = [[s.hex(), e.hex(), q] for s, e, q in self.added_range_dels]
        if self.deleted_range_dels:
            d["delete_range_dels"] = [[s.hex(), e.hex(), q] for s, e, q in self.deleted_range_dels]
        if self.compact_pointers:
            d["compact_pointers"] = {str(k): v.hex() for k, v in self.compact_pointers.items()}
        return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes | bytearray) -> VersionEdit:
        d = json.loads(data)
        if not isinstance(d, dict):
            raise ValueError("edit is not an object")
        e = cls()
        e.reset = "reset" in d
        if e.reset and d["reset"] != MANIFEST_FORMAT:
            raise ValueError(f"unsupported MANIFEST format {d['reset']}")
        e.log_number = d.get("log_number")
        e.next_file = d.get("next_file")
        e.last_seq = d.get("last_seq")
        e.added = [(int(lvl), FileMeta.from_json(f)) for lvl, f in d.get("add", [])]
        e.deleted = [(int(lvl), int(n)) for lvl, n in d.get("delete", [])]
        e.added_blobs = [BlobMeta.from_json(b) for b in d.get("add_blobs", [])]
        e.deleted_blobs = [int(n) for n in d.get("delete_blobs", [])]
        e.blob_garbage = {int(k): int(v) for k, v in d.get("blob_garbage", {}).items()}
        e.added_range_dels = [
            (bytes.fromhex(s), bytes.fromhex(x), int(q)) for s, x, q in d.get("add_range_dels", [])
        ]
        e.deleted_range_dels = [
            (bytes.fromhex(s), bytes.fromhex(x), int(q))
            for s, x, q in d.get("delete_range_dels", [])
        ]
        e.compact_pointers = {
            int(k): bytes.fromhex(v) for k, v in d.get("compact_pointers", {}).items()
        }
        return e


def overlap_depth(files: list[FileMeta]) -> int:
    """The most files whose key ranges hold one key."""
    # at equal keys a start sorts first: files that touch overlap
    edges = sorted([(f.smallest, 0) for f in files] + [(f.largest, 1) for f in files])
    depth = most = 0
    for _, end in edges:
        depth += -1 if end else 1
        most = max(most, depth)
    return most


class Version:
    """An immutable set of files. L0 newest first; L1+ sorted and non-overlapping."""

    def __init__(
        self,
        levels: list[list[FileMeta]],
        blobs: dict[int, BlobMeta],
        range_dels: list[RangeDel],
    ) -> None:
        self.levels = levels
        self.blobs = blobs
        self.range_dels = range_dels
        # Per level >= 1: largest keys, for bisect.
        self.largest_keys = [[f.largest for f in lvl] for lvl in levels]
        self._l0_runs = -1  # l0_runs(True), computed once
        # Per level, the readers get() found for its files (None: not asked yet), so a
        # point lookup does not go through the DB's table map for every file it tests.
        # A Version keeps its files alive (DB._live_versions), so their readers too.
        self.readers: list[list[Any]] = [[None] * len(lvl) for lvl in levels]
        # first byte of a key -> the (position, file) of the L0 files that may hold keys
        # starting with it, newest first (l0_for_byte): with tables partitioned by a
        # key prefix most L0 files cannot, and a lookup need not compare against them
        self._l0_by_byte: dict[int, list[tuple[int, FileMeta]]] = {}
        self._probes: dict[int, list[tuple[Any, int, Any, bytes, bytes]]] = {}  # _l0_probes
        # (level, files, largest keys, readers) of the levels >= 1 that have files: a
        # short scan (DB.head) visits only these
        self.deep = [
            (lvl, files, self.largest_keys[lvl], self.readers[lvl])
            for lvl, files in enumerate(levels)
            if lvl and files
        ]

    def l0_runs(self, partitioned: bool) -> int:
        """Level 0 as a count of sorted runs: its file count; with partitioned tables
        (each flush writes a file per key prefix) the most files overlapping at one
        key, or an eighth of the files if more (disjoint files still pile up)."""
        files = self.levels[0]
        if not partitioned or len(files) < 2:
            return len(files)
        if self._l0_runs < 0:
            self._l0_runs = max(overlap_depth(files), -(-len(files) // 8))
        return self._l0_runs

    def l0_for_byte(self, b: int) -> list[tuple[int, FileMeta]]:
        """The L0 files (position, file), newest first, whose key range may hold a key
        whose first byte is b (a necessary condition for smallest <= key <= largest:
        smallest[:1] <= key[:1] <= largest[:1])."""
        got = self._l0_by_byte.get(b)
        if got is None:
            one = bytes((b,))
            got = [
                (i, f)
                for i, f in enumerate(self.levels[0])
                if f.smallest[:1] <= one <= f.largest[:1]
            ]
            self._l0_by_byte[b] = got
        return got

    def l0_in(self, lower: bytes, upper: bytes | None) -> Iterable[tuple[int, FileMeta]]:
        """(position, file) of the L0 files, newest first, that may hold keys of
        [lower, upper): when the range's keys share a first byte, l0_for_byte's list
        (most L0 files of partitioned tables are skipped without a compare)."""
        if (
            lower
            and upper is not None
            and (upper[:1] == lower[:1] or (len(upper) == 1 and upper[0] == lower[0] + 1))
        ):
            return self.l0_for_byte(lower[0])
        return enumerate(self.levels[0])

    @classmethod
    def empty(cls) -> Version:
        return cls([[] for _ in range(NUM_LEVELS)], {}, [])

    def files(self) -> list[tuple[int, FileMeta]]:
        return [(lvl, f) for lvl, files in enumerate(self.levels) for f in files]

    def file_in_level(self, level: int, key: bytes) -> FileMeta | None:
        """The file of level >= 1 whose range holds key, if any."""
        files = self.levels[level]
        i = bisect_left(self.largest_keys[level], key)
        if i < len(files) and files[i].smallest <= key:
            return files[i]
        return None

    def _l0_probes(self, b: int, table_for: Any) -> list[tuple[Any, int, Any, bytes, bytes]]:
        """(bloom words, their count, reader, smallest, largest) of the L0 files, newest
        first, that may hold a key whose first byte is b (l0_for_byte; b -1: the empty
        key, all of them), their readers opened: what get() tests for each, unpacked in
        one step. A file without a filter gets one that always says maybe (its bounds
        are then the only test). Built on get()'s first miss in `_probes`, kept there."""
        rs = self.readers[0]
        got = []
        for i, f in self.l0_for_byte(b) if b >= 0 else enumerate(self.levels[0]):
            r = rs[i]
            if r is None:
                r = rs[i] = table_for(f)
            if r.bloom_words is None:
                got.append((_NO_FILTER, 1, r, f.smallest, f.largest))
            else:
                got.append((r.bloom_words, r.bloom_nwords, r, f.smallest, f.largest))
        self._probes[b] = got
        return got

    def get(
        self, key: bytes, snapshot: int | None, table_for: Any
    ) -> tuple[int, int, bytes] | None:
        """Newest (seq, kind, value) of key in the files, searching newest first.
        Range deletions are the caller's business. table_for(FileMeta) -> reader.
        The key is hashed once, and its bloom probe made once, for every file's filter
        (tested here inline: the hot loop of a point lookup that misses the memtables)."""
        h = xxh64_intdigest(key)
        wsel = h & _WORD_MASK  # bloom.probe(h), inline: every point read's path
        mask = _MASKS[(h >> 28) & 4095] | _MASKS[(h >> 40) & 4095] | _MASKS[(h >> 52) & 4095]
        if self.levels[0]:
            b = key[0] if key else -1
            probes = self._probes.get(b)
            if probes is None:
                probes = self._l0_probes(b, table_for)
            for words, nwords, r, lo, hi in probes:
                # The filter first: most files' filters say no, whatever the bounds
                # (a key outside them is not in the filter either); the bounds are
                # compared only when a filter says maybe.
                if words[wsel % nwords] & mask != mask:
                    r.bloom_useful += 1
                    continue
                if lo <= key <= hi:
                    e = r.find_entry(key, snapshot, h)
                    if e is not None:
                        return e
        for _, files, largest, rs in self.deep:
            i = bisect_left(largest, key)
            if i < len(files) and files[i].smallest <= key:
                r = rs[i]
                if r is None:
                    r = rs[i] = table_for(files[i])
                words = r.bloom_words
                if words is not None and words[wsel % r.bloom_nwords] & mask != mask:
                    r.bloom_useful += 1
                    continue
                e = r.find_entry(key, snapshot, h)
                if e is not None:
                    return e
        return None

    def overlapping(self, level: int, lo: bytes | None, hi: bytes | None) -> list[FileMeta]:
        """Files of level whose [smallest, largest] meets [lo, hi] (None: unbounded)."""
        return [
            f
            for f in self.levels[level]
            if (hi is None or f.smallest <= hi) and (lo is None or f.largest >= lo)
        ]

    def level_bytes(self, level: int) -> int:
        return sum(f.size for f in self.levels[level])

    def apply(self, edit: VersionEdit) -> Version:
        """A new Version: this one with edit applied."""
        if edit.reset:
            levels: list[list[FileMeta]] = [[] for _ in range(NUM_LEVELS)]
            blobs: dict[int, BlobMeta] = {}
            rdels: list[RangeDel] = []
        else:
            levels = [list(lvl) for lvl in self.levels]
            blobs = dict(self.blobs)
            rdels = list(self.range_dels)
        for lvl, num in edit.deleted:
            before = len(levels[lvl])
            levels[lvl] = [f for f in levels[lvl] if f.number != num]
            if len(levels[lvl]) == before:
                raise CorruptionError(f"edit deletes file {num} not in level {lvl}")
        for lvl, f in edit.added:
            levels[lvl].append(f)
        for b in edit.added_blobs:
            blobs[b.number] = b
        for n, g in edit.blob_garbage.items():
            old = blobs.get(n)
            if old is not None:
                blobs[n] = dataclasses.replace(old, garbage_bytes=old.garbage_bytes + g)
        for n in edit.deleted_blobs:
            blobs.pop(n, None)
        if edit.deleted_range_dels:
            gone = set(edit.deleted_range_dels)
            rdels = [r for r in rdels if r not in gone]
        rdels.extend(edit.added_range_dels)
        levels[0].sort(key=lambda f: (f.max_seq, f.number), reverse=True)
        for lvl in range(1, NUM_LEVELS):
            levels[lvl].sort(key=lambda f: f.smallest)
            files = levels[lvl]
            for fa, fb in zip(files, files[1:], strict=False):
                if fa.largest >= fb.smallest:
                    raise CorruptionError(
                        f"overlapping files {fa.number} and {fb.number} in level {lvl}"
                    )
        return Version(levels, blobs, rdels)


@dataclass
class ManifestState:
    version: Version
    log_number: int
    next_file: int
    last_seq: int
    compact_pointers: dict[int, bytes]


def replay(path: str) -> ManifestState:
    """Rebuild the state recorded in one MANIFEST file."""
    state = ManifestState(Version.empty(), 0, 2, 0, {})
    reader = LogReader(path)
    seen = False
    for offset, record in reader:
        try:
            edit = VersionEdit.decode(record)
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptionError(f"malformed MANIFEST edit ({e})", path, offset) from None
        if not seen and not edit.reset:
            raise CorruptionError("MANIFEST does not start with a snapshot", path, offset)
        seen = True
        try:
            state.version = state.version.apply(edit)
        except CorruptionError as e:
            raise CorruptionError(str(e), path, offset) from None
        if edit.log_number is not None:
            state.log_number = edit.log_number
        if edit.next_file is not None:
            state.next_file = edit.next_file
        if edit.last_seq is not None:
            state.last_seq = edit.last_seq
        state.compact_pointers.update(edit.compact_pointers)
    if not seen:
        raise CorruptionError("empty MANIFEST", path, 0)
    return state


def snapshot_edit(state: ManifestState) -> VersionEdit:
    """A reset edit that recreates state from nothing (first record of a new MANIFEST)."""
    v = state.version
    return VersionEdit(
        reset=True,
        log_number=state.log_number,
        next_file=state.next_file,
        last_seq=state.last_seq,
        added=v.files(),
        added_blobs=list(v.blobs.values()),
        added_range_dels=list(v.range_dels),
        compact_pointers=dict(state.compact_pointers),
    )


def write_new_manifest(dbdir: str, number: int, state: ManifestState) -> LogWriter:
    """Create MANIFEST-number holding a snapshot of state, fsync it, point CURRENT at it."""
    name = filenames.manifest_name(number)
    path = os.path.join(dbdir, name)
    if os.path.exists(path):
        os.unlink(path)  # left by an open that failed before CURRENT named it
    w = LogWriter(path)
    try:
        w.add_record([snapshot_edit(state).encode()])
        w.sync()
    except BaseException:
        w.close()
        os.unlink(path)
        raise
    try:
        set_current(dbdir, name)
    except BaseException:
        w.close()
        raise
    return w


def set_current(dbdir: str, name: str) -> None:
    """Atomically point CURRENT at a MANIFEST: write a temp file, fsync, rename, fsync dir."""
    tmp = os.path.join(dbdir, "CURRENT.tmp")
    with open(tmp, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(dbdir, "CURRENT"))
    sync_dir(dbdir)


def read_current(dbdir: str) -> str:
    path = os.path.join(dbdir, "CURRENT")
    with open(path) as f:
        name = f.read()
    if not name.endswith("\n") or not name.startswith("MANIFEST-"):
        raise CorruptionError("CURRENT does not name a MANIFEST", path, 0)
    return name.strip()


def sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
