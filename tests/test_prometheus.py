"""The Prometheus hook, scraped from a real ``/metrics`` endpoint on 127.0.0.1."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from ainisa_middleware import Business, StaticResolver, user_hash
from ainisa_middleware.decisions import DecisionRecord
from ainisa_middleware.models import Status
from ainisa_middleware.prometheus import OTHER, decisions_hook
from ainisa_middleware.wsgi import AinisaWSGIMiddleware

from .cases import GOOD, PATHS, RESOLVER, SECRET


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def scrape(registry: CollectorRegistry) -> Iterator[Any]:
    """Serve ``registry`` on a free port of 127.0.0.1; the fixture reads it back, parsed."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]

    def read() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert response.status == 200
            text = response.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    yield read
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def labels(business: str, status: str, outcome: str) -> tuple[tuple[str, str], ...]:
    return (("business", business), ("outcome", outcome), ("status", status))


def test_requests_through_the_middleware_are_counted_on_a_real_metrics_endpoint(
    registry: CollectorRegistry, scrape: Any
) -> None:
    hook = decisions_hook(registry)
    client = webtest.TestApp(
        AinisaWSGIMiddleware(app, resolver=RESOLVER, paths=PATHS, on_decision=hook)
    )
    client.post_json("/chat", {"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD}})
    client.post_json("/chat", {"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD}})
    client.post_json("/chat", {"widget_id": "w_pro", "user": {"user_id": "42"}})
    client.post_json("/chat", {"widget_id": "w_gone"}, status=404)
    metrics = scrape()
    counted = {
        key[1]: value for key, value in metrics.items() if key[0] == "ainisa_decisions_total"
    }
    assert counted == {
        labels("shop", "verified", "passed"): 2.0,
        labels("shop", "missing_hash", "stripped"): 1.0,
        labels("none", "none", "unknown_widget"): 1.0,
    }
    text = repr(metrics)
    assert GOOD not in text and SECRET not in text and "w_pro" not in text


def test_resolver_time_is_a_histogram_of_lookups_only(
    registry: CollectorRegistry, scrape: Any
) -> None:
    hook = decisions_hook(registry)
    for seconds in (None, 0.003, 0.2):
        hook(DecisionRecord("w", "b", Status.ANONYMOUS, "passed", None, "http", None, seconds))
    metrics = scrape()
    assert metrics[("ainisa_resolver_seconds_count", ())] == 2.0
    assert metrics[("ainisa_resolver_seconds_sum", ())] == pytest.approx(0.203)
    assert metrics[("ainisa_resolver_seconds_bucket", (("le", "0.005"),))] == 1.0
    assert metrics[("ainisa_resolver_seconds_bucket", (("le", "0.25"),))] == 2.0


def test_businesses_past_the_limit_share_one_label(registry: CollectorRegistry) -> None:
    hook = decisions_hook(registry, max_businesses=2)
    # A hostile or very large tenant list: a thousand business IDs.
    resolver = StaticResolver(
        {f"w{n}": Business(id=f"tenant{n}", secrets=(SECRET,)) for n in range(1000)}
    )
    client = webtest.TestApp(
        AinisaWSGIMiddleware(app, resolver=resolver, paths=PATHS, on_decision=hook)
    )
    for n in range(1000):
        client.post_json("/chat", {"widget_id": f"w{n}"})
    businesses = {
        sample.labels["business"]: sample.value
        for metric in registry.collect()
        if metric.name == "ainisa_decisions"
        for sample in metric.samples
        if sample.name == "ainisa_decisions_total"
    }
    assert businesses == {"tenant0": 1.0, "tenant1": 1.0, OTHER: 998.0}


def test_a_verified_request_names_no_hash_in_any_label(registry: CollectorRegistry) -> None:
    hook = decisions_hook(registry)
    hashed = user_hash(SECRET, "7")
    hook(DecisionRecord("w", "b", Status.VERIFIED, "passed", None, "http", "k1", 0.001))
    for metric in registry.collect():
        for sample in metric.samples:
            assert hashed not in repr(sample) and "k1" not in repr(sample)


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (True, TypeError), ("2", TypeError)]
)
def test_a_bad_limit_is_refused(registry: CollectorRegistry, value: Any, error: type) -> None:
    with pytest.raises(error, match="max_businesses"):
        decisions_hook(registry, max_businesses=value)


def test_a_second_hook_on_one_registry_is_refused(registry: CollectorRegistry) -> None:
    decisions_hook(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        decisions_hook(registry)
