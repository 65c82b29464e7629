"""Fault injection through the ASGI adapter.

Each fault must end in the contract's error or a clean pass-through: never a
verified identity without a valid hash, never a secret in a log line or a
response, never a 500 of the middleware's own making.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ainisa_middleware import Business, CachedResolver, StaticResolver, user_hash
from ainisa_middleware.asgi import AinisaMiddleware

from .harness import AsgiRunner, Outcome, drive_asgi, http_scope, make_asgi, make_echo_app
from .profile import FLOOR, hypothesis_settings
from .strategies import BUSINESSES, SECRET_NEW, SECRETS, Request, requests
from .views import Seen, Sent, check_answer, check_passed, log_leak_check

GOOD = user_hash(SECRET_NEW, "42")


@pytest.fixture(scope="module")
def runner() -> Iterator[AsgiRunner]:
    loop = AsgiRunner()
    yield loop
    loop.close()


def verified_request(widget: str = "w_pro", uid: str = "42", digest: str = GOOD) -> Request:
    body = json.dumps({"message": "hi", "user": {"user_id": uid, "user_hash": digest}}).encode()
    headers = [(b"x-ainisa-widget-id", widget.encode()), (b"content-type", b"application/json")]
    return Request("POST", "/chat", headers, b"", body, [body], Sent(widget, [digest]))


def run(runner: AsgiRunner, resolver: object, req: Request, **options: Any) -> Outcome:
    app, record = make_asgi(resolver, **options)
    return runner.run(drive_asgi(app, http_scope(req), req.chunks, record))  # type: ignore[no-any-return]


# -- a resolver that raises ------------------------------------------------------


class Raising:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def resolve(self, widget_id: str) -> Business | None:
        raise self.exc


class AsyncRaising:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def aresolve(self, widget_id: str) -> Business | None:
        raise self.exc


FAILURES = [
    ConnectionError(f"could not connect with password {SECRET_NEW}"),
    TimeoutError("statement timeout"),
    RuntimeError(SECRET_NEW),
    KeyError(SECRET_NEW),
    RecursionError(),
    MemoryError(),
    ValueError("\x00\udcff"),
]


@pytest.mark.parametrize("kind", [Raising, AsyncRaising])
@pytest.mark.parametrize("exc", FAILURES, ids=lambda e: type(e).__name__)
def test_resolver_that_raises_is_503_and_the_error_text_stays_private(
    runner: AsgiRunner, kind: type, exc: Exception
) -> None:
    with log_leak_check() as log:
        outcome = run(runner, kind(exc), verified_request())
        assert any("resolver_unavailable" in line for line in log.lines)
        log.check(SECRETS, [GOOD])
    assert outcome.seen is None
    assert check_answer(outcome.status, outcome.headers, outcome.body) == "resolver_unavailable"
    assert SECRET_NEW.encode() not in outcome.body


def test_a_cached_resolver_over_a_raising_store_never_caches_the_failure(
    runner: AsgiRunner,
) -> None:
    store = Raising(ConnectionError("down"))
    cached = CachedResolver(store, ttl=60)
    assert run(runner, cached, verified_request()).status == 503
    store.exc = None  # type: ignore[assignment]

    class Healed:
        def resolve(self, widget_id: str) -> Business | None:
            return BUSINESSES.get(widget_id)

    cached.inner = Healed()
    outcome = run(runner, cached, verified_request())
    assert outcome.status == 200 and outcome.seen is not None
    assert outcome.seen.user.verified  # type: ignore[attr-defined]


# -- a resolver that hangs -------------------------------------------------------


class Hanging:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    def resolve(self, widget_id: str) -> Business | None:
        self.started += 1
        self.release.wait(30)
        return BUSINESSES.get(widget_id)


class AsyncHanging:
    async def aresolve(self, widget_id: str) -> Business | None:
        await asyncio.sleep(30)
        return BUSINESSES.get(widget_id)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_resolver_hanging_past_the_timeout_is_503_in_time(runner: AsgiRunner, kind: str) -> None:
    hanging = Hanging()
    resolver: object = hanging if kind == "sync" else AsyncHanging()
    app, record = make_asgi(resolver, resolver_timeout=0.2)

    async def many() -> list[Outcome]:
        req = verified_request()
        return await asyncio.gather(
            *(drive_asgi(app, http_scope(req), req.chunks, []) for _ in range(32))
        )

    started = time.monotonic()
    try:
        with log_leak_check() as log:
            outcomes = runner.run(many())
            log.check(SECRETS, [GOOD])
    finally:
        hanging.release.set()
    elapsed = time.monotonic() - started
    assert [o.status for o in outcomes] == [503] * 32
    assert all(o.seen is None for o in outcomes)
    assert elapsed < 3.0, f"32 concurrent timeouts of 0.2 s took {elapsed:.1f} s"
    assert record == []


def test_service_recovers_after_a_hang(runner: AsgiRunner) -> None:
    class Recovering:
        def __init__(self) -> None:
            self.hang = True

        async def aresolve(self, widget_id: str) -> Business | None:
            if self.hang:
                await asyncio.sleep(30)
            return BUSINESSES.get(widget_id)

    resolver = Recovering()
    app, record = make_asgi(resolver, resolver_timeout=0.1)
    req = verified_request()
    assert runner.run(drive_asgi(app, http_scope(req), req.chunks, record)).status == 503
    resolver.hang = False
    outcome = runner.run(drive_asgi(app, http_scope(req), req.chunks, record))
    assert outcome.status == 200 and outcome.seen is not None


# -- a resolver that returns the wrong type --------------------------------------

WRONG = [
    "biz_pro",
    {"id": "biz_pro", "secrets": [SECRET_NEW]},
    ("biz_pro", (SECRET_NEW,)),
    True,
    0,
    object(),
    [BUSINESSES["w_pro"]],
]


@pytest.mark.parametrize("value", WRONG, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_resolver_returning_the_wrong_type_is_503(
    runner: AsgiRunner, value: object, kind: str
) -> None:
    class Wrong:
        def resolve(self, widget_id: str) -> object:
            return value

    class AsyncWrong:
        async def aresolve(self, widget_id: str) -> object:
            return value

    with log_leak_check() as log:
        outcome = run(runner, Wrong() if kind == "sync" else AsyncWrong(), verified_request())
        log.check(SECRETS, [GOOD])
    assert outcome.status == 503 and outcome.seen is None


def test_sync_resolve_returning_an_awaitable_is_503(runner: AsgiRunner) -> None:
    class Confused:
        def resolve(self, widget_id: str) -> object:
            future: asyncio.Future[Business] = asyncio.Future(loop=asyncio.new_event_loop())
            future.get_loop().close()
            return future

    outcome = run(runner, Confused(), verified_request())
    assert outcome.status == 503


def test_business_that_duck_types_is_not_trusted(runner: AsgiRunner) -> None:
    class Lookalike:
        id = "biz_pro"
        secrets = ("attacker-chosen",)
        identity_enabled = True
        require_identity = False

    class Resolver:
        def resolve(self, widget_id: str) -> object:
            return Lookalike()

    forged = user_hash("attacker-chosen", "42")
    outcome = run(runner, Resolver(), verified_request(digest=forged))
    assert outcome.status == 503


# -- a resolver whose answer flips between calls --------------------------------

FLIP_SECRETS = {"biz_a": "secret-a-0123456789", "biz_b": "secret-b-9876543210"}
FLIPS = [
    Business(id="biz_a", secrets=(FLIP_SECRETS["biz_a"],)),
    Business(id="biz_b", secrets=(FLIP_SECRETS["biz_b"],)),
    Business(id="biz_a", secrets=(FLIP_SECRETS["biz_a"],), identity_enabled=False),
    None,
]


class Flipping:
    """Answers differently on every call, after a random pause: a store mid-update."""

    def __init__(self, seed: int) -> None:
        self.calls = 0
        self.seed = seed
        self.per_request: list[str] = []

    async def aresolve(self, widget_id: str) -> Business | None:
        self.calls += 1
        n = self.calls + self.seed
        await asyncio.sleep((n % 3) * 0.001)
        return FLIPS[n % len(FLIPS)]


@hypothesis_settings(max(FLOOR // 10, 30))
@given(
    seed=st.integers(0, 1000),
    plan=st.lists(st.tuples(st.sampled_from(["biz_a", "biz_b", "junk"]), st.text(max_size=4))),
)
def test_flipping_resolver_never_mixes_businesses(seed: int, plan: list[tuple[str, str]]) -> None:
    """Each request's identity is judged by the one answer it got, under concurrency."""
    resolver = Flipping(seed)
    record: list[Seen] = []
    app = AinisaMiddleware(make_echo_app(record), resolver=resolver, paths=["/chat"])
    requests_ = []
    for signer, uid in plan:
        secret = FLIP_SECRETS.get(signer, "not-a-secret")
        uid = uid or "u"
        requests_.append(verified_request("w_any", uid, user_hash(secret, uid)))

    async def all_at_once() -> list[Outcome]:
        return await asyncio.gather(
            *(drive_asgi(app, http_scope(r), r.chunks, []) for r in requests_)
        )

    with asyncio.Runner(debug=False) as loop, log_leak_check() as log:
        outcomes = loop.run(all_at_once())
        log.check([*FLIP_SECRETS.values()], [h for r in requests_ for h in r.sent.hashes])
    assert resolver.calls == len(requests_)  # consulted once per request
    businesses = {b.id: b for b in FLIPS if b is not None and b.identity_enabled}
    for req, outcome in zip(requests_, outcomes, strict=True):
        if outcome.seen is None:
            assert check_answer(outcome.status, outcome.headers, outcome.body) == "unknown_widget"
            continue
        user = outcome.seen.user
        if getattr(user, "verified", False):
            business = businesses[user.business_id]  # type: ignore[attr-defined]
            assert user_hash(business.secrets[0], user.user_id) in req.sent.hashes  # type: ignore[attr-defined]


# -- the client goes away --------------------------------------------------------


@hypothesis_settings(max(FLOOR // 5, 50))
@given(requests(), st.integers(0, 1 << 16))
def test_client_disconnect_mid_body_never_calls_the_app(req: Request, cut: int) -> None:
    # Without its Content-Length, an OPTIONS request naming a method is a genuine
    # preflight over HTTP/1.1: it passes through, and what the app makes of a
    # disconnect is the app's affair.
    assume(
        req.method != "OPTIONS"
        or all(name != b"access-control-request-method" for name, _ in req.headers)
    )
    body = req.body or b"{}"
    cut = cut % len(body)
    sent: list[Any] = []
    record: list[Seen] = []
    app, record = make_asgi()
    messages = [
        {"type": "http.request", "body": body[:cut], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [(n, v) for n, v in req.headers if n != b"content-length"]
    scope = http_scope(req)
    scope["headers"] = headers
    with asyncio.Runner(debug=False) as loop, log_leak_check():
        loop.run(app(scope, receive, send))
    assert record == []
    assert sent == []


def test_disconnect_after_the_body_reaches_the_app(runner: AsgiRunner) -> None:
    heard: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        heard.append(await receive())
        heard.append(await receive())  # the server's own http.disconnect
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = AinisaMiddleware(app, resolver=StaticResolver(BUSINESSES), paths=["/chat"])
    req = verified_request()
    outcome = runner.run(drive_asgi(middleware, http_scope(req), req.chunks, []))
    assert outcome.status == 200
    assert heard[0]["type"] == "http.request" and heard[0]["more_body"] is False
    assert b"user_hash" not in heard[0]["body"]
    assert heard[1] == {"type": "http.disconnect"}


# -- the app fails after the rewrite ---------------------------------------------


class AppFailure(Exception):
    pass


@pytest.mark.parametrize("when", ["before-response", "after-start", "after-body"])
def test_app_raising_after_the_rewrite_propagates_unchanged(runner: AsgiRunner, when: str) -> None:
    seen: list[Any] = []
    failure = AppFailure("the app broke")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.append((message["body"], scope["state"]["ainisa_user"]))
        if when != "before-response":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        if when == "after-body":
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise failure

    middleware = AinisaMiddleware(app, resolver=StaticResolver(BUSINESSES), paths=["/chat"])
    req = verified_request()
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": req.body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    with pytest.raises(AppFailure) as caught:
        runner.run(middleware(http_scope(req), receive, send))
    # The app's own exception, for the server to log and answer; nothing of ours
    # was sent after it, and the app had the rewritten body and a verified user.
    assert caught.value is failure
    assert SECRET_NEW not in repr(caught.value.__context__)
    body, user = seen[0]
    assert b"user_hash" not in body and user.verified
    expected = {"before-response": 0, "after-start": 1, "after-body": 2}[when]
    assert len(sent) == expected


def test_identity_refusal_raised_by_the_app_after_it_started_is_not_answered_twice(
    runner: AsgiRunner,
) -> None:
    from ainisa_middleware.asgi import AinisaIdentityError

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise AinisaIdentityError()

    middleware = AinisaMiddleware(app, resolver=StaticResolver(BUSINESSES), paths=["/chat"])
    req = verified_request()
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": req.body, "more_body": False}

    async def send(message: Any) -> None:
        # As servers do (uvicorn, Hypercorn, Daphne): a second response start is refused.
        if message["type"] == "http.response.start" and sent:
            raise RuntimeError("Unexpected ASGI message 'http.response.start'")
        sent.append(message)

    with pytest.raises(AinisaIdentityError):
        runner.run(middleware(http_scope(req), receive, send))
    assert [m["type"] for m in sent] == ["http.response.start"]


def test_every_request_in_a_failing_world_gets_a_contract_answer(runner: AsgiRunner) -> None:
    """Generated requests against a store that fails half the time: 503 or a sound pass."""

    class HalfDown:
        def __init__(self) -> None:
            self.n = 0

        async def aresolve(self, widget_id: str) -> Business | None:
            self.n += 1
            if self.n % 2:
                raise ConnectionError("down")
            return BUSINESSES.get(widget_id)

    app, record = make_asgi(HalfDown())

    @hypothesis_settings(max(FLOOR // 5, 50))
    @given(requests())
    def test(req: Request) -> None:
        outcome = runner.run(drive_asgi(app, http_scope(req), req.chunks, record))
        if outcome.seen is None:
            check_answer(outcome.status, outcome.headers, outcome.body)
        else:
            check_passed(outcome.seen, req.sent, BUSINESSES)

    with log_leak_check():
        test()


@pytest.mark.parametrize(
    "content_type",
    [
        b"multipart/form-data; boundary=b0; charset=utf-7",  # refused before a part is read
        b"multipart/form-data; boundary=b0",  # malformed from the first byte
    ],
)
def test_a_multipart_body_refused_early_is_answered_only_at_its_end(content_type: bytes) -> None:
    app, record = make_asgi()
    scope = http_scope(verified_request())
    scope["headers"] = [(b"content-type", content_type), (b"x-ainisa-widget-id", b"w_pro")]

    def run(messages: list[dict[str, Any]]) -> list[Any]:
        sent: list[Any] = []

        async def receive() -> Any:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        with asyncio.Runner(debug=False) as loop:
            loop.run(app(scope, receive, send))
        return sent

    first = {"type": "http.request", "body": b"{not a part", "more_body": True}
    assert run([dict(first), {"type": "http.disconnect"}]) == []
    answered = run([dict(first), {"type": "http.request", "body": b"}", "more_body": False}])
    assert answered[0]["status"] in (400, 415)
    assert record == []
