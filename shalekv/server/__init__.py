"""The Redis-protocol server (`shalekv server`): codec, connections, server commands."""
