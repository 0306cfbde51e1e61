"""The Redis data model encoded onto engine keys (docs/format/encoding.md).

Kept import-light: engine worker processes import the compaction filter from here.
"""
