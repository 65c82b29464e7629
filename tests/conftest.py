"""Shared fixtures: secrets, businesses, resolvers of every kind."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ainisa_middleware import Business, CachedResolver, StaticResolver

from .cases import BUSINESSES, RESOLVER, SECRET

# The package's own pytest11 plugin is disabled in pyproject.toml ("-p no:ainisa")
# so that it is imported here, after coverage has started, and measured.
pytest_plugins = ["pytester", "ainisa_middleware.pytest_plugin"]

__all__ = [
    "ANSWERING_KINDS",
    "FAILING_KINDS",
    "RESOLVER_KINDS",
    "AsyncOnlyResolver",
    "CountingResolver",
    "FailingResolver",
    "ResolverKind",
    "SlowResolver",
]


class CountingResolver:
    """A sync resolver that counts its calls (and the threads it ran on)."""

    def __init__(self, mapping: dict[str, Business] | None = None) -> None:
        self.mapping = dict(BUSINESSES if mapping is None else mapping)
        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.lock = threading.Lock()

    def resolve(self, widget_id: str) -> Business | None:
        with self.lock:
            self.calls.append(widget_id)
            self.threads.add(threading.get_ident())
        return self.mapping.get(widget_id)


class AsyncOnlyResolver:
    """A resolver with only ``aresolve``, like an async database store."""

    def __init__(self, mapping: dict[str, Business] | None = None, delay: float = 0.0) -> None:
        self.mapping = dict(BUSINESSES if mapping is None else mapping)
        self.delay = delay
        self.calls: list[str] = []

    async def aresolve(self, widget_id: str) -> Business | None:
        self.calls.append(widget_id)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.mapping.get(widget_id)


class FailingResolver:
    """A store that is down."""

    def __init__(self, exc: BaseException | None = None) -> None:
        self.exc = exc or ConnectionError("database is down")
        self.calls = 0

    def resolve(self, widget_id: str) -> Business | None:
        self.calls += 1
        raise self.exc


class SlowResolver:
    """A sync store that takes ``delay`` seconds to answer (or until ``release`` is set)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.release = threading.Event()
        self.calls: list[str] = []

    def resolve(self, widget_id: str) -> Business | None:
        self.calls.append(widget_id)
        self.release.wait(self.delay)
        return BUSINESSES.get(widget_id)


class FailingAsyncResolver:
    """An async store that is down."""

    def __init__(self) -> None:
        self.calls = 0

    async def aresolve(self, widget_id: str) -> Business | None:
        self.calls += 1
        raise ConnectionError("database is down")


class WrongTypeResolver:
    """A store that answers with a row, not a Business: never trusted, 503."""

    def __init__(self) -> None:
        self.calls = 0

    def resolve(self, widget_id: str) -> object:
        self.calls += 1
        return {"id": "shop", "secrets": ["s"]}


class WrongTypeAsyncResolver:
    def __init__(self) -> None:
        self.calls = 0

    async def aresolve(self, widget_id: str) -> object:
        self.calls += 1
        return "shop"


class PartialAresolve:
    """``aresolve`` is a ``functools.partial`` of a coroutine function (not ``async def``)."""

    def __init__(self) -> None:
        self.inner = AsyncOnlyResolver()
        self.aresolve = functools.partial(self.inner.aresolve)

    @property
    def calls(self) -> list[str]:
        return self.inner.calls


class CoroutineReturningAresolve:
    """``aresolve`` is a plain function returning a coroutine (a wrapped or mocked one)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def aresolve(self, widget_id: str) -> Coroutine[Any, Any, Business | None]:
        self.calls.append(widget_id)

        async def lookup() -> Business | None:
            return BUSINESSES.get(widget_id)

        return lookup()


class PlainAresolve:
    """``aresolve`` answers directly, with nothing to await."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def aresolve(self, widget_id: str) -> Business | None:
        self.calls.append(widget_id)
        return BUSINESSES.get(widget_id)


class PlainAresolveBesideResolve(CountingResolver):
    """A sync ``resolve`` beside an ``aresolve`` that is not ``async def``: ``resolve`` is used."""

    def aresolve(self, widget_id: str) -> Business | None:  # pragma: no cover - never called
        raise AssertionError("a plain aresolve must not be preferred to resolve")


class PeekingResolver(CountingResolver):
    """A store with a memory it answers from first: one that raises, or answers a row."""

    def __init__(self, answer: str) -> None:
        super().__init__()
        self.answer = answer

    def peek(self, widget_id: str) -> tuple[bool, object]:
        with self.lock:
            self.calls.append(widget_id)
        if self.answer == "raises":
            raise ConnectionError("the cache is down")
        return True, {"id": "shop", "secrets": ["s"]}


@dataclass
class ResolverKind:
    """A resolver for the resolver table, with how often it was asked and what it does."""

    resolver: object
    #: how many lookups reached the store (behind the cache, for a cached kind)
    consulted: Callable[[], int]
    #: "answers" (finds businesses), "fails" (raises or returns the wrong type) or
    #: "hangs" (answers only after ``HANG`` seconds, past the table's timeout)
    behaviour: str
    cached: bool = False
    release: Callable[[], None] = lambda: None


#: Seconds a hanging resolver takes: well past the resolver table's timeout.
HANG = 0.5


def _counted(resolver: Any, **kw: Any) -> ResolverKind:
    calls = resolver.calls
    count = (lambda: len(resolver.calls)) if isinstance(calls, list) else (lambda: resolver.calls)
    return ResolverKind(resolver, count, **kw)


def _cached(inner: Any, behaviour: str) -> ResolverKind:
    kind = _counted(inner, behaviour=behaviour, cached=True)
    kind.resolver = CachedResolver(inner)
    return kind


def _hanging_sync() -> ResolverKind:
    slow = SlowResolver(delay=HANG)
    return _counted(slow, behaviour="hangs", release=slow.release.set)


#: name -> a fresh resolver of that kind
RESOLVER_KINDS: dict[str, Callable[[], ResolverKind]] = {
    "sync": lambda: _counted(CountingResolver(), behaviour="answers"),
    "async-only": lambda: _counted(AsyncOnlyResolver(), behaviour="answers"),
    "aresolve-partial": lambda: _counted(PartialAresolve(), behaviour="answers"),
    "aresolve-returns-coroutine": lambda: _counted(
        CoroutineReturningAresolve(), behaviour="answers"
    ),
    "aresolve-plain": lambda: _counted(PlainAresolve(), behaviour="answers"),
    "aresolve-plain-beside-resolve": lambda: _counted(
        PlainAresolveBesideResolve(), behaviour="answers"
    ),
    "cached-sync": lambda: _cached(CountingResolver(), "answers"),
    "cached-async": lambda: _cached(AsyncOnlyResolver(), "answers"),
    "raising": lambda: _counted(FailingResolver(), behaviour="fails"),
    "raising-async": lambda: _counted(FailingAsyncResolver(), behaviour="fails"),
    "cached-raising": lambda: _cached(FailingResolver(), "fails"),
    "wrong-type": lambda: _counted(WrongTypeResolver(), behaviour="fails"),
    "wrong-type-async": lambda: _counted(WrongTypeAsyncResolver(), behaviour="fails"),
    "hanging-sync": _hanging_sync,
    "hanging-async": lambda: _counted(AsyncOnlyResolver(delay=HANG), behaviour="hangs"),
    "cached-hanging-async": lambda: _cached(AsyncOnlyResolver(delay=HANG), "hangs"),
    "peek-raising": lambda: _counted(PeekingResolver("raises"), behaviour="fails"),
    "peek-wrong-type": lambda: _counted(PeekingResolver("a row"), behaviour="fails"),
}
ANSWERING_KINDS = [name for name, make in RESOLVER_KINDS.items() if make().behaviour == "answers"]
FAILING_KINDS = [name for name in RESOLVER_KINDS if name not in ANSWERING_KINDS]


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def static_resolver() -> StaticResolver:
    return RESOLVER


@pytest.fixture
def counting_resolver() -> CountingResolver:
    return CountingResolver()


@pytest.fixture
def resolver_kind() -> Iterator[Callable[[str], ResolverKind]]:
    """A factory: ``resolver_kind("cached-async")`` builds a fresh resolver of that kind."""
    made: list[ResolverKind] = []

    def make(name: str) -> ResolverKind:
        kind = RESOLVER_KINDS[name]()
        made.append(kind)
        return kind

    yield make
    for kind in made:
        kind.release()  # let a worker thread a timeout abandoned finish


@pytest.fixture(scope="session")
def django_project() -> None:
    """Django set up with the test project in tests/test_django/ (once per process)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.test_django.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: Debian's Chromium; Playwright never downloads a browser here.
CHROMIUM = "/usr/bin/chromium"
#: Headless, and off the network: no updates, sync, QUIC or background fetches.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def browser_unavailable(reason: str) -> None:
    """Skip loudly where Chromium cannot be had; in CI the browser tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser tests must run", pytrace=False)
    pytest.skip(f"BROWSER TESTS NOT RUN: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module.

    Not per session: sync Playwright keeps an event loop running in this thread,
    which asyncio and Django's async-safety checks in later modules would trip on.
    """
    if not os.path.exists(CHROMIUM):
        browser_unavailable(
            f"{CHROMIUM} is missing; install Debian's chromium (make test does, as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("the playwright package is missing; install the dev extra")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
