"""BackupEngine: incremental, verified, atomic backups of a ShaleKV DB.

RocksDB's BackupEngine is the model (with `share_files_with_checksum`): a backup is a
checkpoint of the DB (one Version, at one sequence number) copied into the backup
directory. Immutable files (tables, blob files) go to `shared/`, named
`<number>_<crc32c>_<size>.<ext>` so files of different DBs never collide and a second
backup copies only the ones not there yet; mutable files (MANIFEST, CURRENT, OPTIONS)
go to `private/<id>/`. Each backup's meta file (`meta/<id>`, shalekv.backup.meta) lists
every file with its size and CRC32C; the meta files together are the reference count
of the shared files. Layout: docs/format/backup.md; usage and guarantees:
docs/backup.md.

Atomicity: everything is written under temporary names, fsynced, and the meta file is
renamed into place last, so a backup is visible whole or not at all; leftovers of an
interrupted create (temp dirs, shared files no meta names) are removed by the next
create or purge. Thread-safety: one BackupEngine per call site; concurrent processes
are serialized by `LOCK` (exclusive for create/purge, shared for verify/restore).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from shalekv.backup import meta
from shalekv.backup.filecopy import copy_file, file_crc
from shalekv.backup.meta import BackupFile, BackupInfo
from shalekv.engine.db import DB
from shalekv.engine.version import sync_dir
from shalekv.errors import CorruptionError, InvalidArgumentError, LockError

# progress(stage, done_bytes, total_bytes). Stages: "checkpoint" (0, 0), "copy" (create),
# "commit" (just before the meta file is renamed into place), "verify", "restore".
Progress = Callable[[str, int, int], None]

META_DIR = "meta"
SHARED_DIR = "shared"
PRIVATE_DIR = "private"
TMP_DIR = "tmp"
LOCK_FILE = "LOCK"
RESTORE_STAGING = ".restore-tmp"

_ID = re.compile(r"\d{6,}\Z")
_SHARED_NAME = re.compile(r"(\d+)_([0-9a-f]{8})_(\d+)\.(sst|blob)\Z")
_SHARED_KINDS = ("sst/", "blob/")  # immutable files of a checkpoint, by directory


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


class _Meter:
    """Counts bytes of one stage and reports them (every chunk: the caller throttles)."""

    def __init__(self, progress: Progress, stage: str, total: int) -> None:
        self.progress = progress
        self.stage = stage
        self.total = total
        self.done = 0
        progress(stage, 0, total)

    def advance(self, n: int) -> None:
        self.done += n
        self.progress(self.stage, self.done, self.total)


@dataclass
class Problem:
    """One damaged or missing file found by verify."""

    path: str  # absolute path in the backup dir
    message: str
    backups: list[int] = field(default_factory=list)

    def error(self) -> CorruptionError:
        return CorruptionError(self.message, self.path)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "backups": self.backups}


@dataclass
class VerifyResult:
    backups: list[int]
    files: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "backups": self.backups,
            "files": self.files,
            "bytes": self.bytes,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass
class PurgeResult:
    deleted_backups: list[int]
    deleted_files: int
    freed_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "deleted_backups": self.deleted_backups,
            "deleted_files": self.deleted_files,
            "freed_bytes": self.freed_bytes,
        }


def shared_name(number: int, crc: int, size: int, ext: str) -> str:
    """A shared file's name: the same bytes of the same file number get the same name
    (RocksDB's shared_checksum naming), anything else another one."""
    return f"{number:06d}_{crc:08x}_{size}.{ext}"


class BackupEngine:
    """The backups kept in one directory."""

    def __init__(self, backup_dir: str | os.PathLike[str]) -> None:
        self.dir = os.path.abspath(os.fspath(backup_dir))

    # ------------------------------------------------------------ paths, lock

    def _path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def meta_path(self, backup_id: int) -> str:
        return self._path(META_DIR, f"{backup_id:06d}")

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """flock on LOCK: one create/purge at a time, none while a verify or restore
        reads. Released by the kernel if the process dies (kill -9)."""
        if exclusive:
            for sub in (META_DIR, SHARED_DIR, PRIVATE_DIR, TMP_DIR):
                os.makedirs(self._path(sub), exist_ok=True)
        try:
            fd = os.open(self._path(LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if exclusive or e.errno not in (errno.EROFS, errno.EACCES):
                raise
            yield  # a read-only backup dir: nobody can be changing it
            return
        try:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except OSError:
                raise LockError(
                    f"backup dir {self.dir} is busy: another backup create, purge, "
                    "verify or restore is running"
                ) from None
            yield
        finally:
            os.close(fd)  # releases the flock

    # ------------------------------------------------------------ reading metas

    def ids(self) -> list[int]:
        """Ids of the visible backups (those with a meta file), oldest first."""
        try:
            names = os.listdir(self._path(META_DIR))
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if _ID.match(n))

    def get(self, backup_id: int) -> BackupInfo:
        """The backup's meta file, parsed. CorruptionError names a damaged one."""
        path = self.meta_path(backup_id)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise InvalidArgumentError(f"no backup {backup_id} in {self.dir}") from None
        info = meta.decode(data, path)
        if info.id != backup_id:
            raise CorruptionError(f"meta file holds backup {info.id}", path)
        return info

    def list(self) -> list[BackupInfo]:
        """Every backup, oldest first. O(backups); reads only the meta files."""
        out = []
        for i in self.ids():
            try:
                out.append(self.get(i))
            except InvalidArgumentError:
                continue  # purged meanwhile
        return out

    def latest_id(self) -> int:
        ids = self.ids()
        if not ids:
            raise InvalidArgumentError(f"no backups in {self.dir}")
        return ids[-1]

    # ------------------------------------------------------------ create

    def create(self, source: Any, progress: Progress | None = None) -> BackupInfo:
        """Back up source: an open DB (or anything with `.engine`, as shalekv.open's
        handle or a Store), or the path of a DB directory no process has open (it is
        opened, checkpointed and closed; LockError if a server holds it).

        Writes may go on meanwhile: the backup holds exactly the writes up to the
        checkpoint's sequence number. Copies only shared files no earlier backup has.
        Returns once the backup is durable (every file and the meta file fsynced)."""
        report = progress or _no_progress
        with self._locked(exclusive=True):
            self._remove_leftovers()
            ids = self.ids()
            backup_id = ids[-1] + 1 if ids else 1
            stage = self._path(TMP_DIR, f"{backup_id:06d}")
            try:
                info = self._create(source, backup_id, stage, report)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            shutil.rmtree(stage, ignore_errors=True)
            return info

    def _create(self, source: Any, backup_id: int, stage: str, report: Progress) -> BackupInfo:
        os.makedirs(stage)
        checkpoint = os.path.join(stage, "checkpoint")
        report("checkpoint", 0, 0)
        timestamp_ms = int(time.time() * 1000)
        sequence, source_path = _checkpoint(source, checkpoint)

        names = _files_of(checkpoint)
        sizes = {n: os.path.getsize(os.path.join(checkpoint, n)) for n in names}
        meter = _Meter(report, "copy", sum(sizes.values()))
        shared_dir = self._path(SHARED_DIR)
        have = _shared_index(os.listdir(shared_dir))
        private_stage = os.path.join(stage, "private")
        files: list[BackupFile] = []
        for name in names:
            src = os.path.join(checkpoint, name)
            if name.startswith(_SHARED_KINDS):
                files.append(self._add_shared(name, src, sizes[name], have, meter))
            else:
                dst = os.path.join(private_stage, name)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                crc, size = copy_file(src, dst, meter.advance)
                rel = f"{PRIVATE_DIR}/{backup_id:06d}/{name}"
                files.append(BackupFile(name, rel, size, crc, False, True))
        sync_dir(shared_dir)
        for d, _, _ in os.walk(private_stage):
            sync_dir(d)
        private = self._path(PRIVATE_DIR, f"{backup_id:06d}")
        os.rename(private_stage, private)
        info = BackupInfo(backup_id, timestamp_ms, sequence, files, source_path)
        self._write_meta(info, report)
        return info

    def _add_shared(
        self,
        name: str,
        src: str,
        size: int,
        have: dict[tuple[int, int, str], set[str]],
        meter: _Meter,
    ) -> BackupFile:
        """Put one immutable file in shared/ unless an identical one is there."""
        number, ext = _number_ext(name)
        candidates = have.get((number, size, ext))
        advance = meter.advance
        if candidates:
            # Same number and size already in shared/: read to compare checksums (a
            # different DB, or a file rewritten under a reused number, differs).
            crc, _ = file_crc(src, meter.advance)
            existing = shared_name(number, crc, size, ext)
            if existing in candidates:
                return BackupFile(name, f"{SHARED_DIR}/{existing}", size, crc, True, False)
            advance = _ignore  # the bytes were counted by the read above
        tmp = self._path(SHARED_DIR, f"{number:06d}.{ext}.tmp")
        if os.path.exists(tmp):
            os.unlink(tmp)
        crc, copied = copy_file(src, tmp, advance)
        if copied != size:
            os.unlink(tmp)
            raise CorruptionError(f"file changed while copied ({copied} of {size} bytes)", src)
        final = shared_name(number, crc, size, ext)
        new = not os.path.exists(self._path(SHARED_DIR, final))
        if new:
            os.rename(tmp, self._path(SHARED_DIR, final))
        else:
            os.unlink(tmp)
        have.setdefault((number, size, ext), set()).add(final)
        return BackupFile(name, f"{SHARED_DIR}/{final}", size, crc, True, new)

    def _write_meta(self, info: BackupInfo, report: Progress) -> None:
        """The commit point: meta/<id>.tmp written and fsynced, then renamed."""
        path = self.meta_path(info.id)
        tmp = path + ".tmp"
        data = meta.encode(info)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        total = info.size
        report("commit", total, total)
        os.rename(tmp, path)
        sync_dir(os.path.dirname(path))

    # ------------------------------------------------------------ verify

    def check(self, backup_id: int | None = None, progress: Progress | None = None) -> VerifyResult:
        """Recompute the size and CRC32C of every file of one backup (or all); report
        every problem found. A file shared by several backups is read once."""
        report = progress or _no_progress
        with self._locked(exclusive=False):
            ids = [backup_id] if backup_id is not None else self.ids()
            result = VerifyResult(ids)
            files: dict[str, tuple[BackupFile, list[int]]] = {}
            for i in ids:
                try:
                    info = self.get(i)
                except CorruptionError as e:
                    path = e.path or self.meta_path(i)
                    result.problems.append(Problem(path, _reason(e), [i]))
                    continue
                for f in info.files:
                    files.setdefault(f.path, (f, []))[1].append(i)
            meter = _Meter(report, "verify", sum(f.size for f, _ in files.values()))
            for rel, (f, owners) in files.items():
                problem = self._check_file(rel, f, meter)
                result.files += 1
                result.bytes += f.size
                if problem is not None:
                    what = f"{problem} ({f.name} of backup {', '.join(map(str, owners))})"
                    result.problems.append(Problem(self._path(rel), what, owners))
            return result

    def _check_file(self, rel: str, f: BackupFile, meter: _Meter) -> str | None:
        path = self._path(rel)
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            meter.advance(f.size)
            return "file is missing"
        if size != f.size:
            meter.advance(f.size)
            return f"size is {size} bytes, the meta file says {f.size}"
        crc, _ = file_crc(path, meter.advance)
        if crc != f.crc32c:
            return f"CRC32C is {crc:08x}, the meta file says {f.crc32c:08x}"
        return None

    def verify(
        self, backup_id: int | None = None, progress: Progress | None = None
    ) -> VerifyResult:
        """check(), raising CorruptionError naming the first damaged file."""
        result = self.check(backup_id, progress)
        if result.problems:
            first = result.problems[0]
            more = len(result.problems) - 1
            msg = first.message + (f" (and {more} more problem(s))" if more else "")
            raise CorruptionError(msg, first.path)
        return result

    # ------------------------------------------------------------ restore

    def restore(
        self,
        backup_id: int | None,
        target: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> BackupInfo:
        """Write backup backup_id (None: the newest) as a DB directory at target, which
        must not exist or be empty. Every file's CRC32C is checked as it is copied into
        a staging dir inside target; target gets the files (CURRENT last) only once all
        of them passed, so a damaged backup leaves target as it was (CorruptionError
        naming the file). The result opens with DB.open / shalekv.open and holds exactly
        the writes up to the backup's sequence number."""
        report = progress or _no_progress
        target = os.path.abspath(os.fspath(target))
        with self._locked(exclusive=False):
            bid = self.latest_id() if backup_id is None else backup_id
            info = self.get(bid)
            _check_empty_target(target)
            os.makedirs(target, exist_ok=True)
            staging = os.path.join(target, RESTORE_STAGING)
            shutil.rmtree(staging, ignore_errors=True)
            try:
                self._restore_into(info, staging, report)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        # Move into place: directories first, CURRENT last (a DB exists once it has one).
        entries = sorted(os.listdir(staging), key=lambda n: (n == "CURRENT", n))
        for n in entries:
            os.rename(os.path.join(staging, n), os.path.join(target, n))
        os.rmdir(staging)
        sync_dir(target)
        return info

    def _restore_into(self, info: BackupInfo, staging: str, report: Progress) -> None:
        for sub in ("sst", "blob", "wal"):
            os.makedirs(os.path.join(staging, sub))
        meter = _Meter(report, "restore", info.size)
        for f in info.files:
            src = self._path(f.path)
            dst = os.path.join(staging, f.name)
            if os.path.dirname(f.name):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
            try:
                crc, size = copy_file(src, dst, meter.advance)
            except FileNotFoundError:
                raise CorruptionError(
                    f"file is missing ({f.name} of backup {info.id})", src
                ) from None
            if size != f.size or crc != f.crc32c:
                raise CorruptionError(
                    f"size {size} CRC32C {crc:08x}, the meta file says size {f.size} "
                    f"CRC32C {f.crc32c:08x} ({f.name} of backup {info.id})",
                    src,
                )
        for d, _, _ in os.walk(staging):
            sync_dir(d)

    # ------------------------------------------------------------ purge, leftovers

    def purge(self, keep: int) -> PurgeResult:
        """Delete all but the newest `keep` backups, then every shared file no
        remaining backup names (and leftovers of interrupted creates)."""
        if keep < 0:
            raise InvalidArgumentError("keep must be >= 0")
        with self._locked(exclusive=True):
            ids = self.ids()
            doomed = ids[: len(ids) - keep] if keep < len(ids) else []
            files = freed = 0
            for i in doomed:
                # The meta first: from then on the backup does not exist.
                path = self.meta_path(i)
                freed += os.path.getsize(path)
                os.unlink(path)
                files += 1
            if doomed:
                sync_dir(self._path(META_DIR))
            f2, b2 = self._remove_leftovers()
            return PurgeResult(doomed, files + f2, freed + b2)

    def _remove_leftovers(self) -> tuple[int, int]:
        """With the exclusive lock held: delete temp dirs, meta temp files, private
        dirs without a meta file and shared files no meta file names. If a meta file
        is unreadable, shared files are kept (its references are unknown)."""
        files = freed = 0
        for n in os.listdir(self._path(TMP_DIR)):
            shutil.rmtree(self._path(TMP_DIR, n), ignore_errors=True)
        ids = set(self.ids())
        for n in os.listdir(self._path(META_DIR)):
            if not _ID.match(n):
                os.unlink(self._path(META_DIR, n))
        for n in os.listdir(self._path(PRIVATE_DIR)):
            if not (_ID.match(n) and int(n) in ids):
                f, b = _tree_size(self._path(PRIVATE_DIR, n))
                shutil.rmtree(self._path(PRIVATE_DIR, n))
                files, freed = files + f, freed + b
        referenced: set[str] = set()
        for i in ids:
            try:
                info = self.get(i)
            except (CorruptionError, InvalidArgumentError):
                return files, freed
            referenced.update(f.path for f in info.files if f.shared)
        for n in os.listdir(self._path(SHARED_DIR)):
            if f"{SHARED_DIR}/{n}" not in referenced:
                p = self._path(SHARED_DIR, n)
                freed += os.path.getsize(p)
                os.unlink(p)
                files += 1
        return files, freed


# ---------------------------------------------------------------- helpers


def _ignore(n: int) -> None:
    pass


def _reason(e: CorruptionError) -> str:
    """A CorruptionError's message without its "corruption in PATH" prefix."""
    text = str(e)
    prefix = f"corruption in {e.path}" if e.path else "corruption"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    return text.lstrip(": ").strip()


def _checkpoint(source: Any, target: str) -> tuple[int, str]:
    """Checkpoint source into target; (its sequence number, the DB dir)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        if not os.path.exists(os.path.join(path, "CURRENT")):
            raise InvalidArgumentError(f"{path} is not a ShaleKV DB directory (no CURRENT)")
        # No compaction filter: whatever it would drop is simply kept a while longer.
        db = DB.open(path, create_if_missing=False, compaction_workers=0)
        try:
            return db.checkpoint(target), path
        finally:
            db.close()
    db = getattr(source, "engine", source)
    if not isinstance(db, DB):
        raise InvalidArgumentError(f"cannot back up {type(source).__name__}: not a DB")
    return db.checkpoint(target), db.path


def _files_of(root: str) -> list[str]:
    """Every file under root, as "/"-separated relative names, sorted."""
    out = []
    for d, _, names in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in names:
            out.append(n if rel == "." else f"{rel.replace(os.sep, '/')}/{n}")
    return sorted(out)


def _number_ext(name: str) -> tuple[int, str]:
    base = name.rsplit("/", 1)[-1]
    stem, _, ext = base.partition(".")
    if not stem.isdigit() or ext not in ("sst", "blob"):
        raise InvalidArgumentError(f"unexpected file {name} in a checkpoint")
    return int(stem), ext


def _shared_index(names: list[str]) -> dict[tuple[int, int, str], set[str]]:
    """shared/ by (file number, size, extension): the candidates a file may match."""
    out: dict[tuple[int, int, str], set[str]] = {}
    for n in names:
        m = _SHARED_NAME.match(n)
        if m:
            out.setdefault((int(m[1]), int(m[3]), m[4]), set()).add(n)
    return out


def _check_empty_target(target: str) -> None:
    if not os.path.exists(target):
        return
    if not os.path.isdir(target):
        raise InvalidArgumentError(f"restore target {target} is not a directory")
    left = [n for n in os.listdir(target) if n != RESTORE_STAGING]
    if left:
        raise InvalidArgumentError(
            f"restore target {target} is not empty ({len(left)} entries): "
            "restore only into a new or empty directory"
        )


def _tree_size(path: str) -> tuple[int, int]:
    files = size = 0
    for d, _, names in os.walk(path):
        for n in names:
            files += 1
            size += os.path.getsize(os.path.join(d, n))
    return files, size


__all__ = [
    "BackupEngine",
    "BackupFile",
    "BackupInfo",
    "Problem",
    "Progress",
    "PurgeResult",
    "VerifyResult",
    "shared_name",
]
