"""Many processes on one store: a change made with the command line reaches every worker at once.

Four uvicorn processes serve the middleware over :class:`SQLResolver` with cache
and index times of 300 s, so only the invalidation bus can make a change visible
within the second the contract allows. Once with PostgreSQL as store and bus,
once with SQLite as store and Redis as bus. The 20-trial measurement is
``python -m bench.fleet`` (docs/scaling.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from bench.fleet import BUSINESS, Fleet, fleet, on_channel, run_trials

from tests.buses import bus_url

from .conftest import database_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["postgres", "redis"])
def workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp(f"fleet-{request.param}")
    channel = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "postgres":
        db = database_url("postgres", tmp)
        bus = on_channel(db, channel)
    else:
        db = database_url("sqlite", tmp)
        bus = on_channel(bus_url("redis"), channel)
    with fleet(db, bus, workers=4, logs=tmp) as running:
        yield running


def test_a_retired_secret_stops_verifying_on_every_worker_within_a_second(
    workers: Fleet,
) -> None:
    latencies = run_trials(workers, 2)
    assert max(latencies) < 1.0, latencies


def test_a_new_widget_serves_on_every_worker_within_a_second_despite_a_cached_miss(
    workers: Fleet,
) -> None:
    widget = f"wid_{uuid.uuid4().hex[:8]}"
    for worker in workers.workers:  # each worker now holds the ID as unknown
        assert worker.status("", widget=widget) == "unknown_widget"
    added = workers.cli("widget", "add", widget, "--business", BUSINESS)
    assert added.returncode == 0, added.stderr
    assert "every process on the invalidation bus has dropped it" in added.stdout
    since = time.perf_counter()
    took = []
    for worker in workers.workers:
        while worker.status("", widget=widget) == "unknown_widget":
            assert time.perf_counter() - since < 1.0, "a worker still says unknown"
        took.append(time.perf_counter() - since)
    assert max(took) < 1.0
