"""What a lookup costs: cache hits, misses per store, the unknown-ID flood, memory.

Each figure is the median over interleaved repetitions of a batch of calls.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import string
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ainisa_middleware import Business, CachedResolver, StaticResolver

from .drivers import CLOCK
from .workload import BUSINESS, WIDGET_ID


@dataclass
class Row:
    what: str
    value: float
    unit: str
    note: str = ""


class CountingResolver:
    """A store that counts how often it is asked (the database queries)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def resolve(self, widget_id: str) -> Business | None:
        self.calls += 1
        result: Business | None = self.inner.resolve(widget_id)
        return result


def _random_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    return ["w_" + "".join(rng.choices(alphabet, k=16)) for _ in range(count)]


def _interleave(
    cases: dict[str, Callable[[int], float]], count: int, reps: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    for _ in range(reps):
        for name, fn in cases.items():
            samples[name].append(fn(count) / count * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def lookup_costs(stores: dict[str, Callable[[], Any]], *, count: int, reps: int) -> list[Row]:
    """Hit costs of the cache, then a cold miss through the cache for each store."""
    loop = asyncio.new_event_loop()
    warm = CachedResolver(StaticResolver({WIDGET_ID: BUSINESS}))
    warm.resolve(WIDGET_ID)

    def peek(n: int) -> float:
        start = CLOCK()
        for _ in range(n):
            warm.peek(WIDGET_ID)
        return CLOCK() - start

    def hit_sync(n: int) -> float:
        start = CLOCK()
        for _ in range(n):
            warm.resolve(WIDGET_ID)
        return CLOCK() - start

    async def _ahits(n: int) -> float:
        start = CLOCK()
        for _ in range(n):
            await warm.aresolve(WIDGET_ID)
        return CLOCK() - start

    def hit_async(n: int) -> float:
        return loop.run_until_complete(_ahits(n))

    cases: dict[str, Callable[[int], float]] = {
        "cache hit, peek (what the ASGI adapter calls)": peek,
        "cache hit, resolve": hit_sync,
        "cache hit, aresolve": hit_async,
    }
    for name, make in stores.items():
        cached = CachedResolver(make())

        def miss(n: int, cached: CachedResolver = cached) -> float:
            start = CLOCK()
            for _ in range(n):
                cached.invalidate(WIDGET_ID)
                cached.resolve(WIDGET_ID)
            return CLOCK() - start

        cases[f"cold miss through the cache, {name}"] = miss
    medians = _interleave(cases, count, reps)
    loop.close()
    return [Row(name, value, "us per lookup") for name, value in medians.items()]


def flood(make_store: Callable[[], Any], *, requests: int = 10_000) -> list[Row]:
    """Store queries for ``requests`` lookups of unknown IDs, all distinct and from a small set."""
    rows = []
    for label, pool in (("all distinct", requests), ("drawn from 100 IDs", 100)):
        store = CountingResolver(make_store())
        cached = CachedResolver(store)
        cached.resolve(WIDGET_ID)
        ids = _random_ids(pool, seed=7)
        rng = random.Random(11)
        for _ in range(requests):
            cached.resolve(ids[rng.randrange(pool)] if pool < requests else ids[_])
        kept = cached.peek(WIDGET_ID) == (True, BUSINESS)
        rows.append(
            Row(
                f"unknown-ID flood, {requests:,} requests, {label}",
                float(store.calls - 1),
                "store queries",
                "real business still cached" if kept else "real business evicted",
            )
        )
    return rows


def sql_rows(*, count: int, reps: int, requests: int = 10_000) -> list[Row]:
    """``SQLResolver`` on SQLite: a cold lookup, and the SQL an unknown-ID flood runs."""
    import sqlalchemy as sa

    from .variants import fresh_sql_resolver

    resolver = fresh_sql_resolver()
    resolver.resolve(WIDGET_ID)

    def miss(n: int) -> float:
        start = CLOCK()
        for _ in range(n):
            resolver.cache.invalidate(WIDGET_ID)  # the index stays: one query per lookup
            resolver.resolve(WIDGET_ID)
        return CLOCK() - start

    medians = _interleave({"cold miss, SQLResolver on SQLite": miss}, max(1, count // 20), reps)
    rows = [Row(name, value, "us per lookup", "one query") for name, value in medians.items()]

    flooded = fresh_sql_resolver()
    statements = [0]

    def counted(*_args: object) -> None:
        statements[0] += 1

    sa.event.listen(flooded.store.engine, "before_cursor_execute", counted)
    flooded.resolve(WIDGET_ID)
    before = statements[0]
    for widget_id in _random_ids(requests, seed=5):
        flooded.resolve(widget_id)
    found, business = flooded.peek(WIDGET_ID)
    kept = found and business is not None
    rows.append(
        Row(
            f"unknown-ID flood on SQLResolver, {requests:,} distinct IDs",
            float(statements[0] - before),
            "SQL statements",
            "the widget index answers unknown IDs; "
            + ("real business still cached" if kept else "real business evicted"),
        )
    )
    flooded.close()
    resolver.close()
    return rows


def memory(entries: int = 100_000) -> list[Row]:
    """Bytes held by ``entries`` cached businesses, the businesses and the cache apart."""
    ids = _random_ids(entries, seed=3)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    businesses = {
        wid: Business(id=f"biz_{wid}", secrets=(f"secret-{wid}-0123456789",)) for wid in ids
    }
    made = tracemalloc.get_traced_memory()[0]
    store = StaticResolver(businesses)
    stored = tracemalloc.get_traced_memory()[0]
    cached = CachedResolver(store, maxsize=entries)
    for wid in ids:
        cached.resolve(wid)
    filled = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(cached) == entries
    mib = 1024 * 1024
    return [
        Row(
            f"memory, {entries:,} businesses (one secret each, with their IDs)",
            (made - base) / mib,
            "MiB",
        ),
        Row(
            f"memory, CachedResolver holding {entries:,} businesses (the cache alone)",
            (filled - stored) / mib,
            "MiB",
        ),
    ]


def static_store() -> StaticResolver:
    return StaticResolver({WIDGET_ID: BUSINESS})
