"""The invalidation bus: a change saved in the store reaches every process's cache at once.

Each process keeps businesses in memory (:class:`~ainisa_middleware.CachedResolver`,
the SQL resolver's index of widget IDs). Without a bus a retired secret keeps
verifying in every other process until its cache expires. With one, every change
made through the store publishes the widget and business IDs it touched, after
its transaction commits, and every resolver subscribed to the bus drops them::

    resolver = SQLResolver("postgresql://app@db/app", invalidation="postgresql://app@db/app")
    # or CachedResolver(my_store, invalidation="redis://cache:6379/0")

Two engines operators already run carry it: PostgreSQL ``LISTEN``/``NOTIFY``
(:mod:`.postgres`, extra ``postgres``) and Redis pub/sub (:mod:`.redis`, extra
``redis``). A bus is any object with the :class:`InvalidationBus` methods.

The subscriber is a background thread per bus (it blocks on a socket, so it
suits every host: WSGI, Django, and ASGI under asyncio or trio alike, since the
caches it touches are thread-safe). Requests never wait on it. When the bus is
down, caches fall back to their TTL and one warning is logged; when it answers
again every cache subscribed to it is cleared once, since messages sent in
between are lost. Messages carry IDs only, never a secret.

This module imports only the standard library; each engine's module imports
its driver.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import threading
import weakref
from collections.abc import Collection, Iterable
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ainisa_middleware.errors import ConfigurationError

__all__ = [
    "DEFAULT_CHANNEL",
    "INVALIDATION_URL_ENV",
    "BusError",
    "InvalidationBus",
    "InvalidationListener",
    "LocalBus",
    "ThreadedBus",
    "connect",
    "decode",
    "encode",
    "from_setting",
]

logger = logging.getLogger(__name__)

#: Read by ``SQLStore``, ``SQLResolver`` and the command line when no bus is given.
INVALIDATION_URL_ENV: Final = "AINISA_INVALIDATION_URL"
#: The Redis channel and the PostgreSQL ``NOTIFY`` channel every process shares.
DEFAULT_CHANNEL: Final = "ainisa_invalidation"

#: A message larger than this (PostgreSQL's NOTIFY payload limit is 8000 bytes)
#: is sent as "drop everything" instead.
_MAX_PAYLOAD = 7000
#: Beyond these a received message is treated as "drop everything".
_MAX_IDS = 1000
_MAX_ID_LENGTH = 128
_ALL = json.dumps({"all": True})


class BusError(Exception):
    """The bus did not answer (the message names it without its password)."""


@runtime_checkable
class InvalidationListener(Protocol):
    """What a bus calls: a cache, or a resolver that holds one."""

    def invalidate(self, widget_id: str | None = None) -> None:
        """Forget one widget, or (``None``) everything."""

    def invalidate_ids(self, widgets: Collection[str], businesses: Collection[str]) -> None:
        """Forget these widgets and every widget of these businesses."""


@runtime_checkable
class InvalidationBus(Protocol):
    """Carries "these IDs changed" from the process that changed them to every other one."""

    def publish(self, widgets: Iterable[str] = (), businesses: Iterable[str] = ()) -> None:
        """Tell every subscriber; raises :class:`BusError` when the bus does not take it."""

    def subscribe(self, listener: InvalidationListener) -> None:
        """Call ``listener`` on every message (held weakly); starts listening if needed."""

    def unsubscribe(self, listener: InvalidationListener) -> None:
        """Stop calling ``listener``."""

    def ping(self) -> None:
        """Raise :class:`BusError` unless the bus answers now (for health checks)."""

    def close(self) -> None:
        """Stop listening and close connections; the thread is gone when it returns."""


# -- messages ----------------------------------------------------------------------------


def encode(widgets: Iterable[str], businesses: Iterable[str]) -> str:
    """The message for these IDs; "drop everything" when it would be too long."""
    payload = json.dumps({"w": sorted(set(widgets)), "b": sorted(set(businesses))})
    return payload if len(payload.encode()) <= _MAX_PAYLOAD else _ALL


def decode(payload: str | bytes) -> tuple[frozenset[str], frozenset[str]] | None:
    """``(widgets, businesses)``, or ``None`` for "drop everything".

    Anything that is not a well-formed message of ours (whoever could publish on
    the channel) also means "drop everything": a cache that forgets too much only
    costs queries, one that forgets too little keeps a retired secret.
    """
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("all") is not None:
        return None
    found: list[frozenset[str]] = []
    for key in ("w", "b"):
        ids = message.get(key, [])
        if (
            not isinstance(ids, list)
            or len(ids) > _MAX_IDS
            or not all(isinstance(i, str) and len(i) <= _MAX_ID_LENGTH for i in ids)
        ):
            return None
        found.append(frozenset(ids))
    return found[0], found[1]


# -- a bus that listens in a thread ---------------------------------------------------------

_live: weakref.WeakSet[ThreadedBus] = weakref.WeakSet()


class _Listeners:
    """The subscribers of one bus, held weakly, called from the listening thread."""

    def __init__(self) -> None:
        self._set: weakref.WeakSet[InvalidationListener] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, listener: InvalidationListener) -> None:
        with self._lock:
            self._set.add(listener)

    def discard(self, listener: InvalidationListener) -> None:
        with self._lock:
            self._set.discard(listener)

    def __bool__(self) -> bool:
        with self._lock:
            return len(self._set) > 0

    def deliver(self, ids: tuple[frozenset[str], frozenset[str]] | None) -> None:
        with self._lock:
            listeners = list(self._set)
        for listener in listeners:
            try:
                if ids is None:
                    listener.invalidate()
                else:
                    listener.invalidate_ids(ids[0], ids[1])
            except Exception:  # one broken listener must not starve the others
                logger.exception("ainisa invalidation: a listener failed")


class LocalBus:
    """A bus within one process: for tests, and for a single process that wants one API."""

    def __init__(self) -> None:
        self._listeners = _Listeners()

    def publish(self, widgets: Iterable[str] = (), businesses: Iterable[str] = ()) -> None:
        self._listeners.deliver(decode(encode(widgets, businesses)))

    def subscribe(self, listener: InvalidationListener) -> None:
        self._listeners.add(listener)

    def unsubscribe(self, listener: InvalidationListener) -> None:
        self._listeners.discard(listener)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "LocalBus()"


class ThreadedBus:
    """What the Redis and PostgreSQL buses share: the listening thread and its lifecycle.

    A subclass says how to open a subscribed connection, wait on it for
    payloads, close it, publish and ping. The thread starts with the first
    :meth:`subscribe` (and again in a child process after ``fork``), reconnects
    with capped exponential backoff and full jitter, logs one warning per
    outage, and clears every listener's cache each time it has subscribed, so
    nothing published while it was away survives in a cache.

    :param channel: the channel every process shares.
    :param timeout: seconds to connect, publish or ping before giving up.
    :param backoff: the first and the longest wait between reconnection attempts.
    :param poll: how often, in seconds, the thread looks up from the socket (shutdown).
    """

    #: the engine, for messages ("redis", "postgresql")
    kind = "bus"

    def __init__(
        self,
        *,
        channel: str = DEFAULT_CHANNEL,
        timeout: float = 2.0,
        backoff: tuple[float, float] = (0.1, 10.0),
        poll: float = 0.25,
    ) -> None:
        name: object = channel
        if not isinstance(name, str) or not channel.replace("_", "").isalnum():
            raise ConfigurationError(
                f"the invalidation channel must be letters, digits and '_', not {channel!r}."
            )
        self.channel = channel
        self.timeout = float(timeout)
        self.backoff = (float(backoff[0]), float(backoff[1]))
        self.poll = float(poll)
        self._listeners = _Listeners()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        #: whether the thread holds a subscribed connection now
        self.connected = False
        #: how many times the thread has subscribed (the first time included)
        self.subscriptions = 0
        self._warned = False
        _live.add(self)

    # -- for subclasses ----------------------------------------------------------------

    def _open(self) -> Any:
        """A connection subscribed to the channel; raises when the engine is away."""
        raise NotImplementedError

    def _receive(self, connection: Any, timeout: float) -> list[str]:
        """Payloads that arrived within ``timeout`` seconds; raises when the connection is lost."""
        raise NotImplementedError

    def _close_connection(self, connection: Any) -> None:
        raise NotImplementedError

    def _send(self, payload: str) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        """The engine's address, without a password."""
        raise NotImplementedError

    def ping(self) -> None:
        raise NotImplementedError

    # -- the protocol ------------------------------------------------------------------

    def publish(self, widgets: Iterable[str] = (), businesses: Iterable[str] = ()) -> None:
        """Send the IDs to every process on the bus, this one included at once."""
        payload = encode(widgets, businesses)
        # This process's caches need not wait for the round trip (nor for a bus that is down).
        self._listeners.deliver(decode(payload))
        try:
            self._send(payload)
        except Exception as error:
            raise BusError(f"{self._where()} did not take the message: {_describe(error)}") from (
                None
            )

    def subscribe(self, listener: InvalidationListener) -> None:
        self._listeners.add(listener)
        self._start()

    def unsubscribe(self, listener: InvalidationListener) -> None:
        self._listeners.discard(listener)

    def close(self) -> None:
        """Stop the thread (within ``poll`` seconds, or a connection attempt) and close."""
        self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout + self.poll + 1.0)
        self._thread = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where()!r}, channel={self.channel!r})"

    # -- the thread --------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, name=f"ainisa-invalidation-{self.kind}", daemon=True
            )
            self._thread.start()

    def _after_fork(self) -> None:
        # The parent's thread does not exist in the child; its sockets belong to the parent.
        self._thread = None
        # A lock another thread held at the fork stays held in the child: new ones.
        self._start_lock = threading.Lock()
        self._listeners._lock = threading.Lock()
        self.connected = False
        if self._listeners and not self._closed:
            self._start()

    def _delay(self, attempt: int) -> float:
        first, cap = self.backoff
        return random.uniform(0.0, min(cap, first * 2 ** min(attempt, 30)))

    def _run(self) -> None:
        attempt = 0
        stop = self._stop
        while not stop.is_set():
            try:
                connection = self._open()
            except Exception as error:
                self._down(error)
                stop.wait(self._delay(attempt))
                attempt += 1
                continue
            attempt = 0
            try:
                self._up()
                while not stop.is_set():
                    for payload in self._receive(connection, self.poll):
                        self._listeners.deliver(decode(payload))
            except Exception as error:
                if not stop.is_set():
                    self._down(error)
            finally:
                self.connected = False
                try:
                    self._close_connection(connection)
                except Exception:  # a dead connection may fail to close: it is dead either way
                    logger.debug("ainisa invalidation: closing a lost connection failed")
            if not stop.is_set():
                stop.wait(self._delay(0))

    def _up(self) -> None:
        self.connected = True
        self.subscriptions += 1
        # Whatever was published before this subscription (or while away) is lost:
        # clear once so no cache keeps it past now.
        self._listeners.deliver(None)
        if self._warned:
            self._warned = False
            logger.warning(
                "ainisa invalidation: %s answers again; caches cleared once", self._where()
            )

    def _down(self, error: BaseException) -> None:
        self.connected = False
        if not self._warned:
            self._warned = True
            logger.warning(
                "ainisa invalidation: %s is unreachable (%s); caches keep entries for their "
                "ttl until it answers, retrying with backoff",
                self._where(),
                _describe(error),
            )


def _describe(error: BaseException) -> str:
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0]}" if first else type(error).__name__


def _reinit_after_fork() -> None:
    for bus in list(_live):
        bus._after_fork()


def _close_all() -> None:
    for bus in list(_live):
        bus.close()


os.register_at_fork(after_in_child=_reinit_after_fork)
atexit.register(_close_all)


# -- from a URL ---------------------------------------------------------------------------


def connect(url: str, **options: Any) -> InvalidationBus:
    """The bus named by ``url``: ``redis://``, ``rediss://``, ``unix://`` (Redis),
    ``postgresql://`` or ``postgres://`` (PostgreSQL), ``local://`` (this process only).

    A ``channel`` query parameter (``redis://cache/0?channel=shop_eu``) names the
    channel, so several deployments can share one server.
    """
    given: object = url
    scheme = url.split(":", 1)[0].lower() if isinstance(given, str) else ""
    if scheme:
        url, channel = _pop_channel(url)
        if channel is not None:
            options.setdefault("channel", channel)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBus

        return RedisBus(url, **options)
    if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        from .postgres import PostgresBus

        return PostgresBus(url, **options)
    if scheme == "local":
        return LocalBus()
    raise ConfigurationError(
        "the invalidation URL must start with redis://, rediss://, postgresql:// or "
        f"postgres://; got {scheme + '://' if scheme else repr(type(url).__name__)}."
    )


def from_setting(value: object, *, env: bool = True) -> tuple[InvalidationBus | None, bool]:
    """A bus from what a caller passed, and whether the caller owns it (must close it).

    ``None`` reads ``AINISA_INVALIDATION_URL`` when ``env`` is true; ``False`` or
    ``""`` means no bus; a string is a URL; anything else must be a bus.
    """
    if value is None and env:
        value = os.environ.get(INVALIDATION_URL_ENV) or None
    if value is None or value is False or value == "":
        return None, False
    if isinstance(value, str):
        return connect(value), True
    if callable(getattr(value, "publish", None)) and callable(getattr(value, "subscribe", None)):
        return value, False  # type: ignore[return-value]
    raise ConfigurationError(
        "invalidation must be a bus URL (redis://..., postgresql://...) or a bus object with "
        f"publish() and subscribe(); got {type(value).__name__}."
    )


def _pop_channel(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channels = [value for key, value in query if key == "channel"]
    if not channels:
        return url, None
    rest = urlencode([(key, value) for key, value in query if key != "channel"])
    return urlunsplit(parts._replace(query=rest)), channels[-1]
