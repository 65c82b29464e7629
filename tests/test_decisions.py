"""The ``on_decision`` hook: one private record per intercepted request, from the engine.

The engine calls it (``verify.py``), so every adapter gets it by passing the
keyword; the adapters are driven here through their own test clients, the
engine directly for what no adapter reaches (WebSocket transport, timings).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
import webtest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware import Business, ConfigurationError, StaticResolver, user_hash
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.decisions import DecisionRecord, call_hook
from ainisa_middleware.models import Status
from ainisa_middleware.request import OFF_LOOP_BODY_SIZE
from ainisa_middleware.verify import Verifier
from ainisa_middleware.wsgi import AinisaWSGIMiddleware

from .cases import ALL_HASHES, BUSINESSES, GOOD, OLD, PATHS, RESOLVER, SECRET

OLD_HASH_BODY = {"user": {"user_id": "42", "user_hash": OLD, "email": "ada@example.com"}}


class Recorder:
    """A hook that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []

    def __call__(self, record: DecisionRecord) -> None:
        self.records.append(record)

    @property
    def only(self) -> DecisionRecord:
        assert len(self.records) == 1, self.records
        return self.records[0]


def assert_private(record: DecisionRecord) -> None:
    """No secret, hash or visitor data in any field."""
    text = repr(record)
    for business in BUSINESSES.values():
        for secret in business.secrets:
            assert secret not in text
    for hashed in ALL_HASHES:
        assert hashed not in text and hashed.upper() not in text
    assert "ada@example.com" not in text and "'42'" not in text


# --- the engine --------------------------------------------------------------------------


def engine(hook: Any, resolver: object = RESOLVER, **options: Any) -> Verifier:
    config = MiddlewareConfig.build(resolver=resolver, paths=PATHS, on_decision=hook, **options)
    return Verifier(config)


def run(verifier: Verifier, body: dict[str, Any], widget: str = "w_pro", **kw: Any) -> Any:
    parsed = verifier.inspect("application/json", widget, b"", json.dumps(body).encode())
    business = verifier.peek(widget)
    if business is None:
        business = verifier.lookup(widget)
    assert not isinstance(business, str)
    return verifier.decide(parsed, business, **kw)


def test_a_verified_visitor_is_passed_with_the_id_of_the_key_that_matched() -> None:
    hook = Recorder()
    run(engine(hook), OLD_HASH_BODY)
    record = hook.only
    assert record == DecisionRecord(
        widget_id="w_pro",
        business_id="shop",
        status=Status.VERIFIED,
        outcome="passed",
        code=None,
        transport="http",
        key_id="sec_old",
        resolver_seconds=None,  # StaticResolver answers from memory (peek)
    )
    assert_private(record)


def test_unverified_identity_is_stripped_anonymous_is_passed() -> None:
    hook = Recorder()
    verifier = engine(hook)
    run(verifier, {"user": {"user_id": "42", "user_hash": "0" * 64, "email": "ada@example.com"}})
    run(verifier, {"message": "hi"})
    stripped, anonymous = hook.records
    assert (stripped.status, stripped.outcome, stripped.key_id) == (
        Status.INVALID_HASH,
        "stripped",
        None,
    )
    assert (anonymous.status, anonymous.outcome) == (Status.ANONYMOUS, "passed")
    assert_private(stripped)


def test_a_refused_identity_is_rejected_with_its_code() -> None:
    hook = Recorder()
    run(engine(hook, mode="enforce"), {"user": {"user_id": "42", "user_hash": "f" * 64}})
    assert (hook.only.outcome, hook.only.code, hook.only.status) == (
        "rejected",
        "identity_verification_failed",
        Status.INVALID_HASH,
    )


def test_a_plan_without_identity_strips_what_it_was_sent() -> None:
    hook = Recorder()
    run(engine(hook), {"user": {"user_id": "42", "user_hash": GOOD}}, widget="w_free")
    assert (hook.only.status, hook.only.outcome, hook.only.key_id) == (
        Status.IDENTITY_DISABLED,
        "stripped",
        None,
    )


def test_a_verifier_for_websocket_names_its_transport_and_leaves_the_original_alone() -> None:
    hook = Recorder()
    verifier = engine(hook)
    websocket = verifier.for_transport("websocket")
    run(websocket, {"message": "hi"})
    websocket.log_error("malformed_body", "w_pro")
    run(verifier, {"message": "hi"})
    assert [r.transport for r in hook.records] == ["websocket", "websocket", "http"]


def test_refusals_before_a_decision_are_records_too() -> None:
    hook = Recorder()
    verifier = engine(hook)
    verifier.log_error("body_too_large")
    assert verifier.peek("w_nobody") == "unknown_widget"
    assert [(r.widget_id, r.business_id, r.status, r.outcome, r.code) for r in hook.records] == [
        (None, None, None, "rejected", "body_too_large"),
        ("w_nobody", None, None, "rejected", "unknown_widget"),
    ]


class SlowResolver:
    """A resolver with no memory (no ``peek``): every lookup is timed."""

    def __init__(self, delay: float, fail: bool = False) -> None:
        self.delay, self.fail = delay, fail

    def resolve(self, widget_id: str) -> Business | None:
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("store down")
        return BUSINESSES.get(widget_id)


def test_the_resolver_time_is_measured_for_lookups_answers_and_failures() -> None:
    hook = Recorder()
    run(engine(hook, SlowResolver(0.02)), {"message": "hi"})
    assert engine(hook, SlowResolver(0.02)).lookup("w_nobody") == "unknown_widget"
    assert engine(hook, SlowResolver(0.02, fail=True)).lookup("w_pro") == "resolver_unavailable"
    # A later refusal that never reached the resolver carries no time of an earlier one.
    engine(hook, SlowResolver(0.02)).log_error("malformed_body")
    times = [r.resolver_seconds for r in hook.records]
    assert all(t is not None and 0.015 < t < 1.0 for t in times[:3]), times
    assert times[3] is None


def test_the_async_lookup_is_timed_too() -> None:
    hook = Recorder()
    verifier = engine(hook, SlowResolver(0.02))
    parsed = verifier.inspect("application/json", "w_pro", b"", b"{}")

    async def main() -> None:
        business = await verifier.alookup("w_pro")
        assert isinstance(business, Business)
        verifier.decide(parsed, business)

    asyncio.run(main())
    seconds = hook.only.resolver_seconds
    assert seconds is not None and 0.015 < seconds < 1.0


def test_a_hook_that_raises_is_logged_once_and_never_fails_the_request(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ainisa_middleware import decisions

    monkeypatch.setattr(decisions, "_last_error", [float("-inf")])

    def broken(record: DecisionRecord) -> None:
        raise RuntimeError("exporter down")

    verifier = engine(broken)
    with caplog.at_level(logging.ERROR, logger="ainisa_middleware"):
        first = run(verifier, {"user": {"user_id": "42", "user_hash": GOOD}})
        second = run(verifier, {"user": {"user_id": "42", "user_hash": GOOD}})
    assert first.user is not None and first.user.verified and second.user is not None
    failures = [r for r in caplog.records if "on_decision" in r.getMessage()]
    assert len(failures) == 1  # rate-limited: not once per request
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is RuntimeError


def test_a_record_is_frozen() -> None:
    hook = Recorder()
    run(engine(hook), {"message": "hi"})
    with pytest.raises(AttributeError):
        hook.only.outcome = "rejected"  # type: ignore[misc]


def test_call_hook_swallows_any_exception_but_not_base_exceptions() -> None:
    def interrupted(record: DecisionRecord) -> None:
        raise KeyboardInterrupt

    record = DecisionRecord(None, None, None, "rejected", "x", "http", None, None)
    with pytest.raises(KeyboardInterrupt):
        call_hook(interrupted, record)


@pytest.mark.parametrize("bad", ["not.callable", 42, object()])
def test_a_hook_that_is_not_callable_fails_at_construction(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="on_decision must be a callable"):
        AinisaMiddleware(Starlette(), resolver=RESOLVER, paths=PATHS, on_decision=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="on_decision must be a callable"):
        AinisaWSGIMiddleware(lambda e, s: [], resolver=RESOLVER, paths=PATHS, on_decision=bad)  # type: ignore[arg-type]


# --- through the adapters -------------------------------------------------------------


def echo_app(request: Request) -> JSONResponse:
    user = request.state.ainisa_user
    return JSONResponse({"verified": user.verified})


def asgi_client(hook: Recorder, resolver: object = RESOLVER) -> TestClient:
    app = Starlette(routes=[Route("/chat", echo_app, methods=["POST"])])
    return TestClient(
        AinisaMiddleware(app, resolver=resolver, paths=PATHS, on_decision=hook)  # type: ignore[arg-type]
    )


def test_asgi_one_record_per_request_and_none_for_other_paths() -> None:
    hook = Recorder()
    with asgi_client(hook) as client:
        ok = client.post("/chat", json={"widget_id": "w_pro", **OLD_HASH_BODY})
        assert ok.json() == {"verified": True}
        assert client.post("/chat", json={"widget_id": "w_who"}).status_code == 404
        assert client.post("/chat", content=b"{", headers={"content-type": "application/json"})
        assert client.post("/other", json={"widget_id": "w_pro"}).status_code == 404
    assert [(r.outcome, r.code, r.key_id) for r in hook.records] == [
        ("passed", None, "sec_old"),
        ("rejected", "unknown_widget", None),
        ("rejected", "malformed_body", None),
    ]
    for record in hook.records:
        assert_private(record)


def test_asgi_a_large_body_decided_in_a_worker_thread_carries_its_resolver_time() -> None:
    hook = Recorder()
    # Deep enough nesting that the body is parsed off the event loop.
    padding = [[[[[[[1]]]]]]] * (OFF_LOOP_BODY_SIZE // 10)
    body = {"widget_id": "w_pro", "pad": padding, **OLD_HASH_BODY}
    with asgi_client(hook, SlowResolver(0.02)) as client:
        assert client.post("/chat", json=body).json() == {"verified": True}
    seconds = hook.only.resolver_seconds
    assert seconds is not None and 0.015 < seconds < 1.0
    assert hook.only.key_id == "sec_old"


def test_wsgi_one_record_per_request() -> None:
    hook = Recorder()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["ainisa.user"].status.encode()]

    client = webtest.TestApp(
        AinisaWSGIMiddleware(app, resolver=RESOLVER, paths=PATHS, on_decision=hook)
    )
    assert client.post_json("/chat", {"widget_id": "w_pro", **OLD_HASH_BODY}).text == "verified"
    client.post("/chat", "x" * 2_000_000, content_type="text/plain", status=413)
    assert [(r.outcome, r.code, r.transport) for r in hook.records] == [
        ("passed", None, "http"),
        ("rejected", "body_too_large", "http"),
    ]


def test_the_hook_sees_no_secret_even_for_a_business_without_secret_ids() -> None:
    hook = Recorder()
    resolver = StaticResolver({"w": Business(id="b", secrets=("other", SECRET))})
    run(engine(hook, resolver), {"user": {"user_id": "42", "user_hash": GOOD}}, widget="w")
    assert hook.only.key_id == "1"  # the position of the secret, never the secret
    assert user_hash(SECRET, "42") not in repr(hook.only)


def test_a_cache_answer_after_a_timed_lookup_in_the_same_thread_carries_no_time() -> None:
    hook = Recorder()
    run(engine(hook, SlowResolver(0.02)), {"message": "hi"})  # a lookup, timed
    run(engine(hook), {"message": "hi"})  # StaticResolver answers from memory (peek)
    first, second = hook.records
    assert first.resolver_seconds is not None and second.resolver_seconds is None


def test_websocket_connections_and_first_frames_are_records_named_websocket() -> None:
    from starlette.routing import WebSocketRoute
    from starlette.testclient import WebSocketDenialResponse
    from starlette.websockets import WebSocket

    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        await websocket.send_text(websocket.scope["state"]["ainisa_user"].status)
        await websocket.close()

    hook = Recorder()
    app = AinisaMiddleware(
        Starlette(routes=[WebSocketRoute("/chat", chat)]),
        resolver=RESOLVER,
        paths=PATHS,
        on_decision=hook,
    )
    with TestClient(app) as client:
        with client.websocket_connect(f"/chat?widget_id=w_pro&user_id=42&user_hash={OLD}") as ws:
            ws.send_text(json.dumps({"message": "hi"}))
            assert ws.receive_text() == "verified"
        with client.websocket_connect("/chat?widget_id=w_pro") as ws:  # identity in frame 1
            ws.send_text(json.dumps({"user": {"user_id": "42", "user_hash": "0" * 64}}))
            assert ws.receive_text() == "invalid_hash"
        with (
            pytest.raises(WebSocketDenialResponse),
            client.websocket_connect("/chat?widget_id=w_nobody"),
        ):
            pass
    assert [(r.transport, r.status, r.outcome, r.code, r.key_id) for r in hook.records] == [
        ("websocket", Status.VERIFIED, "passed", None, "sec_old"),
        ("websocket", Status.ANONYMOUS, "passed", None, None),  # the connect, no user data
        ("websocket", Status.INVALID_HASH, "stripped", None, None),  # its first frame
        ("websocket", None, "rejected", "unknown_widget", None),
    ]
