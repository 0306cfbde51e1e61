"""Differential testing: the same redis-py call against the embedded store and a real
redis-server; results and error texts must match exactly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

import shalekv


def outcome(client: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The call's result, or ("error", exception class family, message)."""
    try:
        return getattr(client, method)(*args, **kwargs)
    except redis.exceptions.DataError as e:  # raised by redis-py itself, before sending
        return ("data-error", str(e))
    except redis.exceptions.ResponseError as e:
        return ("error", str(e))


class Pair:
    def __init__(self, shale: Any, real: redis.Redis) -> None:
        self.shale = shale
        self.real = real
        self.log: list[str] = []

    def both(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        self.log.append(f"{method}{args!r}{kwargs or ''}")
        return (
            outcome(self.shale, method, args, kwargs),
            outcome(self.real, method, args, kwargs),
        )

    def same(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call on both; assert equal outcomes; return it."""
        ours, theirs = self.both(method, *args, **kwargs)
        if os.environ.get("DIFF_REPORT") and ours != theirs:  # survey mode, no assert
            print(f"MISMATCH {method}{args}{kwargs}: shalekv {ours!r} != redis {theirs!r}")
            return theirs
        assert ours == theirs, (
            f"{method}{args}{kwargs}: shalekv {ours!r} != redis {theirs!r}\n"
            + "\n".join(self.log[-30:])
        )
        return ours

    def near(self, method: str, *args: Any, within: int) -> int:
        """As same(), for integer replies that tick with the clock (PTTL): |ours - theirs| <= within."""
        ours, theirs = self.both(method, *args)
        assert isinstance(ours, int) and isinstance(theirs, int), (ours, theirs)
        assert abs(ours - theirs) <= within, f"{method}{args}: {ours} vs {theirs}"
        return ours

    def same_unordered(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """As same(), for replies whose order Redis leaves unspecified (KEYS ...)."""
        ours, theirs = self.both(method, *args, **kwargs)
        norm = sorted if isinstance(ours, list) and isinstance(theirs, list) else (lambda x: x)
        assert norm(ours) == norm(theirs), f"{method}{args}: {ours!r} != {theirs!r}"
        return ours

    def check_all_keys(self) -> None:
        """Both stores hold the same keys with the same types."""
        ours = sorted(self.shale.keys("*"))
        theirs = sorted(self.real.keys("*"))
        assert ours == theirs, f"keys differ: {ours} != {theirs}\n" + "\n".join(self.log[-30:])
        for k in ours:
            assert self.shale.type(k) == self.real.type(k), k


def inline_calls(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The arguments of the embedded client's inline calls (`ShaleKV._inline_call`)
    from now on: tests check that the inline path was taken, not only its answers."""
    calls: list[tuple[Any, ...]] = []
    call = pair.shale._inline_call
    monkeypatch.setattr(
        pair.shale, "_inline_call", lambda fn, *a: (calls.append(a), call(fn, *a))[1]
    )
    return calls


@contextmanager
def decoding_pair(redis_port: int, path: str) -> Iterator[Pair]:
    """A Pair of clients that decode replies (decode_responses=True): a fresh embedded
    store at path and the session's redis-server, emptied."""
    real = redis.Redis(port=redis_port, decode_responses=True)
    db = shalekv.open(path, compaction_workers=0, decode_responses=True)
    try:
        real.flushall()
        yield Pair(db, real)
    finally:
        db.close()
        real.close()
