"""A key in transit between a source and a target (a Redis server, a ShaleKV DB
directory, a dump file): its name, type, absolute expiry and its value as a stream of
bounded chunks, so a collection of millions of elements is never in memory at once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class KeyType(IntEnum):
    """The five Redis types a transfer carries. The values are the dump format's type
    bytes (docs/format/dump.md) and never change meaning."""

    STRING = 1
    LIST = 2
    HASH = 3
    SET = 4
    ZSET = 5

    @classmethod
    def from_name(cls, name: bytes | str) -> KeyType | None:
        """The type TYPE replies with (b"string" ...); None for types not carried
        (stream, none, module types)."""
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        return _BY_NAME.get(name)

    @property
    def redis_name(self) -> str:
        return self.name.lower()


_BY_NAME = {t.name.lower(): t for t in KeyType}

# What a chunk holds, per type:
#   STRING     list[bytes]               pieces of the value, concatenated in order
#   LIST, SET  list[bytes]               elements (list: in order, head first)
#   HASH       list[tuple[bytes, bytes]] field, value
#   ZSET       list[tuple[bytes, float]] member, score (an IEEE-754 double, exact)
Chunk = list[Any]


@dataclass(slots=True)
class Entry:
    """One key. `chunks` is a one-shot iterator that must be consumed (or dropped)
    before the source yields the next entry, as itertools.groupby's groups."""

    key: bytes
    type: KeyType
    expire_at_ms: int | None  # absolute Unix time in ms; None: no expiry
    chunks: Iterator[Chunk]


def chunk_bytes(kind: KeyType, chunk: Chunk) -> int:
    """Payload bytes of a chunk (elements, fields, values; 8 per score), for
    throughput figures."""
    if kind is KeyType.HASH:
        return sum(len(f) + len(v) for f, v in chunk)
    if kind is KeyType.ZSET:
        return sum(len(m) + 8 for m, _ in chunk)
    return sum(len(x) for x in chunk)
