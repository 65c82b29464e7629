"""Drivers for the WSGI adapter (werkzeug's parsers) and the Django middleware.

Like :mod:`.harness`, each turns a generated request into an :class:`Outcome`,
with an echo app that reads the request through the host's own parsers:
werkzeug's ``request.args`` / ``request.form`` / ``request.get_json()``, and
Django's ``request.GET`` / ``request.POST`` / ``json.loads(request.body)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.wrappers import Request as WerkzeugRequest

from ainisa_middleware import StaticResolver
from ainisa_middleware.wsgi import AinisaWSGIMiddleware

from .harness import Outcome
from .strategies import BUSINESSES, PATH, Request
from .views import Seen, flat_identity, json_identity

FORM_MEDIA = "application/x-www-form-urlencoded"


# -- WSGI ----------------------------------------------------------------------


def wsgi_environ(req: Request) -> dict[str, Any]:
    """The environ a WSGI server builds for ``req`` (gunicorn's conventions).

    Header names are case-insensitive here (``X-Ainisa-Widget-Id`` counts), a
    repeated header is joined with ``,``, and the last ``Content-Type`` wins. A
    request with a ``Content-Length`` header is framed by it; one without is a
    chunked request the server terminates (``wsgi.input_terminated``).
    """
    env: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": req.root,
        "PATH_INFO": req.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": req.query.decode("latin-1"),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    framed = False
    for raw_name, raw_value in req.headers:
        name = raw_name.upper().decode("latin-1").replace("-", "_")  # ASCII upper case
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            env["CONTENT_TYPE"] = value
        elif name == "CONTENT_LENGTH":
            framed = True
        else:
            key = "HTTP_" + name
            env[key] = f"{env[key]},{value}" if key in env else value
    if framed:
        env["CONTENT_LENGTH"] = str(len(req.body))
    elif req.body:
        env["wsgi.input_terminated"] = True
    return env


def environ_headers(env: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    return sorted(
        (k.encode("latin-1"), str(v).encode("latin-1"))
        for k, v in env.items()
        if k.startswith(("HTTP_", "CONTENT_"))
    )


class _TrackingRequest(WerkzeugRequest):
    """werkzeug's request, keeping every file stream its form parser opens."""

    def __init__(self, environ: dict[str, Any]) -> None:
        super().__init__(environ)
        self.opened: list[Any] = []

    def _get_file_stream(self, *args: Any, **kwargs: Any) -> Any:
        stream = super()._get_file_stream(*args, **kwargs)
        self.opened.append(stream)
        return stream


def make_wsgi_echo() -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _TrackingRequest(environ)
        body = request.get_data(cache=True)
        seen = Seen(
            body,
            environ.get("QUERY_STRING", "").encode("latin-1"),
            environ_headers(environ),
            environ.get("ainisa.user"),
        )
        seen.form_body = request.mimetype == FORM_MEDIA
        # werkzeug decodes the raw query as strict UTF-8 (an error is the app's 500)
        with contextlib.suppress(UnicodeDecodeError):
            seen.parsed["query/werkzeug"] = flat_identity(request.args.items(multi=True))
        if seen.form_body:
            seen.parsed["body/werkzeug-form"] = flat_identity(request.form.items(multi=True))
        if request.mimetype == "multipart/form-data":
            # get_data(cache=True) kept the body: werkzeug parses the form from it.
            try:
                fields = list(request.form.items(multi=True))
                fields += [(k, "<file>") for k in request.files]
                seen.parsed["body/werkzeug-multipart"] = flat_identity(fields)
            finally:
                # werkzeug drops (unclosed) a file it began before a parse error.
                for stream in request.opened:
                    stream.close()
        doc = request.get_json(silent=True)
        if isinstance(doc, dict):
            seen.parsed["body/werkzeug-json"] = json_identity(doc)
        environ["hardening.box"].append(seen)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def make_wsgi(resolver: object | None = None, **options: Any) -> AinisaWSGIMiddleware:
    return AinisaWSGIMiddleware(
        make_wsgi_echo(),
        resolver=resolver if resolver is not None else StaticResolver(BUSINESSES),
        paths=[PATH],
        **options,
    )


def drive_wsgi(app: Callable[..., Iterable[bytes]], env: dict[str, Any]) -> Outcome:
    box: list[Seen] = []
    env["hardening.box"] = box
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda data: None

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert len(started) == 1, started
    status, headers = started[0]
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return Outcome(int(status.split()[0]), raw_headers, body, box[0] if box else None)


# -- Django --------------------------------------------------------------------


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.test_django.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def _django_seen(request: Any, query: bytes) -> Seen:
    from django.core.exceptions import BadRequest

    seen = Seen(
        request.body,
        query,
        environ_headers(request.META),
        getattr(request, "ainisa_user", None),
    )
    seen.form_body = request.content_type == FORM_MEDIA
    seen.parsed["query/django-GET"] = flat_identity(
        (k, v) for k, values in request.GET.lists() for v in values
    )
    # Django parses a form body into request.POST for POST only, and refuses
    # (BadRequest, the app's 400) a form whose charset is not UTF-8.
    if seen.form_body and request.method == "POST":
        with contextlib.suppress(BadRequest):
            seen.parsed["body/django-POST"] = flat_identity(
                (k, v) for k, values in request.POST.lists() for v in values
            )
    if request.content_type == "multipart/form-data" and request.method == "POST":
        with contextlib.suppress(Exception):  # Django's own MultiPartParserError: the app's 400
            fields = [(k, v) for k, values in request.POST.lists() for v in values]
            fields += [(k, "<file>") for k in request.FILES]
            seen.parsed["body/django-multipart"] = flat_identity(fields)
            for stored in request.FILES.values():
                stored.close()
    try:
        doc = json.loads(request.body)
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict):
        seen.parsed["body/django-json"] = json_identity(doc)
    return seen


@contextmanager
def django_middleware(
    mode: str = "strip", resolver: object | None = None, **extra: Any
) -> Iterator[tuple[Any, Any]]:
    """A sync and an async instance of the Django middleware around echo views."""
    setup_django()
    from django.http import HttpResponse
    from django.test import override_settings

    from ainisa_middleware.django import AinisaMiddleware as DjangoMiddleware

    def view(request: Any) -> Any:
        query = request.META.get("QUERY_STRING", "").encode("latin-1")
        request.META["hardening.box"].append(_django_seen(request, query))
        return HttpResponse(b"ok")

    async def aview(request: Any) -> Any:
        query = request.META.get("QUERY_STRING", "").encode("utf-8", "surrogateescape")
        request.scope["hardening.box"].append(_django_seen(request, query))
        return HttpResponse(b"ok")

    settings = {
        "RESOLVER": resolver if resolver is not None else StaticResolver(BUSINESSES),
        "PATHS": [PATH],
        "MODE": mode,
        **extra,
    }
    with override_settings(AINISA=settings):
        yield DjangoMiddleware(view), DjangoMiddleware(aview)


def drive_django(middleware: Any, req: Request) -> Outcome | None:
    """Through the sync middleware as Django's WSGI handler would call it."""
    from django.core.handlers.wsgi import WSGIRequest

    env = wsgi_environ(req)
    env.pop("wsgi.input_terminated", None)  # Django's WSGI handler knows no chunking
    box: list[Seen] = []
    env["hardening.box"] = box
    request = WSGIRequest(env)
    response = middleware(request)
    return _django_outcome(response, box)


async def adrive_django(middleware: Any, req: Request) -> Outcome | None:
    """Through the async middleware with an ``ASGIRequest``; ``None`` if Django refuses first."""
    from django.core.handlers.asgi import ASGIRequest

    from .harness import http_scope

    scope = http_scope(req)
    box: list[Seen] = []
    scope["hardening.box"] = box
    try:
        request = ASGIRequest(scope, io.BytesIO(req.body))
    except UnicodeDecodeError:  # Django's ASGI handler answers 400 before any middleware
        return None
    response = await middleware(request)
    return _django_outcome(response, box)


def _django_outcome(response: Any, box: list[Seen]) -> Outcome:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
    return Outcome(response.status_code, headers, response.content, box[0] if box else None)
