"""The block cache under threads: lookups move entries without the lock while a
deleted table's blocks are evicted (a background thread). Bounded in count."""

from __future__ import annotations

import sys
import threading

from shalekv.engine import compression
from shalekv.engine.block_cache import BlockCache, cache_key


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
