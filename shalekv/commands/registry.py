"""The command table (as Redis's redisCommandTable): name, arity, flags, key positions
and handler, registered by a decorator next to each handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shalekv.commands.reply import OK, Status  # noqa: F401  (handlers import them here)
from shalekv.errors import SYNTAX, ResponseError
from shalekv.types.keyspace import Store, Txn


class Context:
    """One client's state: the store, the selected database, and the transaction the
    current command runs in (a MULTI/EXEC pipeline shares one)."""

    __slots__ = ("store", "db", "txn", "name")

    def __init__(self, store: Store, db: int = 0) -> None:
        self.store = store
        self.db = db
        self.txn: Txn | None = None
        self.name: bytes | None = None

    @property
    def t(self) -> Txn:
        assert self.txn is not None
        return self.txn


Handler = Callable[[Any, list[bytes]], Any]  # Context, or the server's Client


@dataclass(frozen=True)
class Command:
    name: str
    arity: int  # as Redis: N exact, -N at least N (the name counts)
    flags: frozenset[str]
    first_key: int
    last_key: int
    step: int
    handler: Handler
    subcommands: dict[bytes, Command] | None = None  # CLIENT, CONFIG ...: by lowercase name
    # Derived from flags once: the server tests these on every call.
    no_txn: bool = field(init=False)
    readonly: bool = field(init=False)
    no_auth: bool = field(init=False)
    write: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "no_txn", "no_txn" in self.flags)
        object.__setattr__(self, "readonly", "readonly" in self.flags)
        object.__setattr__(self, "no_auth", "no_auth" in self.flags)
        object.__setattr__(self, "write", "write" in self.flags)

    def check_arity(self, n: int) -> None:
        if (self.arity > 0 and n != self.arity) or n < -self.arity:
            raise ResponseError(f"wrong number of arguments for '{self.name}' command")


TABLE: dict[bytes, Command] = {}


def command(
    name: str,
    arity: int,
    flags: str = "",
    first: int = 1,
    last: int = 1,
    step: int = 1,
    table: dict[bytes, Command] | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler; `table` is TABLE (data commands, shared by the embedded API
    and the server) unless given (the server's own commands)."""

    def register(fn: Handler) -> Handler:
        cmd = Command(name, arity, frozenset(flags.split()), first, last, step, fn)
        (TABLE if table is None else table)[name.encode()] = cmd
        return fn

    return register


def container(name: str, table: dict[bytes, Command], flags: str = "") -> Command:
    """A command whose first argument names a subcommand (CLIENT SETNAME ...)."""

    def no_subcommand(ctx: Context, a: list[bytes]) -> Any:
        raise unknown_subcommand(a)

    cmd = Command(name, -2, frozenset(flags.split()), 0, 0, 0, no_subcommand, {})
    table[name.encode()] = cmd
    return cmd


def subcommand(
    parent: Command,
    name: str,
    arity: int,
    flags: str = "",
    first: int = 0,
    last: int = 0,
    step: int = 0,
) -> Callable[[Handler], Handler]:
    """Register `PARENT NAME`; arity counts both words, as Redis's does."""

    def register(fn: Handler) -> Handler:
        full = f"{parent.name}|{name}"
        assert parent.subcommands is not None
        parent.subcommands[name.encode()] = Command(
            full, arity, frozenset(flags.split()), first, last, step, fn
        )
        return fn

    return register


def unknown_subcommand(args: list[bytes]) -> ResponseError:
    return ResponseError(
        f"unknown subcommand '{args[1][:128].decode('utf-8', 'replace')}'. "
        f"Try {args[0].decode('utf-8', 'replace').upper()} HELP."
    )


def unknown(args: list[bytes]) -> ResponseError:
    # As Redis's processCommand: arguments shown while the text is under 128 bytes.
    shown = b""
    for a in args[1:]:
        if len(shown) >= 128:
            break
        shown += b"'" + a[: 128 - len(shown)] + b"' "
    name = args[0][:128].decode("utf-8", "replace")
    return ResponseError(
        f"unknown command '{name}', with args beginning with: {shown.decode('utf-8', 'replace')}"
    )


def lookup(args: list[bytes]) -> Command:
    cmd = TABLE.get(args[0].lower())
    if cmd is None:
        raise unknown(args)
    cmd.check_arity(len(args))
    return cmd


def dispatch(ctx: Context, args: list[bytes]) -> Any:
    """Run one command as its own transaction (or inside ctx's open one)."""
    cmd = lookup(args)
    if ctx.txn is not None:
        return cmd.handler(ctx, args)
    store = ctx.store
    with store.lock:
        t = ctx.txn = Txn(store)
        try:
            r = cmd.handler(ctx, args)
        finally:
            ctx.txn = None
        t.commit()
    return r


def syntax() -> ResponseError:
    return ResponseError(SYNTAX)
