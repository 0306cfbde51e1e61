"""Malformed and unusual requests sent raw to ShaleKV and to redis-server 7.0: the bytes
each one sends until it closes the connection must be equal (replies to what came
before the bad request, then `-ERR Protocol error: ...`, then the close)."""

from __future__ import annotations

import pytest

from tests.server.raw import RawClient, pack
from tests.shalekv_server import ServerProcess

# Each case: the chunks sent, one sendall each. Cases without a protocol error end
# with QUIT, so that both servers close.
CASES: dict[str, list[bytes]] = {
    "bad_multibulk_length": [b"*abc\r\n"],
    "multibulk_length_with_sign": [b"*+1\r\n$4\r\nPING\r\n"],
    "multibulk_length_leading_zero": [b"*01\r\n$4\r\nPING\r\n"],
    "multibulk_length_over_int_max": [b"*2147483648\r\n"],
    "multibulk_length_over_int64": [b"*99999999999999999999\r\n"],
    "dollar_expected": [b"*1\r\nfoo\r\n"],
    "dollar_expected_binary_byte": [b"*1\r\n\xffoo\r\n"],
    "dollar_expected_got_cr": [b"*1\r\n\r\n"],
    "dollar_expected_in_second_arg": [b"*2\r\n$4\r\nECHO\r\n:1\r\n"],
    "invalid_bulk_length": [b"*1\r\n$abc\r\n"],
    "negative_bulk_length": [b"*1\r\n$-1\r\n"],
    "bulk_length_over_max": [b"*1\r\n$536870913\r\n"],
    "bulk_length_leading_zero": [b"*1\r\n$04\r\nPING\r\n"],
    "unbalanced_double_quote": [b'SET "a b\r\n'],
    "unbalanced_single_quote": [b"SET 'a b\r\n"],
    "closing_quote_not_followed_by_space": [b'ECHO "a"b\r\n'],
    "inline_quotes_and_escapes": [
        b'ECHO "a\\x41\\x4a\\n\\t\\"z" \r\n',
        b"ECHO 'it\\'s' \"\\xzz\\q\"\r\n",
        b"  PING   \r\n",
        b'ECHO ""\r\nQUIT\r\n',
    ],
    "inline_lf_only": [b"PING\nECHO x\nQUIT\n"],
    "inline_unknown_command": [b"NOPE a 'b c'\r\nQUIT\r\n"],
    "empty_and_zero_requests": [b"*0\r\n\r\n\r\n*-1\r\n*-5\r\n \r\nPING\r\n*0\r\nQUIT\r\n"],
    "blank_lines_then_bad": [b"\r\n\n\r\n*x\r\n"],
    "bulk_split_across_sends": [
        *[bytes([b]) for b in pack("SET", "k", "v" * 40)],
        *[bytes([b]) for b in pack("GET", "k")],
        b"QUIT\r\n",
    ],
    "big_bulk_in_chunks": [
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$70000\r\n",
        *[b"x" * 7000 for _ in range(10)],
        b"\r\n",
        pack("STRLEN", "k"),
        pack("QUIT"),
    ],
    "bulk_terminator_not_checked": [b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nQUIT\r\n"],
    "pipelined_before_bad": [
        pack("SET", "a", "1") + pack("INCR", "a") + b"PING\r\n" + pack("GET", "a") + b"*1\r\n$x\r\n"
    ],
    "pipelined_before_unbalanced": [pack("PING") + b'ECHO "oops\r\n' + pack("PING")],
    "huge_count_then_bad_header": [b"*1000000\r\n$4\r\nPING\r\n*1\r\n"],
    "too_big_inline_request": [b"A" * (64 * 1024 + 10)],
    "too_big_mbulk_count_string": [b"*" + b"1" * (64 * 1024 + 10)],
    "too_big_bulk_count_string": [b"*1\r\n$" + b"1" * (64 * 1024 + 10)],
    # Redis finds line ends with strchr: a NUL before the CR/LF stalls the request
    # until the 64 KiB limit.
    "nul_in_inline": [b"PING\r\n\x00\x01\x02\r\nPING\r\n", b"x" * (64 * 1024 + 10)],
    "nul_in_mbulk_count": [b"*1\x00\r\n$4\r\nPING\r\n", b"x" * (64 * 1024 + 10)],
    "nul_in_bulk_count": [pack("PING") + b"*1\r\n$\x004\r\nPING\r\n", b"x" * (64 * 1024 + 10)],
    "nul_instead_of_dollar": [b"*1\r\n\x00\r\n", b"y" * (64 * 1024 + 10)],
    "nul_after_line_end": [b"ECHO a\r\n\x00", b"\r\nPING\r\n", b"x" * (64 * 1024 + 10)],
    "error_inside_multi_then_bad": [
        pack("MULTI") + pack("SET", "a", "1") + pack("NOPE") + pack("EXEC") + b"*1\r\n$\r\n"
    ],
}


def exchange(port: int, chunks: list[bytes]) -> bytes:
    with RawClient(port) as c:
        for chunk in chunks:
            c.send(chunk)
        return c.read_until_closed()


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_bytes_until_close(case: str, server: ServerProcess, redis_port: int) -> None:
    for port in (server.port, redis_port):
        with RawClient(port) as c:
            c.call("FLUSHALL")
    ours = exchange(server.port, CASES[case])
    theirs = exchange(redis_port, CASES[case])
    assert ours == theirs, f"{case}\n  ours:  {ours!r}\n  redis: {theirs!r}"


def test_server_alive_after_cases(server: ServerProcess) -> None:
    """Every bad request closes only its own connection."""
    with RawClient(server.port) as c:
        assert c.call("PING") == b"+PONG\r\n"
