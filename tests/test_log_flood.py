"""Bounded logs under floods: rejected requests are warnings up to an allowance, then counted.

Each request still has its one record (at DEBUG past the allowance), so nothing is
lost to whoever wants it; the warning stream stays a few lines per interval
whatever an attacker sends.
"""

from __future__ import annotations

import logging
import secrets

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware import verify
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.verify import WARNINGS_PER_INTERVAL, Verifier, _Throttle

from .cases import BUSINESSES, FOREIGN, PATHS, RESOLVER
from .test_verify import json_request


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def engine_with(clock: Clock, **options: object) -> Verifier:
    engine = Verifier(MiddlewareConfig.build(resolver=RESOLVER, paths=PATHS, **options))  # type: ignore[arg-type]
    engine._throttle = _Throttle(clock)
    return engine


def ours(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ainisa_middleware" and r.levelno == level]


def test_ten_thousand_made_up_widget_ids_write_a_few_warnings_and_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    engine = engine_with(clock)
    ids = [f"wid_{secrets.token_hex(8)}" for _ in range(10_000)]
    with caplog.at_level(logging.DEBUG, "ainisa_middleware"):
        for widget_id in ids:
            assert engine.lookup(widget_id) == "unknown_widget"
        warnings = ours(caplog, logging.WARNING)
        assert len(warnings) == WARNINGS_PER_INTERVAL
        assert [r.ainisa_widget_id for r in warnings] == ids[:WARNINGS_PER_INTERVAL]  # type: ignore[attr-defined]
        # Every request keeps its own record, at DEBUG, with the same fields.
        debug = ours(caplog, logging.DEBUG)
        assert [r.ainisa_widget_id for r in debug] == ids[WARNINGS_PER_INTERVAL:]  # type: ignore[attr-defined]
        assert {r.ainisa_outcome for r in debug} == {"unknown_widget"}  # type: ignore[attr-defined]
        caplog.clear()
        clock.now += verify.WARNING_INTERVAL
        assert engine.lookup("wid_after") == "unknown_widget"
    summary, first = ours(caplog, logging.WARNING)
    assert summary.getMessage() == (
        f"ainisa: {10_000 - WARNINGS_PER_INTERVAL} more requests with outcome=unknown_widget "
        "in 10 s were logged at DEBUG only (at most 10 warnings per 10 s)"
    )
    assert first.getMessage() == "ainisa: widget=wid_after outcome=unknown_widget"
    # The count is no request of its own: a handler counting outcomes skips it.
    assert not hasattr(summary, "ainisa_outcome")
    assert summary.ainisa_suppressed == ("unknown_widget", 10_000 - WARNINGS_PER_INTERVAL)  # type: ignore[attr-defined]


def test_each_outcome_has_its_own_allowance(caplog: pytest.LogCaptureFixture) -> None:
    engine = engine_with(Clock(), mode="enforce")
    bad = {"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": FOREIGN}}
    with caplog.at_level(logging.WARNING, "ainisa_middleware"):
        for _ in range(50):
            engine.lookup("wid_nope")
            engine.log_error("malformed_body")
            decision = engine.decide(json_request(engine, bad), BUSINESSES["w_pro"])
            assert decision.error == "identity_verification_failed"
    outcomes = [r.ainisa_outcome for r in ours(caplog, logging.WARNING)]  # type: ignore[attr-defined]
    for outcome in ("unknown_widget", "malformed_body", "identity_verification_failed"):
        assert outcomes.count(outcome) == WARNINGS_PER_INTERVAL


def test_a_quiet_interval_writes_no_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    engine = engine_with(clock)
    with caplog.at_level(logging.WARNING, "ainisa_middleware"):
        for _ in range(3):
            engine.lookup("wid_nope")
            clock.now += verify.WARNING_INTERVAL
    assert [r.getMessage() for r in ours(caplog, logging.WARNING)] == [
        "ainisa: widget=wid_nope outcome=unknown_widget"
    ] * 3


def test_a_flood_through_the_asgi_middleware(caplog: pytest.LogCaptureFixture) -> None:
    app = Starlette(routes=[Route("/chat", lambda r: PlainTextResponse("ok"), methods=["POST"])])
    client = TestClient(AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS))
    with caplog.at_level(logging.WARNING, "ainisa_middleware"):
        for n in range(200):
            answer = client.post(PATHS[0], json={"widget_id": f"wid_{n}"})
            assert answer.status_code == 404
    assert len(ours(caplog, logging.WARNING)) == WARNINGS_PER_INTERVAL
