"""The OpenTelemetry hook, read back through the SDK's in-memory reader and exporter."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware import Business, StaticResolver
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.decisions import OTHER, DecisionRecord
from ainisa_middleware.models import Status
from ainisa_middleware.otel import decisions_hook

from .cases import GOOD, OLD, PATHS, RESOLVER, SECRET


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Any:
    meters = MeterProvider(metric_readers=[reader])
    yield meters
    meters.shutdown()


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_decisions_are_counted_and_a_request_span_gets_the_decision(
    reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tracer_provider.get_tracer("test")
    hook = decisions_hook(provider)

    async def chat(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.ainisa_user.status)

    inner = AinisaMiddleware(
        Starlette(routes=[Route("/chat", chat, methods=["POST"])]),
        resolver=RESOLVER,
        paths=PATHS,
        on_decision=hook,
    )

    async def traced(scope: Any, receive: Any, send: Any) -> None:
        # What an instrumentation does: a span current around the whole request.
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        with tracer.start_as_current_span("POST /chat"):
            await inner(scope, receive, send)

    with TestClient(traced) as client:
        body = {"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": OLD}}
        assert client.post("/chat", json=body).text == "verified"
        assert client.post("/chat", json={"widget_id": "w_nobody"}).status_code == 404

    counted = {
        tuple(sorted(point.attributes.items())): point.value
        for point in points(reader, "ainisa.decisions")
    }
    assert counted == {
        (("business", "shop"), ("outcome", "passed"), ("status", "verified")): 1,
        (("business", "none"), ("outcome", "unknown_widget"), ("status", "none")): 1,
    }
    first, second = exporter.get_finished_spans()
    assert dict(first.attributes or {}) == {
        "ainisa.outcome": "passed",
        "ainisa.transport": "http",
        "ainisa.widget_id": "w_pro",
        "ainisa.business_id": "shop",
        "ainisa.status": "verified",
        "ainisa.key_id": "sec_old",
    }
    assert dict(second.attributes or {}) == {
        "ainisa.outcome": "rejected",
        "ainisa.transport": "http",
        "ainisa.widget_id": "w_nobody",
        "ainisa.code": "unknown_widget",
    }
    for span in (first, second):
        text = repr(dict(span.attributes or {}))
        assert OLD not in text and GOOD not in text and SECRET not in text
    tracer_provider.shutdown()


def test_resolver_time_is_a_histogram_in_seconds(
    reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    hook = decisions_hook(provider)
    for seconds in (None, 0.003, 0.2):
        hook(DecisionRecord("w", "b", Status.ANONYMOUS, "passed", None, "http", None, seconds))
    (point,) = points(reader, "ainisa.resolver")
    assert point.count == 2 and point.sum == pytest.approx(0.203)
    assert point.explicit_bounds[:3] == (0.001, 0.0025, 0.005)
    data = reader.get_metrics_data()
    assert data is not None
    units = {
        metric.name: metric.unit
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert units["ainisa.resolver"] == "s"


def test_no_span_no_attributes_and_businesses_past_the_limit_share_one_value(
    reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    hook = decisions_hook(provider, max_businesses=1)
    resolver = StaticResolver(
        {f"w{n}": Business(id=f"tenant{n}", secrets=(SECRET,)) for n in range(50)}
    )
    app = AinisaMiddleware(Starlette(), resolver=resolver, paths=PATHS, on_decision=hook)
    with TestClient(app) as client:
        for n in range(50):
            client.post("/chat", json={"widget_id": f"w{n}"})  # the app answers 404: fine
    values = {
        point.attributes["business"]: point.value for point in points(reader, "ainisa.decisions")
    }
    assert values == {"tenant0": 1, OTHER: 49}


def test_a_bad_limit_is_refused(provider: MeterProvider) -> None:
    with pytest.raises(ValueError, match="max_businesses"):
        decisions_hook(provider, max_businesses=-1)
