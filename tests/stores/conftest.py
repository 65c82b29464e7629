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
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ainisa_middleware.stores.sql import SQLStore

from .proxy import Proxy

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


class Outage:
    """A database that can be taken away and given back."""

    def __init__(self, url: str, cut: Callable[[], None], restore: Callable[[], None]) -> None:
        self.url = url
        self.cut = cut
        self.restore = restore


@pytest.fixture
def outage(db_url: str, tmp_path: Path) -> Iterator[Outage]:
    if db_url.startswith("sqlite"):
        path = Path(sa.make_url(db_url).database or "")
        away = tmp_path / "moved-away.db"

        def cut() -> None:
            path.rename(away)

        def restore() -> None:
            path.unlink(missing_ok=True)  # the empty file a failed connection left
            away.rename(path)

        yield Outage(db_url, cut, restore)
        return
    proxy = Proxy(db_url)
    try:
        yield Outage(proxy.url(db_url), proxy.cut, proxy.restore)
    finally:
        proxy.cut()


@pytest.fixture
def outage_shop(outage: Outage, prefix: str, clock: FakeClock) -> Iterator[tuple[SQLStore, str]]:
    """A store reached through ``outage``, with business ``shop``, widget ``wid_demo``
    and one secret (returned beside the store)."""
    # NullPool for SQLite: every lookup opens the file, as a fresh process would.
    sqlite = outage.url.startswith("sqlite")
    engine = sa.create_engine(outage.url, poolclass=NullPool) if sqlite else None
    store = SQLStore(
        engine or outage.url, timeout=3, table_prefix=prefix, master_key="", clock=clock
    )
    try:
        store.init()
        store.add_business("shop", plan="pro")
        store.add_widget("wid_demo", business_id="shop")
        yield store, store.rotate_secret("shop").value
    finally:
        try:
            store.drop()
        finally:
            store.close()
            if engine is not None:
                engine.dispose()
