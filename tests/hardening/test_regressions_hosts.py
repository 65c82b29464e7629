"""Bugs the property tests found in the WSGI and Django adapters, pinned."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.routing import Map, Rule

from ainisa_middleware import StaticResolver
from ainisa_middleware.wsgi import AinisaWSGIMiddleware

from .hosts import django_middleware, drive_django, drive_wsgi, make_wsgi, wsgi_environ
from .strategies import BUSINESSES, Request
from .views import Sent


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    logging.getLogger("ainisa_middleware").disabled = True
    yield
    logging.getLogger("ainisa_middleware").disabled = False


@pytest.mark.parametrize(
    ("charset", "query"),
    [
        ("utf-7", b"user+AF8-id=victim&firstname=Eve"),
        ("utf-7", b"user%2BAF8-id=victim"),
        ("utf-16", b"x=1"),
        ("latin-1", b"user_id=%C3%A9"),
    ],
)
def test_django_reads_the_query_as_utf8_whatever_the_charset(charset: str, query: bytes) -> None:
    # Was: request.GET decoded the query with Content-Type's charset even on a
    # bodiless GET, so UTF-7 made "user+AF8-id=victim" a user_id nobody signed.
    headers = [
        (b"x-ainisa-widget-id", b"w_pro"),
        (b"content-type", f"text/plain; charset={charset}".encode()),
    ]
    req = Request("GET", "/chat", headers, query, b"", [b""], Sent("w_pro"))
    with django_middleware() as (sync_mw, _):
        outcome = drive_django(sync_mw, req)
    assert outcome is not None and outcome.seen is not None
    assert outcome.seen.parsed["query/django-GET"] == {}


# -- open ------------------------------------------------------------------------

UNSIGNED = b"user_id=victim&user_hash=" + b"0" * 64


def test_a_path_werkzeug_routes_to_the_chat_view_is_inspected() -> None:
    urls = Map([Rule("/chat", endpoint="chat"), Rule("/chat/<path:rest>", endpoint="chat")])
    seen: list[tuple[str, object, str]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        endpoint, _ = urls.bind_to_environ(environ).match()
        seen.append((endpoint, environ.get("ainisa.user"), environ["QUERY_STRING"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = AinisaWSGIMiddleware(app, resolver=StaticResolver(BUSINESSES), paths=["/chat"])
    headers = [(b"x-ainisa-widget-id", b"w_pro")]
    req = Request("GET", "//chat/..", headers, UNSIGNED, b"", [b""], Sent("w_pro"))
    assert drive_wsgi(middleware, wsgi_environ(req)).status == 200
    ((endpoint, user, query),) = seen
    assert endpoint == "chat"
    assert user is not None, "the chat view got the request uninspected"
    assert "user_hash" not in query


def test_options_with_a_terminated_body_is_inspected() -> None:
    body = b'{"user":{"user_id":"victim","user_hash":"' + b"0" * 64 + b'"}}'
    headers = [
        (b"x-ainisa-widget-id", b"w_pro"),
        (b"content-type", b"application/json"),
        (b"access-control-request-method", b"POST"),
    ]
    env = wsgi_environ(Request("OPTIONS", "/chat", headers, b"", body, [body], Sent("w_pro")))
    assert env["wsgi.input_terminated"] and "CONTENT_LENGTH" not in env
    outcome = drive_wsgi(make_wsgi(), env)
    assert outcome.seen is not None
    assert outcome.seen.user is not None, "reached the app uninspected"
