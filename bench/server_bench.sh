#!/usr/bin/env bash
# redis-benchmark against shalekv server, redis-server (plain and AOF everysec) and the
# pure-Python ceiling (bench/ceiling_server.py), issue 5; everything is in
# bench/server_bench.py (see its --help). Run from anywhere:
#   bench/server_bench.sh --quick                 # smoke run
#   bench/server_bench.sh --json /tmp/s.json --write-docs
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" bench/server_bench.py "$@"
