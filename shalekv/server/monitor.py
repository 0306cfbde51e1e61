"""MONITOR (Redis's replicationFeedMonitors): every command a client runs is sent to
the monitoring clients as one status line, after the command ran, as Redis 7.0's call().

Administrative commands are not shown (too dangerous to log, as Redis's CMD_ADMIN) and
credentials are replaced by "(redacted)" (Redis 7.0's redactClientCommandArgument).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shalekv.commands.reply import Status

if TYPE_CHECKING:
    from shalekv.commands.registry import Command
    from shalekv.server.app import Server
    from shalekv.server.client import Client

# Commands (and subcommands, as "parent|sub") Redis 7.0 flags admin or skip_monitor:
# COMMAND's flags on redis-server 7.0.15. Our table's "admin" flag counts too.
HIDDEN = frozenset(
    """
    acl|deluser acl|dryrun acl|getuser acl|list acl|load acl|log acl|save acl|setuser
    acl|users bgrewriteaof bgsave client|kill client|list client|no-evict client|pause
    client|unblock client|unpause cluster|addslots cluster|addslotsrange cluster|bumpepoch
    cluster|count-failure-reports cluster|delslots cluster|delslotsrange cluster|failover
    cluster|flushslots cluster|forget cluster|meet cluster|replicas cluster|replicate
    cluster|reset cluster|saveconfig cluster|set-config-epoch cluster|setslot cluster|slaves
    config|get config|resetstat config|rewrite config|set debug failover latency|doctor
    latency|graph latency|histogram latency|history latency|latest latency|reset module|list
    module|load module|loadex module|unload monitor pfdebug pfselftest psync replconf
    replicaof save shutdown slaveof slowlog|get slowlog|len slowlog|reset sync
    eval eval_ro evalsha evalsha_ro fcall fcall_ro
    """.split()
)

REDACTED = b"(redacted)"

# sdscatrepr's escapes; other bytes outside 0x20..0x7e become \xHH
_ESCAPES = {
    ord('"'): b'\\"',
    ord("\\"): b"\\\\",
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    7: b"\\a",
    8: b"\\b",
}
_REPR = [_ESCAPES.get(i, bytes([i]) if 0x20 <= i <= 0x7E else b"\\x%02x" % i) for i in range(256)]
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def quote(arg: bytes) -> bytes:
    """An argument as Redis's sdscatrepr writes it: in double quotes, escaped."""
    if all(ch in _PLAIN for ch in arg):
        return b'"' + arg + b'"'
    return b'"' + b"".join([_REPR[ch] for ch in arg]) + b'"'


def redact(cmd_name: str, args: list[bytes]) -> list[bytes]:
    """Arguments with credentials hidden, as Redis 7.0 shows AUTH and HELLO ... AUTH."""
    if cmd_name == "auth":
        return [args[0]] + [REDACTED] * (len(args) - 1)
    if cmd_name == "hello":
        out = list(args)
        i = 2
        while i < len(out):
            opt = out[i].upper()
            if opt == b"AUTH" and i + 2 < len(out):
                out[i + 1] = out[i + 2] = REDACTED
                i += 3
            elif opt == b"SETNAME" and i + 1 < len(out):
                i += 2
            else:
                break
        return out
    return args


def line(c: Client, cmd_name: str, args: list[bytes], now: float | None = None) -> Status:
    """`<unix time> [<db> <addr>] "arg" ...` as replicationFeedMonitors formats it."""
    now = time.time() if now is None else now
    secs = int(now)
    usecs = int((now - secs) * 1_000_000)
    addr = c.addr
    unix = c.server.config["unixsocket"]
    if unix and ":" not in addr:
        addr = "unix:" + unix  # Redis: "[db unix:<path>]" for Unix-socket clients
    head = b"%d.%06d [%d %s] " % (secs, usecs, c.db, addr.encode())
    return Status(head + b" ".join([quote(a) for a in redact(cmd_name, args)]))


class Monitors:
    """The clients in MONITOR mode, fed from the server's after-call hook."""

    def __init__(self) -> None:
        self.clients: dict[int, Client] = {}

    def after_call(
        self, c: Client, cmd: Command, args: list[bytes], dur: int, failed: bool
    ) -> None:
        if not self.clients or cmd.name in HIDDEN or "admin" in cmd.flags:
            return
        msg = line(c, cmd.name, args)
        for m in list(self.clients.values()):
            if m is c and c.server.loop is not None:
                # a monitor's own command: Redis writes its reply first, then the line
                c.server.after_flush(m.push, msg)
            else:
                m.push(msg)

    def stop(self, c: Client) -> None:
        if self.clients.pop(c.id, None) is not None:
            c.flags = c.flags.replace("O", "")
            if not self.clients:
                c.server.set_hook(self.after_call, False)


def start(c: Client) -> bool:
    """Make c a monitor; False if it already is one."""
    mons: Monitors = c.server.extensions["monitor"]
    if c.id in mons.clients:
        return False
    mons.clients[c.id] = c
    c.server.set_hook(mons.after_call, True)
    if "O" not in c.flags:
        c.flags += "O"
    return True


def install(server: Server) -> None:
    """SERVER_INIT: the monitor list, its feed, and its end (disconnect, RESET)."""
    mons = Monitors()
    server.extensions["monitor"] = mons
    server.add_hook(mons.after_call, on=False)  # on while there are monitors
    server.extensions.setdefault("on_disconnect", []).append(mons.stop)
    server.extensions.setdefault("on_reset", []).append(mons.stop)
