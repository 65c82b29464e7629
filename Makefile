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

.PHONY: help demo test lint typecheck pytest clean

help:
	@echo "make demo   run the demo (sets up $(VENV))"
	@echo "make test   ruff, mypy --strict, pytest with coverage (sets up $(VENV))"

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

pytest: $(STAMP)
	PYTHONDEVMODE=1 $(BIN)/python -m pytest -W error::ResourceWarning \
		--cov --cov-report=term --cov-fail-under=90 -p no:cacheprovider

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m uvicorn --app-dir examples/fastapi app:app --host 127.0.0.1 --port 8000

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache
