"""StaticResolver and CachedResolver: hits, misses, expiry, bounds, single flight."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from ainisa_middleware import Business, CachedResolver, ConfigurationError, StaticResolver
from ainisa_middleware.resolvers import AsyncResolver, PeekableResolver, Resolver

from .conftest import AsyncOnlyResolver, CountingResolver, FailingResolver

SHOP = Business(id="shop", secrets=("s",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_static_resolver_sync_async_and_peek() -> None:
    resolver = StaticResolver({"w": SHOP})
    assert resolver.resolve("w") is SHOP
    assert resolver.resolve("x") is None
    assert asyncio.run(resolver.aresolve("w")) is SHOP
    assert resolver.peek("w") == (True, SHOP)
    assert resolver.peek("x") == (True, None)
    assert isinstance(resolver, Resolver)
    assert isinstance(resolver, AsyncResolver)
    assert isinstance(resolver, PeekableResolver)


def test_static_resolver_copies_its_mapping() -> None:
    mapping = {"w": SHOP}
    resolver = StaticResolver(mapping)
    mapping["x"] = SHOP
    assert resolver.resolve("x") is None


@pytest.mark.parametrize("bad", [[("w", SHOP)], {"w": {"id": "shop"}}, {1: SHOP}])
def test_static_resolver_rejects_bad_mappings(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        StaticResolver(bad)


def test_cached_hit_expires_after_ttl() -> None:
    clock = Clock()
    inner = CountingResolver({"w": SHOP})
    cached = CachedResolver(inner, ttl=10, negative_ttl=2, clock=clock)
    assert cached.resolve("w") is SHOP
    clock.now += 9.9
    assert cached.resolve("w") is SHOP
    assert inner.calls == ["w"]
    clock.now += 0.2
    assert cached.peek("w") == (False, None)
    assert cached.resolve("w") is SHOP
    assert inner.calls == ["w", "w"]


def test_cached_miss_uses_the_negative_ttl() -> None:
    clock = Clock()
    inner = CountingResolver({})
    cached = CachedResolver(inner, ttl=10, negative_ttl=2, clock=clock)
    assert cached.resolve("x") is None
    assert cached.peek("x") == (True, None)
    clock.now += 2.1
    assert cached.peek("x") == (False, None)
    assert cached.resolve("x") is None
    assert inner.calls == ["x", "x"]


def test_cache_is_bounded_and_misses_cannot_evict_hits() -> None:
    inner = CountingResolver({f"w{i}": SHOP for i in range(5)})
    cached = CachedResolver(inner, maxsize=3)
    for i in range(5):
        cached.resolve(f"w{i}")
    assert cached.peek("w0") == (False, None)
    assert cached.peek("w4") == (True, SHOP)
    for i in range(100):
        cached.resolve(f"unknown{i}")
    assert len(cached) == 6
    assert cached.peek("w4") == (True, SHOP)
    assert cached.peek("w2") == (True, SHOP)


def test_recently_used_entries_survive_eviction() -> None:
    inner = CountingResolver({f"w{i}": SHOP for i in range(4)})
    cached = CachedResolver(inner, maxsize=2)
    cached.resolve("w0")
    cached.resolve("w1")
    cached.resolve("w0")  # refresh w0
    cached.resolve("w2")  # evicts w1, the least recently used
    assert cached.peek("w0")[0] and not cached.peek("w1")[0]


def test_exceptions_are_never_cached() -> None:
    inner = FailingResolver()
    cached = CachedResolver(inner)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            cached.resolve("w")
    assert inner.calls == 3
    assert len(cached) == 0


def test_invalidate_one_or_all() -> None:
    inner = CountingResolver({"a": SHOP, "b": SHOP})
    cached = CachedResolver(inner)
    cached.resolve("a")
    cached.resolve("b")
    cached.invalidate("a")
    assert not cached.peek("a")[0] and cached.peek("b")[0]
    cached.invalidate()
    assert len(cached) == 0


def test_wrong_return_type_raises_type_error_and_is_not_cached() -> None:
    class Wrong:
        def resolve(self, widget_id: str) -> Any:
            return "shop"

    cached = CachedResolver(Wrong())
    with pytest.raises(TypeError, match="must return a Business or None"):
        cached.resolve("w")
    assert len(cached) == 0


def test_concurrent_sync_misses_share_one_inner_call() -> None:
    gate = threading.Event()

    class Slow(CountingResolver):
        def resolve(self, widget_id: str) -> Business | None:
            gate.wait(5)
            return super().resolve(widget_id)

    inner = Slow({"w": SHOP})
    cached = CachedResolver(inner)
    results: list[Business | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(cached.resolve("w"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == [SHOP] * 8
    assert inner.calls == ["w"]


def test_concurrent_sync_waiters_share_the_leaders_exception() -> None:
    gate = threading.Event()
    calls = 0

    class Down:
        def resolve(self, widget_id: str) -> Business | None:
            nonlocal calls
            calls += 1
            gate.wait(5)
            raise ConnectionError("down")

    cached = CachedResolver(Down())
    errors: list[BaseException] = []

    def call() -> None:
        try:
            cached.resolve("w")
        except ConnectionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(errors) == 4
    assert calls == 1


def test_concurrent_async_misses_share_one_inner_call() -> None:
    inner = AsyncOnlyResolver({"w": SHOP}, delay=0.05)
    cached = CachedResolver(inner)

    async def main() -> list[Business | None]:
        return list(await asyncio.gather(*(cached.aresolve("w") for _ in range(20))))

    assert asyncio.run(main()) == [SHOP] * 20
    assert inner.calls == ["w"]


def test_async_over_a_sync_inner_runs_it_in_a_thread() -> None:
    inner = CountingResolver({"w": SHOP})
    cached = CachedResolver(inner)
    assert asyncio.run(cached.aresolve("w")) is SHOP
    assert threading.get_ident() not in inner.threads
    assert cached.peek("w") == (True, SHOP)


def test_sync_over_an_async_inner() -> None:
    inner = AsyncOnlyResolver({"w": SHOP})
    assert CachedResolver(inner).resolve("w") is SHOP


def test_a_cancelled_async_waiter_does_not_cancel_the_others() -> None:
    inner = AsyncOnlyResolver({"w": SHOP}, delay=0.1)
    cached = CachedResolver(inner)

    async def main() -> Business | None:
        impatient = asyncio.ensure_future(cached.aresolve("w"))
        patient = asyncio.ensure_future(cached.aresolve("w"))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    assert asyncio.run(main()) is SHOP
    assert inner.calls == ["w"]


def test_async_exception_reaches_every_waiter_and_is_not_cached() -> None:
    class Down:
        calls = 0

        async def aresolve(self, widget_id: str) -> Business | None:
            Down.calls += 1
            await asyncio.sleep(0.01)
            raise ConnectionError("down")

    cached = CachedResolver(Down())

    async def main() -> list[Any]:
        return list(
            await asyncio.gather(*(cached.aresolve("w") for _ in range(3)), return_exceptions=True)
        )

    results = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in results)
    assert Down.calls == 1
    asyncio.run(main())
    assert Down.calls == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inner": object()}, "resolve(widget_id)"),
        ({"inner": StaticResolver({}), "ttl": -1}, "ttl"),
        ({"inner": StaticResolver({}), "negative_ttl": "5"}, "negative_ttl"),
        ({"inner": StaticResolver({}), "maxsize": 0}, "maxsize"),
        ({"inner": StaticResolver({}), "maxsize": True}, "maxsize"),
    ],
)
def test_cached_resolver_validates_its_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CachedResolver(**kwargs)
    assert message in str(info.value)
