# Two commands that work on a fresh machine with Python 3.11+:
#   make demo   set up .venv and run the demo
#   make test   set up .venv and run ruff, mypy --strict, the strict docs build and pytest
#   make docs   serve the documentation site on http://127.0.0.1:8000

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

.PHONY: help demo test lint typecheck docs-build docs pytest browser clean bench hardening fuzz

help:
	@echo "make demo   run the demo (sets up $(VENV))"
	@echo "make test   ruff, mypy --strict, strict docs build, pytest with coverage (sets up $(VENV))"
	@echo "make docs   serve the documentation site locally"
	@echo "make bench  the benchmark (under 15 minutes); tables in docs/performance.md"
	@echo "make hardening  long property profile and the soak (under 15 minutes)"
	@echo "make fuzz   each fuzz target for FUZZ_SECONDS (default 180), in parallel"

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

# Installs what the cross-client tests drive, from Debian's packages, when it is missing
# and we may (root with apt-get): chromium for the browser tests, php-cli for the PHP
# client. Otherwise says why those tests will skip (outside CI) or fail (in CI).
SYSTEM_PACKAGES := $(if $(wildcard $(CHROMIUM)),,chromium) $(if $(shell command -v php),,php-cli)

browser:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing Debian's $(strip $(SYSTEM_PACKAGES)) for the cross-client tests..."; \
			apt-get update -qq >/dev/null && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				$(SYSTEM_PACKAGES) >/dev/null || echo "WARNING: could not install $(SYSTEM_PACKAGES)"; \
		else \
			echo "WARNING: $(strip $(SYSTEM_PACKAGES)) missing and cannot be installed here" \
				"(needs root and apt-get): the tests that drive them will not run"; \
		fi; \
	fi

pytest: $(STAMP) browser
	PYTHONDEVMODE=1 $(BIN)/python -m pytest -W error::ResourceWarning \
		--cov --cov-report=term --cov-fail-under=90 -p no:cacheprovider

# The site: a broken link, a missing page or a bad docstring fails the build.
docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

test: lint typecheck docs-build pytest

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
	@command -v valgrind >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y valgrind || \
			{ apt-get update && apt-get install -y valgrind; }; fi; }
	$(BIN)/python -m bench.callgrind --hosts asgi,wsgi,django --sizes 200,65536,1000000 \
		--docs docs/performance.md

# Hardening (docs/threat-model.md). The long property profile runs in two processes
# (core + ASGI, WSGI + Django), both stopping HARDENING_SECONDS after the start even if
# short of 100,000 examples per property (a test short of it fails); then the soak against uvicorn and
# waitress. Every step has a timeout: the whole target stays under 15 minutes.
HARDENING_SECONDS ?= 650
HARDENING_PYTEST := $(BIN)/python -m pytest -q -p no:randomly -p no:cacheprovider tests/hardening
FUZZ_SECONDS ?= 180

hardening: $(STAMP)
	@echo "long property profile, two processes, at most $(HARDENING_SECONDS) s"
	@export AINISA_HARDENING_PROFILE=long \
		AINISA_HARDENING_DEADLINE=$$(( $$(date +%s) + $(HARDENING_SECONDS) )); \
	timeout 690 $(HARDENING_PYTEST) -k "test_core_properties or test_asgi_properties" \
		> .hardening-core-asgi.log 2>&1 & first=$$!; \
	timeout 690 $(HARDENING_PYTEST) -k "test_wsgi_properties or test_django_properties" \
		> .hardening-wsgi-django.log 2>&1 & second=$$!; \
	wait $$first; a=$$?; wait $$second; b=$$?; \
	for log in .hardening-core-asgi.log .hardening-wsgi-django.log; do \
		grep -E "^(property examples|  [a-z]+: p1|FAILED|E  )|passed|failed" $$log; done; \
	timeout 90 $(BIN)/python -m tests.hardening.soak --server asgi --requests 3000 \
		--max-seconds 80; c=$$?; \
	timeout 90 $(BIN)/python -m tests.hardening.soak --server wsgi --requests 3000 \
		--max-seconds 80; d=$$?; \
	echo "hardening: properties $$a/$$b, soak $$c/$$d (0 is a pass)"; \
	test $$a -eq 0 -a $$b -eq 0 -a $$c -eq 0 -a $$d -eq 0

fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache .site
