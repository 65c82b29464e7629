"""Fault injection through the WSGI adapter and the Django middleware."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ainisa_middleware import Business, StaticResolver, user_hash
from ainisa_middleware.wsgi import AinisaWSGIMiddleware

from .harness import AsgiRunner
from .hosts import (
    adrive_django,
    django_middleware,
    drive_django,
    drive_wsgi,
    make_wsgi,
    wsgi_environ,
)
from .strategies import BUSINESSES, SECRET_NEW, SECRETS, Request
from .test_faults_asgi import FAILURES, WRONG, AsyncRaising, Raising
from .views import Sent, check_answer, log_leak_check

GOOD = user_hash(SECRET_NEW, "42")


def verified_request() -> Request:
    body = json.dumps({"message": "hi", "user": {"user_id": "42", "user_hash": GOOD}}).encode()
    headers = [
        (b"x-ainisa-widget-id", b"w_pro"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return Request("POST", "/chat", headers, b"", body, [body], Sent("w_pro", [GOOD]))


@pytest.fixture(scope="module")
def runner() -> Iterator[AsgiRunner]:
    loop = AsgiRunner()
    yield loop
    loop.close()


@pytest.mark.parametrize("kind", [Raising, AsyncRaising])
@pytest.mark.parametrize("exc", FAILURES, ids=lambda e: type(e).__name__)
def test_wsgi_resolver_that_raises_is_503(kind: type, exc: Exception) -> None:
    with log_leak_check() as log:
        outcome = drive_wsgi(make_wsgi(kind(exc)), wsgi_environ(verified_request()))
        log.check(SECRETS, [GOOD])
    assert outcome.seen is None
    assert check_answer(outcome.status, outcome.headers, outcome.body) == "resolver_unavailable"


@pytest.mark.parametrize("value", WRONG, ids=lambda v: type(v).__name__)
def test_wsgi_resolver_returning_the_wrong_type_is_503(value: object) -> None:
    class Wrong:
        def resolve(self, widget_id: str) -> object:
            return value

    outcome = drive_wsgi(make_wsgi(Wrong()), wsgi_environ(verified_request()))
    assert outcome.status == 503 and outcome.seen is None


def test_wsgi_async_only_resolver_hanging_past_the_timeout_is_503() -> None:
    class AsyncHanging:
        async def aresolve(self, widget_id: str) -> Business | None:
            await asyncio.sleep(30)
            return None

    started = time.monotonic()
    outcome = drive_wsgi(
        make_wsgi(AsyncHanging(), resolver_timeout=0.2), wsgi_environ(verified_request())
    )
    assert outcome.status == 503
    assert time.monotonic() - started < 5


def test_wsgi_app_raising_after_the_rewrite_propagates_unchanged() -> None:
    seen: list[Any] = []
    failure = RuntimeError("the app broke")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append((environ["wsgi.input"].read(), environ["ainisa.user"]))
        raise failure

    middleware = AinisaWSGIMiddleware(app, resolver=StaticResolver(BUSINESSES), paths=["/chat"])
    with pytest.raises(RuntimeError) as caught:
        middleware(wsgi_environ(verified_request()), lambda status, headers, exc=None: None)
    assert caught.value is failure
    body, user = seen[0]
    assert b"user_hash" not in body and user.verified


def test_wsgi_client_that_sends_less_than_content_length_never_reaches_the_app() -> None:
    req = verified_request()
    env = wsgi_environ(req)
    env["CONTENT_LENGTH"] = str(len(req.body) + 50)  # the client went away early
    outcome = drive_wsgi(make_wsgi(), env)
    assert outcome.seen is None
    assert check_answer(outcome.status, outcome.headers, outcome.body) == "malformed_body"


@pytest.mark.parametrize("kind", [Raising, AsyncRaising])
@pytest.mark.parametrize("exc", FAILURES[:3], ids=lambda e: type(e).__name__)
def test_django_resolver_that_raises_is_503(runner: AsgiRunner, kind: type, exc: Exception) -> None:
    with django_middleware(resolver=kind(exc)) as (sync_mw, async_mw), log_leak_check() as log:
        outcomes = [drive_django(sync_mw, verified_request())]
        outcomes.append(runner.run(adrive_django(async_mw, verified_request())))
        log.check(SECRETS, [GOOD])
    for outcome in outcomes:
        assert outcome is not None and outcome.seen is None
        assert check_answer(outcome.status, outcome.headers, outcome.body) == "resolver_unavailable"


def test_django_async_resolver_hanging_past_the_timeout_is_503(runner: AsgiRunner) -> None:
    class AsyncHanging:
        async def aresolve(self, widget_id: str) -> Business | None:
            await asyncio.sleep(30)
            return None

    with django_middleware(resolver=AsyncHanging(), RESOLVER_TIMEOUT=0.2) as (_, async_mw):
        started = time.monotonic()
        outcome = runner.run(adrive_django(async_mw, verified_request()))
    assert outcome is not None and outcome.status == 503
    assert time.monotonic() - started < 5
