"""What the middleware asks: :class:`SQLResolver`, with an index and a cache before the database.

The index of enabled widget IDs turns a flood of made-up IDs into at most one
query per ``index_max_age``; the cache answers known widgets from memory; the
health record logs once when the database stops answering and once when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import URL, Engine

from ainisa_middleware.errors import ConfigurationError
from ainisa_middleware.invalidation import from_setting
from ainisa_middleware.models import Business
from ainisa_middleware.resolvers import CachedResolver

from .crypto import warn_plaintext
from .engine import safe_url
from .errors import describe_error
from .store import SQLStore

__all__ = ["SQLResolver"]

# The package's logger: one name for the whole store, the one the docs give.
logger = logging.getLogger(__package__)
_T = TypeVar("_T")


class _Health:
    """Logs when the database stops answering and when it is back, once each."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        self.failing = False

    def call(self, function: Callable[[], _T]) -> _T:
        try:
            result = function()
        except Exception as error:
            if not self.failing:
                self.failing = True
                logger.warning(
                    "ainisa store: %s cannot answer (%s); chat requests get 503 until it can",
                    safe_url(self.store.engine.url),
                    describe_error(error),
                )
            raise
        if self.failing:
            self.failing = False
            logger.warning("ainisa store: %s answers again", safe_url(self.store.engine.url))
        return result


class _Lookup:
    """The database behind the cache: sync, and async in a worker thread."""

    def __init__(self, store: SQLStore, health: _Health) -> None:
        self.store = store
        self.health = health

    def resolve(self, widget_id: str) -> Business | None:
        return self.health.call(lambda: self.store.lookup(widget_id))

    async def aresolve(self, widget_id: str) -> Business | None:
        return await asyncio.to_thread(self.resolve, widget_id)


_UNSET: Any = object()


class SQLResolver:
    """The middleware's resolver over a :class:`SQLStore`.

    Three layers answer a widget ID, cheapest first:

    1. the **index**: the set of enabled widget IDs, loaded in one query and
       reloaded when an ID is missing from it and it is older than
       ``index_max_age`` seconds. An ID that is not in a fresh index is unknown
       without touching the database, so a flood of random IDs costs at most one
       query per ``index_max_age`` seconds, not one per request;
    2. the **cache**: a :class:`~ainisa_middleware.CachedResolver` (``ttl`` for
       businesses, ``negative_ttl`` for misses), on by default;
    3. the **database**: one query per uncached widget.

    ``peek`` answers from the first two without I/O, so the ASGI middleware
    answers cache hits and unknown IDs on the event loop; ``aresolve`` runs every
    query in a worker thread. A database that cannot be reached makes
    ``resolve`` raise, and the middleware answers ``503 resolver_unavailable``.

    Security: a cached business keeps its secrets for ``ttl`` seconds, so
    without an invalidation bus a retired secret may verify that much longer on
    each process. With one (``invalidation``, or ``AINISA_INVALIDATION_URL``),
    every change made through the store drops the business and widget from the
    cache and the index of every process at once (docs/scaling.md).

    :param url: a URL, an :class:`~sqlalchemy.engine.Engine`, an :class:`SQLStore`,
        or ``None`` for ``AINISA_DATABASE_URL`` (else ``sqlite:///ainisa.db``).
    :param timeout: the store's connect and query timeout (see :class:`SQLStore`).
    :param cache: put a :class:`~ainisa_middleware.CachedResolver` in front.
    :param index: keep the in-memory index of widget IDs (the flood defence).
    :param index_max_age: seconds before a missing ID may reload the index; a new
        widget is found at most this long after it was added.
    :param monotonic: the clock for the index and the cache; injectable for tests.
    :param invalidation: the bus that carries changes between processes: a URL
        (``redis://...``, ``postgresql://...``) or a bus object; ``None`` reads
        ``AINISA_INVALIDATION_URL``; ``False``: no bus. The store built here
        publishes on it too.

    ``table_prefix``, ``identity_plans``, ``master_key`` and ``clock`` are passed
    to the :class:`SQLStore` (give them to the store instead when passing one).

    >>> resolver = SQLResolver("sqlite:///ainisa.db", timeout=5.0)
    """

    def __init__(
        self,
        url: str | URL | Engine | SQLStore | None = None,
        *,
        timeout: float | None = _UNSET,
        cache: bool = True,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        index: bool = True,
        index_max_age: float = 1.0,
        table_prefix: str = _UNSET,
        identity_plans: Iterable[str] = _UNSET,
        master_key: str | Sequence[str] | None = _UNSET,
        clock: Callable[[], datetime] = _UNSET,
        monotonic: Callable[[], float] = time.monotonic,
        invalidation: object = None,
    ) -> None:
        store_options = {
            "timeout": timeout,
            "table_prefix": table_prefix,
            "identity_plans": identity_plans,
            "master_key": master_key,
            "clock": clock,
        }
        given: dict[str, Any] = {k: v for k, v in store_options.items() if v is not _UNSET}
        if isinstance(url, SQLStore):
            if given:
                raise ConfigurationError(
                    f"SQLResolver got an SQLStore and {', '.join(sorted(given))}: pass those "
                    "to the SQLStore instead."
                )
            self.store = url
            if invalidation is None:
                bus, owns = url.bus, False  # the store's own bus (or none)
            else:
                bus, owns = from_setting(invalidation)
        else:
            bus, owns = from_setting(invalidation)
            self.store = SQLStore(url, invalidation=bus if bus is not None else False, **given)
        max_age: object = index_max_age
        if (
            isinstance(max_age, bool)
            or not isinstance(max_age, int | float)
            or not 0 <= max_age < math.inf
        ):
            raise ConfigurationError(
                f"index_max_age must be a number of seconds >= 0, not {index_max_age!r}."
            )
        self.index_max_age = float(index_max_age)
        self._monotonic = monotonic
        self._health = _Health(self.store)
        self._lookup = _Lookup(self.store, self._health)
        self.cache: CachedResolver | None = (
            CachedResolver(self._lookup, ttl=ttl, negative_ttl=negative_ttl, clock=monotonic)
            if cache
            else None
        )
        self.index = index
        self._ids: frozenset[str] | None = None
        self._loaded_at = -math.inf
        self._index_lock = threading.Lock()
        self._generation = 0
        if not self.store.encrypting:
            warn_plaintext(safe_url(self.store.engine.url))
        self.bus, self._owns_bus = bus, owns
        if bus is not None:
            bus.subscribe(self)  # starts the listening thread; never waits for it

    def __repr__(self) -> str:
        return f"SQLResolver({self.store!r}, cache={self.cache is not None}, index={self.index})"

    # -- the index ---------------------------------------------------------------------

    def _index_says_unknown(self, widget_id: str) -> bool | None:
        """``True``: unknown for sure; ``False``: worth a lookup; ``None``: reload first."""
        ids = self._ids
        if ids is not None and widget_id in ids:
            return False
        if ids is not None and self._monotonic() - self._loaded_at < self.index_max_age:
            return True
        return None

    def refresh(self, *, force: bool = True) -> None:
        """Reload the index of widget IDs now (``force=False``: only when it is stale)."""
        with self._index_lock:
            # Threads that queued behind a reload use its result.
            if not force and self._monotonic() - self._loaded_at < self.index_max_age:
                return
            generation = self._generation
            ids = self._health.call(self.store.widget_ids)
            self._ids = ids
            # Read before an invalidation: usable now, but not trusted as fresh.
            if generation == self._generation:
                self._loaded_at = self._monotonic()

    def _known(self, widget_id: str) -> bool:
        verdict = self._index_says_unknown(widget_id)
        if verdict is None:
            self.refresh(force=False)
            verdict = self._index_says_unknown(widget_id)
        return verdict is False

    async def _aknown(self, widget_id: str) -> bool:
        verdict = self._index_says_unknown(widget_id)
        if verdict is None:
            await asyncio.to_thread(self.refresh, force=False)
            verdict = self._index_says_unknown(widget_id)
        return verdict is False

    # -- the resolver protocol ---------------------------------------------------------

    def peek(self, widget_id: str) -> tuple[bool, Business | None]:
        """Answer from memory only: ``(True, business_or_None)``, or ``(False, None)``."""
        if self.index and self._index_says_unknown(widget_id) is True:
            return True, None
        if self.cache is not None:
            return self.cache.peek(widget_id)
        return False, None

    def resolve(self, widget_id: str) -> Business | None:
        """The business behind ``widget_id``; raises when the database cannot answer."""
        if self.index and not self._known(widget_id):
            return None
        if self.cache is not None:
            return self.cache.resolve(widget_id)
        return self._lookup.resolve(widget_id)

    async def aresolve(self, widget_id: str) -> Business | None:
        """:meth:`resolve` for the event loop: database work runs in a worker thread."""
        if self.index and not await self._aknown(widget_id):
            return None
        if self.cache is not None:
            return await self.cache.aresolve(widget_id)
        return await self._lookup.aresolve(widget_id)

    def invalidate(self, widget_id: str | None = None) -> None:
        """Forget cached answers (one widget or all) and reload the index on next use."""
        self._generation += 1
        self._loaded_at = -math.inf
        if self.cache is not None:
            self.cache.invalidate(widget_id)

    def invalidate_ids(self, widgets: Collection[str], businesses: Collection[str]) -> None:
        """Forget these widgets and these businesses' widgets; reload the index on next use."""
        self._generation += 1
        self._loaded_at = -math.inf
        if self.cache is not None:
            self.cache.invalidate_ids(widgets, businesses)

    def close(self) -> None:
        """Leave the bus (closing one built here) and close the store's pooled connections."""
        if self.bus is not None:
            self.bus.unsubscribe(self)
            if self._owns_bus:
                self.bus.close()
        self.store.close()
