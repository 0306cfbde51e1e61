"""Sets commands: argument parsing and replies (see commands/strings.py for the pattern)."""

from __future__ import annotations
