"""WSGI hosts that parse the request above the middleware: Bottle, WebOb, werkzeug/Flask.

Each framework caches what it parsed in the environ and drains ``wsgi.input``.
A layer built on it runs before ours (as loggers, auth or rate limiters do),
then an app on the same framework reads the request through its own parsers:
it must see only verified identity, and never a cached view of the original.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import bottle
import flask
import pytest
import webob
import webob.dec
import webtest
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request

from ainisa_middleware import AinisaUser
from ainisa_middleware.errors import ERRORS
from ainisa_middleware.wsgi import ENVIRON_KEY, AinisaWSGIMiddleware
from tests.cases import GOOD, PATHS, RESOLVER, ROWS, Case, check, echo_payload
from tests.test_wsgi import send_case

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ADA = {"user_id": "42", "user_hash": GOOD, "firstname": "Ada"}
ADA_SEEN = {"user_id": "42", "firstname": "Ada"}
ECHO_PATHS = ["/chat", "/chat/<rest:path>", "/chatter", "/other"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
JSON_HEADERS = {"Content-Type": "application/json"}


def _status(user: object) -> str | None:
    return str(user.status) if isinstance(user, AinisaUser) else None


def ours(app: WSGIApplication, mode: str = "strip") -> AinisaWSGIMiddleware:
    return AinisaWSGIMiddleware(app, resolver=RESOLVER, paths=PATHS, mode=mode)


# --- the readers: layers above ours that parse the request first ---------------------------

Reader = Callable[["WSGIEnvironment"], Any]


def reader(read: Reader, app: WSGIApplication, seen: list[Any] | None = None) -> WSGIApplication:
    """A WSGI middleware that parses the request with ``read`` before ``app`` runs."""

    def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        original = environ.get("wsgi.input")
        got = read(environ)
        if seen is not None:
            seen.append(got)
        chunks = app(environ, start_response)
        try:
            return list(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()  # PEP 3333: the caller closes it
            # What the framework opened is this layer's to close: the copy of the
            # body Bottle and WebOb spool to a temporary file, werkzeug's uploads.
            if environ.get("wsgi.input") is not original:
                environ["wsgi.input"].close()
            request = environ.get("werkzeug.request")
            if request is not None:
                request.close()

    return middleware


def bottle_body(environ: WSGIEnvironment) -> Any:
    request = bottle.BaseRequest(environ)
    return request.body.read(), dict(request.query)


def bottle_json(environ: WSGIEnvironment) -> Any:
    request = bottle.BaseRequest(environ)
    return request.json, dict(request.query)


def bottle_forms(environ: WSGIEnvironment) -> Any:
    request = bottle.BaseRequest(environ)
    return dict(request.forms), dict(request.query)


def webob_body(environ: WSGIEnvironment) -> Any:
    request = webob.Request(environ)
    return request.body, dict(request.GET)


def webob_json(environ: WSGIEnvironment) -> Any:
    request = webob.Request(environ)
    return request.json, dict(request.GET)


def webob_post(environ: WSGIEnvironment) -> Any:
    request = webob.Request(environ)
    return dict(request.POST), dict(request.GET)


def werkzeug_json(environ: WSGIEnvironment) -> Any:
    request = Request(environ)
    return request.get_json(), request.args.to_dict()


def werkzeug_data(environ: WSGIEnvironment) -> Any:
    request = Request(environ)
    return request.get_data(), request.args.to_dict()


def werkzeug_form(environ: WSGIEnvironment) -> Any:
    request = Request(environ)
    return request.form.to_dict(), request.args.to_dict()


# --- the apps: each reads the request through its framework's parsers ----------------------


def make_bottle() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.route(ECHO_PATHS, method=METHODS)  # type: ignore[misc]
    def echo(rest: str = "") -> dict[str, Any]:
        request = bottle.request
        with request.body as body:  # Bottle spools a large one to a temporary file
            return echo_payload(
                body.read(),
                request.query_string,
                request.environ.get(ENVIRON_KEY),
                request.get_header("Content-Length"),
            )

    @app.post("/chat/views")  # type: ignore[misc]
    def views() -> dict[str, Any]:
        request = bottle.request
        return {
            "json": request.json,
            "forms": dict(request.forms),
            "query": dict(request.query),
            "params": dict(request.params),
            "body": request.body.read().decode(),
            "status": _status(request.environ.get(ENVIRON_KEY)),
        }

    return app


@webob.dec.wsgify  # type: ignore[misc]
def webob_app(request: webob.Request) -> webob.Response:
    payload = {
        "json": request.json if request.content_type == "application/json" else None,
        "post": dict(request.POST),
        "get": dict(request.GET),
        "body": request.body.decode(),
        "status": _status(request.environ.get(ENVIRON_KEY)),
    }
    return webob.Response(json=payload)


def make_flask() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.post("/chat/views")
    def views() -> dict[str, Any]:
        request = flask.request
        return {
            "json": request.get_json(silent=True),
            "form": request.form.to_dict(),
            "args": request.args.to_dict(),
            "data": request.get_data(as_text=True),
            "status": _status(request.environ.get(ENVIRON_KEY)),
        }

    return app


# --- the shared table, with Bottle outside and after a Bottle body reader ------------------


class ServerInput:
    """``wsgi.input`` as a server hands it on: read once, no seek."""

    def __init__(self, raw: Any) -> None:
        self.read = raw.read
        self.readline = raw.readline


def served(app: WSGIApplication) -> WSGIApplication:
    """Undo what WebTest adds that a server does not: a seekable, flagged input."""

    def server(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ.pop("webob.is_body_seekable", None)
        environ["wsgi.input"] = ServerInput(environ["wsgi.input"])
        return app(environ, start_response)

    return server


PLACEMENTS: dict[str, Callable[[str], WSGIApplication]] = {
    "bottle-outside": lambda mode: ours(make_bottle(), mode),
    "bottle-after-a-body-reader": lambda mode: reader(bottle_body, ours(make_bottle(), mode)),
    "webob-after-a-body-reader": lambda mode: reader(webob_body, ours(make_bottle(), mode)),
}
TABLE = {
    (name, mode): webtest.TestApp(served(build(mode)))
    for name, build in PLACEMENTS.items()
    for mode in ("strip", "enforce")
}


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("case", ROWS)
def test_contract_table(case: Case, placement: str) -> None:
    response = send_case(TABLE[placement, case.mode], case)
    assert response.content_type == "application/json"
    check(case, response.status_int, response.json)


# --- Bottle ------------------------------------------------------------------------------


@pytest.mark.parametrize("read", [bottle_body, bottle_json], ids=["body", "json"])
def test_bottle_app_after_a_bottle_reader_sees_only_verified_json(read: Reader) -> None:
    seen: list[Any] = []
    client = webtest.TestApp(reader(read, ours(make_bottle()), seen))
    sent = {"widget_id": "w_pro", "user": ADA, "msg": "hi"}
    response = client.post_json("/chat/views?x=1", sent)
    assert GOOD in json.dumps(seen[0], default=repr)  # the reader's cache held the original
    expected = {"widget_id": "w_pro", "user": ADA_SEEN, "msg": "hi"}
    assert response.json["json"] == json.loads(response.json["body"]) == expected
    assert response.json["query"] == {"x": "1"}
    assert response.json["status"] == "verified"


def test_bottle_app_after_a_bottle_form_reader_sees_only_verified_fields() -> None:
    seen: list[Any] = []
    client = webtest.TestApp(reader(bottle_forms, ours(make_bottle()), seen))
    response = client.post("/chat/views", {"widget_id": "w_pro", **ADA, "msg": "hi"})
    assert seen[0][0]["user_hash"] == GOOD
    expected = {"widget_id": "w_pro", **ADA_SEEN, "msg": "hi"}
    assert response.json["forms"] == response.json["params"] == expected
    assert response.json["status"] == "verified"


def test_bottle_query_parsed_above_is_not_reused() -> None:
    seen: list[Any] = []
    client = webtest.TestApp(reader(bottle_body, ours(make_bottle()), seen))
    response = client.post("/chat/views?widget_id=w_pro&user_id=42&user_hash=bad&x=1")
    assert seen[0][1]["user_hash"] == "bad"
    assert response.json["query"] == response.json["params"] == {"widget_id": "w_pro", "x": "1"}
    assert response.json["status"] == "invalid_hash"


def _chunked(path: str, content_type: str, body: bytes) -> WSGIEnvironment:
    """A chunked request as a server hands it on: no Content-Length, raw framing."""
    environ: WSGIEnvironment = EnvironBuilder(path, method="POST").get_environ()
    environ.update(
        {
            "CONTENT_TYPE": content_type,
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": io.BytesIO(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)),
        }
    )
    environ.pop("CONTENT_LENGTH", None)
    return environ


def _call(app: WSGIApplication, environ: WSGIEnvironment) -> tuple[str, Any]:
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(line)

    chunks = app(environ, start_response)
    try:
        out = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return status[0], json.loads(out)


def test_bottle_chunked_body_read_above_is_inspected_from_its_buffer() -> None:
    # Bottle de-chunks the body itself into a buffer and makes it wsgi.input; the
    # request has no Content-Length, so only that buffer holds the body.
    body = json.dumps({"widget_id": "w_pro", "user": ADA}).encode()
    environ = _chunked("/chat/views", "application/json", body)
    status, payload = _call(reader(bottle_json, ours(make_bottle())), environ)
    assert status.startswith("200"), payload
    assert payload["json"] == {"widget_id": "w_pro", "user": ADA_SEEN}
    assert payload["status"] == "verified"


def test_bottle_chunked_body_buffered_above_over_the_limit_is_413() -> None:
    body = b'{"widget_id": "w_pro", "pad": "' + b"x" * (1 << 20) + b'"}'
    environ = _chunked("/chat/views", "application/json", body)
    status, payload = _call(reader(bottle_body, ours(make_bottle())), environ)
    assert status.startswith("413")
    assert payload["error"] == "body_too_large"


# --- WebOb (Pyramid) -----------------------------------------------------------------------


@pytest.mark.parametrize("read", [webob_body, webob_json, webob_post], ids=["body", "json", "post"])
def test_webob_app_after_a_webob_reader_sees_only_verified_json(read: Reader) -> None:
    seen: list[Any] = []
    client = webtest.TestApp(reader(read, ours(webob_app), seen))
    response = client.post_json("/chat/views?x=1", {"widget_id": "w_pro", "user": ADA})
    expected = {"widget_id": "w_pro", "user": ADA_SEEN}
    assert response.json["json"] == json.loads(response.json["body"]) == expected
    assert response.json["get"] == {"x": "1"}
    assert response.json["status"] == "verified"


def test_webob_app_after_a_webob_form_reader_sees_only_verified_fields() -> None:
    seen: list[Any] = []
    client = webtest.TestApp(reader(webob_post, ours(webob_app), seen))
    form = {"firstname": "Eve", "user_hash": "x", "msg": "hi"}
    response = client.post("/chat?widget_id=w_pro&x=1", form)
    assert seen[0] == (form, {"widget_id": "w_pro", "x": "1"})
    assert response.json["post"] == {"msg": "hi"}
    assert response.json["get"] == {"widget_id": "w_pro", "x": "1"}
    assert response.json["status"] == "missing_user_id"


# --- werkzeug and Flask ----------------------------------------------------------------------


@pytest.mark.parametrize("read", [werkzeug_json, werkzeug_data], ids=["json", "data"])
def test_flask_app_after_a_werkzeug_reader_sees_only_verified_json(read: Reader) -> None:
    seen: list[Any] = []
    client = Client(reader(read, ours(make_flask().wsgi_app), seen))
    response = client.post("/chat/views?x=1", json={"widget_id": "w_pro", "user": ADA})
    assert GOOD in json.dumps(seen[0], default=repr)
    expected = {"widget_id": "w_pro", "user": ADA_SEEN}
    assert response.json is not None
    assert response.json["json"] == json.loads(response.json["data"]) == expected
    assert response.json["args"] == {"x": "1"}
    assert response.json["status"] == "verified"


def test_werkzeug_form_parse_above_keeps_no_body_so_the_request_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client(reader(werkzeug_form, ours(make_flask().wsgi_app)))
    with caplog.at_level(logging.WARNING, logger="ainisa_middleware"):
        response = client.post("/chat/views", data={"widget_id": "w_pro", **ADA})
    assert response.status_code == 400
    assert response.json == {"error": "malformed_body", "detail": ERRORS["malformed_body"].detail}
    assert "_ConsumedAbove" in caplog.text


def test_multipart_parsed_above_is_refused_as_unsupported() -> None:
    client = Client(reader(werkzeug_form, ours(make_flask().wsgi_app)))
    data = {"widget_id": "w_pro", "f": (io.BytesIO(b"x"), "a.txt")}
    response = client.post("/chat/views", data=data)
    assert response.status_code == 415


def test_a_body_put_back_after_a_werkzeug_parse_is_the_one_inspected() -> None:
    # A layer above read the body with werkzeug, then handed on a new input
    # (as a decompressing middleware does): that input is what the app would read.
    def replace(environ: WSGIEnvironment) -> Any:
        Request(environ).get_data()
        replacement = json.dumps({"widget_id": "w_pro", "msg": "inflated"}).encode()
        environ["wsgi.input"] = io.BytesIO(replacement)
        environ["CONTENT_LENGTH"] = str(len(replacement))

    client = Client(reader(replace, ours(make_flask().wsgi_app)))
    response = client.post("/chat/views", json={"widget_id": "w_pro", "msg": "compressed"})
    assert response.json is not None
    assert response.json["json"] == {"widget_id": "w_pro", "msg": "inflated"}


def test_werkzeug_form_access_on_a_json_request_leaves_the_input_readable() -> None:
    # werkzeug parses only form bodies: .form on JSON reads nothing.
    client = Client(reader(werkzeug_form, ours(make_flask().wsgi_app)))
    response = client.post("/chat/views", json={"widget_id": "w_pro", "user": ADA})
    assert response.json is not None
    assert response.json["json"] == {"widget_id": "w_pro", "user": ADA_SEEN}


def test_werkzeug_body_cached_above_over_the_limit_is_413() -> None:
    body = b'{"pad": "' + b"x" * (1 << 20) + b'"}'
    environ = _chunked("/chat/views?widget_id=w_pro", "application/json", body)
    environ["wsgi.input_terminated"] = True
    environ["wsgi.input"] = io.BytesIO(body)  # a server that already de-chunked it
    status, payload = _call(reader(werkzeug_data, ours(make_flask().wsgi_app)), environ)
    assert status.startswith("413")
