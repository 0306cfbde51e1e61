"""DB: the bytes -> bytes LSM store (DESIGN §3).

Write path: WriteBatch -> one WAL record -> memtable. Full memtables become immutable,
a new WAL segment starts, and a worker process turns the sealed segment into a
level-0 table. Compactions run in workers too; the main process installs every
result with one MANIFEST edit. Reads go memtable -> immutable memtables -> L0 newest
first -> one file per deeper level, bloom filters skipping files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
import threading
import time
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Generator, Iterator
from itertools import chain, compress, islice, repeat
from operator import eq, itemgetter, ne
from typing import Any

from shalekv.engine import blob, filenames, jobs, workers
from shalekv.engine.block_cache import BlockCache
from shalekv.engine.compaction_picker import (
    Compaction,
    blob_gc_candidates,
    bottom_level,
    l0_runs,
    pending_compaction_bytes,
    pick,
    with_next_level,
)
from shalekv.engine.log_format import LogReader, LogWriter
from shalekv.engine.memtable import ENTRY_OVERHEAD, Entry, MemTable
from shalekv.engine.merge import merge_chunks
from shalekv.engine.options import NUM_LEVELS, Options
from shalekv.engine.sstable import SSTableReader
from shalekv.engine.version import (
    BlobMeta,
    FileMeta,
    ManifestState,
    Version,
    VersionEdit,
    range_deleted,
    read_current,
    replay,
    sync_dir,
    write_new_manifest,
)
from shalekv.engine.write_batch import (
    BLOB_INDEX,
    DELETE,
    JOIN_VALUE_LIMIT,
    PUT,
    SINGLE_PUT,
    WriteBatch,
    decode,
    encode_items,
    encode_put,
    header,
)
from shalekv.errors import (
    BackgroundError,
    ClosedError,
    CorruptionError,
    InvalidArgumentError,
    LockError,
    ShaleError,
)

DB_FORMAT_VERSION = 1
MANIFEST_ROLL_BYTES = 16 << 20  # rewrite the MANIFEST as one snapshot past this size
_CHUNK = 256  # memtable keys fetched per step of an iterator
MIN_ALLOWED_SEEKS = 100  # seeks an L0 file gets at least before a seek compaction
SEEK_COMPACTION_IDLE = 1.0  # seconds without a write before a seek compaction starts
FLUSH_PARTITIONS = 8  # tables a partitioned flush may write (more prefixes share the last)


class _Writer:
    __slots__ = ("batch", "done", "error", "wake")

    def __init__(self, batch: WriteBatch) -> None:
        self.batch = batch
        self.done = False
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()  # held until the leader hands it over


class DB:
    """An open database directory. Thread-safe: any number of threads may read and
    write; writes are serialized, readers never block writers."""

    # ------------------------------------------------------------------ open/close

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], options: Options | None = None, **kwargs: Any
    ) -> DB:
        """Open (creating if missing) the DB at path. Recovers from the WAL."""
        return cls(os.fspath(path), Options.from_kwargs(options, **kwargs))

    def __init__(self, path: str, options: Options) -> None:
        self.path = path
        self.options = options
        self._closed = False
        self._lock_fd = -1
        os.makedirs(path, exist_ok=True)
        self._lock_fd = self._acquire_lock()
        try:
            self._open()
        except BaseException:
            self._release_lock()
            raise

    def _acquire_lock(self) -> int:
        fd = os.open(os.path.join(self.path, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise LockError(
                f"{self.path} is already open (LOCK held by another process or DB object): {e.strerror}"
            ) from None
        return fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _open(self) -> None:
        opts = self.options
        self.dirs = self._resolve_dirs()
        os.makedirs(os.path.join(self.path, "wal"), exist_ok=True)
        for d in self.dirs:
            os.makedirs(os.path.join(d, "sst"), exist_ok=True)
            os.makedirs(os.path.join(d, "blob"), exist_ok=True)
        self.cache = BlockCache(opts.block_cache_size, opts.compressed_cache_size)
        self._tables: dict[int, SSTableReader] = {}
        self._blob_readers: dict[int, blob.BlobReader] = {}
        self._reader_lock = threading.Lock()
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)
        self._writers: list[_Writer] = []
        self._wal_busy = False  # a group commit leader is writing without the mutex
        self._flush_rate = 0.0  # memtable bytes/s the last flush drained
        self._write_debt = 0.0  # seconds of delay owed by writes while flushes lag
        self._snapshots: dict[int, int] = {}  # seq -> count
        self._live_versions: weakref.WeakSet[Version] = weakref.WeakSet()
        self._pending_deletes: set[tuple[str, int]] = set()
        self._bg_error: BaseException | None = None
        self._cleaned: set[int] = set()
        self._seeks_left: dict[int, int] = {}  # L0 file number -> seeks until compaction
        self._seek_file: FileMeta | None = None  # an L0 file out of seeks
        self._seek_mark: tuple[int, float] | None = None  # (last_seq, time) idle check
        self._compaction_lock = threading.Lock()
        self._group_commit = opts.fsync == "always"
        self._wal_deferred = False
        self._wal_seq = 0  # deferred mode: last sequence write_wal() made durable
        self._memtable_limit = opts.memtable_size
        self._deletion_trigger = opts.memtable_deletion_trigger  # below it, never "dense"
        self._write_gate = False  # True: every write must go through _prepare_write
        self._user_bytes = 0
        self._wal_bytes_sealed = 0
        self._stats: dict[str, float] = {
            "flush_bytes_written": 0,
            "compaction_bytes_written": 0,
            "compaction_bytes_read": 0,
            "flushes": 0,
            "compactions": 0,
            "trivial_moves": 0,
            "seek_compactions": 0,
            "stall_count": 0,
            "stall_seconds": 0.0,
            "compaction_rate_limited_seconds": 0.0,
        }

        if not os.path.exists(os.path.join(self.path, "CURRENT")):
            if not opts.create_if_missing:
                raise InvalidArgumentError(f"{self.path} does not exist (create_if_missing is off)")
            self._create()
        manifest_name = read_current(self.path)
        # The MANIFEST and the WAL are always checked: skipping a bad record there
        # would silently drop acknowledged writes or files (paranoid_checks only
        # governs per-read block checksums).
        state = replay(os.path.join(self.path, manifest_name))
        self._next_file = state.next_file
        self._pointers = state.compact_pointers
        last_seq = state.last_seq
        # Recover WAL segments not yet flushed, oldest first; each becomes an
        # immutable memtable that the flush thread turns into a table.
        imms: list[MemTable] = []
        for number in sorted(self._wal_numbers()):
            if number < state.log_number:
                continue
            mem = self._recover_wal(number)
            if len(mem) or mem.range_dels:
                mem.freeze()
                imms.append(mem)
                last_seq = max(last_seq, mem.last_seq)
            self._next_file = max(self._next_file, number + 1)
        self._last_seq = last_seq
        self._flushed_seq = state.last_seq
        for _lvl, f in state.version.files():
            self._next_file = max(self._next_file, f.number + 1)
        for b in state.version.blobs:
            self._next_file = max(self._next_file, b + 1)
        # A fresh MANIFEST each open keeps it short (the old one is then deleted).
        self._manifest_number = self._new_number()
        wal_number = self._new_number()
        self._log_number = imms[0].wal_number if imms else wal_number
        mstate = ManifestState(
            state.version, self._log_number, self._next_file, self._last_seq, self._pointers
        )
        self._manifest = write_new_manifest(self.path, self._manifest_number, mstate)
        self._wal = LogWriter(filenames.wal_path(self.path, wal_number))
        sync_dir(os.path.join(self.path, "wal"))
        mem = MemTable(wal_number)
        imms.reverse()  # newest first for reads
        self._set_sv(mem, tuple(imms), state.version)
        self._remove_stray_files(state.version, {m.wal_number for m in imms} | {wal_number})

        self._closing = False
        self._stop_sync = threading.Event()
        self._flush_requested = threading.Event()
        self._threads = [
            threading.Thread(target=self._flush_loop, name="shalekv-flush", daemon=True),
            threading.Thread(target=self._compaction_loop, name="shalekv-compact", daemon=True),
        ]
        if opts.fsync == "everysec":
            self._threads.append(
                threading.Thread(target=self._sync_loop, name="shalekv-fsync", daemon=True)
            )
        for t in self._threads:
            t.start()

    def _resolve_dirs(self) -> list[str]:
        """The table/blob directories, recorded in OPTIONS at creation so a reopen with
        a different list cannot lose track of files."""
        opt_path = os.path.join(self.path, "OPTIONS")
        given = [os.path.abspath(d) for d in self.options.data_dirs]
        if os.path.exists(opt_path):
            with open(opt_path) as f:
                recorded = json.load(f)
            if recorded.get("format_version") != DB_FORMAT_VERSION:
                raise CorruptionError(
                    f"unsupported DB format {recorded.get('format_version')}", opt_path
                )
            dirs = [
                d if os.path.isabs(d) else os.path.join(self.path, d) for d in recorded["data_dirs"]
            ]
            if given and [os.path.abspath(d) for d in dirs] != given:
                raise InvalidArgumentError(
                    f"data_dirs {given} differ from those this DB was created with: {dirs}"
                )
            return dirs
        dirs = given or [os.path.abspath(self.path)]
        stored = ["." if os.path.abspath(d) == os.path.abspath(self.path) else d for d in dirs]
        tmp = opt_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"format_version": DB_FORMAT_VERSION, "data_dirs": stored}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, opt_path)
        return dirs

    def _create(self) -> None:
        state = ManifestState(Version.empty(), 0, 2, 0, {})
        w = write_new_manifest(self.path, 1, state)
        w.close()

    def _wal_numbers(self) -> list[int]:
        out = []
        for name in os.listdir(os.path.join(self.path, "wal")):
            if name.endswith(".log") and name[:-4].isdigit():
                out.append(int(name[:-4]))
        return out

    def _recover_wal(self, number: int) -> MemTable:
        path = filenames.wal_path(self.path, number)
        reader = LogReader(path)
        mem = MemTable(number)
        mem.created_ms = 0  # its writes were made before this process: time unknown
        for offset, record in reader:
            seq, ops = decode(record, path, offset)
            mem.apply(seq, ops, keep_history=False)
        if reader.torn_offset is not None:
            # A crash cut the last record short: drop the partial tail so the
            # segment is well formed (everything before it was acknowledged).
            with open(path, "r+b") as f:
                f.truncate(reader.torn_offset)
                os.fsync(f.fileno())
        return mem

    def _remove_stray_files(self, version: Version, wals: set[int]) -> None:
        """Delete files no version names: outputs of jobs a crash interrupted, WAL
        segments already flushed, old MANIFESTs."""
        live = {f.number for _, f in version.files()} | set(version.blobs)
        for d in self.dirs:
            for sub, ext in (("sst", ".sst"), ("blob", ".blob")):
                folder = os.path.join(d, sub)
                for name in os.listdir(folder):
                    stem = name[: -len(ext)]
                    if name.endswith(ext) and stem.isdigit() and int(stem) in live:
                        continue
                    os.unlink(os.path.join(folder, name))
        for n in self._wal_numbers():
            if n not in wals:
                os.unlink(filenames.wal_path(self.path, n))
        current = filenames.manifest_name(self._manifest_number)
        for name in os.listdir(self.path):
            if (name.startswith("MANIFEST-") and name != current) or name.endswith(".tmp"):
                os.unlink(os.path.join(self.path, name))

    def close(self) -> None:
        """Stop background work, sync the WAL, release the lock. Idempotent."""
        if self._closed:
            return
        with self._mu:
            while self._writers:
                self._cv.wait(0.05)
            self._closing = True
            self._refresh_write_gate()
            self._cv.notify_all()
        self._flush_requested.set()
        self._stop_sync.set()
        for t in self._threads:
            t.join()
        try:
            self._wal.sync()
        finally:
            self._wal.close()
            self._manifest.close()
            with self._reader_lock:
                for r in self._tables.values():
                    r.close()
                for b in self._blob_readers.values():
                    b.close()
                self._tables.clear()
                self._blob_readers.clear()
            self._closed = True
            self._release_lock()

    def __enter__(self) -> DB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_lock_fd", -1) >= 0 and not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # noqa: BLE001 - best effort at interpreter teardown
                self._release_lock()

    # ------------------------------------------------------------------ write path

    def put(self, key: bytes, value: bytes) -> None:
        """Set key to value. Returns after the WAL write (fsync per the fsync option)."""
        if type(key) is not bytes or type(value) is not bytes or self._group_commit:
            self.write(WriteBatch().put(key, value))
            return
        with self._mu:
            mem = self._sv[0]
            if self._write_gate or mem.approximate_size >= self._memtable_limit:
                self._prepare_write(len(key) + len(value))
                mem = self._sv[0]
            seq = self._last_seq + 1
            if len(value) < JOIN_VALUE_LIMIT:  # encode_put's record as one bytes: a frame less
                self._wal.add_one(SINGLE_PUT.pack(seq, 1, PUT, len(key), len(value)) + key + value)
            else:
                self._wal.add_record(encode_put(seq, key, value))
            mem.put(seq, key, value, bool(self._snapshots))
            self._last_seq = seq
            self._user_bytes += len(key) + len(value)

    def delete(self, key: bytes) -> None:
        """Remove key (writes a tombstone). Durability as put()."""
        self.write(WriteBatch().delete(key))

    def delete_range(self, start: bytes, end: bytes) -> None:
        """Remove every key in [start, end) in O(1): one range tombstone."""
        self.write(WriteBatch().delete_range(start, end))

    def write_items(self, items: dict[bytes, bytes | None]) -> None:
        """write() of a batch given as {key: value, or None to delete}, keys and values
        bytes (a data-type transaction's writes): its WAL record and memtable entries
        are built straight from the dict, no WriteBatch (RPOP -10 % bytecodes). The
        same record format, so the same recovery; group commit (fsync=always) takes
        write(), and while a snapshot is live the memtable keeps overwritten versions."""
        if self._group_commit:
            self.write(WriteBatch().put_items(items))
            return
        if not items:
            return
        parts, size, dels = encode_items(items)
        with self._mu:
            mem = self._sv[0]
            if (
                self._write_gate
                or mem.approximate_size + size >= self._memtable_limit
                or mem.deletions >= self._deletion_trigger
            ):  # as in write()
                self._prepare_write(size)
                mem = self._sv[0]
            seq = self._last_seq + 1
            parts[0] = header(seq, len(items))
            self._wal.add_record(parts)
            if self._snapshots:  # read under the mutex, as snapshots are taken
                ops = [(DELETE if v is None else PUT, k, v) for k, v in items.items()]
                mem.apply(seq, ops, True, size, dels, 0)
            else:
                mem.apply_items(seq, items, size, dels)
            self._last_seq = seq + len(items) - 1
            self._user_bytes += size

    def write(self, batch: WriteBatch) -> None:
        """Apply batch atomically (all or nothing, also across a crash)."""
        if not batch.ops:
            return
        if self._group_commit:
            self._group_write(batch)
            return
        with self._mu:
            mem = self._sv[0]
            if (
                self._write_gate
                or mem.approximate_size + batch.byte_size >= self._memtable_limit
                or mem.deletions >= self._deletion_trigger
            ):  # else _prepare_write would find nothing to do (see put)
                self._prepare_write(batch.byte_size)
            seq = self._last_seq + 1
            self._wal.add_record(batch.encode(seq))
            self._sv[0].apply_batch(seq, batch, bool(self._snapshots))
            self._last_seq = seq + len(batch.ops) - 1
            self._user_bytes += batch.byte_size

    def defer_wal(self) -> None:
        """From now on writes append their WAL records to a memory buffer, and
        `write_wal()` writes them (fsync too with fsync=always) in one go: the caller
        must not acknowledge a write before calling it. For a single-threaded event
        loop (the server), as Redis writes its AOF buffer once per loop pass."""
        with self._mu:
            self._wal_deferred = True
            self._group_commit = False
            self._wal.deferred = True
            self._wal_seq = self._last_seq

    def write_wal(self) -> None:
        """Deferred mode: make the writes since the last call durable per the fsync
        option. If that fails they are lost (they are in the memtable but not the log):
        the DB stops taking writes (BackgroundError) until it is reopened, and the error
        propagates so the caller can drop their acknowledgements."""
        if self._last_seq == self._wal_seq:
            return
        with self._mu:
            try:
                if self.options.fsync == "always":
                    self._wal.sync()
                else:
                    self._wal.write_pending()
            except OSError as e:
                self._bg_error = BackgroundError(
                    f"WAL write failed, writes not yet acknowledged are lost: {e}"
                )
                self._refresh_write_gate()
                raise self._bg_error from e
            self._wal_seq = self._last_seq

    def _group_write(self, batch: WriteBatch) -> None:
        """fsync=always: LevelDB's writer queue. The writer at the head writes every
        queued batch as one WAL record and fsyncs once for all of them (group commit).
        Followers sleep on a private lock the leader releases: no mutex to re-take."""
        w = _Writer(batch)
        with self._mu:
            self._writers.append(w)
            leader = self._writers[0] is w
        if not leader:
            w.wake.acquire()  # released when our batch is done, or when we are the head
            if w.done:
                if w.error is not None:
                    raise w.error
                return
        with self._mu:
            group = list(self._writers)
            try:
                self._prepare_write(sum(g.batch.byte_size for g in group))
            except BaseException:
                self._finish_group([w], None)
                raise
            seq = self._last_seq + 1
            if len(group) == 1:
                merged = group[0].batch
            else:
                merged = WriteBatch()
                for g in group:
                    merged.extend(g.batch)
            record = merged.encode(seq)
            wal = self._wal
            # While we write outside the mutex, nobody may seal this WAL segment
            # (flush() waits on _wal_busy): our record must land in it, not after it.
            self._wal_busy = True
            self._mu.release()
            error: BaseException | None = None
            try:
                # One record for the whole group: it reaches the log whole or not at all.
                wal.add_record(record)
                wal.sync()
            except BaseException as e:
                error = e
            finally:
                self._mu.acquire()
                self._wal_busy = False
                self._cv.notify_all()
            if error is None:
                mem = self._sv[0]
                keep = bool(self._snapshots)
                s = seq
                for g in group:
                    mem.apply_batch(s, g.batch, keep)
                    s += len(g.batch.ops)
                self._user_bytes += merged.byte_size
                self._last_seq = s - 1
            self._finish_group(group, error)
            if error is not None:
                raise error

    def _finish_group(self, group: list[_Writer], error: BaseException | None) -> None:
        """With _mu held: wake the group's writers and hand leadership to the next."""
        done = set(map(id, group))
        self._writers = [x for x in self._writers if id(x) not in done]
        for g in group:
            g.done = True
            g.error = error
            g.wake.release()
        if self._writers:
            self._writers[0].wake.release()
        else:
            self._cv.notify_all()

    def _prepare_write(self, nbytes: int) -> None:
        """Called with _mu held: refuse writes after close or a hard background error,
        seal a full memtable, and stall while flush/compaction catch up."""
        if self._closed or self._closing:
            raise ClosedError("DB is closed")
        if self._bg_error is not None and not isinstance(self._bg_error, OSError):
            raise BackgroundError(f"writes stopped after a background error: {self._bg_error}")
        opts = self.options
        mem = self._sv[0]
        full = mem.approximate_size + nbytes >= opts.memtable_size
        dense = mem.deletions >= opts.memtable_deletion_trigger and mem.deletions * 2 >= len(mem)
        if (full or dense) and len(mem):
            stalled = None
            while len(self._sv[1]) >= opts.max_immutable_memtables:
                if self._bg_error is not None:
                    raise BackgroundError(f"memtable full and flush failing: {self._bg_error}")
                stalled = stalled or time.monotonic()
                self._cv.wait(0.1)
                if self._closing:
                    raise ClosedError("DB is closing")
            if stalled:
                self._note_stall(stalled)
            self._seal_memtable()
        if self._flush_behind() and self._flush_rate > 0:
            # RocksDB's delayed write rate: rather than run into a stop when the last
            # immutable slot fills, let writes through at the pace flushes drain them.
            self._write_debt += (nbytes + ENTRY_OVERHEAD) / self._flush_rate
            if self._write_debt >= 0.001:
                pause, self._write_debt = self._write_debt, 0.0
                t = time.monotonic()
                self._mu.release()
                try:
                    time.sleep(pause)
                finally:
                    self._mu.acquire()
                self._note_stall(t)
        l0 = l0_runs(self._sv[2], opts)
        if l0 >= opts.l0_stop_trigger:
            stalled = time.monotonic()
            while l0_runs(self._sv[2], opts) >= opts.l0_stop_trigger and not self._closing:
                if self._bg_error is not None:
                    raise BackgroundError(
                        f"too many level-0 files and compaction failing: {self._bg_error}"
                    )
                self._cv.wait(0.1)
            self._note_stall(stalled)
        elif l0 >= opts.l0_slowdown_trigger:
            # As LevelDB: delay each write 1 ms rather than stopping all writes later.
            t = time.monotonic()
            self._mu.release()
            try:
                time.sleep(0.001)
            finally:
                self._mu.acquire()
            self._note_stall(t)

    def _note_stall(self, since: float) -> None:
        self._stats["stall_count"] += 1
        self._stats["stall_seconds"] += time.monotonic() - since

    def _seal_memtable(self) -> None:
        """With _mu held: start a new WAL segment and memtable; queue the old for flush."""
        number = self._new_number()
        new_wal = LogWriter(filenames.wal_path(self.path, number))
        new_wal.deferred = self._wal_deferred
        old_wal = self._wal
        self._wal_bytes_sealed += old_wal.size
        lost = bool(old_wal.pending)
        try:
            old_wal.write_pending()
            if self.options.fsync != "no":
                old_wal.sync()
        except OSError as e:
            if lost:  # deferred records that no reply has acknowledged yet: see write_wal
                self._bg_error = BackgroundError(f"WAL write failed at a memtable switch: {e}")
                self._refresh_write_gate()
            raise
        finally:
            old_wal.close()
        self._wal = new_wal
        if self.options.fsync != "no":
            sync_dir(os.path.join(self.path, "wal"))  # the new segment's name is durable
        mem, imms, version, _ = self._sv
        mem.freeze()
        self._set_sv(MemTable(number), (mem, *imms), version)
        self._flush_requested.set()

    def _new_number(self) -> int:
        n = self._next_file
        self._next_file += 1
        return n

    def _set_sv(self, mem: MemTable, imms: tuple[MemTable, ...], version: Version) -> None:
        # One tuple, swapped in one assignment: readers take a consistent view. The
        # last item says whether any sealed part holds range deletions.
        frozen_rdels = bool(version.range_dels) or any(m.range_dels for m in imms)
        self._sv = (mem, imms, version, frozen_rdels)
        self._live_versions.add(version)
        self._refresh_write_gate()

    def _refresh_write_gate(self) -> None:
        """Writes skip _prepare_write unless something needs its attention."""
        self._write_gate = (
            getattr(self, "_closing", False)
            or self._closed
            or self._bg_error is not None
            or l0_runs(self._sv[2], self.options) >= self.options.l0_slowdown_trigger
            or self._flush_behind()
        )

    def _flush_behind(self) -> bool:
        """Is the flush queue one memtable short of stopping writes?"""
        return len(self._sv[1]) >= max(1, self.options.max_immutable_memtables - 1)

    # ------------------------------------------------------------------ reads

    def get(self, key: bytes, *, _snapshot: int | None = None) -> bytes | None:
        """The value of key, or None. O(log N) per level; no lock on the table path."""
        if self._closed:
            raise ClosedError("DB is closed")
        mem, imms, version, frozen_rdels = self._sv
        e = mem.data.get(key)
        if _snapshot is None:
            if e is None:
                for imm in imms:
                    e = imm.data.get(key)  # imm.get(key, None), inline
                    if e is not None:
                        break
                else:
                    e = version.get(key, None, self._table)
                    if e is None:
                        return None
        elif e is None or e[0] > _snapshot:
            e = self._entry_at(key, _snapshot, mem, imms, version)
            if e is None:
                return None
        if frozen_rdels or mem.range_dels:
            rdels = chain(mem.range_dels, *(m.range_dels for m in imms), version.range_dels)
            if range_deleted(rdels, key, e[0], _snapshot):
                return None
        kind = e[1]
        if kind == PUT:
            return e[2]
        if kind == BLOB_INDEX:
            return self._read_blob(e[2])  # type: ignore[arg-type]
        return None

    def _entry_at(
        self, key: bytes, snapshot: int, mem: MemTable, imms: tuple[MemTable, ...], version: Version
    ) -> Entry | None:
        """get()'s search at a snapshot: the newest entry of key at or below it, in the
        memtables (their history included) or the files."""
        e = mem.get(key, snapshot)
        if e is not None:
            return e
        for imm in imms:
            e = imm.get(key, snapshot)
            if e is not None:
                return e
        return version.get(key, snapshot, self._table)

    def __getitem__(self, key: bytes) -> bytes:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def runs_at(self, key: bytes) -> int:
        """How many sorted runs a read of keys that start like key merges now: the
        memtables, the L0 files that may hold such keys (by first byte), and the levels
        below that have files. Each is a seek: a cost measure for range reads (the
        rank indexes weigh their ski rental by it, types/zrank.py)."""
        _, imms, version, _ = self._sv
        l0 = len(version.levels[0])
        if l0 and key:
            l0 = len(version.l0_for_byte(key[0]))
        return 1 + len(imms) + l0 + len(version.deep)

    def _table(self, f: FileMeta) -> SSTableReader:
        r = self._tables.get(f.number)
        if r is None:
            with self._reader_lock:
                r = self._tables.get(f.number)
                if r is None:
                    path = filenames.table_path(self.dirs, f.dir_index, f.number)
                    r = SSTableReader(
                        path, f.number, self.cache, verify=self.options.paranoid_checks
                    )
                    self._tables[f.number] = r
        return r

    def _read_blob(self, pointer: bytes) -> bytes:
        number, offset, size = blob.decode_pointer(pointer)
        r = self._blob_readers.get(number)
        if r is None:
            with self._reader_lock:
                r = self._blob_readers.get(number)
                if r is None:
                    meta = self._sv[2].blobs.get(number)
                    dir_index = meta.dir_index if meta else filenames.place(number, len(self.dirs))
                    r = blob.BlobReader(filenames.blob_path(self.dirs, dir_index, number), number)
                    self._blob_readers[number] = r
        return r.read(offset, size)[1]

    def items(
        self,
        lower: bytes | None = None,
        upper: bytes | None = None,
        reverse: bool = False,
        *,
        _snapshot: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs with lower <= key < upper, in key order (descending if
        reverse), as of the moment of the call (an implicit snapshot). O(log N) to seek,
        then amortized O(1) per step; stops at the bound without walking past it."""
        if self._closed:
            raise ClosedError("DB is closed")
        if _snapshot is None:
            gen = self._iterate(lower, upper, reverse, self._acquire_snapshot(), release=True)
        else:
            gen = self._iterate(lower, upper, reverse, _snapshot, release=False)
        next(gen)  # start it: from now on closing or dropping it releases the snapshot
        return gen  # type: ignore[return-value]

    def keys(
        self, lower: bytes | None = None, upper: bytes | None = None, reverse: bool = False
    ) -> Iterator[bytes]:
        return (k for k, _ in self.items(lower, upper, reverse))

    def collect(
        self, lower: bytes | None = None, upper: bytes | None = None, reverse: bool = False
    ) -> tuple[list[bytes], list[bytes]]:
        """(keys, values) of items(lower, upper, reverse) as two lists, built a chunk at
        a time with no Python step per item: for bounded reads (LRANGE, HGETALL)."""
        keys: list[bytes] = []
        values: list[bytes] = []
        for k, v in self.chunks(lower, upper, reverse):
            keys += k
            values += v
        return keys, values

    def head(
        self, lower: bytes, upper: bytes | None, n: int, reverse: bool = False
    ) -> tuple[list[bytes], list[bytes]]:
        """(keys, values) of the first n items of [lower, upper) (the last n, in
        descending order, if reverse): what collect(lower, upper, reverse) starts with,
        without its iterators for a short scan (a seek of ZRANGEBYSCORE ... LIMIT, a
        rank-index bucket): each source hands over at most n + 1 entries from the
        blocks holding them, they are sorted together, and the result stands if it
        holds n items on the near side of every source's bound; else the general path."""
        if self._closed:
            raise ClosedError("DB is closed")
        mem, imms, version, frozen_rdels = self._sv
        # No registered snapshot (a lock and two dict updates per call): the sequence
        # is read after the view, so every table in it holds only entries at or below
        # seq (and is kept alive by the Version held here, as for get()); a memtable
        # entry above seq was written since, and sends the call down the general path.
        seq = self._last_seq
        if frozen_rdels or mem.range_dels or n <= 0:
            return self._head_slow(lower, upper, n, reverse)
        if reverse:
            got = self._head_rev(mem, imms, version, lower, upper, n, seq)
        else:
            got = self._head(mem, imms, version, lower, upper, n, seq)
        return got if got is not None else self._head_slow(lower, upper, n, reverse)

    def head_keys(
        self, lower: bytes, upper: bytes | None, n: int, reverse: bool = False
    ) -> list[bytes]:
        """head(lower, upper, n, reverse)[0]: the first n keys of [lower, upper). Going
        forward, each source hands over its keys and their kinds only (no entry tuple,
        no value), which are merged by C-level sorts and set or dict operations (a
        score-index seek of ZRANGEBYSCORE ... LIMIT, a rank-index bucket count)."""
        if reverse:
            return self.head(lower, upper, n, True)[0]
        if self._closed:
            raise ClosedError("DB is closed")
        mem, imms, version, frozen_rdels = self._sv
        seq = self._last_seq  # read after the view, as in head()
        if frozen_rdels or mem.range_dels or n <= 0:
            return self._head_slow(lower, upper, n)[0]
        got = self._head_keys(mem, imms, version, lower, upper, n, seq)
        return got[0] if got is not None else self._head_slow(lower, upper, n)[0]

    def key_step(self, lower: bytes, upper: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        """One step of a long scan of keys: (the live keys of [lower, nxt) in order, nxt),
        nxt None once the range is read to upper. Each source hands over up to n + 1
        keys from lower (below the bound of the sources before it), as in head_keys, but
        every live key below the least point where one of them stopped is returned, not
        only the first n: with s sources sharing the range a step holds up to about
        n * s keys, and fewer than n, even none, when tombstones or old versions fill
        a source's share (a rank-index build: ~2x cheaper per key than chunks() on a
        freshly filled set). Each step reads the state of its time."""
        if self._closed:
            raise ClosedError("DB is closed")
        n = max(n, 1)
        mem, imms, version, frozen_rdels = self._sv
        seq = self._last_seq
        if not (frozen_rdels or mem.range_dels):
            got = self._head_keys(mem, imms, version, lower, upper, n, seq, True)
            if got is not None and (got[1] is None or got[1] > lower):
                return got
        keys = self._head_slow(lower, upper, n)[0]
        return keys, (keys[-1] + b"\x00" if len(keys) == n else None)

    def _head_keys(
        self,
        mem: MemTable,
        imms: tuple[MemTable, ...],
        version: Version,
        lower: bytes,
        upper: bytes | None,
        n: int,
        seq: int,
        whole: bool = False,
    ) -> tuple[list[bytes], bytes | None] | None:
        """_head for keys: the sources' (keys, kinds) parts, newest source first; live
        keys are the union of every part's keys when no part holds a tombstone, else a
        dict filled oldest part first (a newer version overwrites an older one). (keys,
        bound): the first n live keys, or with whole every live key below bound, the
        point up to which every source was read (None: to upper)."""
        want = n + 1
        parts, tables, bound = self._head_tables(
            version, lower, upper, want, seq, imms, False, True
        )
        if tables < 0:
            return None  # a table newer than the view's sequence
        if len(mem) or any(map(len, imms)):
            end = upper if bound is None or (upper is not None and upper <= bound) else bound
            if parts and not whole:
                known = _union([p[0] for p in parts])
                if len(known) >= n:
                    cap = known[n - 1] + b"\x00"  # the least key above the n-th one known
                    if end is None or cap < end:
                        end = cap
            mparts = []
            for m in (mem, *imms):
                if len(m):
                    keys, es = m.entries_from(lower, True, want, end=end)
                    if keys:
                        if max(map(_seq_of, es)) > seq:
                            return None  # written since the snapshot: the general path
                        mparts.append((keys, bytes(map(_kind_of, es))))
                    b = keys[-1] if len(keys) == want else end
                    if b is not None and (bound is None or b < bound):
                        bound = b
            parts[:0] = mparts  # the memtables are newer than every table
        if bound is not None and upper is not None and bound >= upper:
            bound = None
        if not parts:
            return [], None
        if any(DELETE in p[1] for p in parts):
            live: dict[bytes, int] = {}
            for keys, kinds in reversed(parts):  # oldest first: newer versions overwrite
                # a table holds a key's newest version first: reversed, it comes last
                live.update(zip(reversed(keys), reversed(kinds), strict=True))
            keys = sorted(compress(live, map(DELETE.__ne__, live.values())))
        else:
            keys = _union([p[0] for p in parts])
        if bound is not None:
            cut = bisect_left(keys, bound)
            if whole:
                del keys[cut:]
                return keys, bound
            if cut < n:
                return None  # not enough known: the general path
            del keys[cut:]
        return (keys, bound) if whole else (keys[:n], bound)

    def _head_slow(
        self, lower: bytes, upper: bytes | None, n: int, reverse: bool = False
    ) -> tuple[list[bytes], list[bytes]]:
        keys: list[bytes] = []
        values: list[bytes] = []
        for k, v in islice(self.items(lower, upper, reverse), max(n, 0)):
            keys.append(k)
            values.append(v)
        return keys, values

    def _head(
        self,
        mem: MemTable,
        imms: tuple[MemTable, ...],
        version: Version,
        lower: bytes,
        upper: bytes | None,
        n: int,
        seq: int,
    ) -> tuple[list[bytes], list[bytes]] | None:
        want = n + 1
        # bound: entries below it are complete; parts: sources that contributed
        entries, parts, bound = self._head_tables(version, lower, upper, want, seq, imms, False)
        if len(mem) or any(map(len, imms)):
            # The memtables hand over only keys that can still count: below the tables'
            # bound and at most up to the n-th table entry (each key looked up in a big
            # active memtable costs ~0.3 us; a bucket count would fetch n of them).
            if parts > 1:
                entries.sort()
            end = upper if bound is None or (upper is not None and upper <= bound) else bound
            if len(entries) >= n:
                cap = entries[n - 1][0] + b"\x00"  # the least key above the n-th entry
                if end is None or cap < end:
                    end = cap
            src = 0
            for m in (mem, *imms):
                if len(m):
                    keys, es = m.entries_from(lower, True, want, end=end)
                    if keys:
                        if max(map(_seq_of, es)) > seq:
                            return None  # written since the snapshot: the general path
                        entries += zip(keys, repeat(src), map(_kind_of, es), map(_value_of, es))
                        parts += 1
                    # complete below its last key, or below end
                    b = keys[-1] if len(keys) == want else end
                    if b is not None and (bound is None or b < bound):
                        bound = b
                src += 1
        if bound is not None and upper is not None and bound >= upper:
            bound = None  # every source's part of [lower, upper) is complete
        if parts > 1:
            entries.sort()
        return _head_result(entries, parts, bound, n, False)

    def _head_tables(
        self,
        version: Version,
        lower: bytes,
        upper: bytes | None,
        want: int,
        seq: int,
        imms: tuple[MemTable, ...],
        reverse: bool,
        keys_only: bool = False,
    ) -> tuple[list[Any], int, bytes | None]:
        """The tables' part of a short scan: (entries, sources that gave some, bound)
        from every overlapping L0 file (newest first) and one file per deeper level,
        each asked for `want` entries from the near end of the range; the bound is the
        tightest of theirs (the least going forward, the greatest in reverse). Charges
        a seek to the newest L0 file when it was merged with other tables. Sources are
        numbered newest first: the memtables 0.., L0 file i 1 + len(imms) + i, level L
        after all of L0 by L. keys_only (forward): entries are (keys, kinds) parts, one
        per table, newest first; sources -1 if a table holds entries above seq; each
        table is read only below the bound so far (keys at or above it are cut from
        the result) and one lying wholly above it is skipped."""
        entries: list[Any] = []
        bound: bytes | None = None
        parts = tables = 0
        first_l0: FileMeta | None = None
        base = 1 + len(imms)  # the memtables are sources 0.. (newest first)
        l0 = version.levels[0]
        if l0:
            rs = version.readers[0]
            cands = version.l0_in(lower, upper)
            aged: list[tuple[int, Any]] = []  # sorted: (position, part) of each file
            ordered = keys_only and want > 64
            if ordered:
                # A long step (key_step): the lowest-starting files first, so the bound
                # falls early and files of a sequential fill lying above it are skipped
                # (their parts are put back newest first below). Not worth its sort for
                # a short scan's few keys.
                cands = sorted(cands, key=_smallest_of)
            first_i = len(l0)
            for i, f in cands:
                if f.largest >= lower and (upper is None or f.smallest < upper):
                    if keys_only and bound is not None and f.smallest >= bound:
                        continue  # its keys lie at or above the bound: all cut anyway
                    if i < first_i:
                        first_l0, first_i = f, i
                    tables += 1
                    t = rs[i]
                    if t is None:
                        t = rs[i] = self._table(f)
                    if keys_only:
                        if t.max_seq > seq:
                            return entries, -1, None
                        cap = upper if bound is None else _below(upper, bound)
                        keys, kinds, b = t.head_keys(lower, cap, want)
                        got = None
                        if keys:
                            if ordered:
                                aged.append((i, (keys, kinds)))
                            else:
                                got = [(keys, kinds)]
                    elif reverse:
                        got, b = t.head_rev(lower, upper, want, seq, base + i)
                    else:
                        got, b = t.head(lower, upper, want, seq, base + i)
                    if got:
                        entries += got
                        parts += 1
                    if b is not None and (bound is None or (b > bound if reverse else b < bound)):
                        bound = b
            if aged:
                aged.sort(key=_first)
                entries += [p for _, p in aged]
                parts += len(aged)
        base += len(l0) - 1
        for level, files, largest_keys, rs in version.deep:
            if reverse:  # the last file holding keys below upper
                i = len(files) if upper is None else bisect_left(largest_keys, upper)
                if i == len(files) or files[i].smallest >= upper:  # type: ignore[operator]
                    i -= 1
                if i < 0 or files[i].largest < lower:
                    continue
            else:  # the first file holding keys from lower
                i = bisect_left(largest_keys, lower)
                if i == len(files) or (upper is not None and files[i].smallest >= upper):
                    continue
                if keys_only and bound is not None and files[i].smallest >= bound:
                    continue  # all cut anyway, as above
            f = files[i]
            tables += 1
            t = rs[i]
            if t is None:
                t = rs[i] = self._table(f)
            if reverse:
                got, b = t.head_rev(lower, upper, want, seq, base + level)
                if b is None and i > 0 and f.smallest > lower:
                    b = f.smallest  # the previous file continues the range
            else:
                if keys_only:
                    if t.max_seq > seq:
                        return entries, -1, None
                    cap = upper if bound is None else _below(upper, bound)
                    keys, kinds, b = t.head_keys(lower, cap, want)
                    got = [(keys, kinds)] if keys else None
                else:
                    got, b = t.head(lower, upper, want, seq, base + level)
                if b is None and i + 1 < len(files):
                    b = f.largest  # the next file continues the range
            if got:
                entries += got
                parts += 1
            if b is not None and (bound is None or (b > bound if reverse else b < bound)):
                bound = b
        if first_l0 is not None and tables > 1:
            self._charge_seek(first_l0)
        return entries, parts, bound

    def _head_rev(
        self,
        mem: MemTable,
        imms: tuple[MemTable, ...],
        version: Version,
        lower: bytes,
        upper: bytes | None,
        n: int,
        seq: int,
    ) -> tuple[list[bytes], list[bytes]] | None:
        """_head from the top of the range: each source's bound is the smallest key it
        looked at (entries above it are complete)."""
        want = n + 1
        entries: list[Any] = []
        bound: bytes | None = None
        parts = 0
        src = 0
        for m in (mem, *imms):
            if len(m):
                keys, es = m.entries_from(upper, False, want, True)
                if keys and keys[-1] < lower:
                    cut = len(keys) - bisect_left(keys[::-1], lower)
                    keys, es = keys[:cut], es[:cut]
                elif len(keys) == want and (bound is None or keys[-1] > bound):
                    bound = keys[-1]
                if keys:
                    if max(map(_seq_of, es)) > seq:
                        return None  # written since the snapshot: the general path
                    entries += zip(keys, repeat(src), map(_kind_of, es), map(_value_of, es))
                    parts += 1
            src += 1
        got, more, b = self._head_tables(version, lower, upper, want, seq, imms, True)
        entries += got
        parts += more
        if b is not None and (bound is None or b > bound):
            bound = b
        if bound is not None and bound < lower:
            bound = None
        if parts > 1:
            # descending by key, newest source first among equal keys (stable sorts)
            entries.sort(key=_second)
            entries.sort(key=_first, reverse=True)
        return _head_result(entries, parts, bound, n, True)

    def chunks(
        self, lower: bytes | None = None, upper: bytes | None = None, reverse: bool = False
    ) -> Generator[tuple[list[bytes], list[bytes]], None, None]:
        """items(lower, upper, reverse) as a (keys, values) pair of lists at a time
        (about a block each): for long scans that work on lists, not items."""
        if self._closed:
            raise ClosedError("DB is closed")
        seq = self._acquire_snapshot()
        chunks = None
        try:
            chunks = self._chunks(lower, upper, reverse, seq)
            yield from chunks
        finally:
            if chunks is not None:
                chunks.close()  # drop its Version before the snapshot goes
            chunks = None
            self._release_snapshot(seq)

    def key_chunks(self, lower: bytes, upper: bytes, step: int = 4096) -> Iterator[list[bytes]]:
        """The live keys of [lower, upper) in order, a list at a time. When one level's
        tables hold the whole range (no memtable entry, no other level, no range
        deletion: a settled range) the keys are sliced from their blocks; else by
        key_step (each list read from the state of its time, no snapshot across lists:
        callers that need one view hold off writers meanwhile, as the rank indexes
        build under the store lock)."""
        sv = self._sv  # held for the whole iteration: its Version keeps the files alive
        sole = self._sole_tables(lower, upper, sv)
        if sole is None:
            nxt: bytes | None = lower
            while nxt is not None:
                keys, nxt = self.key_step(nxt, upper, step)
                if keys:
                    yield keys
            return
        for f in sole:
            yield from self._table(f).live_keys(lower, upper)

    def count_keys(self, lower: bytes, upper: bytes, expect: int = 64) -> int:
        """How many live keys [lower, upper) holds (a rank-index bucket). A settled
        range (as key_chunks) is counted from block positions, no key built; else by
        key_steps of `expect` keys from each source (one step when no source holds
        more entries of the range, versions and tombstones included)."""
        sv = self._sv  # held while counting: its Version keeps the files alive
        sole = self._sole_tables(lower, upper, sv)
        if sole is not None:
            return sum(self._table(f).count_live(lower, upper) for f in sole)
        n = 0
        nxt: bytes | None = lower
        while nxt is not None:
            keys, nxt = self.key_step(nxt, upper, max(expect, 1))
            n += len(keys)
        return n

    def _sole_tables(self, lower: bytes, upper: bytes, sv: Any) -> list[FileMeta] | None:
        """The files, in key order, of the one level of the view sv that holds every
        entry of [lower, upper) when no memtable entry, no range deletion, no other
        level (and in L0 no second file) has any; None otherwise. The caller keeps sv
        (its Version) referenced while it reads the files: a compaction deletes a file
        only once no live Version lists it."""
        if self._closed:
            raise ClosedError("DB is closed")
        mem, imms, version, frozen_rdels = sv
        if frozen_rdels or mem.range_dels or version.range_dels:
            return None
        for m in (mem, *imms):
            if len(m) and m.entries_from(lower, True, 1, end=upper)[0]:
                return None
        sole = [
            f for _, f in version.l0_in(lower, upper) if f.smallest < upper and f.largest >= lower
        ]
        if len(sole) > 1:
            return None
        for _, files, largest_keys, _ in version.deep:
            i = j = bisect_left(largest_keys, lower)
            while j < len(files) and files[j].smallest < upper:
                j += 1
            if j > i:
                if sole:
                    return None
                sole = files[i:j]
        return sole or None

    def _iterate(
        self, lower: bytes | None, upper: bytes | None, reverse: bool, seq: int, release: bool
    ) -> Iterator[tuple[bytes, bytes] | None]:
        chunks = None
        try:
            yield None  # primed by items()
            chunks = self._chunks(lower, upper, reverse, seq)
            for keys, values in chunks:
                yield from zip(keys, values, strict=True)
        finally:
            # Drop our hold on the Version first, so releasing the snapshot can delete
            # the files it alone kept.
            if chunks is not None:
                chunks.close()
            chunks = None
            if release:
                self._release_snapshot(seq)

    def _chunks(
        self, lower: bytes | None, upper: bytes | None, reverse: bool, seq: int
    ) -> Generator[tuple[list[bytes], list[bytes]], None, None]:
        """The visible (keys, values) in [lower, upper) as of seq, a merged chunk at a
        time: newest version of each key, no tombstones, blob values read."""
        mem, imms, version, _ = self._sv
        # Sources newest first; their index orders equal keys in the merge (negated
        # when merging in descending order, so the newest still comes first).
        rdels = [
            r
            for r in (
                *mem.range_dels,
                *(x for m in imms for x in m.range_dels),
                *version.range_dels,
            )
            if r[2] <= seq and (upper is None or r[0] < upper) and (lower is None or r[1] > lower)
        ]
        sign = -1 if reverse else 1
        sources: list[Iterator[list[Any]]] = []
        starts: list[bytes | None] = []  # files' first key in scan order (lazy open)
        src = 0
        for m in (mem, *imms):
            if len(m):
                sources.append(_mem_chunks(m, lower, upper, seq, reverse, sign * src, bool(rdels)))
                starts.append(None)
            src += 1
        first_l0: FileMeta | None = None
        tables = 0
        for f in version.levels[0]:
            if _overlaps(f, lower, upper):
                first_l0 = first_l0 or f
                tables += 1
                sources.append(self._table(f).iter_chunks(lower, upper, seq, reverse, sign * src))
                starts.append(f.largest if reverse else f.smallest)
            src += 1
        for level in range(1, NUM_LEVELS):
            files = [f for f in version.levels[level] if _overlaps(f, lower, upper)]
            if files:
                tables += 1
                if reverse:
                    files.reverse()
                sources.append(self._level_range(files, lower, upper, seq, reverse, sign * src))
                starts.append(files[0].largest if reverse else files[0].smallest)
            src += 1
        if first_l0 is not None and tables > 1:
            self._charge_seek(first_l0)
        if not sources:
            return
        merged = merge_chunks(sources, reverse, starts)
        prev = None
        read_blob = self._read_blob
        for chunk in merged:
            if not chunk:
                continue
            if not rdels:
                # The usual case without a Python step per entry: keep each key's
                # first entry (the newest source), drop tombstones, zip the rest.
                keys = list(map(_first, chunk))
                if keys[0] != prev:
                    if _has_dup(keys):
                        newest = [True, *map(ne, keys, islice(keys, 1, None))]
                        chunk = list(compress(chunk, newest))
                        keys = list(compress(keys, newest))
                    kinds = _kinds(chunk)
                    if BLOB_INDEX not in kinds:
                        prev = keys[-1]
                        if DELETE in kinds:
                            live = list(map(PUT.__eq__, kinds))
                            keys = list(compress(keys, live))
                            chunk = list(compress(chunk, live))
                        yield keys, list(map(_fourth, chunk))
                        continue
            out_keys: list[bytes] = []
            out_values: list[bytes] = []
            for key, _src, tag, value in chunk:
                if key == prev:
                    continue
                prev = key
                kind = tag & 0xFF
                if kind == DELETE or (rdels and range_deleted(rdels, key, tag >> 8)):
                    continue
                out_keys.append(key)
                out_values.append(value if kind == PUT else read_blob(value))
            if out_keys:
                yield out_keys, out_values

    def _charge_seek(self, f: FileMeta) -> None:
        """A range read merged L0 file f with other tables: one seek off its allowance
        (LevelDB's allowed_seeks). Unlocked: a lost decrement only delays it."""
        left = self._seeks_left.get(f.number)
        if left is None:
            per = self.options.seek_compaction_bytes
            if not per:
                return
            left = max(MIN_ALLOWED_SEEKS, f.size // per)
        if left > 1:
            self._seeks_left[f.number] = left - 1
        else:
            # Out of seeks; stays at 0 and asks again while another file holds the slot.
            self._seeks_left[f.number] = 0
            if self._seek_file is None:
                with self._mu:
                    if self._seek_file is None:
                        self._seek_file = f
                        self._cv.notify_all()

    def _level_range(
        self,
        files: list[FileMeta],
        lower: bytes | None,
        upper: bytes | None,
        seq: int,
        reverse: bool,
        src: int,
    ) -> Iterator[list[tuple[bytes, int, int, bytes]]]:
        for f in files:
            yield from self._table(f).iter_chunks(lower, upper, seq, reverse, src)

    # ------------------------------------------------------------------ snapshots

    def _acquire_snapshot(self) -> int:
        with self._mu:
            seq = self._last_seq
            self._snapshots[seq] = self._snapshots.get(seq, 0) + 1
            return seq

    def _release_snapshot(self, seq: int) -> None:
        with self._mu:
            n = self._snapshots.get(seq, 0) - 1
            if n <= 0:
                self._snapshots.pop(seq, None)
            else:
                self._snapshots[seq] = n
            if not self._snapshots:
                self._delete_obsolete_locked()

    def snapshot(self) -> Snapshot:
        """A consistent point-in-time view; release with close() or a with-block."""
        if self._closed:
            raise ClosedError("DB is closed")
        return Snapshot(self, self._acquire_snapshot())

    def _smallest_snapshot(self) -> int:
        return min(self._snapshots) if self._snapshots else self._last_seq

    # ------------------------------------------------------------------ background work

    def _flush_loop(self) -> None:
        while True:
            self._flush_requested.wait(0.5)
            self._flush_requested.clear()
            while True:
                with self._mu:
                    imms = self._sv[1]
                    if not imms:
                        break
                    if self._closing and self._bg_error is not None:
                        return
                    imm = imms[-1]  # oldest first
                    spec = self._flush_spec(imm)
                try:
                    result = workers.run(jobs.run_flush, spec, self.options.compaction_workers)
                    self._install_flush(imm, result)
                except BaseException as e:  # noqa: BLE001 - recorded, surfaced to writers
                    self._set_bg_error(e)
                    if self._closing:
                        return
                    time.sleep(0.2)
                    continue
            if self._closing:
                return

    def _set_bg_error(self, e: BaseException) -> None:
        with self._mu:
            self._bg_error = e
            self._refresh_write_gate()
            self._cv.notify_all()

    def _clear_disk_error(self) -> None:
        """With _mu held, after a job succeeded: an I/O error (disk full) is over."""
        if isinstance(self._bg_error, OSError):
            self._bg_error = None
            self._refresh_write_gate()

    def _flush_spec(self, imm: MemTable) -> dict[str, Any]:
        opts = self.options
        # a table per key prefix present (when partitioned), and one for a blob file
        n = 2 if not opts.partition_prefix_len else FLUSH_PARTITIONS + 1
        numbers = [self._new_number() for _ in range(n)]
        return {
            "wal_path": filenames.wal_path(self.path, imm.wal_number),
            "max_seq": imm.last_seq,
            "smallest_snapshot": min(self._smallest_snapshot(), imm.last_seq),
            "dirs": self.dirs,
            "numbers": numbers,
            "block_size": opts.block_size,
            "compression": opts.compression[0],
            "bloom_bits_per_key": opts.bloom_bits_per_key,
            "target_file_size": opts.target_file_size,
            "blob_threshold": opts.blob_threshold,
            "partition_prefix_len": opts.partition_prefix_len,
            "rate_limit": 0,  # flushes are never throttled: they unblock writers
        }

    def _install_flush(self, imm: MemTable, result: dict[str, Any]) -> None:
        tables = [FileMeta.from_json(t) for t in result["tables"]]
        blobs = [BlobMeta.from_json(b) for b in result["blobs"]]
        rdels = [(bytes.fromhex(s), bytes.fromhex(e), q) for s, e, q in result["range_dels"]]
        with self._mu:
            mem, imms, version, _ = self._sv
            assert imms[-1] is imm
            rest = imms[:-1]
            log_number = rest[-1].wal_number if rest else mem.wal_number
            edit = VersionEdit(
                log_number=log_number,
                next_file=self._next_file,
                last_seq=max(imm.last_seq, self._flushed_seq),
                added=[(0, t) for t in tables],
                added_blobs=blobs,
                added_range_dels=rdels,
            )
            new_version = self._log_and_apply(edit, version)
            self._log_number = log_number
            self._flushed_seq = max(imm.last_seq, self._flushed_seq)
            self._set_sv(mem, rest, new_version)
            self._pending_deletes.add(("wal", imm.wal_number))
            self._stats["flushes"] += 1
            self._stats["flush_bytes_written"] += result["bytes_written"]
            if result.get("seconds"):
                # Memtable bytes per second the last flush drained (sets the delay).
                self._flush_rate = imm.approximate_size / result["seconds"]
            self._clear_disk_error()
            del version  # our reference would keep the replaced files alive
            self._delete_obsolete_locked()
            self._cv.notify_all()

    def _log_and_apply(self, edit: VersionEdit, version: Version) -> Version:
        """With _mu held: make edit durable in the MANIFEST, then return the new Version.
        If the MANIFEST write fails nothing changes in memory."""
        new_version = version.apply(edit)
        dropped = self._droppable_range_dels(new_version)
        if dropped:
            edit.deleted_range_dels = dropped
            new_version = version.apply(edit)
        self._log_edit(edit, new_version)
        for _lvl, num in edit.deleted:
            self._pending_deletes.add(("sst", num))
        live_blobs = {n for _, f in new_version.files() for n in f.blob_refs}
        dead_blobs = [n for n in new_version.blobs if n not in live_blobs]
        if dead_blobs:
            bedit = VersionEdit(deleted_blobs=dead_blobs)
            new_version = new_version.apply(bedit)
            self._log_edit(bedit, new_version)
            for n in dead_blobs:
                self._pending_deletes.add(("blob", n))
        return new_version

    def _log_edit(self, edit: VersionEdit, new_version: Version) -> None:
        """With _mu held: append edit to the MANIFEST and fsync it. A MANIFEST grown
        past MANIFEST_ROLL_BYTES is replaced by a fresh one holding a snapshot."""
        self._manifest.add_record([edit.encode()])
        self._manifest.sync()
        if self._manifest.size < MANIFEST_ROLL_BYTES:
            return
        state = ManifestState(
            new_version,
            edit.log_number if edit.log_number is not None else self._log_number,
            self._next_file + 1,
            max(edit.last_seq or 0, self._flushed_seq),
            dict(self._pointers),
        )
        number = self._new_number()
        new = write_new_manifest(self.path, number, state)
        old, old_number = self._manifest, self._manifest_number
        self._manifest, self._manifest_number = new, number
        old.close()
        os.unlink(os.path.join(self.path, filenames.manifest_name(old_number)))

    @staticmethod
    def _droppable_range_dels(version: Version) -> list[tuple[bytes, bytes, int]]:
        """Range deletions that no longer hide anything in any file."""
        out = []
        for start, end, seq in version.range_dels:
            if not any(
                f.min_seq < seq
                and f.smallest < end
                and f.largest >= start
                and seq not in f.rdel_free
                for _, f in version.files()
            ):
                out.append((start, end, seq))
        return out

    def _delete_obsolete_locked(self) -> None:
        """Delete files that no live Version (held by a reader or iterator) names."""
        if not self._pending_deletes:
            return
        live_tables: set[int] = set()
        live_blobs: set[int] = set()
        for v in list(self._live_versions):
            for lvl in v.levels:
                live_tables.update(f.number for f in lvl)
            live_blobs.update(v.blobs)
        imm_wals = {m.wal_number for m in self._sv[1]} | {self._sv[0].wal_number}
        done = set()
        for kind, num in self._pending_deletes:
            if kind == "sst" and num not in live_tables:
                with self._reader_lock:
                    r = self._tables.pop(num, None)
                if r is not None:
                    r.close()
                self.cache.evict_file(num)
                self._unlink_data_file("sst", num)
                done.add((kind, num))
            elif kind == "blob" and num not in live_blobs:
                with self._reader_lock:
                    b = self._blob_readers.pop(num, None)
                if b is not None:
                    b.close()
                self._unlink_data_file("blob", num)
                done.add((kind, num))
            elif kind == "wal" and num not in imm_wals:
                try:
                    os.unlink(filenames.wal_path(self.path, num))
                except FileNotFoundError:
                    pass
                done.add((kind, num))
        self._pending_deletes -= done

    def _unlink_data_file(self, kind: str, num: int) -> None:
        ext = ".sst" if kind == "sst" else ".blob"
        for d in self.dirs:
            try:
                os.unlink(os.path.join(d, kind, f"{num:06d}{ext}"))
                return
            except FileNotFoundError:
                continue

    def _compaction_loop(self) -> None:
        while True:
            with self._compaction_lock:
                try:
                    with self._mu:
                        if self._closing:
                            return
                        c = self._pick_locked()
                    if c is not None:
                        self._run_compaction(c)
                except BaseException as e:  # noqa: BLE001 - recorded, surfaced to writers
                    self._set_bg_error(e)  # writers see it (not a dead thread that stalls them)
                    time.sleep(0.5)
                    continue
                if c is not None:
                    continue
            with self._mu:
                if not self._closing:
                    self._cv.wait(1.0)

    def _pick_locked(self) -> Compaction | None:
        if self._bg_error is not None and not isinstance(self._bg_error, OSError):
            return None
        version = self._sv[2]
        gc = blob_gc_candidates(version, self.options.blob_gc_ratio)
        heat = self._l0_heat(version) if self.options.partition_prefix_len else None
        c = pick(version, self.options, self._pointers, gc, self._cleaned, heat)
        return c if c is not None else self._pick_seek_locked(version)

    def _l0_heat(self, version: Version) -> dict[int, int]:
        """Seeks charged so far to each L0 file (range reads that merged it)."""
        per = self.options.seek_compaction_bytes
        left = self._seeks_left.copy()  # one C call: readers may charge meanwhile
        return {
            f.number: max(MIN_ALLOWED_SEEKS, f.size // per) - left[f.number]
            for f in version.levels[0]
            if f.number in left and per
        }

    def _pick_seek_locked(self, version: Version) -> Compaction | None:
        """The L0 compaction a file out of seeks asked for, once no write has come for
        SEEK_COMPACTION_IDLE seconds (while writes go on, L0 fills up and compacts
        anyway: compacting each file early would multiply L1's rewrites)."""
        if len(self._seeks_left) > 4 * self.options.l0_stop_trigger:
            live = {f.number for f in version.levels[0]}
            # copy() is one C call: readers may add entries meanwhile (lost: harmless)
            left = self._seeks_left.copy()
            self._seeks_left = {n: k for n, k in left.items() if n in live}
        f = self._seek_file
        if f is None:
            return None
        if f not in version.levels[0]:
            self._seek_file = self._seek_mark = None
            return None
        now = time.monotonic()
        mark = self._seek_mark
        if mark is None or mark[0] != self._last_seq:
            self._seek_mark = (self._last_seq, now)
            return None
        if now - mark[1] < SEEK_COMPACTION_IDLE:
            return None
        self._seek_file = self._seek_mark = None
        return with_next_level(version, 0, [f], "seek", self.options.partition_prefix_len > 0)

    def _run_compaction(self, c: Compaction) -> None:
        if c.is_trivial_move():
            f = c.inputs[0]
            with self._mu:
                mem, imms, version, _ = self._sv
                if f not in version.levels[c.level]:
                    return
                edit = VersionEdit(deleted=[(c.level, f.number)], added=[(c.output_level, f)])
                new_version = version.apply(edit)
                self._log_edit(edit, new_version)
                self._set_sv(mem, imms, new_version)
                self._stats["trivial_moves"] += 1
                self._cv.notify_all()
            return
        # No Version is held across the job: only compactions remove files, and they
        # run one at a time, so the inputs stay on disk until this one installs.
        with self._mu:
            spec = self._compaction_spec(c, self._sv[2])
        result = workers.run(jobs.run_compaction, spec, self.options.compaction_workers)
        self._install_compaction(c, result)
        self._collect_obsolete()

    def _compaction_spec(self, c: Compaction, version: Version) -> dict[str, Any]:
        opts = self.options
        in_bytes = sum(f.size for _, f in c.all_inputs)
        nfiles = in_bytes // opts.target_file_size + len(c.all_inputs) + 4 + len(c.fences)
        if opts.partition_prefix_len:
            nfiles += FLUSH_PARTITIONS
        numbers = [self._new_number() for _ in range(nfiles)]
        inputs: list[list[dict[str, Any]]] = []
        if c.level == 0:
            inputs.extend([f.to_json()] for f in c.inputs)
        else:
            inputs.append([f.to_json() for f in c.inputs])
        if c.next_inputs and c.output_level != c.level:
            inputs.append([f.to_json() for f in c.next_inputs])
        deeper = [
            [(f.smallest.hex(), f.largest.hex()) for f in version.levels[lvl]]
            for lvl in range(c.output_level + 1, NUM_LEVELS)
        ]
        return {
            "dirs": self.dirs,
            "numbers": numbers,
            "levels": [[f.to_json() for f in lvl] for lvl in version.levels],
            "blobs": [b.to_json() for b in version.blobs.values()],
            "range_dels": [(s.hex(), e.hex(), q) for s, e, q in version.range_dels],
            "inputs": inputs,
            "deeper": deeper,
            "smallest_snapshot": self._smallest_snapshot(),
            "block_size": opts.block_size,
            "compression": opts.compression[c.output_level],
            "bloom_bits_per_key": opts.bloom_bits_per_key,
            "target_file_size": opts.target_file_size,
            "blob_threshold": opts.blob_threshold,
            "rate_limit": opts.compaction_rate_limit,
            "gc_blobs": c.gc_blobs,
            "partition_prefix_len": opts.partition_prefix_len,
            "fences": [(a.hex(), b.hex()) for a, b in c.fences],
            "compaction_filter": opts.compaction_filter,
            "compaction_filter_arg": opts.compaction_filter_arg,
            "unflushed_since_ms": min(m.created_ms for m in (self._sv[0], *self._sv[1])),
        }

    def _install_compaction(self, c: Compaction, result: dict[str, Any]) -> None:
        tables = [FileMeta.from_json(t) for t in result["tables"]]
        blobs = [BlobMeta.from_json(b) for b in result["blobs"]]
        with self._mu:
            mem, imms, version, _ = self._sv
            edit = VersionEdit(
                next_file=self._next_file,
                deleted=[(lvl, f.number) for lvl, f in c.all_inputs],
                added=[(c.output_level, t) for t in tables],
                added_blobs=blobs,
                blob_garbage={int(k): v for k, v in result["blob_garbage"].items()},
            )
            if c.level > 0 and c.inputs:
                largest = max(f.largest for f in c.inputs)
                edit.compact_pointers = {c.level: largest}
                self._pointers[c.level] = largest
            new_version = self._log_and_apply(edit, version)
            self._set_sv(mem, imms, new_version)
            if c.reason not in ("size", "seek"):
                self._cleaned.update(t.number for t in tables)
            if c.reason == "seek":
                self._stats["seek_compactions"] += 1
            self._stats["compactions"] += 1
            self._stats["compaction_bytes_written"] += result["bytes_written"]
            self._stats["compaction_bytes_read"] += sum(f.size for _, f in c.all_inputs)
            self._stats["compaction_rate_limited_seconds"] += result.get(
                "rate_limited_seconds", 0.0
            )
            self._clear_disk_error()
            self._cv.notify_all()

    def _sync_loop(self) -> None:
        """fsync=everysec: fsync the current WAL segment once a second (sealed segments
        were synced when sealed)."""
        while not self._stop_sync.wait(1.0):
            wal = self._wal
            try:
                os.fsync(wal.fd)
            except OSError as e:
                if e.errno != errno.EBADF:  # the segment was sealed (and synced) meanwhile
                    self._set_bg_error(e)

    # ------------------------------------------------------------------ maintenance

    def flush(self) -> None:
        """Write the memtable to a table and wait until it and all older ones are
        installed. Afterwards no WAL is needed to recover current data."""
        with self._mu:
            if self._closed:
                raise ClosedError("DB is closed")
            while self._wal_busy:
                self._cv.wait()
            if len(self._sv[0]) or self._sv[0].range_dels:
                self._seal_memtable()
            target = self._sv[1][0] if self._sv[1] else None
        if target is None:
            return
        self._flush_requested.set()
        with self._mu:
            while target in self._sv[1]:
                if self._bg_error is not None:
                    raise BackgroundError(f"flush failed: {self._bg_error}")
                self._cv.wait(0.1)

    def compact(self, lower: bytes | None = None, upper: bytes | None = None) -> None:
        """Flush, then compact every level's files overlapping [lower, upper] down to the
        bottom level, dropping overwritten values and tombstones no snapshot needs."""
        self.flush()
        with self._compaction_lock:
            while (c := self._manual_pick(lower, upper)) is not None:
                self._run_compaction(c)
            c = self._manual_bottom(lower, upper)
            if c is not None:
                self._run_compaction(c)
        with self._mu:
            if self._bg_error is not None and not isinstance(self._bg_error, OSError):
                raise BackgroundError(f"compaction failed: {self._bg_error}")

    def _manual_pick(self, lower: bytes | None, upper: bytes | None) -> Compaction | None:
        """The next step of compact(): the shallowest level above the bottom with files
        in range, pushed one level down. Level 0 is never the bottom: its files overlap."""
        with self._mu:
            version = self._sv[2]
            bottom = max(bottom_level(version), 1)
            for level in range(bottom):
                files = version.overlapping(level, lower, upper)
                if files:
                    c = with_next_level(version, level, files, "manual")
                    c.gc_blobs = blob_gc_candidates(version, self.options.blob_gc_ratio)
                    return c
        return None

    def _manual_bottom(self, lower: bytes | None, upper: bytes | None) -> Compaction | None:
        """The bottom level's files in range, rewritten in place when that can drop
        something (as RocksDB's kIfHaveCompactionFilter): tombstones, blob garbage,
        range deletions, or whatever a compaction filter decides."""
        with self._mu:
            version = self._sv[2]
            bottom = bottom_level(version)
            files = version.overlapping(bottom, lower, upper)
            gc = blob_gc_candidates(version, self.options.blob_gc_ratio)
            needs_rewrite = (
                any(f.deletions for f in files)
                or any(set(gc) & set(f.blob_refs) for f in files)
                or version.range_dels
                or self.options.compaction_filter
            )
            if files and needs_rewrite:
                return Compaction(bottom, bottom, files, [], "manual", gc)
        return None

    def _collect_obsolete(self) -> None:
        """Delete replaced files now, if no reader holds them (callers must not hold
        a Version themselves)."""
        with self._mu:
            self._delete_obsolete_locked()

    def checkpoint(self, target: str | os.PathLike[str]) -> int:
        """A consistent, openable copy of the DB at target (hard links for immutable
        files, so it costs little space). target must not exist. Returns the copy's
        sequence number: it holds exactly the writes with a sequence up to it (what
        backups record as their point in time)."""
        target = os.fspath(target)
        if os.path.exists(target):
            raise InvalidArgumentError(f"checkpoint target {target} already exists")
        self.flush()
        with self._mu:
            version = self._sv[2]  # held: its files cannot be deleted while we link
            state = ManifestState(
                version,
                self._next_file,
                self._next_file + 1,
                self._flushed_seq,
                dict(self._pointers),
            )
        tmp = target + ".tmp"
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(os.path.join(tmp, "sst"))
        os.makedirs(os.path.join(tmp, "blob"))
        os.makedirs(os.path.join(tmp, "wal"))
        relocated_levels = [[f.with_dir(0) for f in lvl] for lvl in version.levels]
        for lvl in version.levels:
            for f in lvl:
                _link_or_copy(
                    filenames.table_path(self.dirs, f.dir_index, f.number),
                    filenames.table_path([tmp], 0, f.number),
                )
        blobs = {}
        for n, b in version.blobs.items():
            _link_or_copy(
                filenames.blob_path(self.dirs, b.dir_index, n), filenames.blob_path([tmp], 0, n)
            )
            blobs[n] = BlobMeta(n, 0, b.size, b.value_bytes, b.garbage_bytes)
        state.version = Version(relocated_levels, blobs, list(version.range_dels))
        with open(os.path.join(tmp, "OPTIONS"), "w") as out:
            json.dump({"format_version": DB_FORMAT_VERSION, "data_dirs": ["."]}, out)
        w = write_new_manifest(tmp, state.next_file - 1, state)
        w.close()
        for sub in ("sst", "blob", "wal", ""):
            sync_dir(os.path.join(tmp, sub) if sub else tmp)
        os.rename(tmp, target)
        sync_dir(os.path.dirname(os.path.abspath(target)))
        return state.last_seq

    # ------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        """Counters and gauges: levels, files, bytes, caches, compaction, stalls."""
        with self._mu:
            mem, imms, version, _ = self._sv
            s: dict[str, Any] = dict(self._stats)
            s["user_bytes_written"] = self._user_bytes
            s["wal_bytes_written"] = self._wal_bytes_sealed + self._wal.size
            s["last_sequence"] = self._last_seq
            s["memtable_bytes"] = mem.approximate_size
            s["memtable_entries"] = len(mem)
            s["immutable_memtables"] = len(imms)
            s["live_snapshots"] = sum(self._snapshots.values())
            s["background_error"] = None if self._bg_error is None else repr(self._bg_error)
            s["pending_compaction_bytes"] = pending_compaction_bytes(version, self.options)
        s["levels"] = [
            {"level": i, "files": len(lvl), "bytes": sum(f.size for f in lvl)}
            for i, lvl in enumerate(version.levels)
        ]
        s["num_files"] = sum(len(lvl) for lvl in version.levels)
        s["sst_bytes"] = sum(f.size for _, f in version.files())
        s["blob_files"] = len(version.blobs)
        s["blob_bytes"] = sum(b.size for b in version.blobs.values())
        s["blob_garbage_bytes"] = sum(b.garbage_bytes for b in version.blobs.values())
        s["range_deletions"] = len(version.range_dels)
        flushed = s["flush_bytes_written"]
        s["write_amplification"] = (
            (flushed + s["compaction_bytes_written"]) / flushed if flushed else 0.0
        )
        with self._reader_lock:
            tables = list(self._tables.values())
        s["bloom_useful"] = sum(t.bloom_useful for t in tables)  # lookups spared a block read
        s.update(self.cache.stats())
        return s

    def live_files(self) -> list[tuple[int, FileMeta]]:
        return self._sv[2].files()


class Snapshot:
    """A point-in-time read view (a sequence number the DB will not compact away)."""

    def __init__(self, db: DB, seq: int) -> None:
        self.db = db
        self.sequence = seq
        self._released = False

    def get(self, key: bytes) -> bytes | None:
        self._check()
        return self.db.get(key, _snapshot=self.sequence)

    def items(
        self, lower: bytes | None = None, upper: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check()
        return self.db.items(lower, upper, reverse, _snapshot=self.sequence)

    def _check(self) -> None:
        if self._released:
            raise ShaleError("snapshot already released")

    def close(self) -> None:
        if not self._released:
            self._released = True
            self.db._release_snapshot(self.sequence)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_released", True) and not self.db._closed:
            self.close()


# ---------------------------------------------------------------------- helpers


def _has_dup(keys: list[bytes]) -> bool:
    """Does a sorted key list repeat a key (older versions, or a key in two sources)?"""
    return any(map(eq, keys, islice(keys, 1, None)))


def _smallest_of(c: tuple[int, FileMeta]) -> bytes:
    return c[1].smallest


def _below(upper: bytes | None, bound: bytes | None) -> bytes | None:
    """The lesser end of a keys-only short scan's source: keys at or above the sources'
    bound so far are cut from the result, so a later source need not slice them."""
    return upper if bound is None or (upper is not None and upper <= bound) else bound


def _union(lists: list[list[bytes]]) -> list[bytes]:
    """The sorted keys of sorted lists, each once: one sort of their concatenation
    (Timsort merges the sorted runs, ~n log(runs) compares) and a C-level pass that
    drops repeats (a key in two sources, or older versions): ~3x cheaper than sorting
    a set of fresh bytes objects, which hashes each and compares in random order."""
    keys = sorted(chain.from_iterable(lists)) if len(lists) > 1 else lists[0]
    if not _has_dup(keys):
        return keys
    out = list(compress(keys, map(ne, keys, islice(keys, 1, None))))
    out.append(keys[-1])
    return out


def _head_result(
    entries: list[Any], parts: int, bound: bytes | None, n: int, reverse: bool
) -> tuple[list[bytes], list[bytes]] | None:
    """The end of DB.head: sorted (key, source, tag, value) entries, newest source
    first among equal keys, to the first n live items on the near side of bound
    (exclusive); None when the general path must answer (blob values, or fewer than
    n items known)."""
    if not entries:
        return [], []
    keys = list(map(_first, entries))
    if parts > 1 and _has_dup(keys):
        newest = [True, *map(ne, keys, islice(keys, 1, None))]  # each key's newest source
        entries = list(compress(entries, newest))
        keys = list(compress(keys, newest))
    kinds = _kinds(entries)
    if BLOB_INDEX in kinds:
        return None
    if DELETE in kinds:
        live = list(map(PUT.__eq__, kinds))
        keys = list(compress(keys, live))
        entries = list(compress(entries, live))
    if bound is not None:
        if reverse:
            cut = len(keys) - bisect_right(keys[::-1], bound)  # keys above bound
        else:
            cut = bisect_left(keys, bound)
        if cut < n:
            return None  # not enough known: the general path
        keys, entries = keys[:cut], entries[:cut]
    return keys[:n], list(map(_fourth, entries[:n]))


def _overlaps(f: FileMeta, lower: bytes | None, upper: bytes | None) -> bool:
    return (lower is None or f.largest >= lower) and (upper is None or f.smallest < upper)


def _mem_chunks(
    mem: MemTable,
    lower: bytes | None,
    upper: bytes | None,
    seq: int,
    reverse: bool,
    src: int,
    with_seq: bool,
) -> Iterator[list[tuple[bytes, int, int, bytes | None]]]:
    """Visible entries of a memtable in [lower, upper) as lists of (key, src, tag,
    value), fetched a chunk at a time (small first: most scans are short) so concurrent
    inserts never invalidate the walk. A chunk with nothing newer than the snapshot is
    built by C-level maps; tombstones pass through to shadow older sources. Without
    range deletions to compare against, the tag carries the kind only."""
    start = upper if reverse else lower
    inclusive = not reverse
    chunk = 16
    while True:
        keys, entries = mem.entries_from(start, inclusive, chunk, reverse)
        if not keys:
            return
        last = False
        if reverse:
            if lower is not None and keys[-1] < lower:
                n = sum(1 for k in keys if k >= lower)
                keys, entries = keys[:n], entries[:n]
                last = True
        elif upper is not None and keys[-1] >= upper:
            n = bisect_left(keys, upper)
            keys, entries = keys[:n], entries[:n]
            last = True
        if not keys:
            return
        if max(map(_seq_of, entries)) <= seq:
            if with_seq:
                tags = [e[0] << 8 | e[1] for e in entries]
            else:
                tags = list(map(_kind_of, entries))
            yield list(zip(keys, repeat(src), tags, map(_value_of, entries)))
        else:
            out = []
            for k in keys:
                e = mem.get(k, seq)
                if e is not None:
                    out.append((k, src, e[0] << 8 | e[1], e[2]))
            yield out
        if last:
            return
        start = keys[-1]
        inclusive = False
        chunk = min(chunk * 4, _CHUNK)


_seq_of = itemgetter(0)
_first = itemgetter(0)
_second = itemgetter(1)
_third = itemgetter(2)
_LITTLE = sys.byteorder == "little"
_fourth = itemgetter(3)


def _kinds(entries: list[Any]) -> bytes:
    """The kind (low byte of the tag) of each (key, source, tag, value) entry, in C
    steps: the tags as native uint64s, every 8th byte of them on a little-endian host
    (a short scan's 100 entries took ~900 bytecodes in a list comprehension)."""
    if _LITTLE:
        return memoryview(array("Q", map(_third, entries))).cast("B")[::8].tobytes()
    return bytes(e[2] & 0xFF for e in entries)


_kind_of = itemgetter(1)
_value_of = itemgetter(2)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


__all__ = ["DB", "Snapshot"]
