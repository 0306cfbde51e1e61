"""encode_items (a transaction's dict of writes, DB.write_items) against WriteBatch:
the same WAL record bytes, byte size and tombstone count, so recovery cannot tell which
path wrote a record."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shalekv.engine.write_batch import WriteBatch, decode, encode_items, header

values = st.one_of(st.none(), st.binary(max_size=20), st.binary(min_size=4090, max_size=4200))


@given(st.dictionaries(st.binary(max_size=12), values, max_size=10), st.integers(1, 2**40))
def test_encode_items_matches_write_batch(items: dict[bytes, bytes | None], seq: int) -> None:
    batch = WriteBatch()
    for k, v in items.items():
        if v is None:
            batch.delete(k)
        else:
            batch.put(k, v)
    parts, size, dels = encode_items(items)
    parts[0] = header(seq, len(items))
    record = b"".join(parts)
    assert record == b"".join(batch.encode(seq))
    assert (size, dels) == (batch.byte_size, batch.deletions)
    assert decode(record) == (seq, batch.ops)
