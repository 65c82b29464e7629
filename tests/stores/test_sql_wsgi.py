"""A sync host: the WSGI middleware with :class:`SQLResolver`, the store's timeout applied."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import webtest

from ainisa_middleware import user_hash
from ainisa_middleware.stores.sql import SQLResolver, SQLStore
from ainisa_middleware.wsgi import AinisaWSGIMiddleware

from .conftest import FakeMonotonic, Outage


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    user = environ["ainisa.user"]
    body = json.dumps({"status": user.status.value, "user_id": user.user_id}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_a_sync_host_verifies_then_answers_503_in_an_outage_then_recovers(
    outage: Outage, outage_shop: tuple[SQLStore, str], monotonic: FakeMonotonic
) -> None:
    store, secret = outage_shop
    # On a sync host the store's own timeout is what bounds a lookup.
    assert store.timeout == 3.0
    resolver = SQLResolver(store, monotonic=monotonic, cache=False)
    app = webtest.TestApp(
        AinisaWSGIMiddleware(echo, resolver=resolver, paths=["/chat"], resolver_timeout=3),
        lint=True,
    )
    body = {
        "widget_id": "wid_demo",
        "user": {"user_id": "42", "user_hash": user_hash(secret, "42")},
    }
    assert app.post_json("/chat", body).json == {"status": "verified", "user_id": "42"}
    outage.cut()
    try:
        answer = app.post_json("/chat", body, status=503)
        assert answer.json["error"] == "resolver_unavailable"
    finally:
        outage.restore()
    assert app.post_json("/chat", body).json["status"] == "verified"
    assert app.post_json("/chat", {"widget_id": "wid_nope"}, status=404).json["error"] == (
        "unknown_widget"
    )
