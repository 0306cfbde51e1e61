# `make test` is the one test command: README and .ci/run both call it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean redis-server

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

# The data-type tests compare every command with a real redis-server (Debian's package).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
redis-server:
	@command -v redis-server >/dev/null || { \
		echo "installing redis-server: the reference the differential tests compare with"; \
		$(SUDO) apt-get install -y --no-install-recommends redis-server || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends redis-server; }; }

# The README's first command: a server on 127.0.0.1:7379 with data in ./data.
run: $(STAMP)
	$(VENV)/bin/shalekv server $(ARGS)

test: $(STAMP) redis-server
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check shalekv tests bench
	$(VENV)/bin/ruff format --check shalekv tests bench
	$(VENV)/bin/mypy shalekv

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
