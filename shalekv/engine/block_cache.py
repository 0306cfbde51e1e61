"""Two-tier block cache: decoded blocks in an LRU bounded in bytes; blocks it evicts
move to a second LRU that keeps them compressed (more blocks per byte of RAM)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from shalekv.engine import compression

CacheKey = tuple[int, int]  # (file number, block index)
# The codec a reader gives a block that its table's writer stored raw although it had a
# codec (that codec could not save 1/8): tier two keeps it raw, without trying LZ4 on
# every eviction (incompressible values: photos, random bytes). Never on disk.
RAW_KNOWN = -1


class BlockCache:
    """Thread-safe; shared by every table of one DB."""

    def __init__(self, capacity: int, compressed_capacity: int) -> None:
        self.capacity = capacity
        self.compressed_capacity = compressed_capacity
        self._lru: OrderedDict[CacheKey, tuple[Any, int, tuple[int, bytes]]] = OrderedDict()
        self._clru: OrderedDict[CacheKey, tuple[int, bytes]] = OrderedDict()
        self._usage = 0
        self._cusage = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self.chits = self.cmisses = 0

    def get(self, key: CacheKey) -> Any:
        """The decoded block, or None. Counts a hit; the caller counts a miss with
        miss() only when it then needs the block (a bloom filter may spare it).

        Lock-free: each OrderedDict call is atomic under the GIL; a block evicted
        between the lookup and the LRU touch is simply not touched. The counters may
        lose an increment under heavy concurrency (they are statistics)."""
        item = self._lru.get(key)
        if item is None:
            return None
        try:
            self._lru.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return item[0]

    def miss(self) -> None:
        self.misses += 1

    def take_compressed(self, key: CacheKey) -> tuple[int, bytes] | None:
        """(codec, payload) from the second tier, removed from it (the caller will
        insert the decoded block into the first tier). Counts a hit or miss."""
        with self._lock:
            item = self._clru.pop(key, None)
            if item is None:
                self.cmisses += 1
                return None
            self._cusage -= len(item[1])
            self.chits += 1
            return item

    def insert(self, key: CacheKey, block: Any, charge: int, stored: tuple[int, bytes]) -> None:
        """Add a decoded block; `stored` is its on-disk (codec, payload) for tier two
        (codec RAW_KNOWN: raw, and not worth compressing)."""
        if charge > self.capacity:
            self._insert_compressed(key, stored)
            return
        with self._lock:
            old = self._lru.pop(key, None)
            if old is not None:
                self._usage -= old[1]
            self._lru[key] = (block, charge, stored)
            self._usage += charge
            evicted = []
            while self._usage > self.capacity and self._lru:
                k, (_, c, s) = self._lru.popitem(last=False)
                self._usage -= c
                evicted.append((k, s))
        for k, s in evicted:
            self._insert_compressed(k, s)

    def _insert_compressed(self, key: CacheKey, stored: tuple[int, bytes]) -> None:
        if self.compressed_capacity <= 0:
            return
        codec, payload = stored
        if codec == compression.NONE:
            # Stored raw on disk: compress it now so the tier holds more blocks.
            codec, payload = compression.compress(compression.LZ4, payload)
        elif codec == RAW_KNOWN:
            codec = compression.NONE
        if len(payload) > self.compressed_capacity:
            return
        with self._lock:
            old = self._clru.pop(key, None)
            if old is not None:
                self._cusage -= len(old[1])
            self._clru[key] = (codec, payload)
            self._cusage += len(payload)
            while self._cusage > self.compressed_capacity and self._clru:
                _, (_, p) = self._clru.popitem(last=False)
                self._cusage -= len(p)

    def evict_file(self, file_number: int) -> None:
        """Drop a deleted table's blocks (they can never be asked for again)."""
        with self._lock:
            # list() copies the keys in one C call: get() moves entries without the
            # lock, and a Python loop over the OrderedDict itself could see it change
            # ("mutated during iteration" stopped the DB's background thread).
            for k in [k for k in list(self._lru) if k[0] == file_number]:
                self._usage -= self._lru.pop(k)[1]
            for k in [k for k in list(self._clru) if k[0] == file_number]:
                self._cusage -= len(self._clru.pop(k)[1])

    def stats(self) -> dict[str, float | int]:
        with self._lock:

            def ratio(h: int, m: int) -> float:
                return h / (h + m) if h + m else 0.0

            return {
                "block_cache_capacity": self.capacity,
                "block_cache_usage": self._usage,
                "block_cache_entries": len(self._lru),
                "block_cache_hits": self.hits,
                "block_cache_misses": self.misses,
                "block_cache_hit_ratio": ratio(self.hits, self.misses),
                "compressed_cache_capacity": self.compressed_capacity,
                "compressed_cache_usage": self._cusage,
                "compressed_cache_entries": len(self._clru),
                "compressed_cache_hits": self.chits,
                "compressed_cache_misses": self.cmisses,
                "compressed_cache_hit_ratio": ratio(self.chits, self.cmisses),
            }
