"""Fixtures for the store tests: one database per parameter, fresh tables per test.

SQLite always runs. PostgreSQL and MariaDB run when ``AINISA_TEST_POSTGRES_URL``
and ``AINISA_TEST_MYSQL_URL`` are set (``make test`` sets them); under ``CI`` they
always run, and a server that does not answer fails the test instead of skipping.
Each test gets its own table prefix and drops its tables, so concurrent runs
against the same database do not meet.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ainisa_middleware.stores.sql import SQLStore

DATABASES = ("sqlite", "postgres", "mysql")
_ENV = {"postgres": "AINISA_TEST_POSTGRES_URL", "mysql": "AINISA_TEST_MYSQL_URL"}


class FakeClock:
    """Wall time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeMonotonic:
    """A monotonic clock for the cache and the index of widget IDs."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def database_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'ainisa.db'}"
    url = os.environ.get(_ENV[kind])
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{_ENV[kind]} is not set, and CI must run the {kind} store tests")
        pytest.skip(f"{_ENV[kind]} is not set: no {kind} server to test against")
    return url


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request.param, tmp_path)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}_"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


StoreFactory = Callable[..., SQLStore]


@pytest.fixture
def make_store(db_url: str, prefix: str, clock: FakeClock) -> Iterator[StoreFactory]:
    """Open stores on this test's tables (each with its own options); drop them after."""
    opened: list[SQLStore] = []

    def make(**options: object) -> SQLStore:
        options.setdefault("table_prefix", prefix)
        options.setdefault("clock", clock)
        options.setdefault("master_key", "")
        store = SQLStore(db_url, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield make
    if opened:
        try:
            opened[0].drop()
        finally:
            for store in opened:
                store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> SQLStore:
    store = make_store()
    store.init()
    return store
