"""The server's own commands (connection, transactions, admin, pub/sub, blocking),
registered here on top of the data commands `shalekv.commands.TABLE` holds.

Handlers take the `Client` (a Context with the connection's state). Flag `no_txn`: the
command does not read or write keys, so it runs without a store transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shalekv.commands.registry import Command

SERVER: dict[bytes, Command] = {}

# Called with each new Server (before it listens): modules that need per-server state
# or hooks (pub/sub hub, blocked clients, metrics) install them here.
SERVER_INIT: list[Callable[[Any], None]] = []
