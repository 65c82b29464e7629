"""Litestar: the ASGI adapter around a Litestar app and inside its middleware stack.

Litestar caches what it parsed (body, JSON, form, query, headers) in
``scope["state"]``. A Litestar middleware that read the request before ours
leaves that cache holding the original request and the receive channel drained;
these tests put ours outside the app, in the app's ``middleware`` list after
such a reader, and on one route, and check what handlers read through
Litestar's own parsers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from litestar import Litestar, Request, post, route
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.params import Body, QueryParameter
from litestar.testing import TestClient
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ainisa_middleware.asgi import LITESTAR_STATE_KEY, STATE_KEY, AinisaMiddleware
from tests.cases import GOOD, PATHS, RESOLVER, ROWS, Case, check, echo_payload

METHODS: list[Any] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ECHO_PATHS = ["/chat", "/chat/{rest:path}", "/chatter", "/other"]
ADA = {"user_id": "42", "user_hash": GOOD, "firstname": "Ada"}
JSONData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.JSON)]
Query = Annotated[str | None, QueryParameter()]
FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


@route(ECHO_PATHS, http_method=METHODS, status_code=200)
async def echo(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = await request.body()
    return echo_payload(
        body,
        request.scope["query_string"].decode("latin-1"),
        request.scope["state"].get(STATE_KEY),
        request.headers.get("content-length"),
    )


def _views(request: Request[Any, Any, Any], parsed: Any) -> dict[str, Any]:
    user = getattr(request.state, STATE_KEY, None)
    return {
        "parsed": parsed,
        "query": dict(request.query_params),
        "url_query": request.url.query,
        "content_length": request.headers.get("content-length"),
        "status": None if user is None else str(user.status),
        "user_id": None if user is None else user.user_id,
    }


@post("/chat/json", status_code=200)
async def json_handler(
    request: Request[Any, Any, Any], data: JSONData, user_hash: Query = None
) -> dict[str, Any]:
    views = _views(request, data)
    views["json"] = await request.json()
    views["user_hash_param"] = user_hash
    return views


@post("/chat/form", status_code=200)
async def form_handler(
    request: Request[Any, Any, Any],
    data: FormData,
) -> dict[str, Any]:
    views = _views(request, data)
    views["form"] = dict(await request.form())
    return views


@post("/chat/query", status_code=200)
async def query_handler(
    request: Request[Any, Any, Any], user_hash: Query = None, user_id: Query = None
) -> dict[str, Any]:
    views = _views(request, {"user_hash": user_hash, "user_id": user_id})
    views["body"] = (await request.body()).decode()
    return views


@post("/chat/refuse", status_code=200)
async def refusing_handler() -> None:
    raise NotAuthorizedException(detail="members only")


HANDLERS = [echo, json_handler, form_handler, query_handler, refusing_handler]


class Reader:
    """A Litestar middleware that reads the request before ours, as loggers,
    auth and rate limiters do: body, JSON or form, query, headers, URL.

    It hands the next layer a receive channel that reports a disconnect, as a
    drained one does: a layer below that tries to read the body again gets nothing.
    """

    def __init__(self, parse: str = "body") -> None:
        self.parse = parse
        self.seen: list[dict[str, Any]] = []

    def __call__(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            request: Request[Any, Any, Any] = Request(scope, receive)
            opened: list[Any] = []
            seen: dict[str, Any] = {
                "query": dict(request.query_params),
                "url": str(request.url),
                "headers": dict(request.headers),
                "user_before_us": STATE_KEY in scope["state"],
            }
            if self.parse == "json":
                seen["parsed"] = await request.json()
            elif self.parse == "form":
                form = await request.form()
                seen["parsed"] = dict(form)
                opened.append(form)
            else:
                seen["parsed"] = await request.body()
            self.seen.append(seen)

            async def drained() -> Message:
                return {"type": "http.disconnect"}

            try:
                await app(scope, drained, send)
            finally:
                for form in opened:  # its uploads are this layer's to close
                    await form.close()

        return middleware


def app_of(handlers: list[Any], middleware: list[Any] | None = None) -> Litestar:
    # logging_config=None: Litestar's default one reconfigures the root logger
    # for the whole test session.
    return Litestar(route_handlers=handlers, middleware=middleware, logging_config=None)


def ours(mode: str = "strip") -> DefineMiddleware:
    return DefineMiddleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS, mode=mode)


def outside(mode: str) -> TestClient[Any]:
    app = app_of(HANDLERS)
    return TestClient(AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS, mode=mode))  # type: ignore[arg-type]


def inside(mode: str, parse: str = "body") -> tuple[TestClient[Any], Reader]:
    reader = Reader(parse)
    app = app_of(HANDLERS, [reader, ours(mode)])
    return TestClient(app), reader


def on_route(parse: str = "body") -> tuple[TestClient[Any], Reader]:
    reader = Reader(parse)

    @post("/chat/json", status_code=200, middleware=[ours()])
    async def guarded(
        request: Request[Any, Any, Any], data: JSONData, user_hash: Query = None
    ) -> dict[str, Any]:
        views = _views(request, data)
        views["json"] = await request.json()
        views["user_hash_param"] = user_hash
        return views

    app = app_of([guarded], [reader])
    return TestClient(app), reader


def send(client: TestClient[Any], case: Case) -> Any:
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    url = case.path + ("?" + case.query if case.query else "")
    return client.request(case.method, url, content=case.body, headers=headers)


PLACEMENTS: dict[str, Callable[[str], TestClient[Any]]] = {
    "outside": outside,
    "after-a-body-reader": lambda mode: inside(mode)[0],
}


@pytest.fixture(scope="module", params=sorted(PLACEMENTS))
def clients(request: pytest.FixtureRequest) -> Any:
    made = {mode: PLACEMENTS[request.param](mode) for mode in ("strip", "enforce")}
    for client in made.values():
        client.__enter__()
    yield made
    for client in made.values():
        client.__exit__(None, None, None)


@pytest.mark.parametrize("case", ROWS)
def test_contract_table(clients: dict[str, TestClient[Any]], case: Case) -> None:
    response = send(clients[case.mode], case)
    check(case, response.status_code, response.json())


def test_reader_runs_before_ours_and_sees_the_original() -> None:
    client, reader = inside("strip", parse="json")
    response = client.post("/chat/json?widget_id=w_pro", json={"user": ADA, "msg": "hi"})
    assert response.status_code == 200
    assert reader.seen[0]["user_before_us"] is False
    assert reader.seen[0]["parsed"]["user"]["user_hash"] == GOOD  # the cache held the original


@pytest.mark.parametrize("placement", ["outside", "inside", "on-route"])
@pytest.mark.parametrize("parse", ["body", "json"])
def test_json_handler_sees_only_verified_identity(placement: str, parse: str) -> None:
    client = {
        "outside": lambda: outside("strip"),
        "inside": lambda: inside("strip", parse)[0],
        "on-route": lambda: on_route(parse)[0],
    }[placement]()
    payload = {"widget_id": "w_pro", "user": ADA, "user_hash": GOOD, "msg": "hi"}
    response = client.post("/chat/json?x=1", json=payload)
    assert response.status_code == 200, response.text
    seen = response.json()
    expected = {"widget_id": "w_pro", "user": {"user_id": "42", "firstname": "Ada"}, "msg": "hi"}
    assert seen["parsed"] == seen["json"] == expected
    assert seen["status"] == "verified" and seen["user_id"] == "42"
    assert seen["query"] == {"x": "1"} and seen["user_hash_param"] is None
    assert GOOD not in response.text
    assert int(seen["content_length"]) == len(b'{"widget_id":"w_pro","user":{}}') + len(
        b'"user_id":"42","firstname":"Ada"' + b',"msg":"hi"'
    )


@pytest.mark.parametrize("parse", ["body", "json"])
def test_unverified_json_identity_is_gone_from_every_cached_view(parse: str) -> None:
    client, reader = inside("strip", parse)
    forged = {"user_id": "1", "user_hash": "0" * 64, "firstname": "Mallory"}
    response = client.post("/chat/json?widget_id=w_pro", json={"user": forged, "msg": "hi"})
    seen = response.json()
    assert seen["parsed"] == seen["json"] == {"msg": "hi"}
    assert seen["status"] == "invalid_hash" and seen["user_id"] is None
    assert "Mallory" not in response.text


@pytest.mark.parametrize("parse", ["body", "form"])
def test_form_handler_sees_only_verified_identity(parse: str) -> None:
    client, reader = inside("strip", parse)
    form = {"widget_id": "w_pro", **ADA, "msg": "hi"}
    response = client.post("/chat/form", data=form)
    assert response.status_code == 200, response.text
    seen = response.json()
    expected = {"widget_id": "w_pro", "user_id": "42", "firstname": "Ada", "msg": "hi"}
    assert seen["parsed"] == seen["form"] == expected
    assert seen["status"] == "verified"
    if parse == "form":
        assert reader.seen[0]["parsed"]["user_hash"] == GOOD


@pytest.mark.parametrize("placement", ["outside", "inside"])
def test_query_handler_sees_only_verified_identity(placement: str) -> None:
    client = outside("strip") if placement == "outside" else inside("strip")[0]
    query = f"widget_id=w_pro&user_id=42&user_hash={GOOD}&x=1"
    response = client.post(f"/chat/query?{query}")
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["parsed"] == {"user_hash": None, "user_id": "42"}
    assert seen["query"] == {"widget_id": "w_pro", "user_id": "42", "x": "1"}
    assert seen["url_query"] == "widget_id=w_pro&user_id=42&x=1"
    assert seen["status"] == "verified"


def test_unverified_query_identity_is_stripped_from_the_cached_query() -> None:
    client, reader = inside("strip")
    response = client.post("/chat/query?widget_id=w_pro&user_id=42&user_hash=bad")
    seen = response.json()
    assert reader.seen[0]["query"]["user_hash"] == "bad"
    assert seen["parsed"] == {"user_hash": None, "user_id": None}
    assert seen["query"] == {"widget_id": "w_pro"}
    assert seen["status"] == "invalid_hash"


def test_enforce_mode_refuses_after_a_body_reader() -> None:
    client, _ = inside("enforce", parse="json")
    response = client.post("/chat/json?widget_id=w_pro", json={"user": {**ADA, "user_id": "7"}})
    assert response.status_code == 401
    assert response.json()["error"] == "identity_verification_failed"


def test_oversize_body_cached_above_is_413() -> None:
    client, _ = inside("strip")
    response = client.post(
        "/chat/json?widget_id=w_pro",
        content=b'{"pad": "' + b"x" * (1 << 20) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_multipart_form_parsed_above_is_refused_not_awaited() -> None:
    # Litestar's multipart parser streams the body away and keeps no raw copy.
    client, reader = inside("strip", parse="form")
    response = client.post(
        "/chat/form?widget_id=w_pro",
        files={"f": ("a.txt", b"x")},
        data={"user_id": "42", "user_hash": GOOD},
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert reader.seen[0]["parsed"]["user_hash"] == GOOD


def test_request_state_gets_the_user_and_unrelated_state_survives() -> None:
    kept: dict[str, Any] = {}

    def stamp(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            connection = scope["state"][LITESTAR_STATE_KEY]
            connection.csrf_token = "csrf-1"
            connection.flash_messages.append({"message": "saved"})
            connection.log_context["request_id"] = "r-1"
            scope["state"]["db"] = "pool"
            await app(scope, receive, send)

        return middleware

    def look(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            connection = scope["state"][LITESTAR_STATE_KEY]
            kept.update(
                csrf=connection.csrf_token,
                flash=list(connection.flash_messages),
                log=dict(connection.log_context),
                handlers=connection.exception_handlers,
                db=scope["state"].get("db"),
                user=scope["state"].get(STATE_KEY),
            )
            await app(scope, receive, send)

        return middleware

    app = app_of(HANDLERS, [stamp, Reader(), ours(), look])
    response = TestClient(app).post("/chat/query?widget_id=w_pro&user_id=42&user_hash=" + GOOD)
    assert response.status_code == 200
    assert kept["csrf"] == "csrf-1"
    assert kept["flash"] == [{"message": "saved"}]
    assert kept["log"] == {"request_id": "r-1"}
    assert isinstance(kept["handlers"], dict)
    assert kept["db"] == "pool"
    assert kept["user"].verified


def test_exception_handlers_still_answer_after_the_reset() -> None:
    # Litestar's exception middleware shares the connection state object; a
    # fresh one would lose the handlers it reads and turn this 401 into a crash.
    client, _ = inside("strip")
    response = client.post("/chat/refuse?widget_id=w_pro")
    assert response.status_code == 401
    assert response.json()["detail"] == "members only"


def test_not_intercepted_paths_keep_the_cache_untouched() -> None:
    client, _ = inside("strip", parse="json")
    response = client.post("/other", json={"user_hash": GOOD})
    assert response.status_code == 200
    assert GOOD in response.json()["body"]
    assert response.json()["user"] is None


# --- other shapes of the cache, driven by hand ---------------------------------------------


def _run_raw(
    state: dict[str, Any],
    body: bytes,
    content_type: bytes = b"application/json",
    sized: bool = True,
) -> Any:
    """Call the middleware with a scope whose state a layer above filled, and a
    drained receive channel; return what the app saw (or the error sent)."""
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["scope"] = scope
        seen["message"] = await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def drained() -> Message:
        return {"type": "http.disconnect"}

    async def capture(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/chat",
        "query_string": b"widget_id=w_pro",
        "headers": [(b"content-type", content_type)]
        + ([(b"content-length", b"%d" % len(body))] if sized else []),
        "state": state,
    }
    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    asyncio.run(middleware(scope, drained, capture))  # type: ignore[arg-type]
    return seen, sent


def test_early_litestar_dict_cache_is_used_and_cleared() -> None:
    original = json.dumps({"user": ADA, "msg": "hi"}).encode()
    cache = {"body": original, "json": {"user": ADA}, "parsed_query": (), "csrf_token": "t"}
    seen, _ = _run_raw({"__litestar__": cache}, original)
    assert cache == {"body": seen["message"]["body"], "csrf_token": "t"}
    assert json.loads(cache["body"]) == {"user": {"user_id": "42", "firstname": "Ada"}, "msg": "hi"}


class _StrangeState:
    """A connection state this code does not know how to rebuild."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.json = {"user_hash": GOOD}


def test_unknown_cache_shape_is_dropped_rather_than_left_stale() -> None:
    original = json.dumps({"msg": "hi", "user_hash": GOOD}).encode()
    state: dict[str, Any] = {LITESTAR_STATE_KEY: _StrangeState(original), "db": "pool"}
    seen, _ = _run_raw(state, original)
    assert LITESTAR_STATE_KEY not in seen["scope"]["state"]
    assert seen["scope"]["state"]["db"] == "pool"
    assert seen["message"]["body"] == b'{"msg":"hi"}'


def test_empty_multipart_parsed_above_passes_as_no_body() -> None:
    state: dict[str, Any] = {"__litestar__": {"form": {}}}
    seen, _ = _run_raw(state, b"", content_type=b"multipart/form-data; boundary=x")
    assert seen["scope"]["state"][STATE_KEY].status == "anonymous"
    assert seen["message"]["body"] == b""


def test_form_parsed_above_on_a_json_request_read_nothing() -> None:
    # Litestar answers form() with {} for other content types without reading.
    body = b'{"msg":"hi"}'
    cache: dict[str, Any] = {"form": {}}

    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["message"] = await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def ignore(message: Message) -> None:
        pass

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/chat",
        "query_string": b"widget_id=w_pro",
        "headers": [(b"content-type", b"application/json")],
        "state": {"__litestar__": cache},
    }
    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    asyncio.run(middleware(scope, receive, ignore))  # type: ignore[arg-type]
    assert seen["message"]["body"] == body
    assert cache == {}  # the form view is gone, and no body was cached that was not


def test_oversize_cached_body_without_a_length_is_413() -> None:
    # A chunked request: no Content-Length to refuse early, the cached body counts.
    body = b'{"pad": "' + b"x" * (1 << 20) + b'"}'
    seen, sent = _run_raw({"__litestar__": {"body": body}}, body, sized=False)
    assert seen == {}
    assert sent[0]["status"] == 413


def test_multipart_body_cached_above_is_inspected_and_the_cache_cleared() -> None:
    boundary = b"xyz"
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n42\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nhi\r\n'
        b"--xyz--\r\n"
    )
    state: dict[str, Any] = {"__litestar__": {"body": body, "form": {"user_id": "42"}}}
    seen, _ = _run_raw(state, body, content_type=b"multipart/form-data; boundary=" + boundary)
    assert seen["scope"]["state"][STATE_KEY].status == "missing_hash"
    # The cached views are gone: Litestar reads the rewritten body from the replay.
    assert seen["scope"]["state"]["__litestar__"] == {}
    assert b"user_id" not in seen["message"]["body"] and b"a.txt" in seen["message"]["body"]
