"""Backups, restore and data transfer (issue 6)."""
