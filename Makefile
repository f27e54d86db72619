# `make test` and `make demo` set everything up on a fresh machine (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: audit audit-strict test test-slow test-all soak demo lint bench bench-memory bench-logship bench-images images test-images system-deps clean

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

# The container tests use the offline images: rebuilt only when their sources changed.
# Without a Docker engine they skip, and say so.
test-images: $(STAMP) system-deps
	@if docker info >/dev/null 2>&1; then \
		PYTHON=$(BIN)/python bash images/build.sh --offline --if-changed; \
	else echo "no Docker engine: the container tests will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Known vulnerabilities in what is installed (the images' dependencies and the tools):
# fails on any. A dependency the service cannot answer for is a warning here and an error
# with `make audit-strict`. pip-audit's requests trusts the same CA bundle as pip.
AUDIT = REQUESTS_CA_BUNDLE=$${REQUESTS_CA_BUNDLE:-$${PIP_CERT:-}} $(BIN)/pip-audit --skip-editable
audit: $(STAMP)
	$(AUDIT)

audit-strict: $(STAMP)
	$(AUDIT) --strict

test: $(STAMP) system-deps lint audit test-images
	$(BIN)/pytest -m "not slow"

# Exit status 5 is pytest's "no test selected": not a failure while no suite is marked slow.
test-slow: $(STAMP) system-deps
	$(BIN)/pytest -m slow || [ $$? -eq 5 ]

# logship for hours at 2,000 lines/s through outages, restarts, kills and a shaped link
# between two network namespaces (root): exactly once, flat resources, plots. Not part of
# `make test`; its 10-minute form runs in `make test-slow`. `make soak SOAK_DURATION=10m`.
SOAK_DURATION ?= 2h
SOAK_OUT ?= benchmarks/results/soak-$(SOAK_DURATION)
soak: $(STAMP)
	$(BIN)/python -m tests.soak.soak --duration $(SOAK_DURATION) --out $(SOAK_OUT)

test-all: $(STAMP) system-deps lint test-images
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/waitfor_bench.py

# ~20 minutes (a 10-minute outage among them); fetches syslog-ng from Debian's packages
# into ~/.cache on first use. `benchmarks/logship_bench.py --quick`: ~3 minutes.
# ~75 s: every kind of target's peak RSS beside wait-for-it, and where it goes
bench-memory: $(STAMP)
	$(BIN)/python benchmarks/waitfor_memory_bench.py

bench-logship: $(STAMP)
	$(BIN)/python benchmarks/logship_bench.py

bench-images: test-images
	$(BIN)/python benchmarks/image_startup_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info .demo
