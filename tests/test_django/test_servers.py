"""Django with the middleware behind real servers: uvicorn (ASGI) and werkzeug (WSGI)."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from werkzeug.serving import make_server

from ainisa_middleware import user_hash
from tests.test_django.resolvers import SECRET

VERIFIED = json.dumps(
    {"message": "hi", "user": {"user_id": "42", "user_hash": user_hash(SECRET, "42")}}
).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def uvicorn_port() -> Iterator[int]:
    port = _free_port()
    config = uvicorn.Config(
        ASGIHandler(), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield port
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def werkzeug_port() -> Iterator[int]:
    server = make_server("127.0.0.1", 0, WSGIHandler(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()
    thread.join(5)


def _chunks(data: bytes) -> Iterator[bytes]:
    for index in range(0, len(data), 5):
        yield data[index : index + 5]


def _post(port: int, path: str, body: bytes, *, chunked: bool) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {
        "Content-Type": "application/json",
        "X-Ainisa-Widget-Id": "wid_pro",
        "Host": "localhost",
    }
    try:
        if chunked:
            connection.request(
                "POST", path, body=_chunks(body), headers=headers, encode_chunked=True
            )
        else:
            connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/chat", "/chat/async"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_uvicorn_asgi_verifies_sync_and_async_views(
    uvicorn_port: int, path: str, chunked: bool
) -> None:
    status, data = _post(uvicorn_port, path, VERIFIED, chunked=chunked)
    assert status == 200
    assert data["json"] == {"message": "hi", "user": {"user_id": "42"}}
    assert data["user"]["status"] == "verified"


def test_uvicorn_chunked_body_over_the_limit_is_413(uvicorn_port: int) -> None:
    body = json.dumps({"pad": "x" * 1_100_000}).encode()
    status, data = _post(uvicorn_port, "/chat/async", body, chunked=True)
    assert status == 413
    assert data["error"] == "body_too_large"


def test_werkzeug_wsgi_verifies_a_sized_body(werkzeug_port: int) -> None:
    status, data = _post(werkzeug_port, "/chat", VERIFIED, chunked=False)
    assert status == 200
    assert data["user"]["status"] == "verified"
    assert "user_hash" not in data["body"]


def test_werkzeug_wsgi_chunked_body_is_empty_for_django_and_the_view(werkzeug_port: int) -> None:
    # Django's WSGIRequest reads Content-Length bytes only: a chunked body is empty,
    # for the middleware and the view alike. Nothing unverified gets through.
    status, data = _post(werkzeug_port, "/chat", VERIFIED, chunked=True)
    assert status == 200
    assert data["body"] == ""
    assert data["user"]["status"] == "anonymous"
