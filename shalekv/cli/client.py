"""`shalekv cli`: a small redis-cli for machines that have none.

Copies redis-cli 7.0 (src/redis-cli.c) where a script or a person would notice: the
reply rendering (cliFormatReplyTTY when stdout is a terminal, cliFormatReplyRaw
otherwise), the prompt (`127.0.0.1:7379[1](TX)> `), quoting (sdssplitargs), the
interactive extras (history, `N command` repeats, `connect`, `clear`, `quit`) and the
exit codes (0 even for an error reply unless -e). One deliberate difference: a failure
to connect or a lost connection exits 2, not 1, so that a script can tell it from -e.

Replies are parsed here rather than by hiredis.Reader: hiredis returns a status and a
bulk string both as bytes, a set as a list, a double as a float and drops the verbatim
format, so the renderings redis-cli gives them could not be rebuilt from its output.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from shalekv.server.resp import split_args

DEFAULT_PORT = 7379
HISTORY_FILE = ".shalekv_cli_history"
HISTORY_ENV = "SHALEKV_CLI_HISTFILE"  # as REDISCLI_HISTFILE; /dev/null: no history file
AUTH_ENV = "SHALEKV_CLI_AUTH"  # as REDISCLI_AUTH: a password kept out of `ps`

EXIT_OK = 0
EXIT_ERROR_REPLY = 1  # only with -e, as redis-cli
EXIT_CONNECTION = 2


# ------------------------------------------------------------------ replies

# Reply kinds, named after hiredis's REDIS_REPLY_* types.
STATUS, ERROR, INTEGER, STRING, VERB, NIL, DOUBLE, BOOL, BIGNUM = (
    "status", "error", "integer", "string", "verb", "nil", "double", "bool", "bignum"
)  # fmt: skip
ARRAY, MAP, SET, PUSH, ATTR = "array", "map", "set", "push", "attr"


@dataclass(slots=True)
class Reply:
    """One RESP2/RESP3 reply. `value`: bytes for strings, errors, doubles and big
    numbers (the text as sent); int for integers and booleans; None for nil; a list
    for aggregates (maps flat: key, value, key, value ... as in hiredis)."""

    kind: str
    value: bytes | int | list[Reply] | None = None


class ReplyProtocolError(Exception):
    """The server sent something that is not RESP."""


_SCALAR_KINDS = {
    ord("+"): STATUS,
    ord("-"): ERROR,
    ord(","): DOUBLE,
    ord("("): BIGNUM,
}
_AGGREGATE_KINDS = {
    ord("*"): ARRAY,
    ord("%"): MAP,
    ord("~"): SET,
    ord(">"): PUSH,
    ord("|"): ATTR,
}
_BULK_KINDS = {ord("$"): STRING, ord("="): VERB, ord("!"): ERROR}


class _Frame:
    """An aggregate being parsed and how many elements it still needs."""

    __slots__ = ("reply", "elements", "due")

    def __init__(self, reply: Reply, due: int) -> None:
        self.reply = reply
        self.elements: list[Reply] = reply.value  # type: ignore[assignment]
        self.due = due


class ReplyParser:
    """Sans-IO: feed bytes, take whole replies. Resumable (a stack of the aggregates
    being filled), so a large reply arriving in many reads is parsed once.

    RESP3 attributes (`|`) are parsed and dropped: redis-cli 7.0 cannot show them
    either (hiredis rejects them)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._stack: list[_Frame] = []  # the aggregates being filled, innermost last
        self._done: deque[Reply] = deque()

    def feed(self, data: bytes) -> None:
        self._buf += data
        self._parse()

    def get(self) -> Reply | None:
        """The next whole reply, or None until more bytes are fed."""
        return self._done.popleft() if self._done else None

    def _parse(self) -> None:
        buf, pos, stack = self._buf, self._pos, self._stack
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            t = buf[pos]
            line = bytes(buf[pos + 1 : nl])
            value: Reply
            try:
                if t in _BULK_KINDS:
                    n = int(line)
                    if n < 0:
                        value, pos = Reply(NIL), nl + 2
                    else:
                        end = nl + 2 + n
                        if len(buf) < end + 2:
                            break
                        data = bytes(buf[nl + 2 : end])
                        pos = end + 2
                        kind = _BULK_KINDS[t]
                        if kind == VERB:
                            data = data[4:]  # "txt:" (hiredis keeps the format apart)
                        value = Reply(kind, data)
                elif t in _AGGREGATE_KINDS:
                    n = int(line)
                    pos = nl + 2
                    kind = _AGGREGATE_KINDS[t]
                    if n < 0:
                        value = Reply(NIL)
                    elif n == 0:
                        value = Reply(kind, [])
                    else:
                        stack.append(_Frame(Reply(kind, []), n * 2 if kind in (MAP, ATTR) else n))
                        continue
                elif t in _SCALAR_KINDS:
                    value, pos = Reply(_SCALAR_KINDS[t], line), nl + 2
                elif t == ord(":"):
                    value, pos = Reply(INTEGER, int(line)), nl + 2
                elif t == ord("#"):
                    value, pos = Reply(BOOL, 1 if line == b"t" else 0), nl + 2
                elif t == ord("_"):
                    value, pos = Reply(NIL), nl + 2
                else:
                    # hiredis's text, which redis-cli prints on a bad type byte
                    raise ReplyProtocolError(f'Protocol error, got "{chr(t)}" as reply type byte')
            except ValueError:
                raise ReplyProtocolError("Protocol error, bad length") from None
            # Attach the finished value to its parent; finished parents in turn.
            while True:
                if not stack:
                    if value.kind != ATTR:
                        self._done.append(value)
                    break
                top = stack[-1]
                if value.kind != ATTR:
                    top.elements.append(value)
                    top.due -= 1
                if top.due:
                    break
                stack.pop()
                value = top.reply
        if pos == len(buf) or pos > 1 << 16:
            del buf[:pos]
            pos = 0
        self._pos = pos


def pack(args: Iterable[bytes]) -> bytes:
    """A request as a RESP multibulk (what redisAppendCommandArgv writes)."""
    items = list(args)
    out = [b"*%d\r\n" % len(items)]
    for a in items:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


# ------------------------------------------------------------------ rendering

_REPR_ESCAPES = {
    ord("\\"): b"\\\\",
    ord('"'): b'\\"',
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    ord("\a"): b"\\a",
    ord("\b"): b"\\b",
}
_REPR = [_REPR_ESCAPES.get(c, bytes([c]) if 32 <= c < 127 else b"\\x%02x" % c) for c in range(256)]


def repr_bytes(s: bytes) -> bytes:
    """Redis's sdscatrepr: quoted, with C escapes and \\xHH for what isprint rejects."""
    return b'"' + b"".join([_REPR[c] for c in s]) + b'"'


def _text(r: Reply) -> bytes:
    return r.value if isinstance(r.value, bytes) else b""


def _int(r: Reply) -> int:
    return r.value if isinstance(r.value, int) else 0


def _elements(r: Reply) -> list[Reply]:
    return r.value if isinstance(r.value, list) else []


def _is_multiline_tty(r: Reply) -> bool:
    """cliIsMultilineValueTTY: a map value that renders on several lines starts on a
    new line, so that its numbering lines up."""
    els = _elements(r)
    if r.kind in (ARRAY, SET, PUSH):
        return len(els) > 1 or (len(els) == 1 and _is_multiline_tty(els[0]))
    if r.kind == MAP:
        return len(els) > 2 or (len(els) == 2 and _is_multiline_tty(els[1]))
    return False


_EMPTY = {ARRAY: b"(empty array)\n", MAP: b"(empty hash)\n", SET: b"(empty set)\n"}
_EMPTY_PUSH = b"(empty push)\n"
_NUMSEP = {SET: b"~", MAP: b"#"}


def format_tty(r: Reply, prefix: bytes = b"") -> bytes:
    """redis-cli's cliFormatReplyTTY: `(integer) 1`, `"bulk"`, `1) ...` numbered and
    indented aggregates, `1# key => value` maps, `1~` sets, `(double) 1.5`."""
    kind = r.kind
    if kind == ERROR:
        return b"(error) " + _text(r) + b"\n"
    if kind == STATUS or kind == VERB:
        return _text(r) + b"\n"
    if kind == STRING:
        return repr_bytes(_text(r)) + b"\n"
    if kind == INTEGER:
        return b"(integer) %d\n" % _int(r)
    if kind == DOUBLE:
        return b"(double) " + _text(r) + b"\n"
    if kind == BIGNUM:  # redis-cli 7.2; 7.0 exits with "Unknown reply type: 13"
        return b"(big number) " + _text(r) + b"\n"
    if kind == NIL:
        return b"(nil)\n"
    if kind == BOOL:
        return b"(true)\n" if r.value else b"(false)\n"
    els = _elements(r)
    if not els:
        return _EMPTY.get(kind, _EMPTY_PUSH)
    count = len(els) // 2 if kind == MAP else len(els)
    idxlen = len(str(count))
    sub = prefix + b" " * (idxlen + 2)
    sep = _NUMSEP.get(kind, b")")
    out: list[bytes] = []
    i = 0
    while i < len(els):
        human = (i // 2 if kind == MAP else i) + 1
        # the first element's number follows the parent's; the others get the prefix
        out.append((prefix if i else b"") + b"%*d" % (idxlen, human) + sep + b" ")
        out.append(format_tty(els[i], sub))
        if kind == MAP:
            i += 1
            out[-1] = out[-1][:-1] + b" => "
            if _is_multiline_tty(els[i]):
                out.append(b"\n" + sub)
            out.append(format_tty(els[i], sub))
        i += 1
    return b"".join(out)


def format_raw(r: Reply, mb_delim: bytes = b"\n") -> bytes:
    """redis-cli's cliFormatReplyRaw (stdout not a terminal): bare values, aggregates
    flattened one element per line, map entries as `key value`, nil as nothing."""
    kind = r.kind
    if kind == NIL:
        return b""
    if kind == ERROR:
        return _text(r) + b"\n"
    if kind in (STATUS, STRING, VERB, DOUBLE, BIGNUM):
        return _text(r)
    if kind == INTEGER:
        return b"%d" % _int(r)
    if kind == BOOL:
        return b"(true)" if r.value else b"(false)"
    els = _elements(r)
    if kind == MAP:
        return mb_delim.join(
            format_raw(els[i], mb_delim) + b" " + format_raw(els[i + 1], mb_delim)
            for i in range(0, len(els), 2)
        )
    return mb_delim.join(format_raw(e, mb_delim) for e in els)


def format_invalidate_tty(r: Reply) -> bytes:
    """cliFormatInvalidateTTY: client-side caching invalidations on one line."""
    keys = _elements(_elements(r)[1])
    return b"-> invalidate: " + b", ".join(b"'" + _text(k) + b"'" for k in keys) + b"\n"


def _is_invalidate(r: Reply) -> bool:
    els = _elements(r)
    return (
        r.kind == PUSH
        and len(els) == 2
        and els[0].kind == STRING
        and _text(els[0]).startswith(b"invalidate")
        and els[1].kind == ARRAY
    )


def raw_output_command(argv: list[bytes]) -> bool:
    """Commands whose text reply redis-cli prints as is even on a terminal (INFO,
    CLIENT LIST ...): the `output_raw` list of cliSendCommand."""
    n = len(argv)
    cmd = argv[0].lower()
    sub = argv[1].lower() if n >= 2 else b""
    return (
        cmd in (b"info", b"lolwut")
        or (cmd == b"debug" and sub in (b"htstats", b"htstats-key", b"client-eviction"))
        or (cmd == b"memory" and sub in (b"malloc-stats", b"doctor"))
        or (cmd == b"cluster" and n == 2 and sub in (b"nodes", b"info"))
        or (cmd == b"client" and sub in (b"list", b"info"))
        or (cmd == b"latency" and n == 3 and sub == b"graph")
        or (cmd == b"latency" and n == 2 and sub == b"doctor")
    )


def is_sensitive(argv: list[bytes]) -> bool:
    """isSensitiveCommand: lines that carry a password stay out of the history file."""
    low = [a.lower() for a in argv]
    n = len(low)
    if low[0] == b"auth":
        return True
    if n > 1 and low[:2] == [b"acl", b"setuser"]:
        return True
    if n > 2 and low[:2] == [b"config", b"set"]:
        return low[2] in (b"masterauth", b"masteruser", b"requirepass")
    if n > 4 and low[0] == b"hello":
        j = 2
        while j < n:
            more = n - 1 - j
            if low[j] == b"auth" and more >= 2:
                return True
            if low[j] == b"setname" and more:
                j += 2
                continue
            return False
    return False


# ------------------------------------------------------------------ connection


class ConnectionLost(Exception):
    """The server closed the connection or the socket failed."""


class Connection:
    """One blocking socket (TCP, Unix or TLS) and a ReplyParser."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = ReplyParser()

    def send(self, args: list[bytes]) -> None:
        try:
            self.sock.sendall(pack(args))
        except OSError as e:
            raise ConnectionLost(e.strerror or str(e)) from None

    def read(self) -> Reply:
        while True:
            r = self.parser.get()
            if r is not None:
                return r
            try:
                data = self.sock.recv(1 << 16)
            except OSError as e:
                raise ConnectionLost(e.strerror or str(e)) from None
            if not data:
                raise ConnectionLost("Server closed the connection")
            try:
                self.parser.feed(data)
            except ReplyProtocolError as e:
                raise ConnectionLost(str(e)) from None

    def call(self, *args: bytes) -> Reply:
        """A request and its reply (push messages in between are skipped)."""
        self.send(list(args))
        while True:
            r = self.read()
            if r.kind != PUSH:
                return r

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------------ options


@dataclass
class Options:
    """What `shalekv cli` was asked; the names follow redis-cli's flags."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    socket_path: str | None = None  # -s
    password: str | None = None  # -a
    user: str | None = None  # --user
    db: int = 0  # -n
    resp3: bool = False  # -3
    resp2: bool = False  # -2
    repeat: int = 1  # -r (negative: forever)
    interval: float = 0.0  # -i seconds
    stdin_arg: bool = False  # -x: last argument read from stdin
    errcode: bool = False  # -e: exit 1 on an error reply
    raw: bool | None = None  # --raw / --no-raw; None: raw unless stdout is a terminal
    show_pushes: bool | None = None  # None: when stdout is a terminal
    tls: bool = False
    sni: str | None = None
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure: bool = False
    no_auth_warning: bool = False


@dataclass
class _State:
    dbnum: int = 0  # the DB the connection is on
    input_dbnum: int = 0  # the DB wanted (-n, SELECT)
    pre_multi_dbnum: int = 0
    in_multi: bool = False
    resp3: bool = False
    interactive: bool = False
    shutdown: bool = False
    last_kind: str = ""
    exit_code: int = EXIT_OK


class Cli:
    """A session: the connection, the DB/MULTI state the prompt shows, the output."""

    def __init__(
        self, opts: Options, out: BinaryIO | None = None, err: TextIO | None = None
    ) -> None:
        self.opts = opts
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr
        tty = self.out.isatty()
        self.tty_output = not opts.raw if opts.raw is not None else tty  # OUTPUT_STANDARD
        self.show_pushes = tty if opts.show_pushes is None else opts.show_pushes
        self.conn: Connection | None = None
        self.st = _State(input_dbnum=opts.db, resp3=opts.resp3 and not opts.resp2)

    # -- connecting

    def address(self) -> str:
        """formatAddr: host:port, IPv6 hosts in brackets."""
        if self.opts.socket_path:
            return self.opts.socket_path
        host = self.opts.host
        return f"[{host}]:{self.opts.port}" if ":" in host else f"{host}:{self.opts.port}"

    def prompt(self) -> str:
        """cliRefreshPrompt: `127.0.0.1:7379[1](TX)> `; `not connected> ` without one."""
        if self.conn is None:
            return "not connected> "
        p = f"shalekv {self.opts.socket_path}" if self.opts.socket_path else self.address()
        if self.st.dbnum:
            p += f"[{self.st.dbnum}]"
        if self.st.in_multi:
            p += "(TX)"
        return p + "> "

    def _open_socket(self) -> socket.socket:
        o = self.opts
        sock: socket.socket
        if o.socket_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(o.socket_path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((o.host, o.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if o.tls:
            ctx = ssl.create_default_context(cafile=o.cacert)
            if o.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if o.cert:
                ctx.load_cert_chain(o.cert, o.key)
            try:
                sock = ctx.wrap_socket(sock, server_hostname=o.sni or o.host)
            except (ssl.SSLError, OSError) as e:
                sock.close()
                raise _TLSError(str(e)) from None
        return sock

    def connect(self, force: bool = False, quiet: bool = False) -> bool:
        """cliConnect: socket, then AUTH, SELECT and HELLO 3 as asked. False (and why,
        unless quiet) if there is no connection."""
        if self.conn is not None and not force:
            return True
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            self.st.dbnum = 0
            self.st.in_multi = False
        try:
            sock = self._open_socket()
        except _TLSError as e:
            if not quiet:
                self._error(f"Could not negotiate a TLS connection: {e}")
            return False
        except OSError as e:
            if not quiet:
                reason = e.strerror or str(e)
                self._error(f"Could not connect to {self.address()}: {reason}")
            return False
        self.conn = Connection(sock)
        # A failed AUTH, SELECT or HELLO is reported and the session goes on, as in
        # redis-cli 7.0: the command then gets the server's own error (NOAUTH ...).
        try:
            self._auth() and self._select() and self._switch_proto()
        except ConnectionLost as e:
            self._error(f"Error: {e}")
            self.conn.close()
            self.conn = None
            return False
        return True

    def _auth(self) -> bool:
        o = self.opts
        if o.password is None or self.conn is None:
            return True
        args = [b"AUTH"] + ([o.user.encode()] if o.user else []) + [o.password.encode()]
        r = self.conn.call(*args)
        if r.kind == ERROR:
            self._error("AUTH failed: " + _text(r).decode(errors="replace"))
            return False
        return True

    def _select(self) -> bool:
        if self.st.input_dbnum == self.st.dbnum or self.conn is None:
            return True
        r = self.conn.call(b"SELECT", b"%d" % self.st.input_dbnum)
        if r.kind == ERROR:
            msg = _text(r).decode(errors="replace")
            self._error(f"SELECT {self.st.input_dbnum} failed: {msg}")
            return False
        self.st.dbnum = self.st.input_dbnum
        return True

    def _switch_proto(self) -> bool:
        if not self.st.resp3 or self.conn is None:
            return True
        r = self.conn.call(b"HELLO", b"3")
        if r.kind == ERROR:
            self._error("HELLO 3 failed: " + _text(r).decode(errors="replace"))
            return False
        return True

    def _error(self, msg: str) -> None:
        self.err.write(msg + "\n")
        self.err.flush()

    # -- replies

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def _render(self, r: Reply, verbatim: bool) -> bytes:
        """cliFormatReply."""
        if verbatim:
            return format_raw(r)
        if self.tty_output:
            return format_tty(r)
        return format_raw(r) + b"\n"

    def _print_push(self, r: Reply) -> None:
        """cliPushHandler: out-of-band RESP3 pushes, shown when stdout is a terminal."""
        if self.show_pushes:
            if self.tty_output and _is_invalidate(r):
                self._write(format_invalidate_tty(r))
            else:
                self._write(self._render(r, False))

    def _read_reply(self, verbatim: bool, pushes_are_replies: bool = False) -> Reply:
        """cliReadReply: the next reply, printed (pushes before it go to _print_push)."""
        assert self.conn is not None
        while True:
            r = self.conn.read()
            if r.kind == PUSH and not pushes_are_replies:
                self._print_push(r)
                continue
            break
        self.st.last_kind = r.kind
        if not self.st.interactive and self.opts.errcode and r.kind == ERROR:
            self._error(_text(r).decode(errors="replace"))
            raise _ExitNow(EXIT_ERROR_REPLY)
        self._write(self._render(r, verbatim))
        return r

    # -- commands

    def send_command(self, argv: list[bytes], repeat: int = 1) -> None:
        """cliSendCommand: send, read and print; follow SELECT/MULTI/EXEC/RESET for the
        prompt; stay reading after MONITOR and SUBSCRIBE. Raises ConnectionLost."""
        assert self.conn is not None
        cmd = argv[0].lower()
        verbatim = raw_output_command(argv)
        if cmd == b"shutdown":
            self.st.shutdown = True
        monitor = cmd == b"monitor"
        pubsub = cmd in (b"subscribe", b"psubscribe", b"ssubscribe")
        while repeat < 0 or repeat > 0:
            repeat -= 1
            self.conn.send(argv)
            if monitor:
                self._follow(verbatim, until_error=True)
                return
            if pubsub:
                if self.tty_output:
                    self._write(b"Reading messages... (press Ctrl-C to quit)\n")
                self._follow(verbatim, until_error=True)
                continue
            try:
                self._read_reply(verbatim)
            except ConnectionLost:
                if self.st.shutdown:  # SHUTDOWN: the server went away, as asked
                    self.conn.close()
                    self.conn = None
                    return
                raise
            self._track(cmd, argv)
            if self.opts.interval:
                time.sleep(self.opts.interval)

    def _follow(self, verbatim: bool, until_error: bool) -> None:
        """MONITOR and pub/sub mode: print every reply and push until an error or ^C."""
        while True:
            self._read_reply(verbatim, pushes_are_replies=True)
            if until_error and self.st.last_kind == ERROR:
                return

    def _track(self, cmd: bytes, argv: list[bytes]) -> None:
        st, ok, n = self.st, self.st.last_kind != ERROR, len(argv)
        if cmd == b"select" and n == 2 and ok:
            try:
                st.input_dbnum = st.dbnum = int(argv[1])
            except ValueError:
                pass
        elif cmd == b"auth" and n in (2, 3):
            try:
                self._select()
            except ConnectionLost:
                pass
        elif cmd == b"multi" and n == 1 and ok:
            st.in_multi = True
            st.pre_multi_dbnum = st.dbnum
        elif cmd == b"exec" and n == 1 and st.in_multi:
            st.in_multi = False
            if st.last_kind in (ERROR, NIL):
                st.input_dbnum = st.dbnum = st.pre_multi_dbnum
        elif cmd == b"discard" and n == 1 and ok:
            st.in_multi = False
            st.input_dbnum = st.dbnum = st.pre_multi_dbnum
        elif cmd == b"reset" and n == 1 and ok:
            st.in_multi = False
            st.dbnum = st.input_dbnum = 0
            st.resp3 = False
        elif cmd == b"hello" and n >= 2 and ok and argv[1] in (b"2", b"3"):
            st.resp3 = argv[1] == b"3"

    def issue(self, argv: list[bytes], repeat: int = 1) -> bool:
        """issueCommandRepeat: (re)connect if needed, then send_command. False if the
        connection failed or was lost (the message is printed)."""
        if argv[0].lower() in (b"help", b"?"):
            self.help(argv[1:])
            return True
        if self.conn is None and not self.connect(force=True):
            return False
        try:
            self.send_command(argv, repeat)
        except ConnectionLost as e:
            self._error(f"Error: {e}")
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return False
        return True

    def help(self, args: list[bytes]) -> None:
        """`help` and `help <command>` (from COMMAND DOCS on the server)."""
        if not args:
            self._write(_GENERIC_HELP.encode())
            return
        if self.conn is None and not self.connect(force=True, quiet=True):
            self._write(b"Not connected: no help for commands.\n")
            return
        assert self.conn is not None
        try:
            r = self.conn.call(b"COMMAND", b"DOCS", b" ".join(args).replace(b" ", b"|"))
        except ConnectionLost as e:
            self._error(f"Error: {e}")
            self.conn = None
            return
        els = _elements(r)
        if r.kind == ERROR or not els:
            self._write(b"No help for " + b" ".join(args) + b"\n")
            return
        name = _text(els[0]).upper().replace(b"|", b" ")
        doc = _elements(els[1])
        fields = {_text(doc[i]): doc[i + 1] for i in range(0, len(doc) - 1, 2)}
        out = [b"\n  " + name + b"\n"]
        for label in (b"summary", b"since", b"group"):
            if label in fields:
                out.append(b"  " + label + b": " + _text(fields[label]) + b"\n")
        self._write(b"".join(out) + b"\n")

    # -- modes

    def one_shot(self, argv: list[bytes]) -> int:
        """A command from the command line: run it (-r times), print, exit."""
        self.st.interactive = False
        if not self.connect():
            return EXIT_CONNECTION
        try:
            ok = self.issue(argv, self.opts.repeat)
        except _ExitNow as e:
            return e.code
        return EXIT_OK if ok else EXIT_CONNECTION

    def repl(self, lines: Callable[[str], str | None] | None = None) -> int:
        """The interactive prompt; `lines(prompt)` returns the next line or None at
        the end. Default: readline with history when stdin is a terminal, plain lines
        (no prompt, no history) otherwise, as linenoise does."""
        self.st.interactive = True
        self.connect()
        history: _History | None = None
        if lines is None:
            if sys.stdin.isatty():
                history = _History(self)
                lines = history.input
            else:
                lines = _stdin_lines
        while True:
            try:
                line = lines(self.prompt())
            except KeyboardInterrupt:  # ^C at the prompt leaves, as in redis-cli
                self._write(b"\n")
                return EXIT_OK
            if line is None:
                return EXIT_OK
            if not line.strip():
                continue
            words = split_args(line.encode("utf-8", "surrogateescape"))
            if words is None:
                self._write(b"Invalid argument(s)\n")
                if history:
                    history.add(line)
                continue
            if not words:
                continue
            repeat, skip = 1, 0
            if len(words) > 1 and _is_int(words[0]):
                repeat, skip = int(words[0]), 1
                if repeat <= 0:
                    self._write(b"Invalid repeat command option value.\n")
                    continue
            argv = words[skip:]
            if history and not is_sensitive(argv):
                history.add(line)
            low = argv[0].lower()
            if low in (b"quit", b"exit"):
                return EXIT_OK
            if len(argv) == 3 and low == b"connect":
                self.opts.host = argv[1].decode()
                self.opts.port = int(argv[2]) if _is_int(argv[2]) else 0
                self.opts.socket_path = None
                self.connect(force=True)
                continue
            if len(argv) == 1 and low == b"clear":
                self._write(b"\x1b[H\x1b[2J")
                continue
            start = time.monotonic()
            try:
                self.issue(argv, repeat)
            except KeyboardInterrupt:
                # ^C ends MONITOR / pub/sub mode: a fresh connection, back to the prompt
                self._write(b"\n")
                self.connect(force=True)
                continue
            elapsed = time.monotonic() - start
            if elapsed >= 0.5 and self.tty_output:
                self._write(b"(%.2fs)\n" % elapsed)


class _TLSError(Exception):
    pass


class _ExitNow(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _is_int(b: bytes) -> bool:
    try:
        int(b)
    except ValueError:
        return False
    return True


def _stdin_lines(prompt: str) -> str | None:
    line = sys.stdin.buffer.readline()
    if not line:
        return None
    return line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")


_GENERIC_HELP = """\
shalekv cli: a small Redis client for ShaleKV (and any Redis server).
Type a command as in redis-cli, with "quotes" and \\x escapes:
      "help <command>" for help on <command>
      "N <command>" to run it N times
      "connect <host> <port>" to connect elsewhere, "clear" to clear the screen
      "quit" to exit
"""


@dataclass
class _History:
    """readline with a history file, written after every line as linenoise does.
    Lines with a password (AUTH ...) are never added."""

    cli: Cli
    path: str | None = None
    commands: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = history_path()
        try:
            import readline
        except ImportError:  # pragma: no cover - Python without readline
            self.readline = None
            return
        self.readline = readline
        readline.set_auto_history(False)
        readline.set_history_length(1000)
        if self.path:
            try:
                readline.read_history_file(self.path)
            except OSError:
                pass
        readline.set_completer(self._complete)
        readline.set_completer_delims(" \t")
        readline.parse_and_bind("tab: complete")

    def input(self, prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:
            return None

    def add(self, line: str) -> None:
        if self.readline is None:
            return
        self.readline.add_history(line)
        if self.path:
            try:
                self.readline.write_history_file(self.path)
            except OSError:
                pass

    def _complete(self, text: str, state: int) -> str | None:
        """Command names (from COMMAND LIST, asked once) for the first word."""
        assert self.readline is not None
        if self.readline.get_line_buffer()[: self.readline.get_begidx()].strip():
            return None
        if not self.commands and self.cli.conn is not None:
            try:
                r = self.cli.conn.call(b"COMMAND", b"LIST")
            except ConnectionLost:
                return None
            self.commands = sorted(_text(e).decode(errors="replace") for e in _elements(r))
        upper = text.isupper()
        matches = [c for c in self.commands if c.startswith(text.lower())]
        if state < len(matches):
            return matches[state].upper() if upper else matches[state]
        return None


def history_path() -> str | None:
    """~/.shalekv_cli_history, or $SHALEKV_CLI_HISTFILE (/dev/null: none)."""
    env = os.environ.get(HISTORY_ENV)
    if env is not None:
        return None if env == "/dev/null" else os.path.expanduser(env)
    home = os.path.expanduser("~")
    return os.path.join(home, HISTORY_FILE) if home != "~" else None


def run(opts: Options, command: list[str]) -> int:
    """`shalekv cli`: the exit code. With a command, run it once (one-shot); without,
    the interactive prompt."""
    if opts.resp2 and opts.resp3:
        sys.stderr.write("Options -2 and -3 are mutually exclusive.\n")
        return EXIT_CONNECTION
    if opts.password is None:
        opts.password = os.environ.get(AUTH_ENV)
    elif not opts.no_auth_warning:
        sys.stderr.write(
            "Warning: Using a password with '-a' option on the command line interface "
            "may not be safe.\n"
        )
    argv = [a.encode("utf-8", "surrogateescape") for a in command]
    if opts.stdin_arg and argv:
        argv.append(sys.stdin.buffer.read())
    cli = Cli(opts)
    try:
        if argv:
            return cli.one_shot(argv)
        return cli.repl()
    except KeyboardInterrupt:  # ^C in one-shot MONITOR/SUBSCRIBE: the shell's 128+2
        return 130
    except BrokenPipeError:  # `shalekv cli monitor | head`: quiet, as a C tool is
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
