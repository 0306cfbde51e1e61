"""The server's own commands (connection, transactions, admin, pub/sub, blocking),
registered here on top of the data commands `shalekv.commands.TABLE` holds.

Handlers take the `Client` (a Context with the connection's state). Flag `no_txn`: the
command does not read or write keys, so it runs without a store transaction.
"""

from __future__ import annotations

from shalekv.commands.registry import Command

SERVER: dict[bytes, Command] = {}
