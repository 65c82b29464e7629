"""The WSGI middleware behind real servers, with real sockets and chunked bodies.

werkzeug's development server and waitress both dechunk the body and set
``wsgi.input_terminated``; the middleware must read such bodies, bounded.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import waitress.server
from werkzeug.serving import make_server

from ainisa_middleware.wsgi import AinisaWSGIMiddleware
from tests.cases import GOOD, RESOLVER
from tests.test_wsgi import table_echo

LIMIT = 4096


def _app() -> AinisaWSGIMiddleware:
    return AinisaWSGIMiddleware(table_echo, resolver=RESOLVER, paths=["/chat"], max_body_size=LIMIT)


def _werkzeug() -> tuple[int, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, _app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return server.server_port, stop


def _waitress() -> tuple[int, Callable[[], None]]:
    # poll() reports a socket closed by stop() from this thread where select() would
    # raise EBADF in the server's thread.
    server = waitress.server.create_server(
        _app(), host="127.0.0.1", port=0, threads=2, asyncore_use_poll=True
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.close()
        thread.join(5)

    return int(server.effective_port), stop  # type: ignore[union-attr]


@pytest.fixture(params=["werkzeug", "waitress"], scope="module")
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    start = _werkzeug if request.param == "werkzeug" else _waitress
    number, stop = start()
    yield number
    stop()


def _chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    for index in range(0, len(data), size):
        yield data[index : index + size]


def _post(port: int, body: bytes, *, chunked: bool) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json", "X-Ainisa-Widget-Id": "w_pro"}
        if chunked:
            connection.request(
                "POST", "/chat?x=1", body=_chunks(body), headers=headers, encode_chunked=True
            )
        else:
            connection.request("POST", "/chat?x=1", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


VERIFIED = json.dumps({"msg": "hi", "user": {"user_id": "42", "user_hash": GOOD}}).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_verified_body_through_a_real_server(port: int, chunked: bool) -> None:
    status, payload = _post(port, VERIFIED, chunked=chunked)
    assert status == 200
    assert json.loads(payload["body"]) == {"msg": "hi", "user": {"user_id": "42"}}
    assert payload["user"]["status"] == "verified"
    assert payload["query"] == "x=1"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_through_a_real_server_is_413(port: int, chunked: bool) -> None:
    body = json.dumps({"pad": "x" * (LIMIT + 10)}).encode()
    status, payload = _post(port, body, chunked=chunked)
    assert status == 413
    assert payload["error"] == "body_too_large"
