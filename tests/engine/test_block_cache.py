"""The block cache under threads: lookups move entries without the lock while a
deleted table's blocks are evicted (a background thread). Bounded in count. What the
first tier charges against what it holds (tracemalloc)."""

from __future__ import annotations

import random
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from shalekv.engine import compression
from shalekv.engine.block_cache import BlockCache, cache_key
from shalekv.engine.sstable import SSTableReader, SSTableWriter
from shalekv.engine.write_batch import PUT


def test_evict_file_while_lookups_move_entries() -> None:
    cache = BlockCache(1 << 30, 1 << 20)
    stored = (compression.NONE, b"x")
    for f in range(50):
        for b in range(40):
            cache.insert(cache_key(f, b), object(), 10, stored)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        i = 0
        while not stop.is_set():
            cache.get(cache_key(49, i % 40))  # LRU touch: moves the entry, no lock
            i += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    t = threading.Thread(target=reader)
    t.start()
    try:
        for rounds in range(300):
            f = rounds % 49
            try:
                cache.evict_file(f)
            except RuntimeError as e:  # "OrderedDict mutated during iteration"
                errors.append(e)
                break
            for b in range(40):
                cache.insert(cache_key(f, b), object(), 10, stored)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert not errors, errors
    assert cache.stats()["block_cache_entries"] == 50 * 40


def _held_by_cached_blocks(tmp_path: Path, codec: int, key_lists: bool) -> tuple[int, int]:
    """(bytes tracemalloc sees the cache's first tier hold, bytes it charged) after
    every block of a 200-block table was read through it; key_lists: each block then
    builds its key list, as a block searched often does."""
    path = str(tmp_path / f"t{codec}{key_lists}.sst")
    w = SSTableWriter(path, block_size=16 << 10, codec=codec)
    rng = random.Random(7)
    words = [bytes(rng.choice(b"abcdefgh") for _ in range(50)) for _ in range(64)]
    for i in range(22_000):  # values that LZ4 halves
        w.add(b"user:%012d" % i, i + 1, PUT, rng.choice(words) + rng.randbytes(50))
    w.finish()
    cache = BlockCache(1 << 30, 0)
    r = SSTableReader(path, 1, cache)
    try:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        blocks = [r.block(i) for i in range(r.num_blocks)]
        if key_lists:
            for b in blocks:
                assert b.keys
        del blocks
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert r.num_blocks > 150 and cache.stats()["block_cache_entries"] == r.num_blocks
        return held, cache.stats()["block_cache_usage"]
    finally:
        r.close()


@pytest.mark.parametrize("codec", [compression.LZ4, compression.NONE])
def test_first_tier_charges_what_it_holds(tmp_path: Path, codec: int) -> None:
    """block_cache_size bounds the memory the first tier holds: a cached block is
    charged its payload, the stored form it keeps for tier two (not again when that is
    the payload: a raw block), ~640 bytes of objects, and 48 bytes and the key per entry
    for the key list it may build (`sstable._charge`). Measured with tracemalloc: never under what is held, and not
    far over it."""
    held, charged = _held_by_cached_blocks(tmp_path, codec, key_lists=True)
    assert held <= charged, (held, charged)
    held, charged = _held_by_cached_blocks(tmp_path, codec, key_lists=False)
    assert charged <= 1.6 * held, (held, charged)
