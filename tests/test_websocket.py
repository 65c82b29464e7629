"""WebSocket chat through the ASGI middleware (CONTRACT.md section 5), in process.

The shared table runs as WebSocket connections (``ws_cases.py``) on a server
that offers the handshake-denial extension and on one that does not; the rules
that only WebSocket has (later frames, frames the middleware cannot inspect,
the relaxing keyword, FastAPI's dependencies on WebSocket routes) follow.
Real servers and real clients are in ``test_websocket_servers.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from ainisa_middleware import AinisaUser, Business, StaticResolver
from ainisa_middleware._types import ASGIApp, Receive, Scope, Send
from ainisa_middleware._websocket import close_code
from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.errors import ERRORS, ConfigurationError
from ainisa_middleware.fastapi import get_ainisa_user, require_verified_user
from tests.cases import ALL_HASHES, BUSINESSES, GOOD, PATHS, RESOLVER, check, user_dict
from tests.ws_cases import LEFT_OUT, WS_ROWS, WsCase, payload_for_check

#: Connections the echo app saw, so a test can prove the app never ran.
CALLS: list[str] = []


async def echo(websocket: Any) -> None:
    """Accept, then answer each text frame with what the app itself read."""
    CALLS.append(websocket.scope["path"])
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = message.get("text")
            await websocket.send_json(
                {
                    "frame": frame if frame is not None else message.get("bytes", b"").hex(),
                    "binary": frame is None,
                    "query": websocket.scope["query_string"].decode("latin-1"),
                    "raw_path": (websocket.scope.get("raw_path") or b"").decode("latin-1"),
                    "user": user_dict(websocket.scope.get("state", {}).get(STATE_KEY)),
                }
            )
    except WebSocketDisconnect:
        return


def _without_denial(app: ASGIApp) -> ASGIApp:
    """The app as a server without the ``websocket.http.response`` extension serves it."""

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope, extensions={})
        await app(scope, receive, send)

    return served


def make_app(*, mode: str = "strip", denial: bool = True, **kw: Any) -> ASGIApp:
    inner = Starlette(routes=[WebSocketRoute("/{path:path}", echo)])
    app: ASGIApp = AinisaMiddleware(inner, resolver=RESOLVER, paths=PATHS, mode=mode, **kw)  # type: ignore[arg-type]
    return app if denial else _without_denial(app)


_APPS: dict[tuple[str, bool], TestClient] = {}


def client(mode: str, denial: bool) -> TestClient:
    key = (mode, denial)
    if key not in _APPS:
        _APPS[key] = TestClient(make_app(mode=mode, denial=denial))
    return _APPS[key]


@pytest.fixture(autouse=True)
def _fresh_calls() -> Iterator[None]:
    CALLS.clear()
    yield
    CALLS.clear()


def _url(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


# -- the shared table -------------------------------------------------------------


def test_the_table_covers_most_rows() -> None:
    # Left out: forms, other media types, non-UTF-8 bytes, preflights (ws_cases.ws_case).
    assert len(WS_ROWS) >= 2 * len(LEFT_OUT) and len(WS_ROWS) >= 100


@pytest.mark.parametrize("denial", [True, False], ids=["denial-extension", "no-extension"])
@pytest.mark.parametrize("ws", WS_ROWS)
def test_table_row_over_websocket(ws: WsCase, denial: bool) -> None:
    case = ws.case
    test_client = client(case.mode, denial)
    url = _url(case.path, ws.query)
    headers = dict(ws.headers)
    if ws.outcome == "denied":
        assert case.error is not None
        if denial:
            with (
                pytest.raises(WebSocketDenialResponse) as refused,
                test_client.websocket_connect(url, headers=headers),
            ):
                pass  # pragma: no cover - the handshake is refused
            assert refused.value.status_code == case.status
            assert refused.value.json() == {
                "error": case.error,
                "detail": ERRORS[case.error].detail,
            }
        else:
            with (
                test_client.websocket_connect(url, headers=headers) as connection,
                pytest.raises(WebSocketDisconnect) as closed,
            ):
                connection.receive_text()
            assert (closed.value.code, closed.value.reason) == (close_code(case.error), case.error)
        assert CALLS == []  # the app never ran
        return
    with test_client.websocket_connect(url, headers=headers) as connection:
        connection.send_text(ws.frame)
        if ws.outcome == "closed":
            assert case.error is not None
            with pytest.raises(WebSocketDisconnect) as closed:
                connection.receive_text()
            assert (closed.value.code, closed.value.reason) == (ws.code, case.error)
            return
        seen = connection.receive_json()
    check(
        case, 200, payload_for_check(seen["frame"], seen["query"], seen["user"], ws.is_connect_row)
    )
    if ws.is_connect_row:
        assert seen["frame"] == ws.frame


# -- later frames -------------------------------------------------------------------

ADA = {"user_id": "42", "user_hash": GOOD, "firstname": "Ada"}


def _connect(test_client: TestClient, url: str = "/chat/ws?widget_id=w_pro") -> Any:
    return test_client.websocket_connect(url)


def test_identity_in_the_first_frame_is_settled_for_the_connection() -> None:
    with _connect(client("strip", True)) as connection:
        connection.send_text(json.dumps({"msg": "hi", "user": ADA}))
        first = connection.receive_json()
        forged = {"user_id": "1", "user_hash": ALL_HASHES[3], "email": "x@y.z"}
        connection.send_text(json.dumps({"msg": "again", "user": forged, "user_hash": GOOD}))
        later = connection.receive_json()
    assert first["user"]["status"] == "verified" and first["user"]["user_id"] == "42"
    assert json.loads(first["frame"]) == {
        "msg": "hi",
        "user": {"user_id": "42", "firstname": "Ada"},
    }
    assert json.loads(later["frame"]) == {"msg": "again"}
    assert later["user"]["user_id"] == "42"  # a later frame cannot change the identity


def test_a_later_frame_without_identity_reaches_the_app_byte_for_byte() -> None:
    frame = '{ "msg" : "hi",\n "meta": {"user": {"user_hash": "nested is not identity"}} }'
    with _connect(client("strip", True)) as connection:
        connection.send_text(PING_JSON)
        connection.receive_json()
        connection.send_text(frame)
        assert connection.receive_json()["frame"] == frame


PING_JSON = '{"msg":"ping"}'


@pytest.mark.parametrize("field", ["user_hash", "user_token"])
def test_a_later_frame_loses_a_top_level_proof(field: str) -> None:
    with _connect(client("strip", True)) as connection:
        connection.send_text(PING_JSON)
        connection.receive_json()
        connection.send_text(json.dumps({"msg": "hi", field: "a.b.c"}))
        assert json.loads(connection.receive_json()["frame"]) == {"msg": "hi"}


def test_identity_at_connect_makes_the_first_frame_a_later_frame() -> None:
    url = f"/chat/ws?widget_id=w_pro&user_id=42&user_hash={GOOD}"
    with _connect(client("enforce", True), url) as connection:
        connection.send_text(json.dumps({"msg": "hi", "user": {"user_id": "7"}}))
        seen = connection.receive_json()
    assert seen["query"] == "widget_id=w_pro&user_id=42"
    assert json.loads(seen["frame"]) == {"msg": "hi"}
    assert seen["user"]["user_id"] == "42"


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        pytest.param(b"\x00binary", 1003, "unsupported_media_type", id="binary"),
        pytest.param("hello", 1003, "malformed_body", id="plain-text"),
        pytest.param("", 1003, "malformed_body", id="empty-text"),
        pytest.param('["w_pro"]', 1003, "malformed_body", id="json-array"),
        pytest.param('{"a": 1, "a": 2}', 1003, "malformed_body", id="duplicate-keys"),
        pytest.param('{"n": NaN}', 1003, "malformed_body", id="nan"),
        pytest.param('{"widget_id": "w_free"}', 1008, "conflicting_widget_id", id="other-widget"),
        pytest.param('{"x": "' + "y" * 1_048_576 + '"}', 1009, "body_too_large", id="oversized"),
    ],
)
@pytest.mark.parametrize("position", ["first", "later"])
def test_frames_the_middleware_cannot_inspect_close_the_connection(
    frame: str | bytes, code: int, reason: str, position: str
) -> None:
    with _connect(client("strip", True)) as connection:
        if position == "later":
            connection.send_text(PING_JSON)
            connection.receive_json()
        if isinstance(frame, bytes):
            connection.send_bytes(frame)
        else:
            connection.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            connection.receive_json()
    assert (closed.value.code, closed.value.reason) == (code, reason)


def test_the_app_hears_a_disconnect_never_the_refused_frame() -> None:
    heard: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        heard.append(dict(await receive()))
        with pytest.raises(OSError):  # as a server answers a send on a closed connection
            await send({"type": "websocket.send", "text": "late"})

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS, mode="enforce")
    with TestClient(middleware).websocket_connect("/chat?widget_id=w_pro") as connection:
        connection.send_text(json.dumps({"user": {"user_id": "42", "user_hash": "0" * 64}}))
        with pytest.raises(WebSocketDisconnect) as closed:
            connection.receive_text()
    assert closed.value.code == 1008 and closed.value.reason == "identity_verification_failed"
    assert heard == [
        {"type": "websocket.disconnect", "code": 1008, "reason": "identity_verification_failed"}
    ]


def test_require_identity_is_judged_on_the_first_frame() -> None:
    url = "/chat/ws?widget_id=w_req"
    with _connect(client("strip", True), url) as connection:
        connection.send_text(json.dumps({"msg": "hi", "user": ADA}))
        assert connection.receive_json()["user"]["status"] == "verified"
    with _connect(client("strip", True), url) as connection:
        connection.send_text(PING_JSON)
        with pytest.raises(WebSocketDisconnect) as closed:
            connection.receive_json()
    assert (closed.value.code, closed.value.reason) == (1008, "identity_required")


# -- the relaxing keyword ----------------------------------------------------------


def test_websocket_frames_any_lets_binary_and_plain_text_through() -> None:
    app = TestClient(make_app(websocket_frames="any"))
    with _connect(app) as connection:
        connection.send_bytes(b"\x00\x01")
        binary = connection.receive_json()
        connection.send_text("hello user_hash")
        text = connection.receive_json()
        connection.send_text(json.dumps({"msg": "x", "user": ADA, "user_hash": GOOD}))
        cleaned = connection.receive_json()
        connection.send_text('{"not json')
        with pytest.raises(WebSocketDisconnect) as closed:
            connection.receive_json()
    assert binary["binary"] is True and binary["frame"] == "0001"
    assert binary["user"]["status"] == "anonymous"  # the first frame settled the identity
    assert text["frame"] == "hello user_hash"
    assert json.loads(cleaned["frame"]) == {"msg": "x"}  # a JSON object is still cleaned
    assert (closed.value.code, closed.value.reason) == (1003, "malformed_body")


def test_websocket_frames_any_still_requires_identity_on_the_first_frame() -> None:
    app = TestClient(make_app(websocket_frames="any"))
    with _connect(app, "/chat/ws?widget_id=w_req") as connection:
        connection.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as closed:
            connection.receive_json()
    assert (closed.value.code, closed.value.reason) == (1008, "identity_required")


def test_websocket_frames_any_still_bounds_frame_size() -> None:
    app = TestClient(make_app(websocket_frames="any", max_body_size=10))
    with _connect(app) as connection:
        connection.send_bytes(b"x" * 11)
        with pytest.raises(WebSocketDisconnect) as closed:
            connection.receive_json()
    assert (closed.value.code, closed.value.reason) == (1009, "body_too_large")


def test_websocket_frames_must_be_json_or_any() -> None:
    with pytest.raises(ConfigurationError, match="websocket_frames must be 'json'"):
        AinisaMiddleware(echo, resolver=RESOLVER, paths=PATHS, websocket_frames="all")


# -- denial details ---------------------------------------------------------------


class _Failing:
    def resolve(self, widget_id: str) -> Business | None:
        raise ConnectionError("store down")


@pytest.mark.parametrize("denial", [True, False])
def test_a_failing_resolver_denies_with_503_or_closes_1013(
    denial: bool, caplog: pytest.LogCaptureFixture
) -> None:
    inner = Starlette(routes=[WebSocketRoute("/{path:path}", echo)])
    app: ASGIApp = AinisaMiddleware(inner, resolver=_Failing(), paths=PATHS)
    test_client = TestClient(app if denial else _without_denial(app))
    with caplog.at_level(logging.WARNING, "ainisa_middleware"):
        if denial:
            with (
                pytest.raises(WebSocketDenialResponse) as refused,
                test_client.websocket_connect("/chat?widget_id=w_pro"),
            ):
                pass  # pragma: no cover
            assert refused.value.status_code == 503
        else:
            with (
                test_client.websocket_connect("/chat?widget_id=w_pro") as connection,
                pytest.raises(WebSocketDisconnect) as closed,
            ):
                connection.receive_text()
            assert (closed.value.code, closed.value.reason) == (1013, "resolver_unavailable")
    assert CALLS == []
    assert "outcome=resolver_unavailable" in caplog.text


def test_an_accept_that_denies_names_the_clients_subprotocol() -> None:
    test_client = client("strip", False)
    with test_client.websocket_connect(
        "/chat?widget_id=w_nope", subprotocols=["chat.v2", "chat.v1"]
    ) as connection:
        assert connection.accepted_subprotocol == "chat.v2"
        with pytest.raises(WebSocketDisconnect) as closed:
            connection.receive_text()
    assert closed.value.reason == "unknown_widget"


def test_websocket_outside_the_paths_passes_untouched() -> None:
    query = f"user_id=42&user_hash={GOOD}"
    with client("enforce", True).websocket_connect(f"/chatter?{query}") as connection:
        connection.send_bytes(b"\x00")
        seen = connection.receive_json()
    assert seen["query"] == query and seen["user"] is None and seen["binary"] is True


def test_a_client_leaving_before_its_handshake_never_reaches_the_app() -> None:
    ran: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ran.append(True)  # pragma: no cover - must not run

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(message: Any) -> None:
        sent.append(message)  # pragma: no cover

    import anyio

    scope = {"type": "websocket", "path": "/chat", "query_string": b"widget_id=w_pro"}
    anyio.run(middleware, scope, receive, send)
    assert ran == [] and sent == []


def test_raw_path_holding_the_query_is_rewritten() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "websocket.close", "code": 1000})

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    query = f"widget_id=w_pro&user_id=42&user_hash={GOOD}".encode()
    scope = {
        "type": "websocket",
        "path": "/chat",
        "raw_path": b"/chat?" + query,
        "query_string": query,
        "headers": [],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        pass

    import anyio

    anyio.run(middleware, scope, receive, send)
    assert seen[0]["raw_path"] == b"/chat?widget_id=w_pro&user_id=42"
    assert seen[0]["query_string"] == b"widget_id=w_pro&user_id=42"
    assert scope["query_string"] == query  # the server's scope is not changed


# -- FastAPI dependencies on WebSocket routes -------------------------------------


def _fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/chat/open")
    async def open_chat(
        websocket: WebSocket, user: Annotated[AinisaUser | None, Depends(get_ainisa_user)]
    ) -> None:
        await websocket.accept()
        await websocket.receive_text()
        # After the first frame the connection's identity is settled: read it again.
        now = get_ainisa_user(websocket)
        await websocket.send_json(
            {"at_connect": user_dict(user), "after_first_frame": user_dict(now)}
        )
        await websocket.close()

    @app.websocket("/chat/members")
    async def members(
        websocket: WebSocket, user: Annotated[AinisaUser, Depends(require_verified_user)]
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": user.user_id})
        await websocket.close()

    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)  # type: ignore[arg-type]
    return app


def test_fastapi_get_ainisa_user_on_a_websocket_route() -> None:
    with TestClient(_fastapi_app()).websocket_connect("/chat/open?widget_id=w_pro") as connection:
        connection.send_text(json.dumps({"user": ADA}))
        seen = connection.receive_json()
    assert seen["at_connect"]["status"] == "anonymous"
    assert seen["after_first_frame"]["status"] == "verified"
    assert seen["after_first_frame"]["user_id"] == "42"


def test_fastapi_require_verified_user_on_a_websocket_route() -> None:
    app = TestClient(_fastapi_app())
    url = f"/chat/members?widget_id=w_pro&user_id=42&user_hash={GOOD}"
    with app.websocket_connect(url) as connection:
        assert connection.receive_json() == {"user_id": "42"}
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        app.websocket_connect("/chat/members?widget_id=w_pro"),
    ):
        pass  # pragma: no cover
    assert refused.value.status_code == 401
    assert refused.value.json()["error"] == "identity_required"
    denied = TestClient(_without_denial(_fastapi_app()))
    with (
        denied.websocket_connect("/chat/members?widget_id=w_pro") as connection,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        connection.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "identity_required")


def test_identity_disabled_business_strips_first_frame_identity() -> None:
    assert not BUSINESSES["w_free"].identity_enabled
    with _connect(client("enforce", True), "/chat/ws?widget_id=w_free") as connection:
        connection.send_text(json.dumps({"msg": "hi", "user": ADA}))
        seen = connection.receive_json()
    assert seen["user"]["status"] == "identity_disabled"
    assert json.loads(seen["frame"]) == {"msg": "hi"}


def test_static_resolver_is_consulted_once_per_connection() -> None:
    calls: list[str] = []

    class Counting:
        def resolve(self, widget_id: str) -> Business | None:
            calls.append(widget_id)
            return StaticResolver(BUSINESSES).resolve(widget_id)

    inner = Starlette(routes=[WebSocketRoute("/{path:path}", echo)])
    app = TestClient(AinisaMiddleware(inner, resolver=Counting(), paths=PATHS))
    with app.websocket_connect("/chat?widget_id=w_pro") as connection:
        for _ in range(3):
            connection.send_text(json.dumps({"user": ADA}))
            connection.receive_json()
    assert calls == ["w_pro"]


def test_a_server_refusing_1008_gets_the_private_use_4008() -> None:
    """Daphne (autobahn) raises on an application's 1008; 4008 says the same there."""
    from ainisa_middleware._websocket import send_close

    sent: list[Any] = []

    async def send(message: Any) -> None:
        if not (message["code"] == 1000 or 3000 <= message["code"] <= 4999):
            raise Exception("invalid close code (must be 1000 or from [3000, 4999])")
        sent.append(message)

    import anyio

    anyio.run(send_close, send, 1008, "unknown_widget")
    assert sent == [{"type": "websocket.close", "code": 4008, "reason": "unknown_widget"}]


def test_large_frames_are_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from ainisa_middleware import _websocket

    hops: list[int] = []
    real = _websocket._off_loop

    async def counted(func: Any) -> Any:
        hops.append(1)
        return await real(func)

    monkeypatch.setattr(_websocket, "_off_loop", counted)
    large = json.dumps({"msg": "x" * 20_000, "user": ADA})
    with _connect(TestClient(make_app())) as connection:
        connection.send_text(PING_JSON)
        connection.receive_json()
        assert hops == []  # a chat frame stays on the loop
        connection.send_text(large)
        seen = connection.receive_json()
    assert hops == [1]
    assert json.loads(seen["frame"]) == {"msg": "x" * 20_000}


def test_an_endpoint_refusing_after_accept_closes_with_1008() -> None:
    from ainisa_middleware.errors import AinisaIdentityError

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.receive"
        raise AinisaIdentityError("identity_required")

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    with (
        TestClient(middleware).websocket_connect("/chat?widget_id=w_pro") as connection,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        connection.send_text(PING_JSON)
        connection.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "identity_required")


def test_an_app_asking_again_after_the_close_hears_the_disconnect_again() -> None:
    heard: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        heard.append(await receive())
        heard.append(await receive())

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    with (
        TestClient(middleware).websocket_connect("/chat?widget_id=w_pro") as connection,
        pytest.raises(WebSocketDisconnect),
    ):
        connection.send_bytes(b"\x00")
        connection.receive_text()
    assert (
        heard[0]
        == heard[1]
        == {
            "type": "websocket.disconnect",
            "code": 1003,
            "reason": "unsupported_media_type",
        }
    )
