"""Resolvers: how the middleware finds the business behind a widget ID.

A resolver has ``resolve(widget_id) -> Business | None`` or
``async aresolve(widget_id) -> Business | None`` (or both). It may also have
``peek(widget_id) -> (found, business)``, an answer from memory that never does
I/O: the ASGI adapter uses it to answer cache hits without leaving the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from .errors import ConfigurationError
from .invalidation import from_setting  # stdlib only: each engine loads its driver lazily
from .models import Business

__all__ = [
    "ASYNCIO",
    "AnyResolver",
    "AsyncResolver",
    "CachedResolver",
    "PeekableResolver",
    "Resolver",
    "Runtime",
    "StaticResolver",
    "async_caller",
    "sync_caller",
]


@runtime_checkable
class Resolver(Protocol):
    """A resolver that answers synchronously (it may block on I/O)."""

    def resolve(self, widget_id: str) -> Business | None: ...


@runtime_checkable
class AsyncResolver(Protocol):
    """A resolver that answers from a coroutine."""

    async def aresolve(self, widget_id: str) -> Business | None: ...


@runtime_checkable
class PeekableResolver(Protocol):
    """A resolver that can answer some IDs from memory, without I/O."""

    def peek(self, widget_id: str) -> tuple[bool, Business | None]: ...


AnyResolver = Resolver | AsyncResolver


def check_resolver(resolver: object) -> list[str]:
    """Problems with ``resolver`` as a sentence each (empty when it is usable)."""
    has_sync = callable(getattr(resolver, "resolve", None))
    has_async = callable(getattr(resolver, "aresolve", None))
    if has_sync or has_async:
        return []
    return [
        f"resolver must have resolve(widget_id) or async aresolve(widget_id); got "
        f"{type(resolver).__name__}. Use StaticResolver({{widget_id: Business(...)}}) "
        "or a store such as SQLResolver."
    ]


# -- the bridge between a host and a resolver --------------------------------------

SyncCall = Callable[[str], object]
AsyncCall = Callable[[str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Runtime:
    """What a host lends the bridges: a worker thread, a deadline, a way to run a coroutine.

    The defaults are asyncio's; the ASGI adapter lends anyio's (so trio works
    too), Django lends asgiref's (so the ORM runs where it expects to).
    """

    #: run ``fn(arg)`` in a worker thread; a cancelled caller abandons the thread
    to_thread: Callable[[SyncCall, str], Awaitable[object]]
    #: a context manager that cancels what it wraps after some seconds (``None``: never)
    deadline: Callable[[float | None], AbstractAsyncContextManager[object]]
    #: run ``fn(arg)`` to completion from sync code, within some seconds
    run_coroutine: Callable[[AsyncCall, str, float | None], object]


def _asyncio_run(fn: AsyncCall, arg: str, timeout: float | None) -> object:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "an async-only resolver cannot run from a thread with a running event loop; "
            "give the middleware a resolver with a sync resolve()"
        )

    async def bounded() -> object:
        return await asyncio.wait_for(fn(arg), timeout)

    return asyncio.run(bounded())


def _asyncio_to_thread(fn: SyncCall, arg: str) -> Awaitable[object]:
    return asyncio.to_thread(fn, arg)


#: The bridges' defaults.
ASYNCIO = Runtime(
    to_thread=_asyncio_to_thread, deadline=asyncio.timeout, run_coroutine=_asyncio_run
)


def sync_caller(resolver: object, timeout: float | None, runtime: Runtime = ASYNCIO) -> SyncCall:
    """How sync code asks ``resolver``: its ``resolve``, else its ``aresolve`` run to completion.

    Made once per middleware (or cache); the call itself is then one step.
    """
    resolve = resolver_method(resolver, "resolve")
    if resolve is not None and not getattr(resolver, "resolves_by_coroutine", False):
        return resolve  # type: ignore[no-any-return]
    # No resolve, or one that would only run a coroutine with no deadline (a
    # cache over an async-only store): run the async side here, bounded.
    acall = async_caller(resolver, runtime)
    return lambda widget_id: runtime.run_coroutine(acall, widget_id, timeout)


def async_caller(resolver: object, runtime: Runtime = ASYNCIO) -> AsyncCall:
    """How async code asks ``resolver`` without blocking its event loop.

    An ``async def aresolve`` is awaited; an ``aresolve`` that is not ``async
    def`` (a partial, a callable object) is called and awaited when what it
    returns is awaitable; a resolver with only ``resolve`` runs in a worker
    thread, since it may block on a database.
    """
    aresolve = resolver_method(resolver, "aresolve")
    if aresolve is not None and inspect.iscoroutinefunction(aresolve):
        return aresolve  # type: ignore[no-any-return]
    resolve = resolver_method(resolver, "resolve")
    if resolve is not None:
        return lambda widget_id: runtime.to_thread(resolve, widget_id)

    async def awaited(widget_id: str) -> object:
        result = aresolve(widget_id)
        if inspect.isawaitable(result):
            result = await result
        return result

    return awaited


class StaticResolver:
    """Businesses held in memory, keyed by widget ID.

    For tests, demos and small deployments whose businesses live in settings.

    >>> shop = Business(id="shop", secrets=("s3cret",))
    >>> StaticResolver({"wid_1": shop}).resolve("wid_1") is shop
    True
    """

    def __init__(self, mapping: Mapping[str, Business]) -> None:
        if not isinstance(mapping, Mapping):
            raise ConfigurationError(
                f"StaticResolver takes a mapping of widget ID to Business, not "
                f"{type(mapping).__name__}."
            )
        entries = cast(Mapping[object, object], mapping)  # callers may not be typed
        problems = [
            f"{key!r} -> {type(value).__name__}"
            for key, value in entries.items()
            if not isinstance(key, str) or not isinstance(value, Business)
        ]
        if problems:
            raise ConfigurationError(
                "StaticResolver maps str widget IDs to Business objects; these entries are "
                "not: " + ", ".join(problems) + "."
            )
        self._mapping: dict[str, Business] = dict(mapping)

    def resolve(self, widget_id: str) -> Business | None:
        return self._mapping.get(widget_id)

    async def aresolve(self, widget_id: str) -> Business | None:
        return self._mapping.get(widget_id)

    def peek(self, widget_id: str) -> tuple[bool, Business | None]:
        return True, self._mapping.get(widget_id)


class _Flight:
    """One inner call that concurrent sync callers for the same ID share."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Business | None = None
        self.error: BaseException | None = None


class CachedResolver:
    """Cache another resolver's answers, hits and misses, for a while.

    Hits live ``ttl`` seconds, misses (unknown widgets) ``negative_ttl`` seconds,
    in two separate bounded LRU maps, so a flood of unknown IDs cannot push the
    real businesses out. Concurrent lookups of one uncached ID share a single
    inner call. Exceptions are never cached: the next request asks again.

    The cache holds secrets in memory for up to ``ttl`` seconds, so a retired
    secret keeps verifying that long on each process: keep ``ttl`` short, or
    give it an ``invalidation`` bus, which drops a changed business from every
    process's cache at once (docs/scaling.md).

    :param inner: a resolver with ``resolve``, ``aresolve`` or both.
    :param ttl: seconds a found business is reused.
    :param negative_ttl: seconds an unknown widget ID is remembered as unknown.
    :param maxsize: most entries kept, for hits and for misses each.
    :param clock: a monotonic clock, injectable for tests.
    :param invalidation: a bus URL (``redis://...``, ``postgresql://...``) or a bus
        object (:mod:`ainisa_middleware.invalidation`) whose messages drop entries;
        ``None``: no bus. A bus built from a URL is closed by :meth:`close`.
    """

    def __init__(
        self,
        inner: AnyResolver,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        maxsize: int = 100_000,
        *,
        clock: Callable[[], float] = time.monotonic,
        invalidation: object = None,
    ) -> None:
        problems = check_resolver(inner)
        numbers: tuple[tuple[str, object], ...] = (("ttl", ttl), ("negative_ttl", negative_ttl))
        for name, value in numbers:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(f"{name} must be a number of seconds >= 0, not {value!r}.")
        size: object = maxsize
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            problems.append(f"maxsize must be a positive int, not {maxsize!r}.")
        if problems:
            raise ConfigurationError("CachedResolver: " + " ".join(problems))
        self.inner = inner  # sets the bridges below
        self.ttl = float(ttl)
        self.negative_ttl = float(negative_ttl)
        self.maxsize = maxsize
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: OrderedDict[str, tuple[float, Business]] = OrderedDict()
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._aflights: dict[tuple[int, str], asyncio.Future[Business | None]] = {}
        # Bumped by every invalidation: an answer read before one is not stored after it.
        self._generation = 0
        self.bus, self._owns_bus = from_setting(invalidation, env=False)
        if self.bus is not None:
            self.bus.subscribe(self)

    @property
    def inner(self) -> AnyResolver:
        """The resolver behind the cache; it may be replaced while the cache is in use."""
        return self._inner

    @inner.setter
    def inner(self, inner: AnyResolver) -> None:
        self._inner = inner
        # No timeout here: the middleware that asks the cache bounds the whole lookup.
        self._sync_inner = sync_caller(inner, None)
        self._async_inner = async_caller(inner)

    @property
    def resolves_by_coroutine(self) -> bool:
        """Whether :meth:`resolve` only runs the inner resolver's coroutine.

        Sync hosts then call :meth:`aresolve` through their own bridge instead,
        so their ``resolver_timeout`` bounds it (``resolve`` has no deadline).
        """
        return resolver_method(self._inner, "resolve") is None

    def peek(self, widget_id: str) -> tuple[bool, Business | None]:
        """Answer from the cache only: ``(True, business_or_None)`` or ``(False, None)``.

        A fresh hit, the answer to almost every request, takes no lock: reading
        a dict and moving a key of an ``OrderedDict`` are each atomic under the
        GIL, and a key evicted in between is simply not moved.
        """
        now = self._clock()
        hit = self._hits.get(widget_id)
        if hit is not None and hit[0] > now:
            try:  # noqa: SIM105 - contextlib.suppress costs two calls on every hit
                self._hits.move_to_end(widget_id)
            except KeyError:  # evicted by another thread since: still a valid answer
                pass
            return True, hit[1]
        with self._lock:
            hit = self._hits.get(widget_id)
            if hit is not None:
                if hit[0] > now:
                    return True, hit[1]
                del self._hits[widget_id]
            expires = self._misses.get(widget_id)
            if expires is not None:
                if expires > now:
                    return True, None
                del self._misses[widget_id]
        return False, None

    def _store(self, widget_id: str, business: Business | None, generation: int) -> None:
        now = self._clock()
        with self._lock:
            if generation != self._generation:
                return  # invalidated while it was read: it may predate the change
            if business is not None:
                self._misses.pop(widget_id, None)
                self._hits[widget_id] = (now + self.ttl, business)
                self._hits.move_to_end(widget_id)
                if len(self._hits) > self.maxsize:
                    self._hits.popitem(last=False)
            else:
                self._hits.pop(widget_id, None)
                self._misses[widget_id] = now + self.negative_ttl
                self._misses.move_to_end(widget_id)
                if len(self._misses) > self.maxsize:
                    self._misses.popitem(last=False)

    def invalidate(self, widget_id: str | None = None) -> None:
        """Forget one widget ID, or everything; call it after changing a business."""
        with self._lock:
            self._generation += 1
            if widget_id is None:
                self._hits.clear()
                self._misses.clear()
            else:
                self._hits.pop(widget_id, None)
                self._misses.pop(widget_id, None)

    def invalidate_ids(self, widgets: Collection[str], businesses: Collection[str]) -> None:
        """Forget these widgets and every cached widget of these businesses (the bus calls it)."""
        with self._lock:
            self._generation += 1
            for widget_id in widgets:
                self._hits.pop(widget_id, None)
                self._misses.pop(widget_id, None)
            if businesses:
                for widget_id, (_, business) in list(self._hits.items()):
                    if business.id in businesses:
                        del self._hits[widget_id]

    def close(self) -> None:
        """Leave the bus (closing it when built here from a URL); the cache still answers."""
        if self.bus is not None:
            self.bus.unsubscribe(self)
            if self._owns_bus:
                self.bus.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._hits) + len(self._misses)

    # -- sync ---------------------------------------------------------------

    def resolve(self, widget_id: str) -> Business | None:
        found, business = self.peek(widget_id)
        if found:
            return business
        with self._lock:
            flight = self._flights.get(widget_id)
            leader = flight is None
            if flight is None:
                flight = self._flights[widget_id] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result
        generation = self._generation
        try:
            flight.result = _checked(self._sync_inner(widget_id), self.inner)
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            self._store(widget_id, flight.result, generation)
            return flight.result
        finally:
            with self._lock:
                self._flights.pop(widget_id, None)
            flight.done.set()

    # -- async --------------------------------------------------------------

    async def aresolve(self, widget_id: str) -> Business | None:
        found, business = self.peek(widget_id)
        if found:
            return business
        loop = asyncio.get_running_loop()
        key = (id(loop), widget_id)
        future = self._aflights.get(key)
        if future is None:
            # The inner call runs as its own task: a caller that is cancelled (a
            # timeout) stops waiting, but the others still get the answer.
            future = loop.create_task(self._afetch(widget_id))
            self._aflights[key] = future
            future.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(future)

    def _landed(self, key: tuple[int, str], done: asyncio.Future[Business | None]) -> None:
        self._aflights.pop(key, None)
        if not done.cancelled():
            # Mark the exception as seen even when every waiter gave up on it;
            # each waiter still re-raises it.
            done.exception()

    async def _afetch(self, widget_id: str) -> Business | None:
        generation = self._generation
        business = _checked(await self._async_inner(widget_id), self.inner)
        self._store(widget_id, business, generation)
        return business


def resolver_method(resolver: object, name: str) -> Any:
    """``resolver.<name>`` when it is callable, else ``None``: how adapters find
    ``resolve``, ``aresolve`` and ``peek`` once, at construction."""
    value = getattr(resolver, name, None)
    return value if callable(value) else None


def _checked(value: object, resolver: object) -> Business | None:
    if value is None or isinstance(value, Business):
        return value
    raise TypeError(
        f"{type(resolver).__name__} returned {type(value).__name__}; a resolver must "
        "return a Business or None."
    )
