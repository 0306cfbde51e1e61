"""Output helpers every `shalekv` command group shares: a console for tables and
messages, red errors on stderr, sizes for people."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text


def console() -> Console:
    # Not a terminal (a pipe, a test runner): wide enough that tables never truncate
    # file numbers or keys to an ellipsis.
    if sys.stdout.isatty():
        return Console()
    return Console(width=200, no_color=True)


def err(message: str) -> None:
    Console(stderr=True, width=200 if not sys.stderr.isatty() else None).print(
        Text(message, style="bold red")
    )


def size(n: int | None) -> str:
    """Bytes for people: "512 B", "1.5 MiB"; "-" when unknown."""
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"
