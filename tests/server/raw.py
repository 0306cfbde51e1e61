"""A raw RESP connection for byte-for-byte comparisons: requests go out as given, replies
come back as the exact bytes the server sent (hiredis only finds where a reply ends)."""

from __future__ import annotations

import socket

import hiredis


def pack(*args: bytes | str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


class RawClient:
    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.pending = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_replies(self, n: int) -> bytes:
        """The raw bytes of the next n replies (raises socket.timeout if they do not come)."""
        reader = hiredis.Reader()
        raw = self.pending
        reader.feed(raw)
        got = 0
        while True:
            while got < n:
                r = reader.gets()
                if r is False:
                    break
                got += 1
            if got >= n:
                break
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed after {got} of {n} replies: {raw!r}")
            raw += chunk
            reader.feed(chunk)
        # Bytes past the n-th reply stay for the next call.
        consumed = _prefix_len(raw, n)
        self.pending = raw[consumed:]
        return raw[:consumed]

    def call(self, *args: bytes | str | int) -> bytes:
        self.send(pack(*args))
        return self.read_replies(1)

    def read_until_closed(self) -> bytes:
        data = self.pending
        self.pending = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


def _prefix_len(raw: bytes, n: int) -> int:
    """Length of the first n complete replies in raw (binary search on hiredis)."""
    lo, hi = 0, len(raw)
    while lo < hi:
        mid = (lo + hi) // 2
        if _count(raw[:mid]) >= n:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _count(data: bytes) -> int:
    r = hiredis.Reader()
    r.feed(data)
    k = 0
    while r.gets() is not False:
        k += 1
    return k
