"""AinisaWSGIMiddleware: the shared table through WebTest (lint on) over a raw WSGI app,
a werkzeug app and Flask; streams, environ copies and framework caches by hand."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import flask
import pytest
import webob
import webtest
from webtest.lint import middleware as lint_middleware
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from ainisa_middleware import (
    AinisaUser,
    Business,
    ConfigurationError,
    StaticResolver,
    user_hash,
)
from ainisa_middleware.wsgi import (
    CACHED_ENVIRON_KEYS,
    CACHED_ENVIRON_PREFIXES,
    ENVIRON_KEY,
    AinisaWSGIMiddleware,
)

from .cases import PATHS, RESOLVER, ROWS, Case, check, echo_payload
from .conftest import AsyncOnlyResolver

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SECRET = "wsgi-test-secret"
PRO = Business(id="biz_pro", secrets=(SECRET,))
MAPPING = {"wid_pro": PRO}
HASH_42 = user_hash(SECRET, "42")


def _user(user: object) -> dict[str, Any] | None:
    if not isinstance(user, AinisaUser):
        return None
    return {"status": user.status.value, "user_id": user.user_id, "email": user.email}


def raw_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Reads ``wsgi.input`` itself, the way a hand-written WSGI app would."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else stream.read()
    payload = {
        "body": body.decode("utf-8", "replace"),
        "query": environ.get("QUERY_STRING", ""),
        "content_length": length,
        "user": _user(environ.get(ENVIRON_KEY)),
    }
    out = json.dumps(payload).encode("utf-8")
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
    )
    return [out]


def wrap(app: WSGIApplication = raw_echo, **options: Any) -> AinisaWSGIMiddleware:
    # The inner lint checks the environ the middleware hands the app.
    settings: dict[str, Any] = {"resolver": StaticResolver(MAPPING), "paths": ["/chat"]}
    settings.update(options)
    return AinisaWSGIMiddleware(lint_middleware(app), **settings)


def verified_json(**extra: Any) -> dict[str, Any]:
    return {
        "message": "hi",
        "user": {"user_id": "42", "user_hash": HASH_42, "email": "a@example.com"},
        **extra,
    }


# What the app reads, through every parser, is the shared table's (cases.py) at the
# end of this module; the resolver's kinds are test_resolver_table.py's.

# -- WSGI specifics ---------------------------------------------------------------


def test_prefix_matches_utf8_decoded_path_info() -> None:
    client = webtest.TestApp(wrap(paths=["/ch\u00e4t"]), lint=True)
    data = client.get("/ch%C3%A4t/x?widget_id=wid_pro&user_id=1").json
    assert data["query"] == "widget_id=wid_pro"


def test_async_only_resolver_inside_a_running_loop_is_503_not_a_crash() -> None:
    # A WSGI app called from a thread whose event loop is running cannot run the
    # resolver's coroutine to completion there: 503, never a crash or a pass.
    middleware = wrap(resolver=AsyncOnlyResolver(MAPPING))

    async def call() -> tuple[str, bytes]:
        return _call(middleware, EnvironBuilder("/chat?widget_id=wid_pro").get_environ())

    status, body = asyncio.run(call())
    assert status.startswith("503")
    assert json.loads(body)["error"] == "resolver_unavailable"


def test_bad_configuration_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError) as info:
        AinisaWSGIMiddleware(raw_echo, resolver=object(), paths="/chat", mode="block")
    message = str(info.value)
    assert "resolve(widget_id)" in message
    assert "paths must be a list" in message
    assert "mode must be 'strip' or 'enforce'" in message


# -- streams --------------------------------------------------------------------


def _call(app: WSGIApplication, environ: WSGIEnvironment) -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(status)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return seen[0], body


class _Recorder:
    """An inner app that records the environ it was called with."""

    def __init__(self) -> None:
        self.environ: WSGIEnvironment | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.environ = environ
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.input"].read()]


def _environ(body: bytes, **overrides: Any) -> WSGIEnvironment:
    environ = EnvironBuilder(
        "/chat",
        method="POST",
        data=body,
        content_type="application/json",
        headers={"X-Ainisa-Widget-Id": "wid_pro"},
    ).get_environ()
    for key, value in overrides.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


def _sized(**options: Any) -> tuple[AinisaWSGIMiddleware, _Recorder]:
    inner = _Recorder()
    settings: dict[str, Any] = {"resolver": StaticResolver(MAPPING), "paths": ["/chat"]}
    settings.update(options)
    return AinisaWSGIMiddleware(inner, **settings), inner


class _Unbounded(io.RawIOBase):
    """A stream that never ends, like a client that keeps sending."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b" " * size
        self.served += size
        return size


def test_declared_length_over_limit_is_413_without_reading() -> None:
    middleware, inner = _sized(max_body_size=10)
    stream = _Unbounded()
    status, body = _call(middleware, _environ(b"", CONTENT_LENGTH="11", **{"wsgi.input": stream}))
    assert status.startswith("413")
    assert json.loads(body)["error"] == "body_too_large"
    assert stream.served == 0
    assert inner.environ is None


def test_terminated_stream_is_read_to_at_most_limit_plus_one() -> None:
    middleware, inner = _sized(max_body_size=100)
    stream = _Unbounded()
    environ = _environ(b"", CONTENT_LENGTH=None, **{"wsgi.input": stream})
    environ["wsgi.input_terminated"] = True
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    status, _ = _call(middleware, environ)
    assert status.startswith("413")
    assert stream.served <= 101
    assert inner.environ is None


def test_terminated_chunked_body_is_verified_and_reframed() -> None:
    middleware, inner = _sized()
    sent = json.dumps(verified_json()).encode()
    environ = _environ(sent, CONTENT_LENGTH=None, HTTP_TRANSFER_ENCODING="chunked")
    environ["wsgi.input_terminated"] = True
    status, echoed = _call(middleware, environ)
    assert status.startswith("200")
    assert inner.environ is not None
    assert "HTTP_TRANSFER_ENCODING" not in inner.environ
    assert "wsgi.input_terminated" not in inner.environ
    assert inner.environ["CONTENT_LENGTH"] == str(len(echoed))
    assert json.loads(echoed)["user"] == {"user_id": "42", "email": "a@example.com"}


def test_body_exactly_at_limit_is_accepted_from_terminated_stream() -> None:
    sent = json.dumps({"widget_id": "wid_pro", "pad": "x" * 50}).encode()
    middleware, inner = _sized(max_body_size=len(sent))
    environ = _environ(sent, CONTENT_LENGTH=None)
    environ["wsgi.input_terminated"] = True
    status, echoed = _call(middleware, environ)
    assert status.startswith("200")
    assert json.loads(echoed) == json.loads(sent)


def test_undelimited_body_is_treated_as_empty_and_never_reaches_the_app() -> None:
    # No Content-Length and no wsgi.input_terminated: reading could block, so the
    # body counts as empty (werkzeug's safe fallback) and the app gets an empty stream.
    middleware, inner = _sized()
    sent = json.dumps(verified_json(widget_id="wid_pro")).encode()
    environ = _environ(sent, CONTENT_LENGTH=None, HTTP_TRANSFER_ENCODING="chunked")
    status, echoed = _call(middleware, environ)
    assert status.startswith("200")
    assert echoed == b""
    assert inner.environ is not None
    assert inner.environ[ENVIRON_KEY].status.value == "anonymous"


def test_content_length_shorter_than_body_reads_only_what_it_declares() -> None:
    middleware, inner = _sized()
    sent = b'{"widget_id":"wid_pro"}{"user":{"user_id":"1"}}'
    status, echoed = _call(middleware, _environ(sent, CONTENT_LENGTH="23"))
    assert status.startswith("200")
    assert echoed == b'{"widget_id":"wid_pro"}'


def test_content_length_longer_than_body_is_400_and_app_not_called() -> None:
    middleware, inner = _sized()
    sent = b'{"widget_id":"wid_pro"}'
    status, body = _call(middleware, _environ(sent, CONTENT_LENGTH="500"))
    assert status.startswith("400")
    assert json.loads(body)["error"] == "malformed_body"
    assert inner.environ is None


def test_invalid_content_length_counts_as_no_body() -> None:
    middleware, inner = _sized()
    sent = json.dumps(verified_json(widget_id="wid_pro")).encode()
    status, echoed = _call(
        middleware, _environ(sent, CONTENT_LENGTH="abc", HTTP_X_AINISA_WIDGET_ID=None)
    )
    # The body is unreadable, so the widget ID it names is not seen either.
    assert status.startswith("400")
    assert json.loads(echoed)["error"] == "missing_widget_id"
    assert inner.environ is None


def test_original_environ_is_not_modified() -> None:
    middleware, inner = _sized()
    sent = json.dumps(verified_json()).encode()
    environ = _environ(sent, QUERY_STRING="page=1&firstname=")
    environ["werkzeug.request"] = object()
    before = dict(environ)
    _call(middleware, environ)
    assert environ == before
    assert inner.environ is not None and inner.environ is not environ
    assert inner.environ["QUERY_STRING"] == "page=1"


# -- framework caches -----------------------------------------------------------

CACHE_SAMPLES = [
    *CACHED_ENVIRON_KEYS,
    *(f"{prefix}.sample" for prefix in CACHED_ENVIRON_PREFIXES),
    "bottle.request.body",
    "bottle.request.json",
    "bottle.request.forms",
    "bottle.request.query",
]


@pytest.mark.parametrize("key", CACHE_SAMPLES)
def test_framework_parse_cache_does_not_reach_the_app(key: str) -> None:
    middleware, inner = _sized()
    environ = _environ(json.dumps(verified_json()).encode())
    environ[key] = "cached view of the original request"
    status, _ = _call(middleware, environ)
    assert status.startswith("200")
    assert inner.environ is not None
    assert key not in inner.environ


def test_unrelated_environ_keys_survive() -> None:
    middleware, inner = _sized()
    environ = _environ(json.dumps(verified_json()).encode())
    environ["myapp.tenant"] = "t1"
    environ["bottle.app"] = "kept"
    _call(middleware, environ)
    assert inner.environ is not None
    assert inner.environ["myapp.tenant"] == "t1"
    assert inner.environ["bottle.app"] == "kept"


def test_webob_request_parsed_above_the_middleware_sees_rewritten_data() -> None:
    """An outer layer parsed the form with WebOb; the app's WebOb request must not reuse it."""
    seen: dict[str, Any] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = webob.Request(environ)
        seen["POST"] = dict(request.POST)
        seen["GET"] = dict(request.GET)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    middleware = AinisaWSGIMiddleware(app, resolver=StaticResolver(MAPPING), paths=["/chat"])

    environ = EnvironBuilder(
        "/chat?widget_id=wid_pro&page=2",
        method="POST",
        data={"user_id": "42", "user_hash": "bad", "message": "hi"},
    ).get_environ()

    def outer_form(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        early = webob.Request(environ)
        assert early.POST["user_hash"] == "bad"
        return middleware(environ, start_response)

    status, _ = _call(outer_form, environ)
    assert status.startswith("200")
    assert seen == {"POST": {"message": "hi"}, "GET": {"widget_id": "wid_pro", "page": "2"}}


def test_werkzeug_request_cached_above_is_dropped() -> None:
    seen: dict[str, Any] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen["cached"] = environ.get("werkzeug.request")
        seen["form"] = Request(environ).form.to_dict()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    middleware = AinisaWSGIMiddleware(app, resolver=StaticResolver(MAPPING), paths=["/chat"])
    environ = EnvironBuilder(
        "/chat",
        method="POST",
        data={"widget_id": "wid_pro", "user_id": "42", "user_hash": "bad"},
    ).get_environ()
    early = Request(environ)
    assert early.form["user_id"] == "42"
    environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].getvalue())
    status, _ = _call(middleware, environ)
    assert status.startswith("200")
    assert seen == {"cached": None, "form": {"widget_id": "wid_pro"}}


def test_path_info_already_decoded_by_a_lax_server_still_matches() -> None:
    middleware, inner = _sized()
    environ = _environ(b"{}", PATH_INFO="/chat/\u20ac", HTTP_X_AINISA_WIDGET_ID="wid_pro")
    status, _ = _call(middleware, environ)
    assert status.startswith("200")
    assert inner.environ is not None
    assert inner.environ[ENVIRON_KEY].status.value == "anonymous"


# -- the shared behavioural table ---------------------------------------------------


def table_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Reads the raw ``wsgi.input`` and ``QUERY_STRING`` itself and echoes them."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else b""
    payload = echo_payload(body, environ.get("QUERY_STRING", ""), environ.get(ENVIRON_KEY), length)
    out = json.dumps(payload).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


@Request.application  # type: ignore[arg-type]
def table_flask_like(request: Request) -> Response:
    """The same echo through werkzeug's parsers (what Flask's request reads)."""
    body = request.get_data()
    payload = echo_payload(
        body,
        request.query_string.decode("latin-1"),
        request.environ.get(ENVIRON_KEY),
        request.headers.get("Content-Length"),
    )
    return Response(json.dumps(payload), content_type="application/json")


TABLE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def table_flask(mode: str) -> flask.Flask:
    """A Flask app wrapped the documented way (``app.wsgi_app``), echoing every path."""
    app = flask.Flask(__name__)

    @app.route("/", defaults={"rest": ""}, methods=TABLE_METHODS, provide_automatic_options=False)
    @app.route("/<path:rest>", methods=TABLE_METHODS, provide_automatic_options=False)
    def echo(rest: str) -> dict[str, Any]:
        return echo_payload(
            flask.request.get_data(),
            flask.request.query_string.decode("latin-1"),
            flask.request.environ.get(ENVIRON_KEY),
            flask.request.headers.get("Content-Length"),
        )

    app.wsgi_app = AinisaWSGIMiddleware(  # type: ignore[method-assign]
        lint_middleware(app.wsgi_app), resolver=RESOLVER, paths=PATHS, mode=mode
    )
    return app


TABLE_APPS = {
    **{
        (app_name, mode): webtest.TestApp(
            AinisaWSGIMiddleware(lint_middleware(app), resolver=RESOLVER, paths=PATHS, mode=mode),
            lint=True,
        )
        for app_name, app in (("raw", table_echo), ("werkzeug", table_flask_like))
        for mode in ("strip", "enforce")
    },
    **{
        ("flask", mode): webtest.TestApp(table_flask(mode), lint=True)
        for mode in ("strip", "enforce")
    },
}


def send_case(client: webtest.TestApp, case: Case) -> webtest.TestResponse:
    url = case.path + ("?" + case.query if case.query else "")
    request = webtest.TestRequest.blank(url, method=case.method)
    for name, value in case.headers:
        request.headers[name] = value
    if case.content_type is not None:
        request.headers["Content-Type"] = case.content_type
    if case.body:
        request.body = case.body
    return client.do_request(request, status="*", expect_errors=True)


@pytest.mark.parametrize("app_name", ["raw", "werkzeug", "flask"])
@pytest.mark.parametrize("case", ROWS)
def test_contract_table(case: Case, app_name: str) -> None:
    response = send_case(TABLE_APPS[app_name, case.mode], case)
    assert response.content_type == "application/json"
    check(case, response.status_int, response.json)


def test_query_string_decoded_by_a_lax_server_is_still_inspected() -> None:
    middleware, inner = _sized()
    environ = _environ(b"", QUERY_STRING="widget_id=wid_pro&q=\u20ac&user_id=1")
    status, _ = _call(middleware, environ)
    assert status.startswith("200")
    assert inner.environ is not None
    # rewritten bytes go back as latin-1 characters, as PEP 3333 says
    assert inner.environ["QUERY_STRING"] == "widget_id=wid_pro&q=\u00e2\u0082\u00ac"


# -- paths as routers read them, mounts, raw request lines (CONTRACT 3.7) --------

FORGED = "widget_id=wid_pro&user_id=42&email=m%40example.com&user_hash=" + "0" * 64


def _call_environ(app: WSGIApplication, **environ: Any) -> dict[str, Any]:
    builder = EnvironBuilder(method=environ.pop("REQUEST_METHOD", "GET"))
    env = builder.get_environ()
    builder.close()
    env.update(environ)
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    body = b"".join(app(env, start_response))
    return {"status": statuses[0], **json.loads(body)}


def environ_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    payload = {
        "query": environ.get("QUERY_STRING", ""),
        "raw_uri": environ.get("RAW_URI"),
        "request_uri": environ.get("REQUEST_URI"),
        "user": _user(environ.get(ENVIRON_KEY)),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(payload).encode()]


@pytest.mark.parametrize(
    ("path_info", "script_name"),
    [
        ("//chat", ""),
        ("///chat/x", ""),
        ("/x/../chat", ""),
        ("/%2Fchat", ""),  # a server that leaves the encoded slash for the router
        ("//chat", "/api"),  # DispatcherMiddleware hands on "/api//chat" this way
        ("/chat", "/api"),
    ],
)
def test_every_reading_of_a_protected_path_is_intercepted(path_info: str, script_name: str) -> None:
    app = AinisaWSGIMiddleware(environ_echo, resolver=StaticResolver(MAPPING), paths=["/chat"])
    seen = _call_environ(app, PATH_INFO=path_info, SCRIPT_NAME=script_name, QUERY_STRING=FORGED)
    assert seen["query"] == "widget_id=wid_pro"
    assert seen["user"]["status"] == "invalid_hash"


def test_a_prefix_naming_the_mount_covers_the_mounted_app() -> None:
    app = AinisaWSGIMiddleware(environ_echo, resolver=StaticResolver(MAPPING), paths=["/api/chat"])
    seen = _call_environ(app, PATH_INFO="/chat", SCRIPT_NAME="/api", QUERY_STRING=FORGED)
    assert seen["query"] == "widget_id=wid_pro"
    outside = _call_environ(app, PATH_INFO="/chatter", SCRIPT_NAME="/api", QUERY_STRING=FORGED)
    assert outside["query"] == FORGED


@pytest.mark.parametrize("key", ["RAW_URI", "REQUEST_URI"])
def test_raw_request_line_kept_by_the_server_is_rewritten(key: str) -> None:
    app = AinisaWSGIMiddleware(environ_echo, resolver=StaticResolver(MAPPING), paths=["/chat"])
    seen = _call_environ(app, PATH_INFO="/chat", QUERY_STRING=FORGED, **{key: "/chat?" + FORGED})
    assert seen[key.lower()] == "/chat?widget_id=wid_pro"
    verified = f"widget_id=wid_pro&user_id=42&user_hash={HASH_42}"
    seen = _call_environ(
        app, PATH_INFO="/chat", QUERY_STRING=verified, **{key: "//chat?" + verified}
    )
    assert seen[key.lower()] == "//chat?widget_id=wid_pro&user_id=42"
    assert seen["user"]["status"] == "verified"
