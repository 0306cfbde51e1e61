"""Typed exceptions shared by every layer of ShaleKV."""

from __future__ import annotations


class ShaleError(Exception):
    """Base class of every error ShaleKV raises on purpose."""


class CorruptionError(ShaleError):
    """Stored bytes failed a checksum or a structural check.

    Carries the file and byte offset so an operator can find the damage.
    """

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        self.path = path
        self.offset = offset
        where = ""
        if path is not None:
            where = f" in {path}"
            if offset is not None:
                where += f" at offset {offset}"
        super().__init__(f"corruption{where}: {message}")


class LockError(ShaleError):
    """The data directory is already open in another process (or DB object)."""


class ClosedError(ShaleError):
    """The database was used after close()."""


class InvalidArgumentError(ShaleError, ValueError):
    """An option or argument is out of its documented range."""


class BackgroundError(ShaleError):
    """A flush or compaction failed; writes are refused until the DB is reopened.

    As in RocksDB's background-error state: the DB stays readable and nothing
    acknowledged is lost, but it will not accept writes it may not persist.
    """
