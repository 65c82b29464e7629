"""The ASGI adapter: the shared table through Starlette's TestClient, then a raw driver."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from ainisa_middleware import Business, CachedResolver, ConfigurationError
from ainisa_middleware import asgi as asgi_module
from ainisa_middleware._types import Message, Receive, Scope, Send
from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.request import OFF_LOOP_BODY_SIZE, QUICK_JSON_SIZE

from .cases import GOOD, PATHS, RESOLVER, ROWS, Case, check, echo_payload
from .conftest import CountingResolver

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def echo(request: Request) -> Response:
    body = await request.body()
    user = getattr(request.state, STATE_KEY, None)
    return JSONResponse(
        echo_payload(
            body,
            request.scope["query_string"].decode("latin-1"),
            user,
            request.headers.get("content-length"),
        )
    )


def make_app(resolver: object = RESOLVER, **options: Any) -> Starlette:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=METHODS)])
    app.add_middleware(AinisaMiddleware, resolver=resolver, paths=PATHS, **options)
    return app


CLIENTS = {mode: TestClient(make_app(mode=mode)) for mode in ("strip", "enforce")}


def send(client: TestClient, case: Case) -> Any:
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    url = case.path + ("?" + case.query if case.query else "")
    return client.request(case.method, url, content=case.body, headers=headers)


@pytest.mark.parametrize("case", ROWS)
def test_contract_table(case: Case) -> None:
    response = send(CLIENTS[case.mode], case)
    assert response.headers["content-type"] == "application/json"
    check(case, response.status_code, response.json())


# --- the resolver: cache hits on the loop (every kind of resolver: test_resolver_table.py) --


def test_cache_hit_is_answered_on_the_event_loop() -> None:
    inner = CountingResolver()
    cached = CachedResolver(inner)
    seen: list[int] = []
    app = make_app(cached)

    async def probe(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(threading.get_ident())
        await app(scope, receive, send)

    # One portal for the whole test, so the loop's thread and the worker thread are
    # alive together and their ids cannot be reused for each other.
    with TestClient(probe) as client:
        for _ in range(3):
            assert client.post("/chat", json={"widget_id": "w_pro"}).status_code == 200
        assert inner.calls == ["w_pro"]  # the next two were cache hits
        assert len(inner.threads) == 1
        assert len(set(seen)) == 1
        assert inner.threads.isdisjoint(seen)


# --- what the app receives ---------------------------------------------------------------


def test_state_holds_the_user_and_keeps_existing_state() -> None:
    seen: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope["state"])
        await JSONResponse({})(scope, receive, send)

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = {"db": "pool"}
        scope["_body"] = b"stale body"
        await middleware(scope, receive, send)

    middleware = AinisaMiddleware(inner, resolver=RESOLVER, paths=PATHS)
    TestClient(outer).post("/chat", json={"widget_id": "w_pro"})
    assert seen["db"] == "pool"
    assert seen[STATE_KEY].status == "anonymous"


def test_cached_parse_keys_in_the_scope_are_dropped() -> None:
    seen: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)
        await JSONResponse({})(scope, receive, send)

    middleware = AinisaMiddleware(inner, resolver=RESOLVER, paths=PATHS)

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["_json"] = {"user": {"user_id": "evil"}}
        scope["_body"] = b"stale"
        await middleware(scope, receive, send)

    TestClient(outer).post("/chat", json={"widget_id": "w_pro"})
    assert "_json" not in seen and "_body" not in seen


def test_content_length_is_corrected_and_transfer_encoding_dropped() -> None:
    messages = _drive(
        [
            {
                "type": "http.request",
                "body": json.dumps({"widget_id": "w_pro", "user_hash": GOOD}).encode(),
            }
        ],
        headers=[(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
    )
    scope = messages.app_scope
    assert scope is not None
    headers = dict(scope["headers"])
    assert b"transfer-encoding" not in headers
    assert (
        int(headers[b"content-length"]) == len(messages.app_body) == len(b'{"widget_id":"w_pro"}')
    )


def test_untouched_body_is_replayed_as_is_with_original_headers() -> None:
    body = b"widget_id=w_pro&msg=hello+world"
    messages = _drive(
        [{"type": "http.request", "body": body}],
        headers=[(b"content-type", b"application/x-www-form-urlencoded")],
    )
    assert messages.app_body == body
    assert messages.app_scope is not None
    assert (b"content-type", b"application/x-www-form-urlencoded") in messages.app_scope["headers"]


def test_require_verified_user_error_raised_by_the_app_becomes_contract_json() -> None:
    from ainisa_middleware.asgi import AinisaIdentityError

    async def refuse(request: Request) -> Response:
        raise AinisaIdentityError()

    app = Starlette(routes=[Route("/chat", refuse, methods=["POST"]), Route("/x", refuse)])
    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)
    client = TestClient(app)
    for response in (client.post("/chat", json={"widget_id": "w_pro"}), client.get("/x")):
        assert response.status_code == 401
        assert response.json()["error"] == "identity_required"


# --- a raw ASGI driver: chunks, lying lengths, disconnects, other scopes -----------------


class Driven:
    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.app_scope: Scope | None = None
        self.app_body = b""
        self.app_messages: list[Message] = []

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def response_json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def _drive(
    incoming: list[Message],
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "/chat",
    method: str = "POST",
    query: bytes = b"",
    resolver: object = RESOLVER,
    app_reads_twice: bool = False,
    scope_extra: dict[str, Any] | None = None,
    **options: Any,
) -> Driven:
    result = Driven()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        result.app_scope = scope
        while True:
            message = await receive()
            result.app_messages.append(message)
            result.app_body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if app_reads_twice:
            result.app_messages.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = AinisaMiddleware(app, resolver=resolver, paths=PATHS, **options)
    queue = list(incoming)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        result.sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers if headers is not None else [(b"content-type", b"application/json")],
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        **(scope_extra or {}),
    }
    asyncio.run(middleware(scope, receive, send))
    return result


def _chunks(body: bytes, size: int) -> list[Message]:
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]


def test_body_in_many_small_chunks_is_reassembled() -> None:
    body = json.dumps(
        {"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD}, "m": "é" * 50}
    ).encode()
    driven = _drive(_chunks(body, 3))
    assert driven.status == 204
    assert json.loads(driven.app_body) == {
        "widget_id": "w_pro",
        "user": {"user_id": "42"},
        "m": "é" * 50,
    }
    assert driven.app_scope is not None
    assert driven.app_scope["state"][STATE_KEY].verified


def test_rewritten_body_is_replayed_as_one_message() -> None:
    body = json.dumps({"widget_id": "w_pro", "user_hash": GOOD}).encode()
    driven = _drive(_chunks(body, 5))
    assert driven.app_messages[0] == {
        "type": "http.request",
        "body": b'{"widget_id":"w_pro"}',
        "more_body": False,
    }


def test_later_receive_calls_reach_the_server_so_disconnect_is_heard() -> None:
    driven = _drive(_chunks(b'{"widget_id": "w_pro"}', 100), app_reads_twice=True)
    assert driven.app_messages[-1] == {"type": "http.disconnect"}


@pytest.mark.parametrize("declared", [None, b"10", b"5", b"not-a-number"])
def test_oversize_chunked_body_is_413_whatever_content_length_says(declared: bytes | None) -> None:
    headers = [(b"content-type", b"application/json")]
    if declared is not None:
        headers.append((b"content-length", declared))
    calls = 0

    def counting_chunks() -> list[Message]:
        return _chunks(b"x" * 200, 10)

    driven = _drive(counting_chunks(), headers=headers, max_body_size=64)
    calls += 1
    assert driven.status == 413
    assert driven.app_scope is None
    assert driven.response_json["error"] == "body_too_large"


def test_reading_stops_at_the_limit() -> None:
    pulled: list[int] = []
    incoming = _chunks(b"x" * 1000, 10)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        raise AssertionError("the app must not be called")

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS, max_body_size=50)
    sent: list[Message] = []

    async def receive() -> Message:
        pulled.append(1)
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/chat", "query_string": b"", "headers": []}
    asyncio.run(middleware(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(pulled) == 6  # 60 bytes read, one chunk past the 50-byte limit


def test_declared_oversize_content_length_is_413_before_reading() -> None:
    driven = _drive(
        [],
        headers=[(b"content-type", b"application/json"), (b"content-length", b"100000")],
        max_body_size=1000,
    )
    assert driven.status == 413


def test_client_disconnect_mid_body_never_calls_the_app() -> None:
    driven = _drive(
        [
            {"type": "http.request", "body": b'{"widget', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    assert driven.app_scope is None
    assert driven.sent == []


def test_lifespan_scope_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=["/"])

    async def nothing() -> Message:  # pragma: no cover - never called
        return {}

    async def drop(message: Message) -> None:  # pragma: no cover - never called
        pass

    asyncio.run(middleware({"type": "lifespan"}, nothing, drop))
    assert seen == ["lifespan"]


def test_lifespan_through_starlette_test_client() -> None:
    started: list[bool] = []

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        started.append(True)
        yield

    app = Starlette(routes=[Route("/{path:path}", echo, methods=METHODS)], lifespan=lifespan)
    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=["/"])
    with TestClient(app) as client:
        assert client.post("/chat", json={"widget_id": "w_pro"}).status_code == 200
    assert started == [True]


def test_websocket_scope_outside_the_paths_passes_through() -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/live/ws", ws)])
    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=["/chat"])
    with TestClient(app).websocket_connect("/live/ws") as connection:
        assert connection.receive_text() == "hello"


def test_repeated_widget_id_headers_are_malformed() -> None:
    driven = _drive(
        [{"type": "http.request", "body": b""}],
        headers=[(b"x-ainisa-widget-id", b"w_pro"), (b"x-ainisa-widget-id", b"w_pro")],
    )
    assert driven.status == 400
    assert driven.response_json["error"] == "malformed_widget_id"


def test_repeated_content_type_headers_are_refused() -> None:
    # Starlette reads the first header, others the last: never guess which one the app uses.
    body = b'{"widget_id": "w_pro", "msg": "x&user_id=evil"}'
    driven = _drive(
        [{"type": "http.request", "body": body}],
        headers=[
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-type", b"application/json"),
        ],
    )
    assert driven.status == 415
    assert driven.app_scope is None


# --- configuration (every message: test_config.py; log records: test_verify.py) ----------


async def _noop(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    pass


def test_every_configuration_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        AinisaMiddleware(_noop, resolver=None, paths="/chat", mode="x", max_body_size=-1)  # type: ignore[arg-type]
    text = str(info.value)
    for word in ("resolver", "paths", "mode", "max_body_size"):
        assert word in text


def test_options_are_attributes_not_closures() -> None:
    middleware = AinisaMiddleware(_noop, resolver=RESOLVER, paths=["/chat/"], mode="enforce")
    assert middleware.config.paths == ("/chat",)
    assert middleware.config.mode == "enforce"
    assert middleware.app is _noop


def test_root_prefix_intercepts_everything() -> None:
    client = TestClient(_root_app())
    response = client.post("/anything", json={"widget_id": "w_pro"})
    assert response.json()["user"]["status"] == "anonymous"


def _root_app() -> Callable[..., Any]:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=METHODS)])
    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=["/"])
    return app


# --- paths as routers read them, mounts, raw request lines (CONTRACT 3.7) -----------------

FORGED = b"widget_id=w_pro&user_id=42&email=mallory%40example.com&user_hash=" + b"0" * 64


@pytest.mark.parametrize(
    ("path", "root_path"),
    [
        ("//chat", ""),
        ("///chat/x", ""),
        ("/x/../chat", ""),
        ("/%2Fchat", ""),
        ("/api/chat", "/api"),  # Starlette Mount, uvicorn --root-path: the path keeps the root
        ("/api//chat", "/api"),
        ("/chat", "/api"),  # older servers: the path without the root
    ],
)
def test_every_reading_of_a_protected_path_is_intercepted(path: str, root_path: str) -> None:
    result = _drive(
        [{"type": "http.request", "body": b""}],
        path=path,
        query=FORGED,
        scope_extra={"root_path": root_path},
    )
    assert result.app_scope["query_string"] == b"widget_id=w_pro"
    assert result.app_scope["state"][STATE_KEY].status == "invalid_hash"


@pytest.mark.parametrize(("path", "root_path"), [("/chatter", ""), ("/api/chatter", "/api")])
def test_paths_outside_the_prefixes_still_pass_untouched(path: str, root_path: str) -> None:
    result = _drive(
        [{"type": "http.request", "body": b""}],
        path=path,
        query=FORGED,
        scope_extra={"root_path": root_path},
    )
    assert result.app_scope["query_string"] == FORGED
    assert STATE_KEY not in result.app_scope.get("state", {})


def test_raw_path_holding_the_query_is_rewritten() -> None:
    result = _drive(
        [{"type": "http.request", "body": b""}],
        query=FORGED,
        scope_extra={"raw_path": b"/chat?" + FORGED},
    )
    assert result.app_scope["raw_path"] == b"/chat?widget_id=w_pro"
    assert b"user_hash" not in result.app_scope["raw_path"]


def test_raw_path_without_a_query_is_left_alone() -> None:
    result = _drive([{"type": "http.request", "body": b""}], query=FORGED)
    assert result.app_scope["raw_path"] == b"/chat"


def test_options_with_a_body_is_inspected_and_a_preflight_is_not() -> None:
    body = json.dumps({"widget_id": "w_pro", "user_hash": GOOD}).encode()
    inspected = _drive([{"type": "http.request", "body": body}], method="OPTIONS")
    assert json.loads(inspected.app_body) == {"widget_id": "w_pro"}
    preflight = _drive(
        [{"type": "http.request", "body": b""}],
        method="OPTIONS",
        query=FORGED,
        headers=[(b"access-control-request-method", b"POST")],
    )
    assert preflight.app_scope["query_string"] == FORGED
    with_body = _drive(
        [{"type": "http.request", "body": body}],
        method="OPTIONS",
        headers=[
            (b"access-control-request-method", b"POST"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    )
    assert json.loads(with_body.app_body) == {"widget_id": "w_pro"}


def test_large_bodies_are_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from ainisa_middleware import verify

    threads: list[int] = []
    real_decide = verify.Verifier.decide

    def decide(self: Any, *args: Any) -> Any:
        threads.append(threading.get_ident())
        return real_decide(self, *args)

    monkeypatch.setattr(verify.Verifier, "decide", decide)
    small = json.dumps({"widget_id": "w_pro", "pad": "x" * 100}).encode()
    large = json.dumps({"widget_id": "w_pro", "pad": [1] * 10_000}).encode()
    loop_threads: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await Starlette()(scope, receive, send)
            return
        loop_threads.append(threading.get_ident())
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    real_inspect = middleware.verifier.inspect

    def inspect(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return real_inspect(*args)

    middleware.verifier.inspect = inspect  # type: ignore[assignment]
    with TestClient(middleware) as client:
        for body in (small, large):
            client.post("/chat", content=body, headers={"content-type": "application/json"})
    assert threads[0] == threads[1] == loop_threads[0]  # small: on the loop
    assert loop_threads[1] not in threads[2:]  # large: both steps in a worker thread


def test_max_form_fields_is_a_keyword() -> None:
    client = TestClient(make_app(max_form_fields=3))
    body = b"widget_id=w_pro&a=1&b=2"
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/chat", content=body, headers=form).status_code == 200
    over = client.post("/chat", content=body + b"&c=3", headers=form)
    assert over.status_code == 400
    assert over.json()["error"] == "malformed_body"
    assert client.get("/chat?widget_id=w_pro&a=1&b=2&c=3").json()["error"] == "malformed_request"


def test_raw_path_holding_a_fragment_keeps_no_identity() -> None:
    result = _drive(
        [{"type": "http.request", "body": b""}],
        query=b"widget_id=w_pro",
        scope_extra={"raw_path": b"/chat?widget_id=w_pro#&user_id=7&user_hash=" + b"0" * 64},
    )
    assert result.app_scope["raw_path"] == b"/chat?widget_id=w_pro"


# Large bodies: parsed in a worker thread, one at a time, each followed by a pause.

# Past OFF_LOOP_BODY_SIZE and packed with values: costly enough to leave the loop.
_LARGE = json.dumps({"widget_id": "w_pro", "message": "x", "scores": [7] * 8_000}).encode()
_LARGE_MALFORMED = _LARGE[:-1]


def _run_concurrently(middleware: AinisaMiddleware, bodies: list[bytes]) -> list[int]:
    """Statuses of ``bodies`` posted to ``/chat`` at once."""

    async def one(body: bytes) -> int:
        sent: list[Message] = []
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}  # pragma: no cover - never reached

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "path": "/chat",
            "raw_path": b"/chat",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],
        }
        await middleware(scope, receive, send)
        return int(sent[0]["status"])

    async def main() -> list[int]:
        return list(await asyncio.gather(*(one(body) for body in bodies)))

    return asyncio.run(main())


async def _no_content(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_large_bodies_are_parsed_in_a_worker_thread_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ainisa_middleware import asgi

    monkeypatch.setattr(asgi, "OFF_LOOP_PAUSE", 0.0)
    middleware = AinisaMiddleware(_no_content, resolver=RESOLVER, paths=PATHS)
    inspect = middleware.verifier.inspect
    lock = threading.Lock()
    running: list[int] = []
    most = 0
    threads: set[int] = set()

    def slow_inspect(*args: Any) -> Any:
        nonlocal most
        with lock:
            running.append(1)
            most = max(most, len(running))
            threads.add(threading.get_ident())
        time.sleep(0.02)
        with lock:
            running.pop()
        return inspect(*args)

    monkeypatch.setattr(middleware.verifier, "inspect", slow_inspect)
    assert _run_concurrently(middleware, [_LARGE] * 3) == [204] * 3
    assert most == 1
    assert threading.get_ident() not in threads


@pytest.mark.parametrize("first", [_LARGE, _LARGE_MALFORMED], ids=["parsed", "refused"])
def test_the_next_large_body_waits_twice_the_last_ones_parse(
    monkeypatch: pytest.MonkeyPatch, first: bytes
) -> None:
    middleware = AinisaMiddleware(_no_content, resolver=RESOLVER, paths=PATHS)
    inspect = middleware.verifier.inspect
    spans: list[tuple[float, float]] = []

    def slow_inspect(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            time.sleep(0.05)
            return inspect(*args)
        finally:
            spans.append((started, time.perf_counter()))

    monkeypatch.setattr(middleware.verifier, "inspect", slow_inspect)
    statuses = _run_concurrently(middleware, [first, _LARGE])
    assert statuses == [204 if first is _LARGE else 400, 204]
    (_, first_end), (second_start, _) = spans
    assert second_start - first_end >= 2 * 0.05 * 0.95


def test_the_parsed_body_is_freed_in_the_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    middleware = AinisaMiddleware(_no_content, resolver=RESOLVER, paths=PATHS)
    decide = middleware.verifier.decide
    freed_in: list[int] = []

    class Probe:
        def __del__(self) -> None:
            freed_in.append(threading.get_ident())

    def probing_decide(parsed: Any, business: Business) -> Any:
        decision = decide(parsed, business)
        parsed.json_body["probe"] = Probe()  # after the rewrite: only freeing it is seen
        return decision

    monkeypatch.setattr(middleware.verifier, "decide", probing_decide)
    assert _run_concurrently(middleware, [_LARGE]) == [204]
    assert len(freed_in) == 1
    assert freed_in[0] != threading.get_ident()


def _threads_that_inspect(monkeypatch: pytest.MonkeyPatch, body: bytes) -> set[int]:
    middleware = AinisaMiddleware(_no_content, resolver=RESOLVER, paths=PATHS)
    inspect = middleware.verifier.inspect
    threads: set[int] = set()

    def recording_inspect(*args: Any) -> Any:
        threads.add(threading.get_ident())
        return inspect(*args)

    monkeypatch.setattr(middleware.verifier, "inspect", recording_inspect)
    assert _run_concurrently(middleware, [body]) == [204]
    return threads


@pytest.mark.parametrize(
    "message",
    ["x" * 60_000, "\n" * 30_000, 'a "quote" ' * 100 + "x" * 30_000, "é" * 8_000],
    ids=["plain", "escaped", "quotes", "unicode"],
)
def test_a_large_chat_message_is_parsed_on_the_loop(
    monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    # One long string: cheaper to parse than the thread hop, so it stays on the loop.
    body = json.dumps({"widget_id": "w_pro", "message": message}).encode()
    assert OFF_LOOP_BODY_SIZE < len(body) <= QUICK_JSON_SIZE
    assert _threads_that_inspect(monkeypatch, body) == {threading.get_ident()}


@pytest.mark.parametrize(
    "body",
    [
        _LARGE,
        json.dumps({"widget_id": "w_pro", "message": "x" * (QUICK_JSON_SIZE + 1)}).encode(),
        json.dumps({"widget_id": "w_pro", "message": "x", "many": ["y"] * 4_000}).encode(),
        json.dumps({"widget_id": "w_pro", "message": '"' * 20_000}).encode(),
    ],
    ids=["packed", "past-64KiB", "many-strings", "many-escaped-quotes"],
)
def test_a_costly_large_body_leaves_the_loop(monkeypatch: pytest.MonkeyPatch, body: bytes) -> None:
    monkeypatch.setattr(asgi_module, "OFF_LOOP_PAUSE", 0.0)
    assert len(body) > OFF_LOOP_BODY_SIZE
    threads = _threads_that_inspect(monkeypatch, body)
    assert threading.get_ident() not in threads
