"""The resolver table: every kind of resolver through every adapter gives the same answers.

Kinds (``tests/conftest.py``): sync, async-only, ``aresolve`` that is not ``async def``
(a partial, a function returning a coroutine, one answering directly, one beside a
``resolve``), cached over sync and async, raising, hanging past the timeout, returning
the wrong type, a ``peek`` that raises or answers a row. Adapters: the ASGI middleware
driven by hand, the WSGI middleware under WebTest, Django's middleware through
``Client`` (sync) and ``AsyncClient`` (async).

A resolver that answers: the business is found or the widget is unknown (404), and it
is consulted once per request (once per widget, cached). A resolver that fails: 503,
never a pass, never cached. A request rejected before the lookup never consults it.
Every intercepted request logs exactly one record, with no secret in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest
import webtest
from webtest.lint import middleware as lint_middleware

from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.wsgi import ENVIRON_KEY, AinisaWSGIMiddleware
from tests.test_wsgi import send_case

from .cases import (
    ADA,
    ALL_HASHES,
    BUSINESSES,
    PATHS,
    Case,
    check,
    echo_payload,
    post_json,
    raw,
    verified_user,
)
from .conftest import ANSWERING_KINDS, FAILING_KINDS, RESOLVER_KINDS, ResolverKind

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ainisa_middleware._types import Message, Receive, Scope, Send

#: The timeout the table runs a failing resolver under; a hanging one takes ``HANG``.
TIMEOUT = 0.1
DEFAULT = 5.0

#: ``driver(case, resolver, resolver_timeout) -> (status, JSON payload)``
Driver = Callable[[Case, object, float | None], tuple[int, Any]]
_JSON_HEADERS = [(b"content-type", b"application/json")]


# --- the adapters ---------------------------------------------------------------------------


def _asgi(case: Case, resolver: object, timeout: float | None) -> tuple[int, Any]:
    """The ASGI middleware driven by hand: one scope, the body in one message."""

    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        payload = echo_payload(
            body,
            scope["query_string"].decode("latin-1"),
            scope.get("state", {}).get(STATE_KEY),
            None if length is None else length.decode(),
        )
        out = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": 200, "headers": _JSON_HEADERS})
        await send({"type": "http.response.body", "body": out})

    middleware = AinisaMiddleware(
        echo, resolver=resolver, paths=PATHS, mode=case.mode, resolver_timeout=timeout
    )
    headers = [(name.lower().encode(), value.encode()) for name, value in case.headers]
    if case.content_type is not None:
        headers.append((b"content-type", case.content_type.encode()))
    if case.body:
        headers.append((b"content-length", str(len(case.body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": case.method,
        "path": case.path,
        "raw_path": case.path.encode(),
        "root_path": "",
        "query_string": case.query.encode("latin-1"),
        "headers": headers,
    }
    incoming: list[Message] = [{"type": "http.request", "body": case.body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}  # pragma: no cover - the echo reads one message

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return int(sent[0]["status"]), json.loads(body)


def _wsgi_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    length = environ.get("CONTENT_LENGTH")
    body = environ["wsgi.input"].read(int(length)) if length else b""
    payload = echo_payload(body, environ.get("QUERY_STRING", ""), environ.get(ENVIRON_KEY), length)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(payload).encode()]


def _wsgi(case: Case, resolver: object, timeout: float | None) -> tuple[int, Any]:
    """The WSGI middleware under WebTest, with WSGI lint on both sides."""
    middleware = AinisaWSGIMiddleware(
        lint_middleware(_wsgi_echo),
        resolver=resolver,  # type: ignore[arg-type]
        paths=PATHS,
        mode=case.mode,  # type: ignore[arg-type]
        resolver_timeout=timeout,
    )
    response = send_case(webtest.TestApp(middleware, lint=True), case)
    return response.status_int, response.json


def _django(asynchronous: bool) -> Driver:
    def send(case: Case, resolver: object, timeout: float | None) -> tuple[int, Any]:
        from django.test import AsyncClient, Client, override_settings

        settings = {
            "RESOLVER": resolver,
            "PATHS": PATHS,
            "MODE": case.mode,
            "RESOLVER_TIMEOUT": timeout,
        }
        urls = "tests.test_django." + ("async_table_urls" if asynchronous else "table_urls")
        url = case.path + ("?" + case.query if case.query else "")
        kwargs: dict[str, Any] = {
            "content_type": case.content_type or "",
            "headers": dict(case.headers),
        }
        with override_settings(AINISA=settings, ROOT_URLCONF=urls):
            if asynchronous:
                request = AsyncClient().generic(case.method, url, case.body, **kwargs)
                response = asyncio.run(request)
            else:
                response = Client().generic(case.method, url, case.body, **kwargs)
        return response.status_code, response.json()

    return send


ADAPTERS: dict[str, Driver] = {
    "asgi": _asgi,
    "wsgi": _wsgi,
    "django-sync": _django(asynchronous=False),
    "django-async": _django(asynchronous=True),
}
#: Adapters that run on an event loop: they bound every resolver by the timeout.
ASYNC_ADAPTERS = ["asgi", "django-async"]


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    if request.param.startswith("django"):
        request.getfixturevalue("django_project")
    return str(request.param)


@dataclass(frozen=True)
class Sent:
    """A request of the table, what must come of it, and the log record it must leave."""

    case: Case
    #: the record's outcome (``None``: the request passes untouched and logs nothing)
    outcome: str | None
    widget_id: str | None = None


VERIFIED = Sent(
    post_json(
        {"widget_id": "w_pro", "user": ADA},
        user_status="verified",
        user=verified_user(firstname="Ada", lastname="Lovelace", email="ada@example.com"),
        app_json={
            "widget_id": "w_pro",
            "user": {k: v for k, v in ADA.items() if k != "user_hash"},
        },
    ),
    "pass",
    "w_pro",
)
REQUIRED = Sent(
    post_json({"widget_id": "w_req"}, status=401, error="identity_required"),
    "identity_required",
    "w_req",
)
UNKNOWN = Sent(Case(query="widget_id=w_nope", status=404, error="unknown_widget"), "unknown_widget")
UNAVAILABLE = Sent(
    replace(VERIFIED.case, status=503, error="resolver_unavailable"), "resolver_unavailable"
)
#: Requests answered before the lookup, or not the middleware's at all.
EARLY = [
    Sent(raw("application/json", b"[", status=400, error="malformed_body"), "malformed_body"),
    Sent(post_json({"msg": "hi"}, status=400, error="missing_widget_id"), "missing_widget_id"),
    Sent(
        Case(query="widget_id=w_pro&user_id=1&user_id=2", status=400, error="malformed_request"),
        "malformed_request",
        "w_pro",
    ),
    Sent(
        post_json(
            {"widget_id": "w_pro", "user": {"email": "a@b.c"}},
            query="user_id=1",
            status=400,
            error="conflicting_user_data",
        ),
        "conflicting_user_data",
        "w_pro",
    ),
    Sent(
        raw(
            "text/plain", b"x", query="widget_id=w_pro", status=415, error="unsupported_media_type"
        ),
        "unsupported_media_type",
    ),
    Sent(
        Case(
            method="OPTIONS",
            query="widget_id=w_pro",
            headers=(("Access-Control-Request-Method", "POST"),),
            app_query="widget_id=w_pro",
        ),
        None,
    ),
    Sent(Case(path="/elsewhere", query="widget_id=w_pro", app_query="widget_id=w_pro"), None),
]


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "ainisa_middleware"]


def _send(
    adapter: str,
    sent: Sent,
    kind: ResolverKind,
    caplog: pytest.LogCaptureFixture,
    timeout: float | None = DEFAULT,
) -> None:
    """Send one request, check the answer against the contract and its one log record."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        status, payload = ADAPTERS[adapter](sent.case, kind.resolver, timeout)
    check(sent.case, status, payload)
    records = _ours(caplog)
    if sent.outcome is None:
        assert records == []
        return
    assert len(records) == 1, [r.getMessage() for r in records]
    (record,) = records
    assert record.ainisa_outcome == sent.outcome  # type: ignore[attr-defined]
    if sent.widget_id is not None:
        assert record.ainisa_widget_id == sent.widget_id  # type: ignore[attr-defined]
    text = record.getMessage() + repr(record.__dict__)
    for business in BUSINESSES.values():
        for secret in business.secrets:
            assert secret not in text
    for hashed in ALL_HASHES:
        assert hashed not in text
    assert "ada@example.com" not in text


# --- the table --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ANSWERING_KINDS)
def test_every_resolver_gives_the_same_answers(
    name: str,
    adapter: str,
    resolver_kind: Callable[[str], ResolverKind],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = resolver_kind(name)
    for sent in (VERIFIED, REQUIRED, UNKNOWN):
        _send(adapter, sent, kind, caplog)
    assert kind.consulted() == 3  # once per request
    for sent in (VERIFIED, REQUIRED, UNKNOWN):
        _send(adapter, sent, kind, caplog)
    # A cache remembers a business and an unknown widget alike.
    assert kind.consulted() == (3 if kind.cached else 6)


@pytest.mark.parametrize("name", FAILING_KINDS)
def test_a_failing_resolver_is_503_and_never_a_pass(
    name: str,
    adapter: str,
    resolver_kind: Callable[[str], ResolverKind],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = resolver_kind(name)
    if name == "hanging-sync" and adapter not in ASYNC_ADAPTERS:
        # A sync host calls a sync resolver in the request's thread, where nothing can
        # stop it: the store applies the timeout itself (CONTRACT section 4).
        _send(adapter, VERIFIED, kind, caplog, timeout=TIMEOUT)
        assert kind.consulted() == 1
        return
    # Only a hanging store needs the short timeout; one that fails at once gets a
    # long one, so a busy machine's slow thread start cannot stand in for its failure.
    timeout = TIMEOUT if kind.behaviour == "hangs" else 5.0
    for times in (1, 2):
        _send(adapter, UNAVAILABLE, kind, caplog, timeout=timeout)
        assert kind.consulted() == times  # once per request; a failure is never cached
    (record,) = _ours(caplog)
    if kind.behaviour == "fails":
        cause = "TypeError" if "wrong-type" in name else "ConnectionError"
        assert f"({cause})" in record.getMessage()


@pytest.mark.parametrize("name", list(RESOLVER_KINDS))
def test_requests_rejected_before_the_lookup_never_consult_the_resolver(
    name: str,
    adapter: str,
    resolver_kind: Callable[[str], ResolverKind],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = resolver_kind(name)
    for sent in EARLY:
        _send(adapter, sent, kind, caplog)
    assert kind.consulted() == 0


@pytest.mark.parametrize("name", ["sync", "cached-sync", "aresolve-plain-beside-resolve"])
@pytest.mark.parametrize("adapter_name", ASYNC_ADAPTERS)
def test_a_sync_resolver_never_runs_on_the_event_loop(
    name: str,
    adapter_name: str,
    resolver_kind: Callable[[str], ResolverKind],
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    if adapter_name.startswith("django"):
        request.getfixturevalue("django_project")
    kind = resolver_kind(name)
    _send(adapter_name, VERIFIED, kind, caplog)
    store = kind.resolver.inner if kind.cached else kind.resolver  # type: ignore[attr-defined]
    # The event loop runs in this thread (asyncio.run); the store ran in another.
    assert store.threads and threading.get_ident() not in store.threads


def test_no_timeout_waits_for_a_slow_resolver(
    adapter: str,
    resolver_kind: Callable[[str], ResolverKind],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = resolver_kind("hanging-async")
    _send(adapter, VERIFIED, kind, caplog, timeout=None)
    assert kind.consulted() == 1
