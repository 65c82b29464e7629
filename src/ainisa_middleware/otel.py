"""OpenTelemetry metrics and span attributes from the ``on_decision`` hook (extra: ``otel``).

    pip install "ainisa-middleware[otel]"

    from ainisa_middleware.otel import decisions_hook
    app = AinisaMiddleware(app, resolver=resolver, paths=["/chat"], on_decision=decisions_hook())

The same two metrics as :mod:`ainisa_middleware.prometheus`, named so that an
OpenTelemetry Prometheus exporter shows the same names:

- ``ainisa.decisions``: a counter with the attributes ``business``, ``status`` and
  ``outcome`` (``passed``, ``stripped`` or the rejected request's error code),
  businesses past ``max_businesses`` sharing ``other``. It is an observable
  (asynchronous) counter: the hook adds one to a plain count under a lock, and
  the SDK reads the totals when it collects. A synchronous ``Counter.add`` costs
  the SDK about 15 microseconds per request, more than the middleware itself;
- ``ainisa.resolver``: a histogram in seconds of the time spent asking the resolver.

When a span is recording (the host's OpenTelemetry instrumentation started one for
the request), the decision is also set on it as ``ainisa.*`` attributes: widget ID,
business ID, status, outcome, code, transport, key id and resolver time. Nothing
secret is among them. Only the API package is required; the application brings
the SDK and its exporters, as for any instrumented library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Observation
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        'ainisa_middleware.otel needs opentelemetry-api: pip install "ainisa-middleware[otel]"'
    ) from exc

from . import __version__
from .decisions import DEFAULT_MAX_BUSINESSES, NONE, BusinessLabels, DecisionRecord

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue

__all__ = ["RESOLVER_BUCKETS", "decisions_hook"]

#: Record shapes kept ready; past it (many ``other`` businesses) each is labelled anew.
_MAX_KEYS = 10_000
#: The histogram's bucket boundaries in seconds (the Prometheus hook's).
RESOLVER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def decisions_hook(
    meter_provider: metrics.MeterProvider | None = None,
    *,
    max_businesses: int = DEFAULT_MAX_BUSINESSES,
    spans: bool = True,
) -> Callable[[DecisionRecord], None]:
    """An ``on_decision`` hook recording OpenTelemetry metrics and span attributes.

    :param meter_provider: where the instruments come from; the default is the
        global provider (``metrics.set_meter_provider``), a no-op until one is set.
    :param max_businesses: business IDs with an attribute value of their own; the
        rest share ``other``.
    :param spans: set the decision on the current span when one is recording.
    """
    business_label = BusinessLabels(max_businesses)
    meter = (
        metrics.get_meter(__name__, __version__)
        if meter_provider is None
        else meter_provider.get_meter(__name__, __version__)
    )
    lock = threading.Lock()
    #: (business label, status, outcome) -> decisions so far
    counts: dict[tuple[str, str, str], int] = {}
    #: (business ID, status, outcome) as the record has them -> the key in ``counts``
    keys: dict[tuple[str | None, object, str], tuple[str, str, str]] = {}

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        with lock:
            totals = list(counts.items())
        return [
            Observation(total, {"business": business, "status": status, "outcome": outcome})
            for (business, status, outcome), total in totals
        ]

    meter.create_observable_counter(
        "ainisa.decisions",
        callbacks=[observe],
        unit="{decision}",
        description="Intercepted chat requests, by business, identity status and outcome.",
    )
    resolver = meter.create_histogram(
        "ainisa.resolver",
        unit="s",
        description="Time spent asking the resolver for a widget's business.",
        explicit_bucket_boundaries_advisory=RESOLVER_BUCKETS,
    )
    record_time = resolver.record
    current_span = trace.get_current_span

    def on_decision(record: DecisionRecord) -> None:
        outcome = record.code or record.outcome
        seen = (record.business_id, record.status, outcome)
        key = keys.get(seen)
        if key is None:
            status = NONE if record.status is None else record.status.value
            key = (business_label(record.business_id), status, outcome)
            if len(keys) < _MAX_KEYS:  # business IDs past the limit are not kept
                keys[seen] = key
        with lock:
            counts[key] = counts.get(key, 0) + 1
        if record.resolver_seconds is not None:
            record_time(record.resolver_seconds)
        if spans:
            span = current_span()
            if span.is_recording():
                span.set_attributes(_span_attributes(record))

    return on_decision


def _span_attributes(record: DecisionRecord) -> dict[str, AttributeValue]:
    """The record as span attributes; absent values left out (OpenTelemetry has no null)."""
    attributes: dict[str, AttributeValue] = {
        "ainisa.outcome": record.outcome,
        "ainisa.transport": record.transport,
    }
    for key, value in (
        ("ainisa.widget_id", record.widget_id),
        ("ainisa.business_id", record.business_id),
        ("ainisa.status", None if record.status is None else record.status.value),
        ("ainisa.code", record.code),
        ("ainisa.key_id", record.key_id),
        ("ainisa.resolver_seconds", record.resolver_seconds),
    ):
        if value is not None:
            attributes[key] = value
    return attributes
