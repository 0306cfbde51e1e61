"""Engine options: one typed dataclass, validated once at open."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from shalekv.errors import InvalidArgumentError

COMPRESSIONS = ("none", "snappy", "lz4", "zstd")
FSYNC_MODES = ("always", "everysec", "no")
NUM_LEVELS = 7


def _default_compression() -> list[str]:
    # Fast codec where data is rewritten often, zstd where it settles (as RocksDB's
    # usual advice: LZ4 above, ZSTD at the bottommost level).
    return ["lz4"] * (NUM_LEVELS - 1) + ["zstd"]


@dataclass
class Options:
    """Everything that tunes a DB. Defaults suit a 2-core machine with a few GiB."""

    data_dirs: list[str] = field(default_factory=list)
    """Extra directories for SSTables and blob files; empty: the DB directory only."""
    fsync: str = "everysec"
    """always: fsync before a write returns (group commit); everysec: background fsync
    each second; no: leave it to the OS. Every mode writes the WAL to the OS before
    returning, so a process crash loses nothing acknowledged."""
    memtable_size: int = 64 << 20
    max_immutable_memtables: int = 3
    block_size: int = 16 << 10
    compression: list[str] = field(default_factory=_default_compression)
    bloom_bits_per_key: int = 10
    block_cache_size: int = 256 << 20
    compressed_cache_size: int = 64 << 20
    blob_threshold: int = 64 << 10
    blob_gc_ratio: float = 0.5
    """A blob file whose dead fraction reaches this is rewritten by compaction."""
    target_file_size: int = 32 << 20
    l0_compaction_trigger: int = 4
    l0_slowdown_trigger: int = 12
    l0_stop_trigger: int = 20
    level_base_size: int = 256 << 20
    level_size_ratio: int = 10
    deletion_ratio_trigger: float = 0.5
    """Files whose tombstone fraction reaches this are compacted first."""
    deletion_min_entries: int = 1000
    seek_compaction_bytes: int = 16 << 10
    """Range reads that must merge an L0 file with other tables charge it a seek; after
    max(100, file size / this) seeks, once writes have been idle for a second, the L0
    files are compacted into L1 early (LevelDB's allowed_seeks, for L0 only: its files
    overlap each other and stay below l0_compaction_trigger when writes stop). 0: off."""
    memtable_deletion_trigger: int = 100_000
    """Seal the memtable early once it holds this many tombstones and they are at least
    half its entries: scans would otherwise walk them until the next flush."""
    partition_prefix_len: int = 0
    """Tables never hold keys whose first partition_prefix_len bytes differ (RocksDB's
    fixed-prefix SST partitioner): flushes and compactions cut their output where the
    prefix changes. For key spaces split into classes by a prefix (the data-type
    layer's metadata, element and score keys): a level-0 file then covers one class,
    not everything between the first and last class a write touched, so an L0->L1
    compaction rewrites only the L1 files of the classes written. Level 0 is then
    counted in sorted runs (files overlapping at one key), not files. 0: off."""
    compaction_workers: int = 1
    """0 runs flush and compaction in a thread of this process (tests, tiny embedded
    uses); >= 1 runs them in worker processes, one flush and one compaction at a time."""
    compaction_rate_limit: int = 128 << 20
    """Bytes per second a compaction may write; 0 means unlimited."""
    compaction_filter: str | None = None
    """Import path 'module:factory' of a compaction filter (see jobs.load_filter)."""
    compaction_filter_arg: str = ""
    paranoid_checks: bool = True
    """Verify data block checksums on every read from disk. (MANIFEST, WAL, index,
    filter and footer checksums are always verified.)"""
    create_if_missing: bool = True

    @classmethod
    def from_kwargs(cls, opts: Options | None = None, **kwargs: object) -> Options:
        """Build options from an Options object and/or keyword overrides."""
        base = Options() if opts is None else opts
        names = {f.name for f in fields(cls)}
        unknown = set(kwargs) - names
        if unknown:
            raise InvalidArgumentError(f"unknown option(s): {', '.join(sorted(unknown))}")
        values = {f.name: getattr(base, f.name) for f in fields(cls)}
        values.update(kwargs)
        result = cls(**values)  # type: ignore[arg-type]
        result.validate()
        return result

    def validate(self) -> None:
        """Raise InvalidArgumentError on any out-of-range option."""
        if self.fsync not in FSYNC_MODES:
            raise InvalidArgumentError(f"fsync must be one of {FSYNC_MODES}, got {self.fsync!r}")
        if isinstance(self.compression, str):
            self.compression = [self.compression] * NUM_LEVELS
        self.compression = list(self.compression)
        if not 1 <= len(self.compression) <= NUM_LEVELS:
            raise InvalidArgumentError(f"compression needs 1..{NUM_LEVELS} entries")
        while len(self.compression) < NUM_LEVELS:
            self.compression.append(self.compression[-1])
        for c in self.compression:
            if c not in COMPRESSIONS:
                raise InvalidArgumentError(f"compression must be one of {COMPRESSIONS}, got {c!r}")
        positive = (
            "memtable_size",
            "block_size",
            "target_file_size",
            "l0_compaction_trigger",
            "level_base_size",
            "blob_threshold",
        )
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise InvalidArgumentError(f"{name} must be positive")
        if self.level_size_ratio < 2:
            raise InvalidArgumentError("level_size_ratio must be >= 2")
        if not self.l0_compaction_trigger <= self.l0_slowdown_trigger <= self.l0_stop_trigger:
            raise InvalidArgumentError("need l0_compaction_trigger <= l0_slowdown <= l0_stop")
        if not 0 <= self.partition_prefix_len <= 64:
            raise InvalidArgumentError("partition_prefix_len must be 0..64")
        if self.seek_compaction_bytes < 0:
            raise InvalidArgumentError("seek_compaction_bytes must be >= 0")
        if self.compaction_workers < 0 or self.bloom_bits_per_key < 0:
            raise InvalidArgumentError("compaction_workers and bloom_bits_per_key must be >= 0")
        if self.max_immutable_memtables < 1:
            raise InvalidArgumentError("max_immutable_memtables must be >= 1")
        self.data_dirs = [str(d) for d in self.data_dirs]
