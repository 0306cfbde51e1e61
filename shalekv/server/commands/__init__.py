"""The server's command table: every data command of `shalekv.commands` plus the
server's own (connection, transactions, admin, introspection, pub/sub, blocking)."""

from __future__ import annotations

from shalekv.commands import TABLE
from shalekv.server.commands import (  # noqa: F401  (register)
    admin,
    backup,
    blocking,
    connection,
    introspection,
    pubsub,
    transactions,
)
from shalekv.server.commands.table import SERVER

SERVER_TABLE = {**TABLE, **SERVER}

__all__ = ["SERVER_TABLE"]
