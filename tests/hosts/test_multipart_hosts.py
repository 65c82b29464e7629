"""Attachments through the ASGI and WSGI adapters: the multipart table, each app parsing
the body with its own framework (Starlette's ``request.form()``, werkzeug's form parser),
plus the body that ends early and the spool's life."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest
import webtest
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from ainisa_middleware import multipart as multipart_module
from ainisa_middleware._types import Message
from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.wsgi import ENVIRON_KEY, AinisaWSGIMiddleware
from tests.cases import PATHS, RESOLVER
from tests.multipart_cases import (
    MULTIPART_ROWS,
    TYPE,
    MultipartCase,
    attachment,
    body,
    check,
    multipart_payload,
    part,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


async def starlette_echo(request: StarletteRequest) -> Response:
    form = await request.form()
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, str, bytes]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append((name, value.filename or "", await value.read()))
        else:
            fields.append((name, value))
    await form.close()
    user = getattr(request.state, STATE_KEY, None)
    query = request.scope["query_string"].decode("latin-1")
    return JSONResponse(multipart_payload(fields, files, query, user))


def starlette_app(**options: Any) -> Starlette:
    app = Starlette(routes=[Route("/chat", starlette_echo, methods=["POST"])])
    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS, **options)
    return app


def werkzeug_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    request = WerkzeugRequest(environ)
    fields = list(request.form.items(multi=True))
    files = [
        (name, upload.filename or "", upload.read())
        for name, upload in request.files.items(multi=True)
    ]
    request.close()  # werkzeug's own spooled uploads
    query = environ.get("QUERY_STRING", "")
    payload = multipart_payload(fields, files, query, environ.get(ENVIRON_KEY))
    response = WerkzeugResponse(json.dumps(payload), content_type="application/json")
    return response(environ, start_response)


def _options(case: MultipartCase) -> dict[str, Any]:
    return {"mode": case.mode, **case.options}


@pytest.mark.parametrize("case", MULTIPART_ROWS)
def test_multipart_table_asgi(case: MultipartCase) -> None:
    with TestClient(starlette_app(**_options(case))) as client:
        response = client.post(
            "/chat" + ("?" + case.query if case.query else ""),
            content=case.body,
            headers={**dict(case.headers), "Content-Type": case.content_type},
        )
    check(case, response.status_code, response.json())


@pytest.mark.parametrize("case", MULTIPART_ROWS)
def test_multipart_table_wsgi(case: MultipartCase) -> None:
    app = webtest.TestApp(
        AinisaWSGIMiddleware(werkzeug_echo, resolver=RESOLVER, paths=PATHS, **_options(case))
    )
    response = app.post(
        "/chat" + ("?" + case.query if case.query else ""),
        params=case.body,
        headers={**dict(case.headers), "Content-Type": case.content_type},
        expect_errors=True,
    )
    check(case, response.status_int, response.json)


# -- a body that ends early ----------------------------------------------------------


def test_wsgi_body_shorter_than_its_content_length_is_malformed() -> None:
    seen: list[object] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ)
        start_response("200 OK", [])
        return [b""]

    sent = body(part("message", "hi"), attachment())
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/chat",
        "CONTENT_TYPE": TYPE,
        "CONTENT_LENGTH": str(len(sent) + 1000),  # the client promised more than it sent
        "HTTP_X_AINISA_WIDGET_ID": "w_pro",
        "wsgi.input": io.BytesIO(sent),
    }
    statuses: list[str] = []
    middleware = AinisaWSGIMiddleware(app, resolver=RESOLVER, paths=PATHS)
    answer = b"".join(middleware(environ, lambda status, *_: statuses.append(status)))  # type: ignore[arg-type]
    assert statuses == ["400 Bad Request"]
    assert json.loads(answer)["error"] == "malformed_body"
    assert seen == []


async def _drive_asgi(messages: list[Message], *, app_called: list[bool]) -> list[Message]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        app_called.append(True)

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/chat",
        "query_string": b"",
        "headers": [(b"content-type", TYPE.encode()), (b"x-ainisa-widget-id", b"w_pro")],
    }
    queue = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


def test_asgi_client_gone_mid_upload_never_reaches_the_app() -> None:
    sent = body(part("message", "hi"), attachment())
    called: list[bool] = []
    answer = asyncio.run(
        _drive_asgi(
            [
                {"type": "http.request", "body": sent[:500], "more_body": True},
                {"type": "http.disconnect"},
            ],
            app_called=called,
        )
    )
    assert called == [] and answer == []


def test_asgi_body_ended_before_its_close_is_malformed() -> None:
    sent = body(part("message", "hi"), attachment())
    called: list[bool] = []
    answer = asyncio.run(
        _drive_asgi(
            [
                {"type": "http.request", "body": sent[:500], "more_body": True},
                {"type": "http.request", "body": sent[500:-20], "more_body": False},
            ],
            app_called=called,
        )
    )
    assert called == []
    assert answer[0]["status"] == 400
    assert json.loads(answer[1]["body"])["error"] == "malformed_body"


# -- chunking and the spool ----------------------------------------------------------


def test_asgi_app_receives_the_body_in_chunks_from_the_spool() -> None:
    payload = b"\x00\x01" * 200_000  # 400 KB: several replayed messages
    sent = body(part("user_id", "42"), attachment(data=payload))
    received: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = AinisaMiddleware(app, resolver=RESOLVER, paths=PATHS)
    chunks = [sent[i : i + 10_000] for i in range(0, len(sent), 10_000)]
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages[-1]["more_body"] = False

    async def run() -> None:
        queue = list(messages)

        async def receive() -> Message:
            return queue.pop(0)

        async def send(message: Message) -> None:
            pass

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/chat",
            "query_string": b"",
            "headers": [(b"content-type", TYPE.encode()), (b"x-ainisa-widget-id", b"w_pro")],
        }
        await middleware(scope, receive, send)

    asyncio.run(run())
    assert len(received) > 2
    assert all(len(m["body"]) <= multipart_module.READ_CHUNK for m in received)
    whole = b"".join(m["body"] for m in received)
    assert payload in whole and b"user_id" not in whole  # anonymous: the identity part is gone


def test_wsgi_spool_is_closed_when_the_response_is(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    real_close = multipart_module.MultipartSpool.close

    def close(self: multipart_module.MultipartSpool) -> None:
        closed.append(True)
        real_close(self)

    monkeypatch.setattr(multipart_module.MultipartSpool, "close", close)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        yield b"second"

    middleware = AinisaWSGIMiddleware(app, resolver=RESOLVER, paths=PATHS)
    sent = body(attachment())
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/chat",
        "CONTENT_TYPE": TYPE,
        "CONTENT_LENGTH": str(len(sent)),
        "HTTP_X_AINISA_WIDGET_ID": "w_pro",
        "wsgi.input": io.BytesIO(sent),
    }
    result = middleware(environ, lambda *a: None)  # type: ignore[arg-type]
    assert list(result) == [b"first", b"second"]
    assert closed == []  # the response is still open: the spool lives
    result.close()  # type: ignore[attr-defined]
    assert closed == [True]


def _environ(sent: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/chat",
        "CONTENT_TYPE": TYPE,
        "HTTP_X_AINISA_WIDGET_ID": "w_pro",
        "wsgi.input": io.BytesIO(sent),
        **extra,
    }


def _call_wsgi(environ: dict[str, Any], **options: Any) -> tuple[list[str], Any]:
    statuses: list[str] = []
    middleware = AinisaWSGIMiddleware(werkzeug_echo, resolver=RESOLVER, paths=PATHS, **options)
    result = middleware(environ, lambda status, *_: statuses.append(status))  # type: ignore[arg-type]
    try:
        return statuses, json.loads(b"".join(result))
    finally:
        getattr(result, "close", lambda: None)()


def test_wsgi_body_the_server_terminates_is_read_to_its_end() -> None:
    # A chunked upload: the server dechunks it, sets wsgi.input_terminated, no length.
    sent = body(part("user_id", "42"), attachment())
    statuses, payload = _call_wsgi(_environ(sent, **{"wsgi.input_terminated": True}))
    assert statuses == ["200 OK"]
    assert payload["user"]["status"] == "missing_hash" and payload["fields"] == []
    statuses, payload = _call_wsgi(
        _environ(sent, **{"wsgi.input_terminated": True}), max_upload_size=1000
    )
    assert statuses == ["413 Request Entity Too Large"]
    assert payload["error"] == "body_too_large"


def test_wsgi_body_read_above_by_werkzeug_is_the_one_inspected() -> None:
    sent = body(part("user_id", "42"), attachment())
    environ = _environ(sent, CONTENT_LENGTH=str(len(sent)))
    WerkzeugRequest(environ).get_data()  # a layer above read and kept the raw body
    environ["werkzeug.request"].close()
    statuses, payload = _call_wsgi(environ)
    assert statuses == ["200 OK"]
    assert payload["user"]["status"] == "missing_hash"
    assert [entry[0] for entry in payload["files"]] == ["file"]
