"""Read-only inspection and checksum verification of a DB directory and its files
(ShaleKV's ldb / sst_dump). Every function returns plain dicts and lists that
`json.dumps` accepts (keys and values as hex); presentation lives in shalekv.cli.

Nothing here takes the LOCK or writes a byte, so it may run beside an open DB: a file
that a running DB deletes meanwhile (a compacted table, a flushed WAL segment, the
MANIFEST replaced at open) is reported as gone, not as damage.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterator
from typing import Any

from shalekv.engine import blob, bloom, checksum, compression, filenames
from shalekv.engine.log_format import LogReader
from shalekv.engine.sstable import FOOTER, MAGIC, TRAILER, TRAILER_SIZE, SSTableReader
from shalekv.engine.version import ManifestState, VersionEdit, read_current, replay
from shalekv.engine.write_batch import BLOB_INDEX, DELETE, PUT, RANGE_DELETE, decode
from shalekv.errors import CorruptionError

KIND_NAMES = {DELETE: "DELETE", PUT: "PUT", BLOB_INDEX: "BLOB_INDEX", RANGE_DELETE: "RANGE_DELETE"}
_MANIFEST_RETRIES = 5


# ---------------------------------------------------------------- directory layout


def data_dirs(dbdir: str) -> list[str]:
    """The sst/blob directories recorded in DIR/OPTIONS ("." is the DB dir itself);
    the DB dir alone when OPTIONS is missing (as DB._resolve_dirs)."""
    path = os.path.join(dbdir, "OPTIONS")
    try:
        with open(path) as f:
            recorded = json.load(f)
    except FileNotFoundError:
        return [os.path.abspath(dbdir)]
    except ValueError as e:
        raise CorruptionError(f"OPTIONS is not JSON ({e})", path, 0) from None
    dirs = recorded.get("data_dirs") if isinstance(recorded, dict) else None
    if not isinstance(dirs, list) or not dirs:
        raise CorruptionError("OPTIONS has no data_dirs list", path, 0)
    return [os.path.abspath(d if os.path.isabs(d) else os.path.join(dbdir, d)) for d in dirs]


def _options_format(dbdir: str) -> int | None:
    try:
        with open(os.path.join(dbdir, "OPTIONS")) as f:
            recorded = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    version = recorded.get("format_version") if isinstance(recorded, dict) else None
    return version if isinstance(version, int) else None


def _load_manifest(dbdir: str) -> tuple[str, ManifestState]:
    """(MANIFEST name, replayed state). Retries when an opening DB swaps the MANIFEST
    between our reading CURRENT and opening the file it names."""
    if not os.path.exists(os.path.join(dbdir, "CURRENT")):
        raise FileNotFoundError(f"{dbdir} is not a ShaleKV DB (no CURRENT file)")
    for _ in range(_MANIFEST_RETRIES):
        name = read_current(dbdir)
        try:
            return name, replay(os.path.join(dbdir, name))
        except FileNotFoundError:
            continue
    name = read_current(dbdir)
    return name, replay(os.path.join(dbdir, name))


def _wal_numbers(dbdir: str) -> list[int]:
    try:
        names = os.listdir(os.path.join(dbdir, "wal"))
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())


# ---------------------------------------------------------------- inspect a DB


def inspect_db(dbdir: str) -> dict[str, Any]:
    """Levels, tables, blob files, range deletions and WAL segments of a DB, from its
    MANIFEST (CURRENT names it) and a scan of DIR/wal. Raises CorruptionError when the
    MANIFEST cannot be read; damage in a WAL segment is reported in that segment."""
    dbdir = os.path.abspath(dbdir)
    dirs = data_dirs(dbdir)
    name, state = _load_manifest(dbdir)
    version = state.version
    files = []
    for level, f in version.files():
        d = f.to_json()
        d["level"] = level
        d["path"] = filenames.table_path(dirs, f.dir_index, f.number)
        d["blob_refs"] = {str(k): v for k, v in sorted(f.blob_refs.items())}
        files.append(d)
    levels = [
        {
            "level": i,
            "files": len(lvl),
            "bytes": sum(f.size for f in lvl),
            "entries": sum(f.entries for f in lvl),
            "deletions": sum(f.deletions for f in lvl),
        }
        for i, lvl in enumerate(version.levels)
    ]
    blobs = []
    for n in sorted(version.blobs):
        b = version.blobs[n]
        d = b.to_json()
        d["path"] = filenames.blob_path(dirs, b.dir_index, n)
        d["garbage_ratio"] = b.garbage_bytes / b.value_bytes if b.value_bytes else 0.0
        blobs.append(d)
    wals = [_inspect_wal_segment(dbdir, n, state.log_number) for n in _wal_numbers(dbdir)]
    last_seq = max([state.last_seq, *(w["last_seq"] for w in wals if w["records"])])
    manifest_path = os.path.join(dbdir, name)
    return {
        "path": dbdir,
        "format_version": _options_format(dbdir),
        "data_dirs": dirs,
        "manifest": name,
        "manifest_size": _size_or_none(manifest_path),
        "log_number": state.log_number,
        "next_file": state.next_file,
        "manifest_last_seq": state.last_seq,
        "last_sequence": last_seq,
        "levels": levels,
        "files": files,
        "blob_files": blobs,
        "range_deletions": [
            {"start": s.hex(), "end": e.hex(), "seq": q} for s, e, q in version.range_dels
        ],
        "compact_pointers": {str(k): v.hex() for k, v in sorted(state.compact_pointers.items())},
        "wal_segments": wals,
        "totals": {
            "files": len(files),
            "sst_bytes": sum(f["size"] for f in files),
            "entries": sum(f["entries"] for f in files),
            "deletions": sum(f["deletions"] for f in files),
            "blob_files": len(blobs),
            "blob_bytes": sum(b["size"] for b in blobs),
            "blob_garbage_bytes": sum(b["garbage_bytes"] for b in blobs),
            "wal_bytes": sum(w["size"] or 0 for w in wals),
        },
    }


def _size_or_none(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return None


def _inspect_wal_segment(dbdir: str, number: int, log_number: int) -> dict[str, Any]:
    path = filenames.wal_path(dbdir, number)
    out: dict[str, Any] = {
        "number": number,
        "path": path,
        # Segments older than log_number are flushed; the DB deletes them shortly.
        "live": number >= log_number,
        "size": _size_or_none(path),
        "records": 0,
        "entries": 0,
        "first_seq": 0,
        "last_seq": 0,
        "torn_offset": None,
        "error": None,
    }
    try:
        for rec in wal_records(path):
            if rec.get("torn"):
                out["torn_offset"] = rec["offset"]
                continue
            out["records"] += 1
            out["entries"] += rec["count"]
            if not out["first_seq"]:
                out["first_seq"] = rec["seq"]
            out["last_seq"] = max(out["last_seq"], rec["seq"] + rec["count"] - 1)
    except FileNotFoundError:
        out["error"] = "gone (deleted while reading)"
    except CorruptionError as e:
        out["error"] = str(e)
    return out


# ---------------------------------------------------------------- inspect single files


def wal_records(path: str, *, entries: bool = False) -> Iterator[dict[str, Any]]:
    """Each WAL record: offset, first sequence, entry count (and the entries as hex
    when asked). Raises CorruptionError on a bad checksum or a malformed batch."""
    reader = LogReader(path, paranoid=True)
    for offset, record in reader:
        seq, ops = decode(record, path, offset)
        rec: dict[str, Any] = {
            "offset": offset,
            "size": len(record),
            "seq": seq,
            "count": len(ops),
        }
        if entries:
            rec["entries"] = [
                {
                    "seq": seq + i,
                    "kind": KIND_NAMES.get(kind, str(kind)),
                    "key": key.hex(),
                    # RANGE_DELETE keeps its end key where a PUT keeps its value.
                    "value_size": None if value is None else len(value),
                    "value": None if value is None else value.hex(),
                }
                for i, (kind, key, value) in enumerate(ops)
            ]
        yield rec
    if reader.torn_offset is not None:
        # A crash cut the last record short (recovery drops it): a marker, not a record.
        yield {"offset": reader.torn_offset, "torn": True}


def inspect_wal(path: str, *, dump: bool = False) -> dict[str, Any]:
    """Records of one WAL segment (with their entries when dump)."""
    records = []
    torn = None
    for rec in wal_records(path, entries=dump):
        if rec.get("torn"):
            torn = rec["offset"]
            continue
        records.append(rec)
    return {
        "path": os.path.abspath(path),
        "size": os.path.getsize(path),
        "records": records,
        "entries": sum(r["count"] for r in records),
        "first_seq": records[0]["seq"] if records else 0,
        "last_seq": max((r["seq"] + r["count"] - 1 for r in records), default=0),
        "torn_offset": torn,
    }


def inspect_manifest(path: str) -> dict[str, Any]:
    """Every edit of one MANIFEST file as its decoded JSON object, plus the resulting state."""
    edits = []
    for offset, record in LogReader(path, paranoid=True):
        try:
            edit = json.loads(record)
            VersionEdit.decode(record)  # same validation as replay
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptionError(f"malformed MANIFEST edit ({e})", path, offset) from None
        edits.append({"offset": offset, "size": len(record), "edit": edit})
    state = replay(path)
    return {
        "path": os.path.abspath(path),
        "size": os.path.getsize(path),
        "edits": edits,
        "log_number": state.log_number,
        "next_file": state.next_file,
        "last_seq": state.last_seq,
        "files": len(state.version.files()),
        "blob_files": len(state.version.blobs),
        "range_deletions": len(state.version.range_dels),
    }


def inspect_blob(path: str, *, dump: bool = False) -> dict[str, Any]:
    """Header, footer and record count of one blob file (records as hex when dump).
    Checks every record's checksum on the way (blob.scan)."""
    records, value_bytes = blob.scan(path)
    with open(path, "rb") as f:
        head = f.read(blob.HEADER.size)
        size = os.fstat(f.fileno()).st_size
        f.seek(size - blob.FOOTER.size)
        count, _magic = blob.FOOTER.unpack(f.read(blob.FOOTER.size))
    magic, version = blob.HEADER.unpack(head)
    out: dict[str, Any] = {
        "path": os.path.abspath(path),
        "size": size,
        "magic": f"{magic:#018x}",
        "format_version": version,
        "footer_count": count,
        "records": records,
        "value_bytes": value_bytes,
    }
    if dump:
        out["entries"] = list(blob_records(path))
    return out


def blob_records(path: str) -> Iterator[dict[str, Any]]:
    """(offset, key, value size, value) of each record of a blob file, unchecked."""
    with open(path, "rb") as f:
        data = f.read()
    pos = blob.HEADER.size
    end = len(data) - blob.FOOTER.size
    while pos + blob.RECORD.size <= end:
        crc, klen, vlen = blob.RECORD.unpack_from(data, pos)
        kstart = pos + blob.RECORD.size
        key = data[kstart : kstart + klen]
        value = data[kstart + klen : kstart + klen + vlen]
        yield {
            "offset": pos,
            "crc": crc,
            "key": key.hex(),
            "value_size": vlen,
            "value": value.hex(),
        }
        pos = kstart + klen + vlen


def _raw_block(fd: int, path: str, offset: int, size: int) -> tuple[int, int, bytes, bool]:
    """(codec, stored masked CRC, stored bytes, CRC matches) of the block at offset."""
    raw = os.pread(fd, size + TRAILER_SIZE, offset)
    if len(raw) != size + TRAILER_SIZE:
        raise CorruptionError("block runs past the end of the file", path, offset)
    codec, crc = TRAILER.unpack_from(raw, size)
    data = raw[:size]
    ok = checksum.masked(raw[size : size + 1], checksum.value(data)) == crc
    return codec, crc, data, ok


def inspect_sst(path: str, *, dump: bool = False) -> dict[str, Any]:
    """Footer fields, properties, and every block (offset, stored size, codec, raw
    size, entries, whether its CRC matches) of one SSTable; its entries too when dump.
    The footer and meta blocks must be intact (else CorruptionError); a damaged data
    block is listed with crc_ok False."""
    reader = SSTableReader(path, 0, None, verify=True)
    try:
        size = reader.file_size
        foot_off = size - FOOTER.size
        raw_footer = os.pread(reader.fd, FOOTER.size, foot_off)
        io, il, fo, fl, po, pl, version, crc, magic = FOOTER.unpack(raw_footer)
        footer = {
            "offset": foot_off,
            "index_offset": io,
            "index_size": il,
            "filter_offset": fo,
            "filter_size": fl,
            "properties_offset": po,
            "properties_size": pl,
            "format_version": version,
            "crc": f"{crc:#010x}",
            "magic": f"{magic:#018x}",
            "magic_ok": magic == MAGIC,
        }
        data_blocks = []
        for i in range(reader.num_blocks):
            off, stored = reader.block_offsets[i], reader.block_sizes[i]
            codec, bcrc, data, ok = _raw_block(reader.fd, path, off, stored)
            raw_size = entries = buckets = None
            if ok:  # a damaged block is shown as such, not decoded
                raw_size = len(compression.decompress(codec, data, path, off))
                blk = reader.block(i)
                entries = blk.n
                buckets = len(blk.buckets) if blk.buckets is not None else 0
            data_blocks.append(
                {
                    "index": i,
                    "offset": off,
                    "size": stored,
                    "raw_size": raw_size,
                    "codec": compression.NAMES.get(codec, str(codec)),
                    "crc": f"{bcrc:#010x}",
                    "crc_ok": ok,
                    "entries": entries,
                    "hash_buckets": buckets,
                    "last_key": reader.index_keys[i].hex(),
                }
            )
        meta_blocks = []
        for name, off, stored in (("filter", fo, fl), ("properties", po, pl), ("index", io, il)):
            codec, bcrc, _data, ok = _raw_block(reader.fd, path, off, stored)
            meta_blocks.append(
                {
                    "name": name,
                    "offset": off,
                    "size": stored,
                    "codec": compression.NAMES.get(codec, str(codec)),
                    "crc": f"{bcrc:#010x}",
                    "crc_ok": ok,
                }
            )
        out: dict[str, Any] = {
            "path": os.path.abspath(path),
            "file_size": size,
            "footer": footer,
            "properties": reader.props,
            "num_data_blocks": reader.num_blocks,
            "data_blocks": data_blocks,
            "meta_blocks": meta_blocks,
            "bloom_probes": bloom.PROBES if reader.bloom is not None else 0,
            "bad_blocks": sum(1 for b in data_blocks if not b["crc_ok"]),
        }
    finally:
        reader.close()
    if dump and not out["bad_blocks"]:
        out["entries"] = list(sst_entries(path))
    return out


def sst_entries(path: str) -> Iterator[dict[str, Any]]:
    """Every entry of a table in stored order (key asc, seq desc), checksums verified."""
    reader = SSTableReader(path, 0, None, verify=True)
    try:
        for key, seq, kind, value in reader.iter_all_versions():
            e: dict[str, Any] = {
                "key": key.hex(),
                "seq": seq,
                "kind": KIND_NAMES.get(kind, str(kind)),
                "value_size": len(value),
                "value": value.hex(),
            }
            if kind == BLOB_INDEX:
                number, offset, vsize = blob.decode_pointer(value)
                e["blob"] = {"file": number, "offset": offset, "size": vsize}
            yield e
    finally:
        reader.close()


# ---------------------------------------------------------------- verify


def _problem(path: str, e: BaseException, offset: int | None = None) -> dict[str, Any]:
    if isinstance(e, CorruptionError):
        return {"path": e.path or path, "offset": e.offset, "message": str(e)}
    return {"path": path, "offset": offset, "message": f"{type(e).__name__}: {e}"}


def verify_table(path: str, expected_size: int | None = None) -> dict[str, Any]:
    """Check the footer CRC, every block's CRC (meta blocks at open, then each data
    block), each data block's hash index (it leads to every key), and that the blocks
    hold as many entries as the properties say."""
    reader = SSTableReader(path, 0, None, verify=True)
    try:
        size = reader.file_size
        if expected_size is not None and size != expected_size:
            raise CorruptionError(f"file is {size} bytes, the MANIFEST says {expected_size}", path)
        entries = 0
        for i in range(reader.num_blocks):
            blk = reader.block(i)
            try:
                blk.check_index()
            except ValueError as e:
                raise reader.malformed(i, e) from None
            entries += blk.n
        if entries != reader.props.get("entries"):
            raise CorruptionError(
                f"data blocks hold {entries} entries, properties say {reader.props.get('entries')}",
                path,
            )
        return {"blocks": reader.num_blocks + 3, "records": entries, "bytes": size}
    finally:
        reader.close()


def verify_blob(path: str, expected_size: int | None = None) -> dict[str, Any]:
    """Check every record's CRC (blob.scan) and the footer's count."""
    records, _ = blob.scan(path)
    size = os.path.getsize(path)
    if expected_size is not None and size != expected_size:
        raise CorruptionError(f"file is {size} bytes, the MANIFEST says {expected_size}", path)
    return {"blocks": 0, "records": records, "bytes": size}


def verify_wal(path: str) -> dict[str, Any]:
    """Check every fragment's CRC and that every record decodes as a write batch. A
    torn last record (a crash mid-append, or an append in progress) is a warning."""
    reader = LogReader(path, paranoid=True)
    records = 0
    for offset, record in reader:
        decode(record, path, offset)
        records += 1
    out: dict[str, Any] = {"blocks": 0, "records": records, "bytes": os.path.getsize(path)}
    if reader.torn_offset is not None:
        out["warning"] = f"torn last record at offset {reader.torn_offset}"
    return out


def verify_manifest(path: str) -> dict[str, Any]:
    """Check every fragment's CRC, then replay the edits (structure, no overlaps in L1+)."""
    reader = LogReader(path, paranoid=True)
    records = sum(1 for _ in reader)
    replay(path)
    out: dict[str, Any] = {"blocks": 0, "records": records, "bytes": os.path.getsize(path)}
    if reader.torn_offset is not None:
        out["warning"] = f"torn last record at offset {reader.torn_offset}"
    return out


_FileCheck = Callable[[], dict[str, Any]]


def verify_db(dbdir: str) -> dict[str, Any]:
    """Check every checksum of a DB: the MANIFEST, every live table and blob file, and
    every WAL segment. Each file is checked to its first problem; all files are checked.
    `ok` is False when any problem was found (listed in `errors` with path and offset)."""
    dbdir = os.path.abspath(dbdir)
    checked: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    missing: list[tuple[str, int, dict[str, Any]]] = []

    def check(kind: str, path: str, fn: _FileCheck, number: int | None = None) -> None:
        entry: dict[str, Any] = {"kind": kind, "path": path, "ok": True}
        try:
            entry.update(fn())
        except FileNotFoundError as e:
            entry["ok"] = False
            entry["error"] = _problem(path, e)
            if number is not None and kind in ("sst", "blob"):
                missing.append((kind, number, entry))  # maybe deleted by a running DB
            elif kind == "wal":
                entry.update(ok=True, error=None, gone=True)  # flushed and deleted meanwhile
            else:
                errors.append(entry["error"])
        except (CorruptionError, OSError, ValueError, KeyError, struct.error) as e:
            entry["ok"] = False
            entry["error"] = _problem(path, e)
            errors.append(entry["error"])
        if entry.get("warning"):
            warnings.append({"path": path, "message": entry["warning"]})
        checked.append(entry)

    dirs = data_dirs(dbdir)
    if not os.path.exists(os.path.join(dbdir, "CURRENT")):
        raise FileNotFoundError(f"{dbdir} is not a ShaleKV DB (no CURRENT file)")
    try:
        name, state = _load_manifest(dbdir)
    except (CorruptionError, OSError) as e:
        # Without a MANIFEST the tables are unknown; the WAL can still be checked.
        problem = _problem(os.path.join(dbdir, "CURRENT"), e)
        errors.append(problem)
        checked.append({"kind": "manifest", "path": problem["path"], "ok": False, "error": problem})
        for n in _wal_numbers(dbdir):
            p = filenames.wal_path(dbdir, n)
            check("wal", p, lambda p=p: verify_wal(p))  # type: ignore[misc]
        return _verify_summary(dbdir, checked, errors, warnings)
    manifest_path = os.path.join(dbdir, name)
    check("manifest", manifest_path, lambda: verify_manifest(manifest_path))
    for _level, f in state.version.files():
        p = filenames.table_path(dirs, f.dir_index, f.number)
        check("sst", p, lambda p=p, f=f: verify_table(p, f.size), f.number)  # type: ignore[misc]
    for n, b in sorted(state.version.blobs.items()):
        p = filenames.blob_path(dirs, b.dir_index, n)
        check("blob", p, lambda p=p, b=b: verify_blob(p, b.size), n)  # type: ignore[misc]
    for n in _wal_numbers(dbdir):
        p = filenames.wal_path(dbdir, n)
        check("wal", p, lambda p=p: verify_wal(p))  # type: ignore[misc]
    for _level, f in state.version.files():
        for bn in f.blob_refs:
            if bn not in state.version.blobs:
                errors.append(
                    {
                        "path": filenames.table_path(dirs, f.dir_index, f.number),
                        "offset": None,
                        "message": f"table {f.number} points into blob file {bn}, "
                        "which the MANIFEST does not list",
                    }
                )
    if missing:
        # A file the MANIFEST named may have been compacted away by a running DB while
        # we read: it is damage only if the current MANIFEST still lists it.
        try:
            _, now = _load_manifest(dbdir)
            live_tables = {f.number for _, f in now.version.files()}
            live_blobs = set(now.version.blobs)
        except (CorruptionError, OSError):
            live_tables, live_blobs = set(), set()
        for kind, number, entry in missing:
            live = live_tables if kind == "sst" else live_blobs
            if number in live:
                errors.append(entry["error"])
            else:
                entry.update(ok=True, error=None, gone=True)
    return _verify_summary(dbdir, checked, errors, warnings)


def _verify_summary(
    path: str,
    checked: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    warnings: list[dict[str, Any]],
) -> dict[str, Any]:
    done = [c for c in checked if not c.get("gone")]
    return {
        "path": path,
        "ok": not errors,
        "files": len(done),
        "blocks": sum(c.get("blocks", 0) for c in done),
        "records": sum(c.get("records", 0) for c in done),
        "bytes": sum(c.get("bytes", 0) for c in done),
        "checked": checked,
        "errors": errors,
        "warnings": warnings,
    }


def file_kind(path: str) -> str | None:
    """'sst', 'blob', 'wal', 'manifest' or 'db' by name; None if unknown."""
    if os.path.isdir(path):
        return "db"
    base = os.path.basename(path)
    if base.endswith(".sst"):
        return "sst"
    if base.endswith(".blob"):
        return "blob"
    if base.endswith(".log"):
        return "wal"
    if base.startswith("MANIFEST-"):
        return "manifest"
    return None


def verify_path(path: str) -> dict[str, Any]:
    """verify_db for a directory; one file's check (by its name) otherwise."""
    kind = file_kind(path)
    if kind == "db":
        return verify_db(path)
    checks: dict[str, Callable[[str], dict[str, Any]]] = {
        "sst": verify_table,
        "blob": verify_blob,
        "wal": verify_wal,
        "manifest": verify_manifest,
    }
    if kind is None:
        raise ValueError(
            f"cannot tell what {path} is (expected a DB dir, .sst, .blob, .log or MANIFEST-*)"
        )
    entry: dict[str, Any] = {"kind": kind, "path": os.path.abspath(path), "ok": True}
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    try:
        entry.update(checks[kind](path))
    except (CorruptionError, OSError, ValueError, KeyError, struct.error) as e:
        entry["ok"] = False
        entry["error"] = _problem(path, e)
        errors.append(entry["error"])
    if entry.get("warning"):
        warnings.append({"path": path, "message": entry["warning"]})
    return _verify_summary(os.path.abspath(path), [entry], errors, warnings)


__all__ = [
    "KIND_NAMES",
    "blob_records",
    "data_dirs",
    "file_kind",
    "inspect_blob",
    "inspect_db",
    "inspect_manifest",
    "inspect_sst",
    "inspect_wal",
    "sst_entries",
    "verify_blob",
    "verify_db",
    "verify_manifest",
    "verify_path",
    "verify_table",
    "verify_wal",
    "wal_records",
]
