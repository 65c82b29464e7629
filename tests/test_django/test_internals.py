"""The Django internals replace_request_data relies on; these break if Django changes them."""

from __future__ import annotations

import json
from io import BytesIO

from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest
from django.test import RequestFactory

from ainisa_middleware.django.middleware import replace_request_data

ORIGINAL = b"user_id=42&user_hash=bad&message=hi"
REWRITTEN = b"message=hi"


def _wsgi_request() -> WSGIRequest:
    return RequestFactory().post(
        "/chat?user_id=42&page=2", ORIGINAL, content_type="application/x-www-form-urlencoded"
    )


def _asgi_request() -> ASGIRequest:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/chat",
        "query_string": b"user_id=42&page=2",
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(ORIGINAL)).encode()),
        ],
    }
    return ASGIRequest(scope, BytesIO(ORIGINAL))


def _read_everything(request: HttpRequest) -> None:
    assert request.body == ORIGINAL
    assert request.POST["user_id"] == "42"
    assert request.GET["user_id"] == "42"
    assert request.FILES == {}


def _assert_rewritten(request: HttpRequest) -> None:
    assert request.body == REWRITTEN
    assert request.read() == REWRITTEN
    assert dict(request.POST) == {"message": ["hi"]}
    assert dict(request.GET) == {"page": ["2"]}
    assert request.META["CONTENT_LENGTH"] == str(len(REWRITTEN))


def test_wsgi_request_caches_are_replaced_after_everything_was_read() -> None:
    request = _wsgi_request()
    _read_everything(request)
    replace_request_data(request, REWRITTEN, "page=2")
    _assert_rewritten(request)
    # raw WSGI readers of the environ get the new body too
    assert request.META["wsgi.input"].read() == REWRITTEN


def test_wsgi_request_stream_read_by_us_then_replaced() -> None:
    request = _wsgi_request()
    assert request.read(5) == ORIGINAL[:5]
    replace_request_data(request, REWRITTEN, "page=2")
    _assert_rewritten(request)


def test_asgi_request_caches_are_replaced_after_everything_was_read() -> None:
    request = _asgi_request()
    _read_everything(request)
    replace_request_data(request, REWRITTEN, "page=2")
    _assert_rewritten(request)


def test_json_body_replaced_for_json_loads_and_readers() -> None:
    request = RequestFactory().post(
        "/chat", {"user": {"user_hash": "x"}, "m": 1}, content_type="application/json"
    )
    assert json.loads(request.body)["user"] == {"user_hash": "x"}
    replace_request_data(request, b'{"m":1}', None)
    assert json.loads(request.body) == {"m": 1}
    assert request.readline() == b'{"m":1}'
    assert dict(request.POST) == {}


def test_multipart_cached_files_are_dropped() -> None:
    request = RequestFactory().post("/chat", {"user_id": "42", "f": BytesIO(b"data")})
    assert request.POST["user_id"] == "42"
    assert "f" in request.FILES
    replace_request_data(request, b"", None)
    assert dict(request.POST) == {}
    assert dict(request.FILES) == {}
