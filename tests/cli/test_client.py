"""`shalekv cli` prints what redis-cli prints: its one-shot output is compared with
redis-cli's for the same commands, against a real redis-server and against ShaleKV,
raw (stdout not a terminal) and formatted (--no-raw, and a real pseudo-terminal),
RESP2 and RESP3. Plus the parser on split input, exit codes, pub/sub mode, piped
input and the interactive prompt with its history file."""

from __future__ import annotations

import io
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from typer.testing import CliRunner

from shalekv.cli import client
from shalekv.cli.main import app
from tests.certs import self_signed
from tests.redis_server import free_port, redis_server
from tests.shalekv_server import shalekv_server

REDIS_CLI = shutil.which("redis-cli")
pytestmark = pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")
CLI = [sys.executable, "-m", "shalekv.cli.main", "cli"]
runner = CliRunner()


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server; DEBUG PROTOCOL gives every RESP3 type to render."""
    tmp = str(tmp_path_factory.mktemp("redis"))
    with redis_server(tmp, "--enable-debug-command", "yes") as port:
        yield port


@pytest.fixture(scope="module")
def our_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with shalekv_server(str(tmp_path_factory.mktemp("shalekv") / "data")) as sp:
        yield sp.port


def ours(port: int, *args: str) -> tuple[bytes, int]:
    """`shalekv cli -p port args` in process (stdout is not a terminal): output, code."""
    r = runner.invoke(app, ["cli", "-p", str(port), *args])
    return r.stdout_bytes, r.exit_code


def theirs(port: int, *args: str) -> tuple[bytes, int]:
    assert REDIS_CLI is not None
    p = subprocess.run(
        [REDIS_CLI, "-p", str(port), *args], capture_output=True, timeout=30, check=False
    )
    return p.stdout, p.returncode


def flush(port: int) -> None:
    with redis.Redis(port=port) as c:
        c.flushall()


# Deterministic commands over every reply shape: status, bulk (with bytes to quote),
# nil, integer, double, empty and nested arrays, maps, sets, errors.
SEQUENCE: list[list[str]] = [
    ["set", "s", "hello"],
    ["get", "s"],
    ["get", "nokey"],
    ["incr", "n"],
    ["incrbyfloat", "f", "1.5"],
    ["rpush", "l", "a", "b c", '\x01"q\\\n', ""],
    ["lrange", "l", "0", "-1"],
    ["lrange", "nolist", "0", "-1"],
    ["mget", "s", "nokey", "n"],
    ["hset", "h", "f1", "v1", "f2", "v2"],
    ["hgetall", "h"],
    ["hgetall", "nohash"],
    ["sadd", "st", "x"],
    ["smembers", "st"],
    ["smembers", "noset"],
    ["zadd", "z", "1.5", "m", "2", "n"],
    ["zrange", "z", "0", "-1", "withscores"],
    ["zscore", "z", "m"],
    ["zscore", "z", "nomember"],
    ["exists", "s", "l", "nokey"],
    ["type", "l"],
    ["echo", "two\nlines"],
    ["ping"],
    ["foo", "bar"],
    ["lpush", "s", "x"],
    ["get"],
    ["command", "info", "get"],
    ["del", "s", "l", "h", "st", "z", "n", "f"],
]
MODES = [[], ["--no-raw"], ["-3"], ["-3", "--no-raw"]]


def _compare(port: int, mode: list[str], commands: list[list[str]]) -> None:
    flush(port)
    mine = [ours(port, *mode, *c) for c in commands]
    flush(port)
    reference = [theirs(port, *mode, *c) for c in commands]
    for c, m, t in zip(commands, mine, reference, strict=True):
        assert m == t, f"{mode} {c}"


@pytest.mark.parametrize("mode", MODES, ids=["raw", "tty", "raw-resp3", "tty-resp3"])
def test_same_output_as_redis_cli_on_redis_server(redis_port: int, mode: list[str]) -> None:
    _compare(redis_port, mode, SEQUENCE)


@pytest.mark.parametrize("mode", MODES, ids=["raw", "tty", "raw-resp3", "tty-resp3"])
def test_same_output_as_redis_cli_on_shalekv(our_port: int, mode: list[str]) -> None:
    _compare(our_port, mode, SEQUENCE)


@pytest.mark.parametrize("mode", MODES, ids=["raw", "tty", "raw-resp3", "tty-resp3"])
def test_every_resp3_type_like_redis_cli(redis_port: int, mode: list[str]) -> None:
    """DEBUG PROTOCOL: double, verbatim, set, map (of booleans), null, true/false.
    (bignum and attrib are left out: redis-cli 7.0 fails on them.)"""
    kinds = ["string", "integer", "double", "null", "array", "set", "map", "verbatim"]
    kinds += ["true", "false", "push"]
    _compare(redis_port, mode, [["debug", "protocol", k] for k in kinds])


def test_info_and_client_list_printed_as_is(redis_port: int) -> None:
    """INFO, CLIENT INFO ... are printed raw even when formatted (redis-cli's
    output_raw list): same line structure as redis-cli's."""
    for mode in ([], ["--no-raw"], ["-3", "--no-raw"]):
        m, _ = ours(redis_port, *mode, "info", "keyspace")
        t, _ = theirs(redis_port, *mode, "info", "keyspace")
        assert m == t
        m, _ = ours(redis_port, *mode, "client", "info")
        t, _ = theirs(redis_port, *mode, "client", "info")
        assert m.split(b" ")[2:4] == t.split(b" ")[2:4]  # laddr, fd; id/addr differ
        assert m.endswith(b"\n") and not m.startswith(b'"')


class _Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def _pty_output(argv: list[str]) -> bytes:
    """What a command writes to a pseudo-terminal (so it formats as for a person)."""
    m, s = pty.openpty()
    proc = subprocess.Popen(argv, stdout=s, stderr=s, stdin=subprocess.DEVNULL)
    os.close(s)
    out = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([m], [], [], 1)
            if not r:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(m, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            out += data
    finally:
        os.close(m)
        proc.wait(10)
    return out.replace(b"\r\n", b"\n")


def test_terminal_output_shows_pushes_like_redis_cli(redis_port: int) -> None:
    """On a terminal, a RESP3 push arriving before a reply is printed first (redis-cli's
    push handler); rendering as on redis-cli's terminal."""
    assert REDIS_CLI is not None
    for args in (["debug", "protocol", "push"], ["debug", "protocol", "map"]):
        expected = _pty_output([REDIS_CLI, "-p", str(redis_port), "-3", *args])
        out = _Terminal()
        cli = client.Cli(client.Options(port=redis_port, resp3=True), out=out)
        assert cli.one_shot([a.encode() for a in args]) == 0
        assert out.getvalue() == expected


def test_real_terminal_rendering(our_port: int) -> None:
    """The console script on a pseudo-terminal renders as redis-cli does."""
    assert REDIS_CLI is not None
    flush(our_port)
    with redis.Redis(port=our_port) as c:
        c.rpush("tl", "x", "y")
        c.hset("th", mapping={"a": "1"})
    for args in (["lrange", "tl", "0", "-1"], ["-3", "hgetall", "th"], ["nosuchcmd"]):
        mine = _pty_output([*CLI, "-p", str(our_port), *args])
        assert mine == _pty_output([REDIS_CLI, "-p", str(our_port), *args])


def test_parser_on_split_input() -> None:
    """Replies fed one byte at a time come out whole and typed; attributes are
    dropped; a bad type byte is a protocol error."""
    wire = (
        b"*3\r\n$1\r\na\r\n%1\r\n+k\r\n~2\r\n,1.5\r\n#t\r\n_\r\n"
        b"|1\r\n+ttl\r\n:3\r\n=7\r\ntxt:abc\r\n"
        b">2\r\n$7\r\nmessage\r\n*0\r\n$-1\r\n*-1\r\n(12345678901234567890\r\n-ERR x\r\n"
    )
    p = client.ReplyParser()
    got = []
    for i in range(len(wire)):
        p.feed(wire[i : i + 1])
        while (r := p.get()) is not None:
            got.append(r)
    whole = client.ReplyParser()
    whole.feed(wire)
    assert [whole.get() for _ in got] == got
    assert whole.get() is None
    kinds = [r.kind for r in got]
    assert kinds == ["array", "verb", "push", "nil", "nil", "bignum", "error"]
    arr = got[0]
    assert isinstance(arr.value, list)
    assert [e.kind for e in arr.value] == ["string", "map", "nil"]
    m = arr.value[1]
    assert isinstance(m.value, list) and m.value[1].kind == "set"
    assert [e.value for e in m.value[1].value] == [b"1.5", 1]  # type: ignore[union-attr]
    assert got[1].value == b"abc"  # the verbatim format is not part of the text
    with pytest.raises(client.ReplyProtocolError):
        client.ReplyParser().feed(b"?x\r\n")


def test_large_reply_in_many_reads(our_port: int) -> None:
    """A reply larger than one recv is parsed whole (the resumable parser)."""
    flush(our_port)
    with redis.Redis(port=our_port) as c:
        c.rpush("big", *[b"v%d" % i for i in range(20000)])
    out, code = ours(our_port, "lrange", "big", "0", "-1")
    assert code == 0
    assert out.split(b"\n")[:-1] == [b"v%d" % i for i in range(20000)]


def test_exit_codes_follow_redis_cli(redis_port: int) -> None:
    """0 even for an error reply; -e: 1 and the error on stderr (as redis-cli)."""
    assert ours(redis_port, "nosuchcmd")[1] == theirs(redis_port, "nosuchcmd")[1] == 0
    mine = subprocess.run(
        [*CLI, "-p", str(redis_port), "-e", "nosuchcmd"], capture_output=True, timeout=30
    )
    assert REDIS_CLI is not None
    ref = subprocess.run(
        [REDIS_CLI, "-p", str(redis_port), "-e", "nosuchcmd"], capture_output=True, timeout=30
    )
    assert (mine.returncode, mine.stdout, mine.stderr) == (1, ref.stdout, ref.stderr)
    assert ref.returncode == 1


def test_connection_refused_exits_2() -> None:
    port = free_port()  # nothing listens there
    p = subprocess.run([*CLI, "-p", str(port), "ping"], capture_output=True, timeout=30)
    assert p.returncode == 2
    assert p.stdout == b""
    assert f"Could not connect to 127.0.0.1:{port}: Connection refused" in p.stderr.decode()


def test_auth_select_and_no_auth(tmp_path) -> None:
    """-a authenticates (a wrong password is reported, and the command gets the
    server's NOAUTH, as with redis-cli); -n selects the DB."""
    with shalekv_server(str(tmp_path / "data"), "--requirepass", "pw") as sp:
        with redis.Redis(port=sp.port, password="pw") as c:
            c.select(2)
            c.set("k2", "in db 2")
        out, code = ours(sp.port, "--no-auth-warning", "-a", "pw", "-n", "2", "get", "k2")
        assert (out, code) == (b"in db 2\n", 0)
        out, code = ours(sp.port, "get", "k2")
        assert out.startswith(b"NOAUTH") and code == 0
        r = runner.invoke(app, ["cli", "-p", str(sp.port), "-a", "bad", "get", "k2"])
        assert r.exit_code == 0
        assert "AUTH failed: WRONGPASS" in r.stderr
        assert "Warning: Using a password" in r.stderr
        assert r.stdout_bytes.startswith(b"NOAUTH")


def test_piped_commands_like_redis_cli(our_port: int) -> None:
    """No command and stdin not a terminal: one command per line, redis-cli quoting,
    no prompt; the output is redis-cli's."""
    assert REDIS_CLI is not None
    script = (
        b'set "a b" "x\\ty"\nget "a b"\n  \n3 incr cnt\nget \'it\\\'s\'\n'
        b'rpush q 1 2\nlrange q 0 -1\nset "unbalanced\nselect 1\nget cnt\nfoo\n'
    )
    outputs = []
    for argv in ([*CLI, "-p", str(our_port)], [REDIS_CLI, "-p", str(our_port)]):
        flush(our_port)
        p = subprocess.run(argv, input=script, capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        outputs.append(p.stdout)
    assert outputs[0] == outputs[1]
    assert b"Invalid argument(s)\n" in outputs[0]


def _wait_for(fd: int, needle: bytes, buf: bytearray, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while needle not in buf:
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not seen in {bytes(buf)!r}")
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                raise AssertionError(f"closed before {needle!r}: {bytes(buf)!r}") from None


def _default_sigint() -> None:
    """In the child: ^C back to its default. A suite started in the background by a
    non-interactive shell inherits SIGINT ignored, and Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_subscribe_prints_messages_until_interrupted(our_port: int) -> None:
    """One-shot SUBSCRIBE stays reading (redis-cli's pub/sub mode) until ^C."""
    proc = subprocess.Popen(
        [*CLI, "-p", str(our_port), "subscribe", "news"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )
    try:
        assert proc.stdout is not None
        buf = bytearray()
        fd = proc.stdout.fileno()
        _wait_for(fd, b"subscribe\nnews\n1\n", buf)
        with redis.Redis(port=our_port) as c:
            for body in ("first", "second"):
                assert c.publish("news", body) == 1
        _wait_for(fd, b"message\nnews\nfirst\nmessage\nnews\nsecond\n", buf)
        assert bytes(buf) == b"subscribe\nnews\n1\nmessage\nnews\nfirst\nmessage\nnews\nsecond\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_monitor_prints_commands(redis_port: int, our_port: int) -> None:
    for port in (redis_port, our_port):
        proc = subprocess.Popen(
            [*CLI, "-p", str(port), "monitor"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_default_sigint,
        )
        try:
            assert proc.stdout is not None
            buf = bytearray()
            _wait_for(proc.stdout.fileno(), b"OK\n", buf)
            with redis.Redis(port=port) as c:
                c.set("watched", "v")
            _wait_for(proc.stdout.fileno(), b'" "watched" "v"', buf)  # SET as sent
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_interactive_prompt_and_history(our_port: int, tmp_path) -> None:
    """On a terminal: the `host:port> ` prompt follows SELECT and MULTI, replies are
    formatted, and the history file gets the lines but never a password."""
    flush(our_port)
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "dumb"}
    env.pop(client.HISTORY_ENV, None)
    m, s = pty.openpty()
    proc = subprocess.Popen([*CLI, "-p", str(our_port)], stdin=s, stdout=s, stderr=s, env=env)
    os.close(s)
    buf = bytearray()
    prompt = f"127.0.0.1:{our_port}".encode()
    try:
        _wait_for(m, prompt + b"> ", buf)
        for line, expect, next_prompt in (
            (b"set k 'v 1'", b"OK", b"> "),
            (b"get k", b'"v 1"', b"> "),
            (b"select 3", b"OK", b"[3]> "),
            (b"multi", b"OK", b"[3](TX)> "),
            (b"incr c", b"QUEUED", b"[3](TX)> "),
            (b"exec", b"1) (integer) 1", b"[3]> "),
            (b"auth secret-pw", b"(error)", b"[3]> "),
            (b"2 ping", b"PONG\r\nPONG", b"[3]> "),
        ):
            del buf[:]
            os.write(m, line + b"\n")
            _wait_for(m, expect, buf)
            _wait_for(m, b"\n" + prompt + next_prompt, buf)
        os.write(m, b"quit\n")
        assert proc.wait(20) == 0
    finally:
        os.close(m)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    history = (tmp_path / client.HISTORY_FILE).read_text()
    assert "set k 'v 1'" in history and "2 ping" in history
    assert "secret-pw" not in history


def test_sensitive_commands() -> None:
    assert client.is_sensitive([b"AUTH", b"pw"])
    assert client.is_sensitive([b"config", b"set", b"requirepass", b"x"])
    assert client.is_sensitive([b"hello", b"3", b"auth", b"u", b"p"])
    assert not client.is_sensitive([b"hello", b"3", b"setname", b"n"])
    assert not client.is_sensitive([b"get", b"auth"])


def test_tls(tmp_path) -> None:
    """--tls with --cacert verifies the server; --insecure skips that; without
    either a self-signed server is refused (exit 2). Output as redis-cli's."""
    cert, key = self_signed(tmp_path)
    tls_port = free_port()
    tls_args = ["--tls-port", str(tls_port), "--tls-cert-file", str(cert)]
    with shalekv_server(str(tmp_path / "data"), *tls_args, "--tls-key-file", str(key)):
        assert ours(tls_port, "--tls", "--cacert", str(cert), "hset", "th", "a", "1") == (
            b"1\n",
            0,
        )
        for args in (["--cacert", str(cert)], ["--insecure"]):
            mine = ours(tls_port, "--tls", *args, "-3", "--no-raw", "hgetall", "th")
            assert mine == theirs(tls_port, "--tls", *args, "-3", "--no-raw", "hgetall", "th")
            assert mine == (b'1# "a" => "1"\n', 0)
        r = runner.invoke(app, ["cli", "-p", str(tls_port), "--tls", "ping"])
        assert r.exit_code == 2
        assert "Could not negotiate a TLS connection" in r.stderr
