"""merge_chunks against a plain sort, with and without lazily opened sources."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shalekv.engine.merge import merge_chunks

KEYS = st.lists(st.binary(min_size=1, max_size=3), unique=True, max_size=30)


def _source(keys: list[bytes], src: int, reverse: bool, sizes: list[int]) -> list[list]:
    items = sorted(((k, src) for k in keys), reverse=reverse)
    chunks, i = [], 0
    for n in sizes:
        if i >= len(items):
            break
        chunks.append(items[i : i + n])
        i += n
    chunks.append(items[i:])
    return chunks


@given(
    st.lists(KEYS, min_size=1, max_size=5),
    st.lists(st.integers(0, 4), max_size=8),
    st.booleans(),
    st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_merge_equals_sort(runs, sizes, reverse, known) -> None:
    sources = [_source(keys, i, reverse, sizes) for i, keys in enumerate(runs)]
    starts = []
    for i, keys in enumerate(runs):
        # A known start is the source's first key in scan order (a file's boundary);
        # an unknown one (a memtable) must be opened at once.
        first = (max(keys) if reverse else min(keys)) if keys else b"\x00"
        starts.append(first if known[i] else None)
    out = [
        item
        for chunk in merge_chunks([iter(s) for s in sources], reverse, starts)
        for item in chunk
    ]
    want = sorted(((k, i) for i, keys in enumerate(runs) for k in keys), reverse=reverse)
    assert out == want


def test_parked_sources_are_not_opened_for_a_short_scan() -> None:
    opened = []

    def src(name: str, keys: list[bytes]):
        opened.append(name)
        yield [(k, name) for k in keys]

    merged = merge_chunks(
        [src("a", [b"a1", b"a2"]), src("b", [b"b1"]), src("c", [b"c1"])],
        starts=[b"a1", b"b1", b"c1"],
    )
    first = next(merged)
    assert first[0][0] == b"a1"
    assert opened == ["a"]  # b and c start after everything a has handed over so far
