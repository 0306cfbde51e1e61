"""Chooses the next compaction (leveled, as LevelDB's VersionSet::PickCompaction),
with RocksDB's deletion-triggered compaction so tombstone-dense files go first."""

from __future__ import annotations

from dataclasses import dataclass, field

from shalekv.engine.options import NUM_LEVELS, Options
from shalekv.engine.version import FileMeta, Version, overlap_depth


@dataclass
class Compaction:
    level: int
    output_level: int
    inputs: list[FileMeta]  # files of `level`
    next_inputs: list[FileMeta]  # overlapping files of output_level (empty if in place)
    reason: str
    gc_blobs: list[int] = field(default_factory=list)
    # Key ranges of output-level files inside the inputs' span that stay in place:
    # the output is cut across each (partitioned L0 inputs take only the files each
    # one overlaps, not everything between the first and the last).
    fences: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def all_inputs(self) -> list[tuple[int, FileMeta]]:
        out = [(self.level, f) for f in self.inputs]
        if self.output_level != self.level:
            out += [(self.output_level, f) for f in self.next_inputs]
        return out

    def is_trivial_move(self) -> bool:
        """One file, nothing to merge with, nothing to drop: just relink it a level down."""
        return (
            self.level != self.output_level
            and len(self.inputs) == 1
            and not self.next_inputs
            and not self.gc_blobs
            and self.reason in ("size", "seek")
        )


def max_bytes_for_level(options: Options, level: int) -> int:
    return int(options.level_base_size * options.level_size_ratio ** (level - 1))


def key_range(files: list[FileMeta]) -> tuple[bytes, bytes]:
    return min(f.smallest for f in files), max(f.largest for f in files)


def l0_runs(version: Version, options: Options) -> int:
    """Level 0's size for the triggers: files, or sorted runs with partitioned tables."""
    return version.l0_runs(options.partition_prefix_len > 0)


def scores(version: Version, options: Options) -> list[tuple[float, int]]:
    """(score, level) for every level that has a target; >= 1 means compaction needed."""
    out = [(l0_runs(version, options) / options.l0_compaction_trigger, 0)]
    for level in range(1, NUM_LEVELS - 1):
        out.append((version.level_bytes(level) / max_bytes_for_level(options, level), level))
    return out


def pending_compaction_bytes(version: Version, options: Options) -> int:
    """Bytes over the level targets (an estimate of the compaction backlog)."""
    total = 0
    if l0_runs(version, options) >= options.l0_compaction_trigger:
        total += version.level_bytes(0)
    for level in range(1, NUM_LEVELS - 1):
        total += max(0, version.level_bytes(level) - max_bytes_for_level(options, level))
    return total


def bottom_level(version: Version) -> int:
    for level in range(NUM_LEVELS - 1, -1, -1):
        if version.levels[level]:
            return level
    return 0


def with_next_level(
    version: Version, level: int, inputs: list[FileMeta], reason: str, per_file: bool = False
) -> Compaction:
    """A compaction of inputs into the next level, grown so that no level-0 file
    overlapping an input is left behind (an older version would then shadow a newer
    one), plus every overlapping file of the next level: those overlapping the inputs'
    whole span, or with per_file (partitioned tables) those overlapping some input,
    the others becoming fences the output is cut across."""
    if level == 0:
        # L0 files overlap each other: take every L0 file that meets the range.
        lo, hi = key_range(inputs)
        while True:
            more = version.overlapping(0, lo, hi)
            if len(more) == len(inputs):
                break
            inputs = more
            lo, hi = key_range(inputs)
    lo, hi = key_range(inputs)
    out_level = min(level + 1, NUM_LEVELS - 1)
    if level == out_level:
        return Compaction(level, level, inputs, [], reason)
    nxt = version.overlapping(out_level, lo, hi)
    if not per_file or level != 0 or len(inputs) < 2:
        return Compaction(level, out_level, inputs, nxt, reason)
    wanted: set[int] = set()
    for f in inputs:
        wanted.update(g.number for g in version.overlapping(out_level, f.smallest, f.largest))
    fences = [(g.smallest, g.largest) for g in nxt if g.number not in wanted]
    nxt = [g for g in nxt if g.number in wanted]
    return Compaction(level, out_level, inputs, nxt, reason, fences=fences)


def l0_partition(
    version: Version, options: Options, heat: dict[int, int] | None = None
) -> list[FileMeta]:
    """With partitioned tables, the L0 files of one key prefix to compact first: the
    prefix with the most sorted runs, then the one range reads merge most (seeks
    charged to its files, `heat`), then the most bytes. Prefixes are independent (their
    files never overlap), so each goes down on its own: sooner for the one being read."""
    plen = options.partition_prefix_len
    groups: dict[bytes, list[FileMeta]] = {}
    for f in version.levels[0]:
        groups.setdefault(f.smallest[:plen], []).append(f)
    heat = heat or {}

    def urgency(files: list[FileMeta]) -> tuple[int, int, int]:
        return (
            overlap_depth(files),
            sum(heat.get(f.number, 0) for f in files),
            sum(f.size for f in files),
        )

    return max(groups.values(), key=urgency)


def pick(
    version: Version,
    options: Options,
    pointers: dict[int, bytes],
    gc_candidates: list[int],
    cleaned: set[int],
    heat: dict[int, int] | None = None,
) -> Compaction | None:
    """The most urgent compaction, or None. `cleaned` holds files that a cleanup
    compaction already wrote; they are not picked again for the same reason (what
    they still hold, a snapshot needs). `heat`: seeks charged per L0 file."""
    best = max(scores(version, options))
    if best[0] >= 1.0:
        level = best[1]
        if level == 0:
            if options.partition_prefix_len > 0:
                return with_next_level(
                    version, 0, l0_partition(version, options, heat), "size", True
                )
            return with_next_level(version, 0, list(version.levels[0]), "size")
        files = version.levels[level]
        ptr = pointers.get(level)
        chosen = files[0]
        if ptr is not None:
            for f in files:
                if f.largest > ptr:
                    chosen = f
                    break
        c = with_next_level(version, level, [chosen], "size")
        c.gc_blobs = gc_candidates
        return c
    # Deletion-triggered: files dense in tombstones make reads walk dead entries.
    bottom = bottom_level(version)
    dense: list[tuple[float, int, FileMeta]] = []
    for level, files in enumerate(version.levels):
        for f in files:
            if f.number in cleaned:
                continue
            if (
                f.entries >= options.deletion_min_entries
                and f.deletions / f.entries >= options.deletion_ratio_trigger
            ):
                dense.append((f.deletions / f.entries, level, f))
    if dense:
        dense.sort(key=lambda t: (t[0], -t[1]), reverse=True)
        _, level, f = dense[0]
        return _cleanup(version, level, f, bottom, "deletions", gc_candidates)
    # Range deletions: rewrite files still holding entries a range deletion hides.
    for start, end, seq in version.range_dels:
        for level, files in enumerate(version.levels):
            for f in files:
                if (
                    f.number not in cleaned
                    and seq not in f.rdel_free
                    and f.min_seq < seq
                    and f.smallest < end
                    and f.largest >= start
                ):
                    return _cleanup(version, level, f, bottom, "range-deletion", [])
    # Blob GC: rewrite the files that point into mostly-dead blob files.
    if gc_candidates:
        target = set(gc_candidates)
        for level, files in enumerate(version.levels):
            for f in files:
                if f.number not in cleaned and target & set(f.blob_refs):
                    return _cleanup(version, level, f, bottom, "blob-gc", gc_candidates)
    return None


def _cleanup(
    version: Version, level: int, f: FileMeta, bottom: int, reason: str, gc: list[int]
) -> Compaction:
    """Rewrite one file to drop what it holds in vain: in place at the bottom level
    (nothing below to merge with), else together with the next level."""
    if level == bottom and level > 0:
        c = Compaction(level, level, [f], [], reason)
    else:
        c = with_next_level(version, level, [f], reason)
    c.gc_blobs = gc
    return c


def blob_gc_candidates(version: Version, ratio: float) -> list[int]:
    """Blob files whose dead fraction reached ratio."""
    return [
        b.number
        for b in version.blobs.values()
        if b.value_bytes and b.garbage_bytes / b.value_bytes >= ratio
    ]
