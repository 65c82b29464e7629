"""AinisaMiddleware under Django's test Client (WSGI handler) and AsyncClient (ASGI)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
import webtest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings

from ainisa_middleware import Business, StaticResolver, user_hash
from ainisa_middleware.django import AinisaMiddleware
from tests.test_django.resolvers import SECRET

HASH_42 = user_hash(SECRET, "42")
MIDDLEWARE_PATH = "ainisa_middleware.django.AinisaMiddleware"
BASE: dict[str, Any] = {"RESOLVER": "tests.test_django.resolvers.resolver", "PATHS": ["/chat"]}


def ainisa(**changes: Any) -> override_settings:
    return override_settings(AINISA={**BASE, **changes})


def verified(**extra: Any) -> dict[str, Any]:
    return {
        "message": "hi",
        "user": {"user_id": "42", "user_hash": HASH_42, "firstname": "Ann"},
        **extra,
    }


Post = Callable[..., Any]


def sync_post(path: str, data: Any, **kwargs: Any) -> Any:
    return Client().post(path, data, **kwargs)


def async_post(path: str, data: Any, **kwargs: Any) -> Any:
    return asyncio.run(AsyncClient().post(path, data, **kwargs))


@pytest.fixture(params=["sync-client", "async-client"])
def post(request: pytest.FixtureRequest) -> Post:
    """The same request through Django's WSGI handler and its ASGI handler."""
    return sync_post if request.param == "sync-client" else async_post


@pytest.fixture(params=["/chat", "/chat/async"])
def chat_path(request: pytest.FixtureRequest) -> str:
    """A sync view and an async view."""
    return str(request.param)


def post_json(post: Post, path: str, body: Any, widget: str | None = "wid_pro") -> Any:
    headers = {"X-Ainisa-Widget-Id": widget} if widget else {}
    return post(path, json.dumps(body), content_type="application/json", headers=headers)


# -- Django's parsers, under both handlers, in sync and async views ----------------
# The bytes a view reads are the shared table's (cases.py, through test_table.py);
# these check what Django's own parsers (request.POST, request.GET) make of them.


def test_form_post_and_get_are_rewritten(post: Post, chat_path: str) -> None:
    response = post(
        f"{chat_path}?widget_id=wid_pro&page=2",
        "user_id=42&user_hash=bad&firstname=Ann&message=hi",
        content_type="application/x-www-form-urlencoded",
    )
    data = response.json()
    assert data["POST"] == {"message": ["hi"]}
    assert data["GET"] == {"widget_id": ["wid_pro"], "page": ["2"]}
    assert data["body"] == "message=hi"
    assert data["user"]["status"] == "invalid_hash"


def test_non_ascii_query_survives_rewriting(post: Post) -> None:
    response = post(
        "/chat?widget_id=wid_pro&q=%C3%A9t%C3%A9&user_id=7", "", content_type="text/plain"
    )
    data = response.json()
    assert data["GET"] == {"widget_id": ["wid_pro"], "q": ["\u00e9t\u00e9"]}


# -- placement ------------------------------------------------------------------


class EagerReader:
    """A middleware above ours that reads the body, POST and GET before we run."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        assert request.body
        assert request.POST.get("user_id") == "42"
        assert request.GET.get("page") == "2"
        return self.get_response(request)


def test_data_read_above_the_middleware_is_not_what_the_view_sees() -> None:
    stack = [
        "tests.test_django.test_middleware.EagerReader",
        MIDDLEWARE_PATH,
    ]
    with override_settings(MIDDLEWARE=stack):
        response = Client().post(
            "/chat?widget_id=wid_pro&page=2&firstname=",
            "user_id=42&user_hash=bad&message=hi",
            content_type="application/x-www-form-urlencoded",
        )
    data = response.json()
    assert data["POST"] == {"message": ["hi"]}
    assert data["GET"] == {"widget_id": ["wid_pro"], "page": ["2"]}
    assert data["body"] == "message=hi"


def test_placed_after_csrf_middleware_it_still_verifies_before_the_view() -> None:
    # CsrfViewMiddleware reads request.POST in process_view, which Django runs
    # after every middleware's __call__: its position does not matter for us.
    stack = ["django.middleware.csrf.CsrfViewMiddleware", MIDDLEWARE_PATH]
    with override_settings(MIDDLEWARE=stack):
        response = Client(enforce_csrf_checks=True).post(
            "/chat",
            "widget_id=wid_pro&user_id=42&user_hash=bad",
            content_type="application/x-www-form-urlencoded",
        )
    assert response.json()["POST"] == {"widget_id": ["wid_pro"]}


# -- configuration ----------------------------------------------------------------


def test_bad_settings_fail_at_startup_with_every_problem() -> None:
    bad = {"RESOLVER": None, "PATHS": "/chat", "MODE": "x"}
    with override_settings(AINISA=bad), pytest.raises(ImproperlyConfigured) as info:
        AinisaMiddleware(lambda request: HttpResponse())
    text = str(info.value)
    assert "AINISA['RESOLVER'] is required" in text
    assert "AINISA['PATHS'] must be a list" in text
    assert "AINISA['MODE'] must be 'strip' or 'enforce'" in text


def test_missing_settings_fail_at_wsgi_startup() -> None:
    with override_settings(AINISA=None), pytest.raises(ImproperlyConfigured) as info:
        WSGIHandler()
    assert "settings.AINISA is not set" in str(info.value)


def test_resolver_object_in_settings_is_used_as_is(post: Post) -> None:
    resolver = StaticResolver({"wid_x": Business(id="biz_x", secrets=(SECRET,))})
    with ainisa(RESOLVER=resolver):
        response = post_json(post, "/chat", verified(), widget="wid_x")
    assert response.json()["user"]["business_id"] == "biz_x"


# -- WebTest over Django's WSGI application -----------------------------------------


def test_webtest_over_django_wsgi_application() -> None:
    app = webtest.TestApp(WSGIHandler(), lint=True)
    response = app.post_json(
        "/chat", verified(widget_id="wid_pro", user_hash=HASH_42), headers={"Host": "testserver"}
    )
    data = response.json
    assert data["json"] == {
        "message": "hi",
        "widget_id": "wid_pro",
        "user": {"user_id": "42", "firstname": "Ann"},
    }
    assert data["user"]["status"] == "verified"


class StreamConsumer:
    """A middleware above ours that consumes the body stream without caching it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        assert b"user_id" in request.read()
        return self.get_response(request)


def test_stream_consumed_above_the_middleware_fails_closed() -> None:
    stack = ["tests.test_django.test_middleware.StreamConsumer", MIDDLEWARE_PATH]
    body = json.dumps({"message": "hi", "user": {"user_id": "42", "user_hash": HASH_42}})
    with override_settings(MIDDLEWARE=stack):
        response = Client().post(
            "/chat",
            body,
            content_type="application/json",
            headers={"X-Ainisa-Widget-Id": "wid_pro"},
        )
    data = response.json()
    assert data["body"] == ""
    assert data["user"]["status"] == "anonymous"


# -- reading the body: direct calls -------------------------------------------------


def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body)


async def _aok(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body)


class _BrokenStream:
    def read(self, size: int = -1) -> bytes:
        raise OSError("connection reset by peer")

    readline = read


def _wsgi_request(stream: Any, content_length: str) -> WSGIRequest:
    environ = RequestFactory()._base_environ(  # type: ignore[attr-defined]
        PATH_INFO="/chat",
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=content_length,
        HTTP_X_AINISA_WIDGET_ID="wid_pro",
    )
    environ["wsgi.input"] = stream
    return WSGIRequest(environ)


def test_client_gone_mid_body_is_400_and_view_not_called() -> None:
    response = AinisaMiddleware(_ok)(_wsgi_request(_BrokenStream(), "10"))
    assert response.status_code == 400
    assert json.loads(response.content)["error"] == "malformed_body"


def test_invalid_content_length_reads_no_body() -> None:
    request = _wsgi_request(BytesIO(b'{"user": {"user_id": "1"}}'), "abc")
    response = AinisaMiddleware(_ok)(request)
    assert response.status_code == 200
    assert response.content == b""
    assert request.ainisa_user.status == "anonymous"  # type: ignore[attr-defined]


def _asgi_request(body: bytes) -> ASGIRequest:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/chat",
        "query_string": b"",
        # chunked: no content-length for the middleware to check first
        "headers": [(b"content-type", b"application/json"), (b"x-ainisa-widget-id", b"wid_pro")],
    }
    return ASGIRequest(scope, BytesIO(body))


def test_asgi_chunked_body_over_limit_is_413_after_limit_plus_one_bytes() -> None:
    with ainisa(MAX_BODY_SIZE=100):
        middleware = AinisaMiddleware(_aok)
    response = asyncio.run(middleware(_asgi_request(b"{" + b" " * 200 + b"}")))
    assert response.status_code == 413


def test_get_ainisa_user_is_the_typed_attribute() -> None:
    from ainisa_middleware.django import get_ainisa_user

    request = RequestFactory().post(
        "/chat", b"{}", content_type="application/json", headers={"X-Ainisa-Widget-Id": "wid_pro"}
    )
    assert get_ainisa_user(request) is None
    AinisaMiddleware(_ok)(request)
    user = get_ainisa_user(request)
    assert user is not None and user is request.ainisa_user  # type: ignore[attr-defined]
    assert user.status == "anonymous"


def test_async_mode_is_native_and_sync_mode_is_plain() -> None:
    from asgiref.sync import iscoroutinefunction

    assert AinisaMiddleware.sync_capable and AinisaMiddleware.async_capable
    assert iscoroutinefunction(AinisaMiddleware(_aok))  # Django awaits it: no thread hop
    assert not iscoroutinefunction(AinisaMiddleware(_ok))


# -- mounts and raw request lines (CONTRACT 3.7) ------------------------------------

FORGED = "widget_id=wid_pro&user_id=42&email=m%40example.com&user_hash=" + "0" * 64


def _view_meta(request: HttpRequest) -> HttpResponse:
    user = getattr(request, "ainisa_user", None)
    payload = {
        "GET": dict(request.GET.lists()),
        "raw_uri": request.META.get("RAW_URI"),
        "request_uri": request.META.get("REQUEST_URI"),
        "status": None if user is None else user.status.value,
    }
    return HttpResponse(json.dumps(payload), content_type="application/json")


@ainisa()
@pytest.mark.parametrize(
    ("path", "script_name"), [("/chat", ""), ("//chat", ""), ("/api/chat", "/api")]
)
def test_mounted_project_and_raw_request_lines_are_covered(path: str, script_name: str) -> None:
    environ = {
        "SCRIPT_NAME": script_name,
        "QUERY_STRING": FORGED,
        "RAW_URI": f"{path}?{FORGED}",
        "REQUEST_URI": f"{path}?{FORGED}",
    }
    request = RequestFactory().get(path, **environ)
    request.path_info = path[len(script_name) :] if script_name else path
    response = AinisaMiddleware(_view_meta)(request)
    seen = json.loads(response.content)
    assert seen["GET"] == {"widget_id": ["wid_pro"]}
    bare = path[len(script_name) :] if script_name else path
    assert seen["raw_uri"] == seen["request_uri"] == f"{path}?widget_id=wid_pro"
    assert seen["status"] == "invalid_hash", bare


@ainisa()
@pytest.mark.parametrize(
    "body", [b"", b'{"user": {"user_id": "7", "user_hash": "' + b"0" * 64 + b'"}}']
)
def test_an_asgi_preflight_is_one_only_without_a_body(body: bytes) -> None:
    # HTTP/2 frames a body with no Content-Length; Django's ASGI handler reads it all.
    scope = {
        "type": "http",
        "method": "OPTIONS",
        "path": "/chat",
        "query_string": b"widget_id=wid_pro",
        "headers": [
            (b"access-control-request-method", b"POST"),
            (b"content-type", b"application/json"),
        ],
        "http_version": "2",
    }
    request = ASGIRequest(scope, BytesIO(body))
    seen = json.loads(AinisaMiddleware(_view_meta)(request).content)
    assert seen["status"] == (None if not body else "invalid_hash")
