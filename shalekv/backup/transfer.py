"""Copy every key from a source to a target: a Redis-protocol server, a ShaleKV DB
directory or a dump file on either side (`shalekv import` / `shalekv export`).

Sources yield batches of entries with a resume position after each batch; targets
take entries one by one and make them durable on flush(). After each flushed batch
the position and counts go to a small JSON state file, so an interrupted run can
resume (`--resume`): keys of the batch in flight are written again, which is
harmless because every key is written whole (DEL + rewrite, or RENAME).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from shalekv.backup.dump import DumpReader, DumpWriter
from shalekv.backup.dump import verify as verify_dump
from shalekv.backup.transfer_client import ClientSource, ClientTarget
from shalekv.backup.transfer_record import Chunk, Entry, chunk_bytes
from shalekv.errors import InvalidArgumentError, ShaleError

STATE_VERSION = 1


class TransferInterrupted(ShaleError):
    """The run stopped early on purpose (a limit for tests), its state saved."""


class Source(Protocol):
    def total_keys(self) -> int | None: ...

    position: int  # where to resume after the last batch returned

    def batches(self, cursor: int = 0) -> Iterator[Iterator[Entry]]: ...


class Target(Protocol):
    written: int
    bytes: int  # key and value bytes taken so far (written or skipped)
    existing: int
    expired: int

    def write(self, entry: Entry) -> None: ...

    def flush(self) -> None: ...

    def finish(self) -> None: ...


# ------------------------------------------------------------------ dump file ends


class DumpSource:
    """Entries of a dump file; its resume position is the number of keys read."""

    def __init__(self, f: BinaryIO, path: str, batch_keys: int = 1000) -> None:
        self.reader = DumpReader(f, path)
        self.batch_keys = batch_keys
        self.position = 0

    def total_keys(self) -> int | None:
        return None  # in the trailer, at the end: not known before reading

    def batches(self, cursor: int = 0) -> Iterator[Iterator[Entry]]:
        it = iter(self.reader)
        self.position = cursor
        for _ in range(cursor):  # resume: skip (and check) the keys already written
            if next(it, None) is None:
                return
        while True:
            first = next(it, None)
            if first is None:
                return
            yield self._batch(first, it)

    def _batch(self, first: Entry, it: Iterator[Entry]) -> Iterator[Entry]:
        self.position += 1
        yield first
        for _ in range(self.batch_keys - 1):
            e = next(it, None)
            if e is None:
                return
            self.position += 1
            yield e

    def finish(self) -> None:
        self.reader.info()


class DumpTarget:
    """Writes entries into a dump file."""

    def __init__(self, f: BinaryIO) -> None:
        self.writer = DumpWriter(f)
        self.bytes = 0
        self.written = 0
        self.existing = 0
        self.expired = 0

    def write(self, entry: Entry) -> None:
        counted = self._count(entry)
        if self.writer.write(Entry(entry.key, entry.type, entry.expire_at_ms, counted)):
            self.written += 1
        self.bytes += len(entry.key)

    def _count(self, entry: Entry) -> Iterator[Chunk]:
        for c in entry.chunks:
            self.bytes += chunk_bytes(entry.type, c)
            yield c

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        self.writer.finish()


# ------------------------------------------------------------------ state file


@dataclass
class State:
    """What `--resume` needs: where the source stands and what was done so far."""

    source: str
    target: str
    cursor: int = 0
    keys: int = 0
    bytes: int = 0
    batches: int = 0
    done: bool = False
    started: float = field(default_factory=time.time)
    version: int = STATE_VERSION

    def save(self, path: str) -> None:
        """Write atomically (tmp, fsync, rename): a kill leaves the old or new state."""
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> State:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("version") != STATE_VERSION:
            raise InvalidArgumentError(f"{path}: unknown import state version")
        return cls(**data)


# ------------------------------------------------------------------ the copy loop


@dataclass
class Summary:
    keys: int  # keys written to the target
    bytes: int  # key and value bytes copied (by all runs, when resumed)
    seconds: float
    keys_per_s: float
    skipped_existing: int
    skipped_expired: int
    changed_during_read: int
    unsupported_type: int
    resumed_from: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[int, int], None]  # (keys read so far, bytes so far)


def run(
    source: Source,
    target: Target,
    *,
    state: State | None = None,
    state_path: str | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> Summary:
    """Copy everything; resumes from state.cursor when given a loaded state. Raises
    TransferInterrupted after the batch in which stop_after keys were read."""
    if state is None:
        state = State("", "")
    if not state.cursor:  # a fresh start (or a scan that had wrapped): count anew
        state.keys = state.bytes = 0
    resumed = state.keys
    t0 = time.monotonic()
    keys = state.keys
    base_bytes = nbytes = state.bytes
    for entries in source.batches(state.cursor):
        for e in entries:
            target.write(e)
            keys += 1
        target.flush()
        nbytes = base_bytes + target.bytes
        state.cursor, state.keys, state.bytes = source.position, keys, nbytes
        state.batches += 1
        if state_path is not None:
            state.save(state_path)
        if progress is not None:
            progress(keys, nbytes)
        if stop_after is not None and keys >= stop_after:
            raise TransferInterrupted(f"stopped after {keys} keys (state saved)")
    target.finish()
    fin = getattr(source, "finish", None)
    if fin is not None:
        fin()
    state.done = True
    if state_path is not None:
        state.save(state_path)
    secs = time.monotonic() - t0
    return Summary(
        keys=target.written,
        bytes=nbytes,
        seconds=round(secs, 3),
        keys_per_s=round(target.written / secs, 1) if secs > 0 else 0.0,
        skipped_existing=target.existing,
        skipped_expired=target.expired,
        changed_during_read=getattr(source, "changed", 0),
        unsupported_type=getattr(source, "unsupported", 0),
        resumed_from=resumed,
    )


# ------------------------------------------------------------------ endpoints


def parse_hostport(s: str) -> tuple[str, int]:
    """HOST:PORT (or :PORT, or [v6]:PORT) -> (host, port)."""
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgumentError(f"{s!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_url(s: str) -> bool:
    return s.startswith(("redis://", "rediss://"))


def url_db(url: str) -> int:
    """The database number of a redis:// URL (its path, or ?db=N), 0 if none."""
    u = urlparse(url)
    path = unquote(u.path).strip("/")
    if path:
        if not path.isdigit():
            raise InvalidArgumentError(f"{url}: the path must be a database number")
        return int(path)
    for part in u.query.split("&"):
        if part.startswith("db="):
            return int(part[3:])
    return 0


def connect(
    url: str | None = None,
    *,
    hostport: str | None = None,
    db: int = 0,
    password: str | None = None,
) -> Any:
    """A redis-py client for a server given as a URL or HOST:PORT; checks it answers."""
    import redis

    # RESP2: what every Redis speaks (RESP3 needs HELLO, Redis >= 6); replies are
    # parsed for both anyway (transfer_client).
    opts: dict[str, Any] = {"socket_timeout": 120, "socket_connect_timeout": 10, "protocol": 2}
    if url is not None:
        kw = dict(opts)
        if password is not None:
            kw["password"] = password
        client = redis.Redis.from_url(url, db=url_db(url), **kw)
    else:
        assert hostport is not None
        host, port = parse_hostport(hostport)
        client = redis.Redis(host=host, port=port, db=db, password=password, **opts)
    client.ping()
    return client


def open_dir(path: str, db: int = 0, *, create: bool) -> Any:
    """The embedded store at path (LockError if a server has it open)."""
    import shalekv

    if not create and not os.path.isfile(os.path.join(path, "CURRENT")):
        raise FileNotFoundError(f"{path}: not a ShaleKV DB directory (no CURRENT file)")
    return shalekv.open(path, db=db, active_expiry=False)


def verify_file(path: str) -> None:
    """Check a whole dump before importing it, so a damaged file writes nothing."""
    with open(path, "rb") as f:
        verify_dump(f, path)


def client_source(client: Any, chunk: int = 1000) -> ClientSource:
    return ClientSource(client, chunk=chunk, scan_count=chunk)


def client_target(client: Any, replace: bool) -> ClientTarget:
    return ClientTarget(client, replace=replace)
