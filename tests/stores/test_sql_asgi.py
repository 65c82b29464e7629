"""The ASGI middleware end to end with :class:`SQLResolver` behind it."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware import user_hash
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.stores.sql import SQLResolver, SQLStore

from .conftest import FakeClock, FakeMonotonic, Outage
from .test_sql import QueryCounter


async def chat(request: Request) -> JSONResponse:
    user = request.state.ainisa_user
    body = await request.body()
    return JSONResponse(
        {"status": user.status.value, "user_id": user.user_id, "body": json.loads(body or b"{}")}
    )


def client_for(resolver: SQLResolver, **options: object) -> TestClient:
    app = Starlette(routes=[Route("/chat", chat, methods=["POST"])])
    middleware = AinisaMiddleware(app, resolver=resolver, paths=["/chat"], **options)  # type: ignore[arg-type]
    return TestClient(middleware)


def message(user_id: str = "", hash_: str = "", widget_id: str = "wid_demo") -> dict[str, object]:
    body: dict[str, object] = {"widget_id": widget_id, "message": "Where is my order?"}
    if user_id:  # else an anonymous visitor
        body["user"] = {"user_id": user_id, "user_hash": hash_, "firstname": "Ada"}
    return body


@pytest.fixture
def shop(store: SQLStore) -> SQLStore:
    store.add_business("shop", name="Demo Shop", plan="pro")
    store.add_widget("wid_demo", business_id="shop")
    return store


def test_a_verified_chat_request_through_the_store(
    shop: SQLStore, monotonic: FakeMonotonic, caplog: pytest.LogCaptureFixture
) -> None:
    secret = shop.rotate_secret("shop")
    resolver = SQLResolver(shop, monotonic=monotonic)
    with client_for(resolver) as client, caplog.at_level(logging.INFO, "ainisa_middleware"):
        answer = client.post("/chat", json=message("42", user_hash(secret.value, "42")))
        assert answer.status_code == 200
        assert answer.json()["status"] == "verified"
        assert answer.json()["user_id"] == "42"
        assert answer.json()["body"]["user"] == {"user_id": "42", "firstname": "Ada"}
        forged = client.post("/chat", json=message("43", user_hash(secret.value, "42")))
        assert forged.json()["status"] == "invalid_hash"
        assert "user" not in forged.json()["body"]
        unknown = client.post("/chat", json=message(widget_id="wid_nope"))
        assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_widget")
    verified = [r for r in caplog.records if getattr(r, "ainisa_status", None) == "verified"]
    assert [r.ainisa_secret for r in verified] == [str(secret.id)]  # type: ignore[attr-defined]
    assert secret.value not in caplog.text


def test_rotation_end_to_end(shop: SQLStore, monotonic: FakeMonotonic, clock: FakeClock) -> None:
    old = shop.rotate_secret("shop")
    old_hash = user_hash(old.value, "42")
    resolver = SQLResolver(shop, monotonic=monotonic, ttl=5)
    with client_for(resolver) as client:
        assert client.post("/chat", json=message("42", old_hash)).json()["status"] == "verified"
        new = shop.rotate_secret("shop", grace=timedelta(days=7))
        monotonic.advance(5)  # the cached business expires
        assert client.post("/chat", json=message("42", old_hash)).json()["status"] == "verified"
        new_hash = user_hash(new.value, "42")
        assert client.post("/chat", json=message("42", new_hash)).json()["status"] == "verified"
        clock.advance(days=7)
        monotonic.advance(5)
        assert client.post("/chat", json=message("42", old_hash)).json()["status"] == "invalid_hash"
        assert client.post("/chat", json=message("42", new_hash)).json()["status"] == "verified"


def test_plans_and_require_identity_end_to_end(shop: SQLStore, monotonic: FakeMonotonic) -> None:
    secret = shop.rotate_secret("shop")
    shop.add_business("strict", plan="enterprise", require_identity=True)
    shop.add_widget("wid_strict", business_id="strict")
    shop.add_business("small", plan="free")
    shop.add_widget("wid_small", business_id="small")
    resolver = SQLResolver(shop, monotonic=monotonic)
    with client_for(resolver, mode="enforce") as client:
        strict = client.post("/chat", json=message(widget_id="wid_strict"))
        assert (strict.status_code, strict.json()["error"]) == (401, "identity_required")
        small = client.post("/chat", json=message("42", "0" * 64, widget_id="wid_small"))
        assert (small.status_code, small.json()["status"]) == (200, "identity_disabled")
        bad = client.post("/chat", json=message("42", user_hash(secret.value, "41")))
        assert (bad.status_code, bad.json()["error"]) == (401, "identity_verification_failed")
        shop.disable_widget("wid_small")
        monotonic.advance(60)
        gone = client.post("/chat", json=message(widget_id="wid_small"))
        assert gone.status_code == 404


def test_a_flood_of_unknown_widgets_never_reaches_the_database(
    shop: SQLStore, monotonic: FakeMonotonic
) -> None:
    resolver = SQLResolver(shop, monotonic=monotonic)
    counter = QueryCounter(shop.engine)
    try:
        with client_for(resolver) as client:
            assert client.post("/chat", json=message()).status_code == 200
            before = counter.count
            for n in range(100):
                answer = client.post("/chat", json=message(widget_id=f"wid_random_{n}"))
                assert answer.status_code == 404
            assert counter.count == before
    finally:
        counter.close()


@pytest.mark.parametrize("cache", [False, True], ids=["uncached", "cached"])
def test_database_outage_answers_503_then_recovers(
    outage: Outage,
    outage_shop: tuple[SQLStore, str],
    monotonic: FakeMonotonic,
    cache: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, secret = outage_shop
    verified = message("42", user_hash(secret, "42"))
    resolver = SQLResolver(store, monotonic=monotonic, cache=cache, ttl=30)
    with client_for(resolver, resolver_timeout=5) as client:
        assert client.post("/chat", json=verified).json()["status"] == "verified"
        outage.cut()
        try:
            if cache:  # a business already cached keeps answering for ttl seconds
                answer = client.post("/chat", json=verified)
                assert answer.json()["status"] == "verified"
                monotonic.advance(30)
            answer = client.post("/chat", json=verified)
            assert (answer.status_code, answer.json()["error"]) == (503, "resolver_unavailable")
            monotonic.advance(2)  # the index is stale: unknown IDs need the database too
            answer = client.post("/chat", json=message(widget_id="wid_other"))
            assert answer.status_code == 503
        finally:
            outage.restore()
        answer = client.post("/chat", json=verified)
        assert (answer.status_code, answer.json()["status"]) == (200, "verified")
        assert client.post("/chat", json=message(widget_id="wid_other")).status_code == 404
    health = [r.getMessage() for r in caplog.records if r.name == "ainisa_middleware.stores.sql"]
    assert sum("cannot answer" in line for line in health) == 1
    assert sum("answers again" in line for line in health) == 1
    assert secret not in caplog.text
