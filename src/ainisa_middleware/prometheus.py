"""Prometheus metrics from the ``on_decision`` hook (extra: ``prometheus``).

    pip install "ainisa-middleware[prometheus]"

    from ainisa_middleware.prometheus import decisions_hook
    app = AinisaMiddleware(app, resolver=resolver, paths=["/chat"], on_decision=decisions_hook())

Two metrics, registered once per registry:

- ``ainisa_decisions_total{business, status, outcome}``: a counter. ``outcome`` is
  ``passed``, ``stripped``, or the error code of a rejected request
  (``unknown_widget``, ``identity_verification_failed`` ...); ``status`` is the
  identity's status, ``none`` for a request refused before it was judged;
  ``business`` is the business ID, ``none`` before it was known.
- ``ainisa_resolver_seconds``: a histogram of the time spent asking the resolver,
  observed only when it was asked (answers from memory take no time worth a bucket).

Label cardinality is bounded: the first ``max_businesses`` business IDs seen get
their own label, later ones share ``other``, so a site with many tenants cannot
grow the scrape without limit. Widget IDs are never labels: they are for logs.
"""

from __future__ import annotations

from collections.abc import Callable

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        'ainisa_middleware.prometheus needs prometheus-client: pip install "ainisa-middleware'
        '[prometheus]"'
    ) from exc

from .decisions import DEFAULT_MAX_BUSINESSES, NONE, OTHER, BusinessLabels, DecisionRecord

__all__ = ["DEFAULT_MAX_BUSINESSES", "OTHER", "RESOLVER_BUCKETS", "decisions_hook"]

#: A cache answers in microseconds, a database in milliseconds, a timeout in seconds.
RESOLVER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Label combinations kept ready; past it (many ``other`` businesses) labels() is asked.
_MAX_CHILDREN = 10_000


def decisions_hook(
    registry: CollectorRegistry | None = None,
    *,
    max_businesses: int = DEFAULT_MAX_BUSINESSES,
    namespace: str = "ainisa",
) -> Callable[[DecisionRecord], None]:
    """An ``on_decision`` hook counting decisions and timing the resolver in ``registry``.

    :param registry: where to register the metrics; the default is prometheus-client's
        global registry (what ``start_http_server`` and ``make_asgi_app`` serve).
        Call this once per registry: a second call for the same one raises, as
        prometheus-client does for any duplicate metric.
    :param max_businesses: business IDs with a label of their own; the rest share ``other``.
    :param namespace: the metric names' prefix.
    """
    business_label = BusinessLabels(max_businesses)  # checks the limit before registering
    registry = REGISTRY if registry is None else registry
    decisions = Counter(
        "decisions",
        "Intercepted chat requests, by business, identity status and outcome.",
        ("business", "status", "outcome"),
        namespace=namespace,
        registry=registry,
    )
    resolver = Histogram(
        "resolver_seconds",
        "Time spent asking the resolver for a widget's business.",
        namespace=namespace,
        registry=registry,
        buckets=RESOLVER_BUCKETS,
    )
    # prometheus-client's labels() takes a lock and builds a tuple on every call;
    # the children are few (the labels are bounded), so keep them in a plain dict.
    children: dict[tuple[str | None, object, str], Counter] = {}
    observe = resolver.observe

    def on_decision(record: DecisionRecord) -> None:
        outcome = record.code or record.outcome
        key = (record.business_id, record.status, outcome)
        child = children.get(key)
        if child is None:
            status = record.status
            child = decisions.labels(
                business_label(record.business_id),
                NONE if status is None else status.value,
                outcome,
            )
            if len(children) < _MAX_CHILDREN:  # business IDs past the limit are not kept
                children[key] = child
        child.inc()
        if record.resolver_seconds is not None:
            observe(record.resolver_seconds)

    return on_decision
