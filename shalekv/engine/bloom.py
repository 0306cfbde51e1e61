"""Whole-file bloom filter: ~1 % false positives at 10 bits per key.

Probes use double hashing over one xxh64 of the key (Kirsch & Mitzenmacher), so a
lookup costs one C hash call plus k byte tests. Layout: bit array, then k (u8).
"""

from __future__ import annotations

from collections.abc import Iterable

from xxhash import xxh64_intdigest


def num_probes(bits_per_key: int) -> int:
    # ln(2) * bits/key minimises the false-positive rate (as LevelDB's bloom.cc).
    return max(1, min(30, int(bits_per_key * 0.69)))


def build(keys: Iterable[bytes], count: int, bits_per_key: int) -> bytes:
    """Filter bytes for count keys."""
    k = num_probes(bits_per_key)
    nbits = max(64, count * bits_per_key)
    nbytes = (nbits + 7) // 8
    nbits = nbytes * 8
    bits = bytearray(nbytes)
    for key in keys:
        h = xxh64_intdigest(key)
        h1 = h & 0xFFFFFFFF
        h2 = h >> 32
        for i in range(k):
            b = (h1 + i * h2) % nbits
            bits[b >> 3] |= 1 << (b & 7)
    bits.append(k)
    return bytes(bits)


class BloomFilter:
    """Read side of a filter block."""

    __slots__ = ("bits", "nbits", "k")

    def __init__(self, data: bytes) -> None:
        self.bits = data[:-1]
        self.nbits = len(self.bits) * 8
        self.k = data[-1] if data else 0

    def may_contain(self, key: bytes) -> bool:
        nbits = self.nbits
        if not nbits or self.k > 30:
            return True  # unknown filter: never claim absence
        bits = self.bits
        h = xxh64_intdigest(key)
        h1 = h & 0xFFFFFFFF
        h2 = h >> 32
        for i in range(self.k):
            b = (h1 + i * h2) % nbits
            if not (bits[b >> 3] >> (b & 7)) & 1:
                return False
        return True
