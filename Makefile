# `make test` and `make demo` set everything up on a fresh machine (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: test test-slow test-all demo lint bench bench-logship images system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

system-deps:
	bash scripts/install-test-deps.sh

# Offline: the base from Debian packages (debootstrap + docker import), the project from
# wheels built here. `bash images/build.sh` builds online from python:3.12-slim instead.
images: $(STAMP)
	PYTHON=$(BIN)/python bash images/build.sh --offline

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) system-deps lint
	$(BIN)/pytest -m "not slow"

# Exit status 5 is pytest's "no test selected": not a failure while no suite is marked slow.
test-slow: $(STAMP) system-deps
	$(BIN)/pytest -m slow || [ $$? -eq 5 ]

test-all: $(STAMP) system-deps lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/waitfor_bench.py

# ~5 minutes; fetches syslog-ng from Debian's packages into ~/.cache on first use.
bench-logship: $(STAMP)
	$(BIN)/python benchmarks/logship_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info .demo
