"""Streamed replies through the ASGI and WSGI middleware behind real servers.

The app sends its first Server-Sent Event, then waits until the client has read
it before it produces the last one. A middleware (or server) that buffered the
reply would hold the first event back until the app gave up waiting: the client
would then see both at once, after the app had produced the last.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from werkzeug.serving import make_server as make_werkzeug_server

from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.wsgi import ENVIRON_KEY, AinisaWSGIMiddleware
from tests.cases import GOOD, PATHS, RESOLVER
from tests.multipart_cases import TYPE, attachment, body, part

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: How long the app waits for the client to read the first event before giving up.
PATIENCE = 5.0
VERIFIED = json.dumps({"message": "hi", "user": {"user_id": "42", "user_hash": GOOD}}).encode()
UPLOAD = body(part("message", "hi"), attachment())


class Gate:
    """The first event is read (set by the client), the last is produced (set by the app)."""

    def __init__(self) -> None:
        self.first_read = threading.Event()
        self.last_produced = threading.Event()


GATE = Gate()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the apps --------------------------------------------------------------------


async def sse(request: Request) -> StreamingResponse:
    await request.body()
    user = getattr(request.state, STATE_KEY, None)

    async def events() -> AsyncIterator[bytes]:
        yield f"data: first {user.status if user else None}\n\n".encode()
        deadline = time.monotonic() + PATIENCE
        while not GATE.first_read.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        GATE.last_produced.set()
        yield b"data: last\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def asgi_app() -> Starlette:
    app = Starlette(routes=[Route("/chat", sse, methods=["POST"])])
    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)
    return app


def wsgi_sse(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    user = environ.get(ENVIRON_KEY)
    start_response("200 OK", [("Content-Type", "text/event-stream")])
    yield f"data: first {user.status if user else None}\n\n".encode()
    GATE.first_read.wait(PATIENCE)
    GATE.last_produced.set()
    yield b"data: last\n\n"


def wsgi_app() -> WSGIApplication:
    return AinisaWSGIMiddleware(wsgi_sse, resolver=RESOLVER, paths=PATHS)


# -- the servers -----------------------------------------------------------------


def _uvicorn(app: Any) -> tuple[int, Callable[[], None]]:
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return port, stop


def _werkzeug(app: WSGIApplication) -> tuple[int, Callable[[], None]]:
    server = make_werkzeug_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return server.server_port, stop


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _wsgiref(app: WSGIApplication) -> tuple[int, Callable[[], None]]:
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return server.server_port, stop


SERVERS: dict[str, Callable[[], tuple[int, Callable[[], None]]]] = {
    "uvicorn-asgi": lambda: _uvicorn(asgi_app()),
    "werkzeug-wsgi": lambda: _werkzeug(wsgi_app()),
    "wsgiref-wsgi": lambda: _wsgiref(wsgi_app()),
}


@pytest.fixture(params=list(SERVERS), scope="module")
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    number, stop = SERVERS[request.param]()
    yield number
    stop()


def read_stream(port: int, path: str, payload: bytes, content_type: str) -> tuple[bytes, bytes]:
    """POST, then read until the first event: what came before the app went on, and the rest."""
    GATE.first_read.clear()
    GATE.last_produced.clear()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE * 2)
    try:
        headers = {"Content-Type": content_type, "X-Ainisa-Widget-Id": "w_pro"}
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        first = b""
        while b"\n\n" not in first:
            chunk = response.read1(65536)
            assert chunk, "the stream ended before its first event"
            first += chunk
        # The first event is here: the app must not have produced the last one yet.
        assert not GATE.last_produced.is_set(), "the reply was buffered"
        GATE.first_read.set()
        rest = response.read()
    finally:
        connection.close()
    return first, rest


@pytest.mark.parametrize(
    ("payload", "content_type", "status"),
    [(VERIFIED, "application/json", "verified"), (UPLOAD, TYPE, "anonymous")],
    ids=["json", "multipart"],
)
def test_first_event_reaches_the_client_before_the_app_produces_the_last(
    port: int, payload: bytes, content_type: str, status: str
) -> None:
    first, rest = read_stream(port, "/chat", payload, content_type)
    assert first.startswith(f"data: first {status}\n\n".encode())
    assert (first + rest).endswith(b"data: last\n\n")
