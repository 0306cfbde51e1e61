"""Damage on disk is reported, never returned; a crash's torn WAL tail is not damage;
one directory is open in one place at a time.

The flip tests copy a small DB of known contents (two SSTables, two blob files, a WAL
with unflushed writes including a record fragmented over three log blocks, a MANIFEST
with several edits), XOR one byte of one file, reopen and read everything back (get of
every key ever written and a full scan). The only acceptable outcomes are a
CorruptionError naming the damaged file and an offset at or before the flipped byte,
or every value exactly right. Offsets are chosen per structure (headers, trailers and
footers byte by byte; block and record bodies sampled), so every kind of region is hit.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shalekv.engine import DB, WriteBatch, sstable
from shalekv.engine import blob as blob_format
from shalekv.engine.log_format import BLOCK_SIZE, HEADER_SIZE, LogReader
from shalekv.errors import CorruptionError, LockError

BLOB_THRESHOLD = 1024
REPO_ROOT = Path(__file__).resolve().parents[2]


def k(i: int) -> bytes:
    return b"k%05d" % i


# ---------------------------------------------------------------------- the template DB


@dataclass
class Template:
    path: Path
    model: dict[bytes, bytes]
    probes: list[bytes]  # every key ever written, live or deleted
    files: list[str]  # damageable files, relative to path


def _value(rng: random.Random, i: int, big: bool) -> bytes:
    # Half the values compress (so lz4/zstd blocks are exercised), half do not.
    if big:
        n = rng.randrange(BLOB_THRESHOLD, 4 * BLOB_THRESHOLD)
        return (b"big%05d:" % i) * (n // 9) if i % 2 else rng.randbytes(n)
    return (b"value-%05d-" % i) * rng.randrange(1, 8) if i % 3 else rng.randbytes(40)


def _build_template(path: Path) -> Template:
    rng = random.Random(20240601)
    model: dict[bytes, bytes] = {}
    base: dict[str, Any] = {
        "compaction_workers": 0,
        "blob_threshold": BLOB_THRESHOLD,
        "block_size": 1024,
    }

    def put(db: DB, i: int, big: bool) -> None:
        v = _value(rng, i, big)
        db.put(k(i), v)
        model[k(i)] = v

    with DB.open(path, compression="lz4", **base) as db:
        for i in range(300):
            put(db, i, i % 10 == 0)
        db.flush()
    # A second session and a second codec: the MANIFEST gets a snapshot plus an edit.
    with DB.open(path, compression="zstd", **base) as db:
        for i in range(150, 450):
            put(db, i, i % 13 == 0)
        for i in range(0, 60, 9):
            db.delete(k(i))
            model.pop(k(i), None)
        db.flush()
        # Unflushed writes stay in the WAL: small and large puts, deletes, a batch, a
        # range deletion and one record larger than a log block (FIRST/MIDDLE/LAST).
        for i in range(400, 480):
            put(db, i, i % 11 == 0)
        for i in range(100, 160, 7):
            db.delete(k(i))
            model.pop(k(i), None)
        b = WriteBatch()
        for i in range(480, 490):
            v = _value(rng, i, False)
            b.put(k(i), v)
            model[k(i)] = v
        b.delete(k(300))
        model.pop(k(300), None)
        db.write(b)
        db.delete_range(k(200), k(210))
        for i in range(200, 210):
            model.pop(k(i), None)
        huge = rng.randbytes(2 * BLOCK_SIZE + 5000)
        db.put(k(490), huge)
        model[k(490)] = huge
        for i in range(491, 496):
            put(db, i, False)
    files = sorted(
        str(p.relative_to(path))
        for sub in ("sst", "blob", "wal")
        for p in (path / sub).iterdir()
        if p.stat().st_size
    )
    files += sorted(p.name for p in path.glob("MANIFEST-*"))
    return Template(path, model, [k(i) for i in range(500)], files)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    t = _build_template(tmp_path_factory.mktemp("template") / "db")
    kinds = {f.split("/")[0] if "/" in f else "manifest" for f in t.files}
    assert kinds == {"sst", "blob", "wal", "manifest"}, t.files
    assert len([f for f in t.files if f.startswith("sst/")]) == 2
    assert len([f for f in t.files if f.startswith("blob/")]) == 2
    return t


# ---------------------------------------------------------------------- region maps


@dataclass(frozen=True)
class Region:
    label: str
    start: int
    end: int
    must_detect: bool  # covered by a checksum or a structural check the reader applies


def _sst_regions(data: bytes) -> list[list[Region]]:
    """Per region kind, its instances, from the footer and the (uncompressed) index."""
    foot = len(data) - sstable.FOOTER.size
    io, il, fo, fl, po, pl, *_ = sstable.FOOTER.unpack_from(data, foot)
    (n,) = struct.unpack_from("<I", data, io)
    pos = io + 4 + 4 * n
    offsets = struct.unpack_from(f"<{n}Q", data, pos)
    sizes = struct.unpack_from(f"<{n}I", data, pos + 8 * n)
    t = sstable.TRAILER_SIZE
    return [
        [Region("sst data block", o, o + s, True) for o, s in zip(offsets, sizes, strict=True)],
        [
            Region("sst block trailer", o + s, o + s + t, True)
            for o, s in zip(offsets, sizes, strict=True)
        ],
        [Region("sst filter block", fo, fo + fl + t, True)],
        [Region("sst properties block", po, po + pl + t, True)],
        [Region("sst index block", io, io + il + t, True)],
        [Region("sst footer", foot, len(data), True)],
    ]


def _blob_regions(data: bytes, model: dict[bytes, bytes]) -> list[list[Region]]:
    """Records still referenced (their key holds this value) must be checked when read;
    dead ones (overwritten or deleted keys) are garbage no read touches."""
    head = blob_format.HEADER.size
    end = len(data) - blob_format.FOOTER.size
    groups: dict[str, list[Region]] = {}
    pos = head
    while pos < end:
        _, klen, vlen = blob_format.RECORD.unpack_from(data, pos)
        kpos = pos + blob_format.RECORD.size
        key = data[kpos : kpos + klen]
        live = model.get(key) == data[kpos + klen : kpos + klen + vlen]
        state = "live" if live else "dead"
        for part, a, b in (("header", pos, kpos), ("key", kpos, kpos + klen)):
            groups.setdefault(f"blob {state} record {part}", []).append(
                Region(f"blob {state} record {part}", a, b, live)
            )
        groups.setdefault(f"blob {state} record value", []).append(
            Region(f"blob {state} record value", kpos + klen, kpos + klen + vlen, live)
        )
        pos = kpos + klen + vlen
    assert pos == end
    return [
        [Region("blob magic", 0, 8, True)],
        # The reader checks the magic only; a flipped version or footer changes no value.
        [Region("blob version", 8, head, False)],
        *groups.values(),
        [Region("blob footer", end, len(data), False)],
    ]


def _log_regions(data: bytes, kind: str) -> list[list[Region]]:
    headers, payloads, padding = [], [], []
    pos = 0
    while pos < len(data):
        left = BLOCK_SIZE - pos % BLOCK_SIZE
        if left < HEADER_SIZE:
            padding.append(Region(f"{kind} block padding", pos, pos + left, False))
            pos += left
            continue
        _, n, ftype = struct.unpack_from("<IHB", data, pos)
        headers.append(Region(f"{kind} fragment header (type {ftype})", pos, pos + 7, True))
        payloads.append(
            Region(f"{kind} fragment payload (type {ftype})", pos + 7, pos + 7 + n, True)
        )
        pos += HEADER_SIZE + n
    assert pos == len(data)
    # Fragments of a record spanning blocks are always worth a flip: put them first.
    order = sorted(range(len(headers)), key=lambda i: "(type 1)" in headers[i].label)
    return [[headers[i] for i in order], [payloads[i] for i in order], padding]


def regions_of(t: Template, rel: str) -> list[list[Region]]:
    data = t.path.joinpath(rel).read_bytes()
    if rel.startswith("sst/"):
        return _sst_regions(data)
    if rel.startswith("blob/"):
        return _blob_regions(data, t.model)
    if rel.startswith("wal/"):
        return _log_regions(data, "wal")
    return _log_regions(data, "manifest")


def region_at(t: Template, rel: str, offset: int) -> Region:
    for group in regions_of(t, rel):
        for r in group:
            if r.start <= offset < r.end:
                return r
    raise AssertionError(f"offset {offset} of {rel} is in no region")


def sample_flips(
    t: Template, rel: str, rng: random.Random, seen: set[str]
) -> list[tuple[int, int, Region]]:
    """(offset, xor mask, region) for one file. Checked regions: first, middle and last
    instance (and every fragment of a record spanning log blocks); every byte of the
    first small one (header, trailer, footer) of each kind in the run (`seen`), else
    both ends and four random bytes. Unchecked regions: one instance, a few bytes."""
    out = []
    for group in regions_of(t, rel):
        if not group:
            continue
        if group[0].must_detect:
            picks = {0, len(group) // 2, len(group) - 1}
            picks.update(
                i
                for i, r in enumerate(group)
                if "(type 2" in r.label or "(type 3" in r.label or "(type 4" in r.label
            )
        else:
            picks = {0}
        for i in sorted(picks):
            r = group[i]
            span = range(r.start, r.end)
            label = r.label.split(" (")[0]
            if r.must_detect and len(span) <= 16 and label not in seen:
                seen.add(label)
                offs = list(span)
            else:
                offs = sorted({r.start, r.end - 1, *rng.sample(span, min(4, len(span)))})
            for off in offs:
                mask = rng.choice((0x01, 0x80, 0xFF, rng.randrange(1, 256)))
                out.append((off, mask, r))
    return out


# ---------------------------------------------------------------------- one trial


def damaged_copy(t: Template, dst: Path, rel: str, offset: int, mask: int) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(t.path, dst)
    with open(dst / rel, "r+b") as f:
        f.seek(offset)
        (b,) = f.read(1)
        f.seek(offset)
        f.write(bytes([b ^ mask]))
    return dst / rel


def read_back(path: Path, t: Template) -> list[str]:
    """Open and read everything; return what is wrong (empty: all exact). A
    CorruptionError propagates."""
    problems: list[str] = []
    with DB.open(path, compaction_workers=0) as db:
        for key in t.probes:
            got = db.get(key)
            want = t.model.get(key)
            if got != want:
                what = "missing" if got is None else "resurrected" if want is None else "wrong"
                problems.append(f"get({key!r}) {what}")
        scanned = list(db.items())
        if scanned != sorted(t.model.items()):
            got_keys = {key for key, _ in scanned}
            missing = sorted(set(t.model) - got_keys)
            extra = sorted(got_keys - set(t.model))
            wrong = [key for key, v in scanned if key in t.model and t.model[key] != v]
            problems.append(
                f"items(): {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra "
                f"(e.g. {extra[:3]}), {len(wrong)} wrong values (e.g. {wrong[:3]})"
            )
    return problems


def judge(
    t: Template, dst: Path, rel: str, offset: int, mask: int, region: Region
) -> tuple[str, str]:
    """('detected' | 'harmless' | 'bad', detail) for one flip."""
    damaged = damaged_copy(t, dst, rel, offset, mask)
    where = f"{rel}@{offset} ^0x{mask:02x} [{region.label}]"
    try:
        problems = read_back(dst, t)
    except CorruptionError as e:
        if e.path is None or os.path.realpath(e.path) != os.path.realpath(damaged):
            return "bad", f"{where}: CorruptionError names {e.path!r}, not the damaged file: {e}"
        if e.offset is None or not 0 <= e.offset <= offset:
            return (
                "bad",
                f"{where}: CorruptionError offset {e.offset} is not at/before the flip: {e}",
            )
        return "detected", where
    except Exception as e:  # noqa: BLE001 - any other error type is itself the finding
        return "bad", f"{where}: raised {type(e).__name__} instead of CorruptionError: {e}"
    if problems:
        return "bad", f"{where}: no error but {'; '.join(problems[:4])}"
    if region.must_detect:
        return "bad", f"{where}: checksummed byte changed, yet no error"
    return "harmless", where


# ---------------------------------------------------------------------- flip tests


@pytest.mark.parametrize("kind", ["sst", "blob", "wal", "manifest"])
def test_flipped_byte_is_detected_never_returned(
    template: Template, tmp_path: Path, kind: str
) -> None:
    rng = random.Random(kind)
    files = [f for f in template.files if (f.split("/")[0] if "/" in f else "manifest") == kind]
    bad: list[str] = []
    counts: dict[str, list[int]] = {}  # label -> [flips, detected]
    seen: set[str] = set()
    for rel in files:
        for offset, mask, region in sample_flips(template, rel, rng, seen):
            outcome, detail = judge(template, tmp_path / "db", rel, offset, mask, region)
            label = region.label.split(" (")[0]
            c = counts.setdefault(label, [0, 0])
            c[0] += 1
            c[1] += outcome == "detected"
            if outcome == "bad":
                bad.append(detail)
    summary = ", ".join(f"{label}: {d}/{n} detected" for label, (n, d) in sorted(counts.items()))
    assert not bad, f"{len(bad)} flips misbehaved ({summary}):\n" + "\n".join(bad[:40])
    # Bodies are checksummed: CRC32C catches every change confined to one byte.
    bodies = [
        c
        for label, c in counts.items()
        if "payload" in label or label in ("sst data block", "blob live record value")
    ]
    assert bodies and all(d == n for n, d in bodies), summary


def _all_files(t: Template) -> list[tuple[str, int]]:
    return [(rel, (t.path / rel).stat().st_size) for rel in t.files]


@given(data=st.data())
def test_any_flipped_byte_is_detected_or_harmless(
    template: Template, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    rel, size = data.draw(st.sampled_from(_all_files(template)), label="file")
    offset = data.draw(st.integers(0, size - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="mask")
    region = region_at(template, rel, offset)
    scratch = tmp_path_factory.getbasetemp() / "hypothesis-flip"
    outcome, detail = judge(template, scratch, rel, offset, mask, region)
    assert outcome != "bad", detail


def test_wal_length_flip_before_the_tail_is_not_taken_for_a_torn_tail(
    template: Template, tmp_path: Path
) -> None:
    """A torn write can only be the last record. A damaged length that points past the
    end of the file while complete records follow is corruption: taking it for a torn
    tail silently drops (and truncates away) every acknowledged write after it."""
    wal = next(f for f in template.files if f.startswith("wal/"))
    headers = sorted(regions_of(template, wal)[0], key=lambda r: r.start)
    victim = headers[-3]  # two complete records follow it
    # High byte of its u16 length: the record now seems to run past EOF.
    damaged = damaged_copy(template, tmp_path / "db", wal, victim.start + 5, 0x7F)
    with pytest.raises(CorruptionError) as ei:
        read_back(tmp_path / "db", template)
    assert os.path.realpath(str(ei.value.path)) == os.path.realpath(damaged)
    assert ei.value.offset == victim.start


def test_manifest_length_flip_in_last_edit_is_corruption(
    template: Template, tmp_path: Path
) -> None:
    """The last MANIFEST edit of a cleanly closed DB is complete: its payload checksum
    matches the bytes up to EOF. A length byte flipped so that it points past EOF must
    be reported, not taken for a torn edit (which drops a flush whose WAL is gone and
    then deletes the flushed table as a stray file)."""
    manifest = next(f for f in template.files if f.startswith("MANIFEST-"))
    headers = regions_of(template, manifest)[0]
    last = max(headers, key=lambda r: r.start)
    offset = last.start + 4  # low byte of the length: +128 reaches past EOF
    damaged = damaged_copy(template, tmp_path / "db", manifest, offset, 0x80)
    with pytest.raises(CorruptionError) as ei:
        read_back(tmp_path / "db", template)
    assert os.path.realpath(str(ei.value.path)) == os.path.realpath(damaged)
    # Nothing was deleted on the strength of a MANIFEST that could not be read.
    for rel in template.files:
        assert (tmp_path / "db" / rel).exists(), rel


# ---------------------------------------------------------------------- torn WAL tail


@dataclass
class WalLog:
    path: Path
    base: dict[bytes, bytes]  # contents once the WAL is gone (flushed tables only)
    records: list[tuple[int, int, Callable[[dict[bytes, bytes]], None]]]  # start, end, apply
    wal: str


@pytest.fixture(scope="module")
def wal_log(tmp_path_factory: pytest.TempPathFactory) -> WalLog:
    path = tmp_path_factory.mktemp("torn") / "db"
    rng = random.Random(7)
    base: dict[bytes, bytes] = {}
    ops: list[Callable[[dict[bytes, bytes]], None]] = []
    with DB.open(path, compaction_workers=0, blob_threshold=BLOB_THRESHOLD) as db:
        for i in range(100):
            v = rng.randbytes(rng.choice((20, 2000)))
            db.put(k(i), v)
            base[k(i)] = v
        db.flush()

        def put(key: bytes, v: bytes) -> None:
            db.put(key, v)
            ops.append(lambda m: m.__setitem__(key, v))

        for i in range(50, 130):
            put(k(i), rng.randbytes(rng.choice((10, 300, 3000))))
        put(k(500), rng.randbytes(2 * BLOCK_SIZE + 100))  # three fragments
        db.delete(k(3))

        def delete_3(m: dict[bytes, bytes]) -> None:
            m.pop(k(3), None)

        ops.append(delete_3)
        db.write(WriteBatch().put(k(600), b"a").put(k(601), b"b").delete(k(4)))

        def batch(m: dict[bytes, bytes]) -> None:
            m.update({k(600): b"a", k(601): b"b"})
            m.pop(k(4), None)

        ops.append(batch)
        for i in range(130, 140):
            put(k(i), rng.randbytes(50))
    wal = next(str(p.relative_to(path)) for p in (path / "wal").iterdir() if p.stat().st_size)
    reader = LogReader(str(path / wal))
    records = []
    for (start, _), apply in zip(reader, ops, strict=True):
        records.append((start, reader.end_offset, apply))
    assert reader.torn_offset is None
    return WalLog(path, base, records, wal)


def _expected_after_cut(log: WalLog, cut: int) -> dict[bytes, bytes]:
    model = dict(log.base)
    for _, end, apply in log.records:
        if end <= cut:
            apply(model)
    return model


def _cut_points(log: WalLog) -> list[int]:
    big = next(i for i, (s, e, _) in enumerate(log.records) if e - s > BLOCK_SIZE)
    cuts: set[int] = set()
    for i in (0, len(log.records) // 3, big, big + 1, len(log.records) - 2, len(log.records) - 1):
        start, end, _ = log.records[i]
        cuts.update((start + 1, start + HEADER_SIZE, start + HEADER_SIZE + 1, end - 1, end))
    start, end, _ = log.records[big]
    # Inside the MIDDLE and LAST fragments, just past each block boundary.
    first_block = start // BLOCK_SIZE + 1
    for b in (first_block, first_block + 1):
        cuts.update((b * BLOCK_SIZE, b * BLOCK_SIZE + 3, b * BLOCK_SIZE + HEADER_SIZE + 10))
    return sorted(c for c in cuts if 0 < c <= log.records[-1][1])


def test_torn_wal_tail_recovers_every_complete_record(wal_log: WalLog, tmp_path: Path) -> None:
    cuts = _cut_points(wal_log)
    assert len(cuts) > 20
    for cut in cuts:
        dst = tmp_path / f"cut{cut}"
        shutil.copytree(wal_log.path, dst)
        os.truncate(dst / wal_log.wal, cut)
        want = _expected_after_cut(wal_log, cut)
        with DB.open(dst, compaction_workers=0) as db:
            assert dict(db.items()) == want, f"cut at {cut}"
            # The DB is writable after recovery, and what it writes next survives.
            db.put(b"after-recovery", b"%d" % cut)
            want[b"after-recovery"] = b"%d" % cut
        with DB.open(dst, compaction_workers=0) as db:
            assert dict(db.items()) == want, f"second reopen after cut at {cut}"
        shutil.rmtree(dst)


# ---------------------------------------------------------------------- LOCK

_CHILD_OPEN = textwrap.dedent(
    """
    import sys
    from shalekv.engine import DB
    try:
        db = DB.open(sys.argv[1], compaction_workers=0)
    except Exception as e:
        print(f"{type(e).__name__}: {e}", flush=True)
        sys.exit(3)
    print("opened", db.get(b"owner"), flush=True)
    if len(sys.argv) > 2:  # hold the DB open until told to go
        sys.stdin.readline()
    db.close()
    """
)


def _child(path: str, hold: bool = False) -> subprocess.Popen[str]:
    """A process that opens path, prints the outcome and (hold) keeps it open until its
    stdin says go."""
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_OPEN, path, *(["hold"] if hold else [])],
        stdin=subprocess.PIPE if hold else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def _finish(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    return p.returncode, out, err


def test_second_open_in_same_process_fails_clearly(db_path: str) -> None:
    with DB.open(db_path, compaction_workers=0) as db:
        db.put(b"owner", b"first")
        with pytest.raises(LockError) as ei:
            DB.open(db_path, compaction_workers=0)
        assert db_path in str(ei.value) and "already open" in str(ei.value)
        # The refused open left the first handle (and its lock) intact.
        db.put(b"after", b"ok")
        assert db.get(b"owner") == b"first"
        with pytest.raises(LockError):
            DB.open(db_path, compaction_workers=0)
    with DB.open(db_path, compaction_workers=0) as db:
        assert db.get(b"after") == b"ok"


def test_second_open_from_another_process_fails_clearly(db_path: str) -> None:
    with DB.open(db_path, compaction_workers=0) as db:
        db.put(b"owner", b"parent")
        code, out, err = _finish(_child(db_path))
        assert code == 3, (out, err)
        assert out.startswith("LockError: "), (out, err)
        assert db_path in out and "already open" in out
        assert db.get(b"owner") == b"parent"
    # Once closed, the other process gets it.
    code, out, err = _finish(_child(db_path))
    assert (code, out.strip()) == (0, "opened b'parent'"), err


def test_lock_held_by_another_process_and_released_when_it_dies(db_path: str) -> None:
    with DB.open(db_path, compaction_workers=0) as db:
        db.put(b"owner", b"first")
    holder = _child(db_path, hold=True)
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], 30)
        assert ready, "the holder process did not report within 30 s"
        assert holder.stdout.readline().strip() == "opened b'first'"
        with pytest.raises(LockError, match="already open"):
            DB.open(db_path, compaction_workers=0)
        os.kill(holder.pid, signal.SIGKILL)  # no close(): the kernel drops the lock
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
        for s in (holder.stdin, holder.stdout, holder.stderr):
            if s is not None:
                s.close()
    assert os.path.exists(os.path.join(db_path, "LOCK"))  # a stale LOCK file is no lock
    with DB.open(db_path, compaction_workers=0) as db:
        assert db.get(b"owner") == b"first"
