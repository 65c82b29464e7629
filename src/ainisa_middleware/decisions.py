"""The decision hook: one frozen record per intercepted request, for metrics and traces.

Every adapter takes ``on_decision`` (Django: ``AINISA["ON_DECISION"]``, an object or
a dotted path). The engine (:class:`~ainisa_middleware.verify.Verifier`) calls it once
per intercepted request and per WebSocket decision, refused requests included, with
a :class:`DecisionRecord`. The record names the widget, the business, the status, what
happened and which key matched; never a secret, a hash, a token or the visitor's data,
so it may go anywhere (a metrics backend, a trace, a log shipper).

The hook runs in the request's own thread or on its event loop, before the app is
called: keep it quick and never block (count, enqueue). One that raises is logged
and the request carries on as if there were no hook.

    def on_decision(record: DecisionRecord) -> None:
        print(record.widget_id, record.outcome, record.code)

    app = AinisaMiddleware(app, resolver=resolver, paths=["/chat"], on_decision=on_decision)

Ready-made hooks: :func:`ainisa_middleware.prometheus.decisions_hook` and
:func:`ainisa_middleware.otel.decisions_hook`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Literal, NamedTuple, TypeAlias

from .models import Status

__all__ = [
    "DEFAULT_MAX_BUSINESSES",
    "NONE",
    "OTHER",
    "OUTCOMES",
    "TRANSPORTS",
    "BusinessLabels",
    "DecisionHook",
    "DecisionRecord",
    "Outcome",
    "Transport",
    "call_hook",
]

#: ``passed``: the request reached the app with nothing removed (verified, or no user
#: data); ``stripped``: it reached the app with unverified identity removed;
#: ``rejected``: the middleware answered with an error (``code`` says which).
Outcome = Literal["passed", "stripped", "rejected"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "stripped", "rejected")
#: How the request arrived: an HTTP request, or a WebSocket connection or frame.
Transport = Literal["http", "websocket"]
TRANSPORTS: tuple[Transport, ...] = ("http", "websocket")


class DecisionRecord(NamedTuple):
    """What the middleware decided about one request, safe to export anywhere.

    Immutable. A named tuple, as :class:`~ainisa_middleware.verify.Decision`: one
    is built per request when a hook is configured, and a tuple is built in C,
    where a frozen dataclass sets each field in Python.
    """

    #: the widget ID the request named (``None`` when it was refused before one was read)
    widget_id: str | None
    #: the business that owns the widget (``None`` when refused before it was resolved)
    business_id: str | None
    #: the identity's status (``None`` when refused before the identity was judged)
    status: Status | None
    #: ``passed``, ``stripped`` or ``rejected``
    outcome: Outcome
    #: the error code answered when ``rejected`` (``unknown_widget``, ``body_too_large`` ...)
    code: str | None
    #: ``http`` or ``websocket``
    transport: Transport
    #: the id (or position) of the secret that verified the visitor, else ``None``
    key_id: str | None
    #: seconds spent asking the resolver; ``None`` when answered from memory or not asked
    resolver_seconds: float | None


#: A callable taking a :class:`DecisionRecord`; what it returns is ignored.
DecisionHook: TypeAlias = Callable[[DecisionRecord], object]

#: Seconds the resolver took for the request being handled. Set by the engine only
#: when a hook is configured; a context variable follows the request into the
#: worker thread that decides a large body, and never leaks into another request's
#: (each request sets it before its decision).
resolver_time: ContextVar[float | None] = ContextVar("ainisa_resolver_time", default=None)

logger = logging.getLogger("ainisa_middleware")

#: Seconds between two log records for a failing hook: one that raises on every
#: request must not flood the log.
HOOK_ERROR_INTERVAL = 60.0
_last_error = [float("-inf")]


def call_hook(hook: DecisionHook, record: DecisionRecord) -> None:
    """Call ``hook``; log (at most once a minute) and swallow whatever it raises."""
    try:
        hook(record)
    except Exception:
        now = time.monotonic()
        if now - _last_error[0] >= HOOK_ERROR_INTERVAL:
            _last_error[0] = now
            logger.exception(
                "ainisa: the on_decision hook %r raised; the request carries on "
                "(logged at most once every %d s)",
                hook,
                HOOK_ERROR_INTERVAL,
            )


#: Businesses with a metric label of their own before the rest share :data:`OTHER`.
DEFAULT_MAX_BUSINESSES = 100
#: The label of every business past the limit.
OTHER = "other"
#: The label of a business or status not known yet (a request refused before it).
NONE = "none"


class BusinessLabels:
    """Business ID -> metric label: its own for the first ``limit`` seen, :data:`OTHER` after.

    Exporters share it, so a site with many tenants cannot grow a metric's
    series without bound.
    """

    def __init__(self, limit: int = DEFAULT_MAX_BUSINESSES) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"max_businesses must be an int, not {type(limit).__name__}")
        if limit < 0:
            raise ValueError(f"max_businesses must be 0 or more, not {limit}")
        self._limit = limit
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, business_id: str | None) -> str:
        if business_id is None:
            return NONE
        label = self._seen.get(business_id)  # a dict read: no lock on the common path
        if label is not None:
            return label
        with self._lock:
            label = self._seen.get(business_id)
            if label is None:
                label = business_id if len(self._seen) < self._limit else OTHER
                if label != OTHER:
                    self._seen[business_id] = label
            return label
