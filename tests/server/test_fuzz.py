"""Protocol fuzzing. (1) hypothesis on resp.RequestParser alone: any byte stream, fed in
any split, gives requests or ProtocolError (nothing else, no endless loop), and a valid
stream gives the same requests however it is split. (2) Real sockets: random bytes,
truncated and oversized requests, byte-by-byte sends, abrupt closes, and a pipeline
whose replies are never read: the server pauses reading (its RSS stays bounded), keeps
answering, never crashes and logs no traceback."""

from __future__ import annotations

import random
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shalekv.server.resp import BIG_ARG, ProtocolError, RequestParser
from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess, shalekv_server

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Turn an endless loop into a failure (generous: the inputs are a few KiB)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("the parser did not return")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _feed(
    stream: bytes,
    cuts: list[int],
    authenticated: bool = True,
    max_bulk: int = 512 << 20,
    fast: bool = True,
) -> tuple[list[list[bytes]], ProtocolError | None]:
    """Feed stream split at cuts, taking requests after each piece as the server does."""
    p = RequestParser(max_bulk, fast=fast)
    out: list[list[bytes]] = []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(stream))), len(stream)]
    with _time_limit(10):
        for a, b in zip(bounds, bounds[1:], strict=False):
            p.feed(stream[a:b])
            for _ in range(len(stream) + 2):  # each request consumes at least one byte
                try:
                    r = p.next(authenticated)
                except ProtocolError as e:
                    return out, e
                if r is None:
                    break
                assert r, "empty requests are skipped, never returned"
                assert all(type(x) is bytes for x in r)
                out.append(r)
            else:
                raise AssertionError("next() kept returning requests past the input")
    return out, None


# ---------------------------------------------------------------- valid streams

_arg = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"\r\n", b"*1\r\n", b"$3\r\n", b"\"'", b" "]),
    st.integers(BIG_ARG - 2, BIG_ARG + 70).map(lambda n: b"x" * n),  # the chunked path
)
# inline words: no '*' first, no whitespace or quotes, no NUL (Redis finds the line end
# with strchr: a NUL stalls the request)
_plain = st.binary(min_size=1, max_size=20).filter(
    lambda b: b[0] != 42 and not any(c in b for c in b" \t\r\n\v\f\"'\0")
)


@st.composite
def _request(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """One request's bytes and the arguments it must give ([] for skipped ones)."""
    kind = draw(st.sampled_from(["multibulk", "multibulk", "inline", "empty"]))
    if kind == "multibulk":
        args = draw(st.lists(_arg, min_size=1, max_size=6))
        return pack(*args), args
    if kind == "inline":
        args = draw(st.lists(_plain, min_size=1, max_size=5))
        sep = draw(st.sampled_from([b" ", b"  ", b"\t"]))
        end = draw(st.sampled_from([b"\r\n", b"\n"]))
        return sep.join(args) + end, args
    return draw(st.sampled_from([b"*0\r\n", b"*-1\r\n", b"\r\n", b"\n", b"   \r\n"])), []


_stream = st.lists(_request(), min_size=1, max_size=8)


def _join(reqs: list[tuple[bytes, list[bytes]]]) -> tuple[bytes, list[list[bytes]]]:
    return b"".join(r for r, _ in reqs), [a for _, a in reqs if a]


@FUZZ
@given(_stream, st.lists(st.integers(0, 200_000), max_size=30))
def test_valid_stream_any_split(reqs: list[tuple[bytes, list[bytes]]], cuts: list[int]) -> None:
    data, want = _join(reqs)
    assert _feed(data, []) == (want, None)
    assert _feed(data, cuts) == (want, None)


@FUZZ
@given(_stream, st.integers(0, 100))
def test_valid_stream_byte_by_byte(reqs: list[tuple[bytes, list[bytes]]], start: int) -> None:
    data, want = _join(reqs)
    if len(data) > 5000:  # byte by byte is quadratic on the big arguments
        data, want = _join([r for r in reqs if len(r[0]) < 600])
    assert _feed(data, list(range(start, len(data)))) == (want, None)


@FUZZ
@given(_stream, st.data())
def test_truncated_stream_gives_a_prefix(
    reqs: list[tuple[bytes, list[bytes]]], data: st.DataObject
) -> None:
    stream, want = _join(reqs)
    n = data.draw(st.integers(0, len(stream)))
    cuts = data.draw(st.lists(st.integers(0, n), max_size=10))
    got, err = _feed(stream[:n], cuts)
    assert err is None
    assert got == want[: len(got)]


# ---------------------------------------------------------------- malformed streams

_junk = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [b"*", b"$", b"\r", b"\n", b"\r\n", b"-1", b"0", b"1", b"2", b"3", b"10", b"a", b" ",
             b'"', b"'", b"\\x4", b"2147483647", b"2147483648", b"99999999999999999999", b"+"]
        ),
        max_size=60,
    ).map(b"".join),
)  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data, _ = _join(draw(_stream))
    b = bytearray(data[:3000])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, len(b)))
        if op == "flip" and i < len(b):
            b[i] = draw(st.integers(0, 255))
        elif op == "insert":
            b[i:i] = draw(_junk)
        elif op == "delete":
            del b[i : i + draw(st.integers(1, 10))]
        else:
            del b[i:]
    return bytes(b)


@FUZZ
@given(st.one_of(_junk, _mutated()), st.lists(st.integers(0, 4000), max_size=20), st.booleans())
def test_malformed_streams_raise_only_protocol_error(
    data: bytes, cuts: list[int], authenticated: bool
) -> None:
    got, err = _feed(data, cuts, authenticated, max_bulk=1 << 20)
    if err is not None:
        assert str(err).startswith("Protocol error: ")


@FUZZ
@given(st.one_of(_junk, _mutated()), st.booleans())
def test_malformed_whole_or_byte_by_byte_agree_on_prefix(data: bytes, authenticated: bool) -> None:
    """The requests parsed before any error do not depend on the split (the error
    itself may: Redis too reports a too-long line only once it sees enough bytes)."""
    data = data[:800]
    whole, e1 = _feed(data, [], authenticated)
    split, e2 = _feed(data, list(range(len(data))), authenticated)
    n = min(len(whole), len(split))
    assert whole[:n] == split[:n]
    if e1 is None and e2 is None:
        assert whole == split


# Frames hiredis reads but a Redis request may not hold, and numbers it must refuse.
_odd = st.sampled_from(
    [b"+OK\r\n", b":1\r\n", b"$-1\r\n", b"*1\r\n$1\r\nx\r\n", b"_\r\n", b",1.5\r\n",
     b"#t\r\n", b"=5\r\ntxt:x\r\n", b"%1\r\n+a\r\n+b\r\n", b"~1\r\n+a\r\n", b"$01\r\nx\r\n",
     b"$1\r\nxYZ", b"$+1\r\nx\r\n", b"*01\r\n", b"*99999\r\n", b"-ERR x\r\n", b"(12\r\n"]
)  # fmt: skip


@st.composite
def _odd_stream(draw: st.DrawFn) -> bytes:
    """Valid requests with odd frames spliced in, often in an argument's place."""
    out = []
    for raw, args in draw(_stream):
        if args and raw[:1] == b"*" and draw(st.booleans()):
            i = draw(st.integers(0, len(args) - 1))
            items = [pack(a)[4:] for a in args]  # each argument's `$n` frame
            items[i] = draw(_odd)
            raw = b"*%d\r\n" % len(args) + b"".join(items)
        out.append(raw)
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(_odd))
    return b"".join(out)


@FUZZ
@given(st.one_of(_odd_stream(), _mutated(), _junk), st.lists(st.integers(0, 4000), max_size=6))
def test_hiredis_path_parses_as_the_exact_parser(data: bytes, cuts: list[int]) -> None:
    """The hiredis fast path gives the same requests and the same error, at the same
    point, as the exact parser alone, for any stream and any split."""
    fast, e1 = _feed(data, cuts, fast=True)
    exact, e2 = _feed(data, cuts, fast=False)
    assert fast == exact
    assert (e1 and str(e1)) == (e2 and str(e2))


def test_hiredis_path_takes_a_pipeline_at_once() -> None:
    p = RequestParser()
    p.feed(pack(b"SET", b"k", b"v") + pack(b"GET", b"k") + pack(b"GET", b"k")[:-3])
    assert p.next() == [b"SET", b"k", b"v"]
    assert len(p.ready) == 1  # hiredis parsed the second too; the third is incomplete
    assert p.next() == [b"GET", b"k"]
    assert p.next() is None


def test_hiredis_reader_is_reused_only_when_it_holds_nothing() -> None:
    """A short read taken whole leaves its reader for the next read; one ending in a
    partial request (hiredis has parsed part of an array) must not be reused: the
    re-fed bytes would continue that array."""
    p = RequestParser()
    p.feed(pack(b"SET", b"k", b"v"))
    assert p.next() == [b"SET", b"k", b"v"]
    kept = p.reader
    assert kept is not None
    assert p.next() is None
    second = pack(b"SET", b"k2", b"v2")
    p.feed(second[:13])  # `*3` and `$3 SET`: hiredis has read them, has_data() is False
    assert p.next() is None
    assert p.reader is None  # dropped (the request check would also catch its output)
    p.feed(second[13:] + pack(b"GET", b"k2"))
    assert p.next() == [b"SET", b"k2", b"v2"]
    assert p.next() == [b"GET", b"k2"]
    assert p.next() is None
    assert p.reader is not None and p.reader is not kept


def test_hiredis_path_skips_huge_array_headers() -> None:
    """hiredis allocates a list as long as an array header says (freeing 2**31 slots
    takes seconds): such headers never reach it."""
    p = RequestParser()
    p.feed(b"*1\r\n$4\r\nPING\r\n*2147483647\r\n")
    assert p.next() == [b"PING"]
    assert p.next() is None
    p = RequestParser()
    p.feed(b"*2\r\n$3\r\nGET\r\n*2147483647\r\n")
    with pytest.raises(ProtocolError, match="expected '\\$', got '\\*'"):
        p.next()


@pytest.mark.parametrize("marker", [b"*", b"%", b"~", b">", b"|"])
def test_hiredis_path_skips_huge_nested_aggregates(marker: bytes) -> None:
    """Nor do RESP3 map/set/push/attribute headers nested in a request (hiredis
    allocates for them too): the exact parser refuses them without allocating."""
    import tracemalloc

    p = RequestParser()
    p.feed(b"*1\r\n" + marker + b"20000000\r\n")
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="expected '\\$'"):
            p.next()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated parsing one short request"


# ---------------------------------------------------------------- real sockets


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shalekv_server(str(tmp_path_factory.mktemp("fuzz") / "data")) as sp:
        yield sp
        _check_alive(sp)


def _check_alive(sp: ServerProcess) -> None:
    assert sp.proc.poll() is None, "the server died:\n" + sp.log_text()
    with RawClient(sp.port) as c:
        assert c.call("PING") == b"+PONG\r\n"
    log = sp.log_text()
    assert "Traceback" not in log, log


def _exchange(port: int, data: bytes, quiet: float = 0.5) -> bytes:
    """Send data, then read until the server closes or stays quiet for `quiet` s."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b"<reset>"
        s.settimeout(quiet)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got + b"<closed>"
                got += chunk
        except TimeoutError:
            return got
        except ConnectionResetError:
            return got + b"<reset>"


MALFORMED: list[Any] = [
    b"*2147483647\r\n",
    b"*2147483648\r\n",
    b"*1\r\n$999999999999\r\n",
    b"*1\r\n$-5\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0x10\r\n",
    b"*1\r\n:1\r\n",
    b"*-9\r\nPING\r\n",
    b"*abc\r\n",
    b"$5\r\nhellx\r\n",
    b'SET k "unterminated\r\n',
    b"SET k 'a'b\r\n",
    b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING",
    b"\x00\x01\x02\r\nPING\r\n",  # Redis: strchr stops at the NUL, the request stalls
    b"PING\x00\r\n" + b"x" * 70000,  # ... until it passes 64 KiB: too big inline request
    b"*" + b"9" * 70000,
    b"x" * 70000,
    b"*1\r\n$" + b"1" * 70000,
    b"PING\r\n" * 5 + b"*1\r\n$-1\r\n" + b"PING\r\n",
]


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_like_redis(fuzz_server: ServerProcess, redis_port: int, data: bytes) -> None:
    assert _exchange(fuzz_server.port, data) == _exchange(redis_port, data)


def test_random_bytes(fuzz_server: ServerProcess) -> None:
    rng = random.Random(5)
    for i in range(60):
        n = rng.choice([1, 10, 100, 1000, 20000])
        if i % 2:
            data = bytes(rng.getrandbits(8) for _ in range(n))
        else:  # bytes the parser cares about, more often
            data = bytes(rng.choice(b"*$\r\n0123456789-+ \"'\\xa") for _ in range(n))
        _exchange(fuzz_server.port, data, quiet=0.05)
    _check_alive(fuzz_server)


def test_truncated_requests_then_close(fuzz_server: ServerProcess) -> None:
    full = pack("SET", "trunc", "v" * 100) + pack("RPUSH", "trunc:l", "a", "b")
    for n in range(0, len(full), 7):
        with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=10) as s:
            s.sendall(full[:n])
    _check_alive(fuzz_server)


def test_many_tiny_sends(fuzz_server: ServerProcess) -> None:
    reqs = [pack("INCR", "tiny"), b"INCR tiny\r\n", pack("GET", "tiny")] * 40
    data = b"".join(reqs)
    with RawClient(fuzz_server.port) as c:
        c.call("DEL", "tiny")
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            c.send(data[i : i + 1])
        replies = c.read_replies(len(reqs))
    want = []
    for i in range(40):
        want += [b":%d\r\n" % (2 * i + 1), b":%d\r\n" % (2 * i + 2)]
        want.append(b"$%d\r\n%d\r\n" % (len(str(2 * i + 2)), 2 * i + 2))
    assert replies == b"".join(want)


def test_send_and_close_at_once(fuzz_server: ServerProcess) -> None:
    burst = pack("INCR", "burst") * 2000
    for linger in (False, True):
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=10)
            if linger:  # RST: the server may be writing replies when the peer is gone
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            s.sendall(burst)
            s.close()
    _check_alive(fuzz_server)
    with RawClient(fuzz_server.port) as c:
        n = int(c.call("GET", "burst")[4:-2] or b"0")
    assert 0 <= n <= 20 * 2000


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_unread_pipeline_memory_is_bounded(fuzz_server: ServerProcess) -> None:
    """A client pipelines 3000 GETs of a 100 KB value and never reads: buffering all the
    replies would take 300 MB (one 64 KiB read alone holds 200 MB of them); the server
    must encode a bounded batch, then stop reading until the client catches up."""
    pid = fuzz_server.proc.pid
    value = 100_000
    with RawClient(fuzz_server.port) as c:
        c.call("SET", "big", "b" * value)
        base = _rss_mb(pid)
        hog = socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=10)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        hog.settimeout(3)
        sent = 0
        try:
            for _ in range(3):
                hog.sendall(pack("GET", "big") * 1000)
                sent += 1000
        except TimeoutError:
            pass  # the server stopped reading: fine too
        peak = _rss_mb(pid)
        for _ in range(10):  # let the server do whatever it still would
            time.sleep(0.2)
            peak = max(peak, _rss_mb(pid))
        assert c.call("PING") == b"+PONG\r\n"  # others are served meanwhile
        assert peak - base < 120, (base, peak, sent)
        # reading resumes the server: at least every fully sent request is answered
        hog.settimeout(30)
        want = sent * (len(b"$%d\r\n" % value) + value + 2)
        got = 0
        while got < want:
            data = hog.recv(1 << 20)
            assert data, f"closed after {got} of {want} bytes"
            got += len(data)
        hog.close()
        c.call("DEL", "big")
    _check_alive(fuzz_server)
