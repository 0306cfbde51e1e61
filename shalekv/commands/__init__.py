"""Redis commands: argument parsing and reply shapes over `shalekv.types`.

One command table serves the embedded API (through redis-py's command methods) and the
RESP server: a handler takes the raw argument list (bytes) and returns a RESP-shaped
Python value (bytes, Status, int, float, None, list), never touching encodings.
"""

from __future__ import annotations

from shalekv.commands import geo, hashes, keys, lists, sets, strings, zsets  # noqa: F401  (register)
from shalekv.commands.registry import TABLE, Command, Context, Status, dispatch

__all__ = ["TABLE", "Command", "Context", "Status", "dispatch"]
