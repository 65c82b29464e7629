# Two commands that work on a fresh machine with Python 3.11+:
#   make demo   set up .venv and run the demo
#   make test   set up .venv and run ruff, mypy --strict and pytest with coverage

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := dev

# Tests that need a database read these; the servers answer locally and in CI.
export AINISA_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export AINISA_TEST_MYSQL_URL ?= mysql+pymysql://root@127.0.0.1:3306/test
export AINISA_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

# The demo's store and options: make demo DEMO_ARGS="--mode enforce --reset"
DEMO_DB ?= sqlite:///demo.db
DEMO_ARGS ?=
# The browser tests drive Debian's Chromium (never a browser Playwright downloads).
CHROMIUM := /usr/bin/chromium

.PHONY: help demo test lint typecheck pytest browser clean bench

help:
	@echo "make demo   run the demo (sets up $(VENV))"
	@echo "make test   ruff, mypy --strict, pytest with coverage (sets up $(VENV))"
	@echo "make bench  the benchmark (under 10 minutes); tables in docs/performance.md"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Installs Debian's chromium when it is missing and we may (root with apt-get); otherwise
# says why the browser tests will skip (outside CI) or fail (in CI).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing Debian's chromium for the browser tests..."; \
			apt-get update -qq >/dev/null && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				chromium >/dev/null || echo "WARNING: could not install chromium"; \
		else \
			echo "WARNING: $(CHROMIUM) is missing and cannot be installed here (needs root" \
				"and apt-get): the browser tests will not run"; \
		fi; \
	fi

pytest: $(STAMP) browser
	PYTHONDEVMODE=1 $(BIN)/python -m pytest -W error::ResourceWarning \
		--cov --cov-report=term --cov-fail-under=90 -p no:cacheprovider

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/ainisa-middleware demo --db $(DEMO_DB) $(DEMO_ARGS)

# The benchmark: in-process drivers, uvicorn under wrk, resolver costs (docs/performance.md).
BENCH_HOSTS ?= asgi,wsgi,django
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; } \
		|| echo "wrk could not be installed: the network runs will be skipped"; }
	$(BIN)/python -m bench --hosts $(BENCH_HOSTS) --docs docs/performance.md

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache
