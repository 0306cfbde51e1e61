"""The reference shalekv.conf: it lists exactly the options of the config table with
their defaults (so the two cannot drift), documents each one, and a server starts
from it."""

from __future__ import annotations

import os
import shutil

import redis

from shalekv.server.config import OPTIONS, ServerConfig
from shalekv.server.resp import split_args
from tests.shalekv_server import shalekv_server

CONF = os.path.join(os.path.dirname(__file__), "..", "..", "shalekv.conf")


def _entries() -> list[tuple[int, str, str]]:
    """(line number, name, value) of every option line, values joined as load_file
    joins them."""
    out = []
    with open(CONF, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            words = split_args(text.encode())
            assert words is not None and len(words) >= 2, f"line {lineno}: {text!r}"
            out.append((lineno, words[0].decode(), " ".join(w.decode() for w in words[1:])))
    return out


def test_conf_lists_every_option_once_with_its_default() -> None:
    entries = _entries()
    names = [name for _, name, _ in entries]
    assert len(names) == len(set(names)), "an option is set twice"
    assert set(names) == set(OPTIONS), (
        f"missing: {sorted(set(OPTIONS) - set(names))}, "
        f"unknown: {sorted(set(names) - set(OPTIONS))}"
    )
    for lineno, name, value in entries:
        assert value == OPTIONS[name].default, f"line {lineno}: {name} {value!r}"


def test_conf_loads_to_the_defaults() -> None:
    loaded, defaults = ServerConfig(), ServerConfig()
    loaded.load_file(CONF)
    assert loaded.values == defaults.values
    assert {n: loaded.show(n) for n in OPTIONS} == {n: defaults.show(n) for n in OPTIONS}


def test_conf_documents_every_option() -> None:
    """Each option line sits under a comment (options may share one, as the TLS
    certificate and key do), with no blank line between."""
    with open(CONF, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    for lineno, name, _ in _entries():
        i = lineno - 2
        while i >= 0 and lines[i] and not lines[i].startswith("#"):
            i -= 1  # another option of the same block
        assert i >= 0 and lines[i].startswith("#"), f"{name} (line {lineno}) has no comment"


def test_server_starts_from_the_conf(tmp_path) -> None:
    """A copy of the file (one value changed, to see that it is read), with port and
    dir given on the command line: the server answers and reports the file's values."""
    conf = tmp_path / "shalekv.conf"
    shutil.copy(CONF, conf)
    text = conf.read_text()
    assert "\nmaxclients 10000\n" in text
    conf.write_text(text.replace("\nmaxclients 10000\n", "\nmaxclients 1234\n"))
    data = str(tmp_path / "data")
    with shalekv_server(data, "--config", str(conf)) as sp:
        c = redis.Redis(port=sp.port)
        try:
            assert c.ping() is True
            assert c.config_get("maxclients") == {"maxclients": "1234"}
            assert c.config_get("appendfsync") == {"appendfsync": "everysec"}
            assert c.config_get("port") == {"port": str(sp.port)}
            assert os.path.samefile(c.config_get("dir")["dir"], data)
        finally:
            c.close()


def test_engine_options_pass_through() -> None:
    cfg = ServerConfig()
    opts = cfg.engine_options()
    assert opts["seek_compaction_bytes"] == 16 << 10 and opts["memtable_size"] == 64 << 20
    assert opts["block_size"] == 16 << 10  # the engine's default (D23)
    cfg.set("seek-compaction-bytes", "0", startup=True)
    cfg.set("memtable-size", "8mb", startup=True)
    cfg.set("block-size", "4kb", startup=True)
    opts = cfg.engine_options()
    assert opts["seek_compaction_bytes"] == 0 and opts["memtable_size"] == 8 << 20
    assert opts["block_size"] == 4 << 10
