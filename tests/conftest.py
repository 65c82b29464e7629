"""Shared fixtures: secrets, businesses, resolvers of every kind."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ainisa_middleware import Business, StaticResolver

from .cases import BUSINESSES, RESOLVER, SECRET

# The package's own pytest11 plugin is disabled in pyproject.toml ("-p no:ainisa")
# so that it is imported here, after coverage has started, and measured.
pytest_plugins = ["pytester", "ainisa_middleware.pytest_plugin"]

__all__ = [
    "AsyncOnlyResolver",
    "CountingResolver",
    "FailingResolver",
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
    """A sync store that takes ``delay`` seconds to answer."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.release = threading.Event()

    def resolve(self, widget_id: str) -> Business | None:
        self.release.wait(self.delay)
        return BUSINESSES.get(widget_id)


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
def slow_resolver() -> Iterator[SlowResolver]:
    slow = SlowResolver(delay=5.0)
    yield slow
    slow.release.set()  # let the abandoned worker thread finish
    time.sleep(0)


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
