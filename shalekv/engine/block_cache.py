"""Two-tier block cache: decoded blocks in an LRU bounded in bytes; blocks it evicts
move to a second LRU that keeps them compressed (more blocks per byte of RAM)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from shalekv.engine import compression

CacheKey = int  # cache_key(file number, block index)


def cache_key(file_number: int, block: int) -> CacheKey:
    """A block's key: one int (no tuple made per lookup, none kept per cached block
    for the cyclic GC to walk); block indexes stay below 2**32."""
    return file_number << 32 | block


# The codec a reader gives a block that its table's writer stored raw although it had a
# codec (that codec could not save 1/8): tier two keeps it raw, without trying LZ4 on
# every eviction (incompressible values: photos, random bytes). Never on disk.
RAW_KNOWN = -1


class BlockCache:
    """Thread-safe; shared by every table of one DB."""

    def __init__(self, capacity: int, compressed_capacity: int) -> None:
        self.capacity = capacity
        self.compressed_capacity = compressed_capacity
        # The decoded blocks themselves in the LRU, their (charge, stored form) apart: an
        # entry tuple holding the block would be one more object for the cyclic GC per
        # cached block; these tuples hold none, and it stops tracking them.
        # Public for the point-read path, which inlines get() (SSTableReader.find_entry).
        self.blocks: OrderedDict[CacheKey, Any] = OrderedDict()
        self._info: dict[CacheKey, tuple[int, tuple[int, bytes]]] = {}
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
        block = self.blocks.get(key)
        if block is None:
            return None
        try:
            self.blocks.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return block

    def miss(self) -> None:
        self.misses += 1

    def take_compressed(self, key: CacheKey) -> tuple[int, bytes] | None:
        """(codec, payload) from the second tier, removed from it (the caller will
        insert the decoded block into the first tier). Counts a hit or miss."""
        if not self._clru:  # the tier is empty until tier 1 first fills: no lock taken
            self.cmisses += 1  # (a block moving in meanwhile is read from disk instead)
            return None
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
        to_compress = None
        with self._lock:
            lru = self.blocks
            info = self._info
            if lru.pop(key, None) is not None:
                self._usage -= info.pop(key)[0]
            lru[key] = block
            info[key] = (charge, stored)
            self._usage += charge
            while self._usage > self.capacity and lru:
                k, _ = lru.popitem(last=False)
                c, s = info.pop(k)
                self._usage -= c
                if s[0] == compression.NONE:  # to be compressed first, outside the lock
                    if to_compress is None:
                        to_compress = []
                    to_compress.append((k, s))
                elif self.compressed_capacity > 0:  # as stored (or raw known): now
                    self._put_compressed_locked(
                        k, s[0] if s[0] != RAW_KNOWN else compression.NONE, s[1]
                    )
        if to_compress:
            for k, s in to_compress:
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
        with self._lock:
            self._put_compressed_locked(key, codec, payload)

    def _put_compressed_locked(self, key: CacheKey, codec: int, payload: bytes) -> None:
        """Tier two's insert (the lock held): codec is the real codec of payload."""
        if len(payload) > self.compressed_capacity:
            return
        clru = self._clru
        old = clru.pop(key, None)
        if old is not None:
            self._cusage -= len(old[1])
        clru[key] = (codec, payload)
        self._cusage += len(payload)
        while self._cusage > self.compressed_capacity and clru:
            _, (_, p) = clru.popitem(last=False)
            self._cusage -= len(p)

    def evict_file(self, file_number: int) -> None:
        """Drop a deleted table's blocks (they can never be asked for again)."""
        with self._lock:
            # list() copies the keys in one C call: get() moves entries without the
            # lock, and a Python loop over the OrderedDict itself could see it change
            # ("mutated during iteration" stopped the DB's background thread).
            for k in [k for k in list(self.blocks) if k >> 32 == file_number]:
                del self.blocks[k]
                self._usage -= self._info.pop(k)[0]
            for k in [k for k in list(self._clru) if k >> 32 == file_number]:
                self._cusage -= len(self._clru.pop(k)[1])

    def stats(self) -> dict[str, float | int]:
        with self._lock:

            def ratio(h: int, m: int) -> float:
                return h / (h + m) if h + m else 0.0

            return {
                "block_cache_capacity": self.capacity,
                "block_cache_usage": self._usage,
                "block_cache_entries": len(self.blocks),
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
