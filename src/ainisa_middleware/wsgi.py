"""WSGI middleware: Flask, Bottle, Pyramid, Falcon, any WSGI app.

Install the extra, ``pip install "ainisa-middleware[wsgi]"``, then wrap the app::

    app.wsgi_app = AinisaWSGIMiddleware(app.wsgi_app, resolver=resolver, paths=["/chat"])

(Flask), or ``application = AinisaWSGIMiddleware(application, ...)`` for any other
WSGI app. The verified visitor is ``environ["ainisa.user"]``; in Flask,
``request.environ["ainisa.user"]``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Final

try:
    from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
    from werkzeug.wrappers import Response
    from werkzeug.wsgi import get_content_length, get_input_stream
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ainisa_middleware.wsgi needs werkzeug: install it with "
        "'pip install \"ainisa-middleware[wsgi]\"'."
    ) from exc

from .config import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_FORM_FIELDS,
    DEFAULT_RESOLVER_TIMEOUT,
    MiddlewareConfig,
)
from .errors import ERRORS, RequestError, error_body
from .models import Business
from .paths import is_cors_preflight
from .resolvers import _checked, resolver_method
from .rewrite import RAW_TARGET_KEYS, rewrite_target
from .verify import Verifier

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "CACHED_ENVIRON_KEYS",
    "CACHED_ENVIRON_PREFIXES",
    "ENVIRON_KEY",
    "AinisaWSGIMiddleware",
]

#: Where the app finds the :class:`~ainisa_middleware.AinisaUser`.
ENVIRON_KEY: Final = "ainisa.user"
#: Environ keys in which WSGI frameworks cache what they parsed from a request.
#: An outer middleware that already parsed the request would otherwise hand the
#: app the original, unverified body or query through them.
CACHED_ENVIRON_KEYS: Final = (
    "werkzeug.request",  # werkzeug Request(environ) stores itself here
    "webob._body_file",  # WebOb: the body stream and its length
    "webob._parsed_query_vars",
    "webob._parsed_post_vars",
    "webob.adhoc_attrs",  # WebOb: attributes set on Request objects (request.json_body ...)
    "webob.is_body_seekable",
    "webob.is_body_readable",
    "bottle.get",  # Bottle: the parsed query, beside bottle.request.query
    "webob._cache_control",  # WebOb: parsed Cache-Control
    "paste.parsed_querystring",  # Paste's parse_querystring / parse_formvars
    "paste.parsed_formvars",
)
#: Key prefixes with the same role: Bottle keeps ``bottle.request.body``,
#: ``bottle.request.json``, ``bottle.request.forms``, ``bottle.request.query`` ...
CACHED_ENVIRON_PREFIXES: Final = ("bottle.request", "webob._parsed_")

_CACHED: Final = frozenset(CACHED_ENVIRON_KEYS)
_PREFIXES: Final = CACHED_ENVIRON_PREFIXES
_WIDGET_HEADER_KEY: Final = "HTTP_X_AINISA_WIDGET_ID"
_READ_CHUNK: Final = 64 * 1024


class _Unreadable(Exception):
    """The client stopped sending before the body it announced was complete."""


class AinisaWSGIMiddleware:
    """Verify Ainisa chat visitors before a WSGI app sees the request.

    On paths under ``paths`` it reads the body (at most ``max_body_size``
    bytes, whatever ``Content-Length`` claims), resolves the widget's business,
    checks the user hash, and calls the app with a copy of the environ whose
    ``wsgi.input``, ``CONTENT_LENGTH`` and ``QUERY_STRING`` hold only verified
    identity, with no framework's cached parse of the original request, and
    with the visitor in ``environ["ainisa.user"]``. Other paths and ``OPTIONS``
    preflights pass through untouched.

    A body the server does not delimit (no ``Content-Length`` and no
    ``wsgi.input_terminated``) is treated as empty and the app gets an empty
    stream, as werkzeug does: the app never reads bytes the middleware did not see.

    The resolver is called in the request's thread. A resolver with only
    ``async aresolve`` runs in a fresh event loop per uncached lookup
    (``asyncio.run``), bounded by ``resolver_timeout``; its clients must not be
    tied to another event loop. Prefer a sync resolver behind a WSGI server.

    :param app: the WSGI app to protect.
    :param resolver: finds the :class:`~ainisa_middleware.Business` for a widget ID.
    :param paths: path prefixes of the chat endpoints, segment-aware.
    :param mode: ``"strip"`` (unverified visitors continue anonymous) or ``"enforce"``
        (user data that fails verification gets 401).
    :param max_body_size: largest body accepted, in bytes; larger gets 413.
    :param max_form_fields: most fields a form body (else 400 ``malformed_body``) or
        query string (else 400 ``malformed_request``) may hold.
    :param resolver_timeout: seconds an async-only resolver may take before 503;
        a sync resolver applies it as its own connect and query timeout.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        resolver: object,
        paths: Sequence[str],
        mode: str = "strip",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        resolver_timeout: float | None = DEFAULT_RESOLVER_TIMEOUT,
        max_form_fields: int = DEFAULT_MAX_FORM_FIELDS,
    ) -> None:
        self.app = app
        self.config = MiddlewareConfig.build(
            resolver=resolver,
            paths=paths,
            mode=mode,
            max_body_size=max_body_size,
            resolver_timeout=resolver_timeout,
            max_form_fields=max_form_fields,
        )
        self.verifier = Verifier(self.config)
        self._peek = resolver_method(resolver, "peek")
        self._lookup = _sync_lookup(resolver, self.config.resolver_timeout)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if not self.config.intercepts(
            _path(environ, "PATH_INFO"),
            _path(environ, "SCRIPT_NAME"),
            preflight=method == "OPTIONS" and _is_preflight(environ, self.config.max_body_size),
        ):
            return self.app(environ, start_response)
        outcome = self._handle(environ)
        if isinstance(outcome, str):
            return _error_response(outcome)(environ, start_response)
        return self.app(outcome, start_response)

    def _handle(self, environ: WSGIEnvironment) -> WSGIEnvironment | str:
        """The environ to call the app with, or the error code to answer."""
        verifier = self.verifier
        try:
            body = _read_body(environ, self.config.max_body_size)
            query = _environ_bytes(environ.get("QUERY_STRING", ""))
            parsed = verifier.inspect(
                content_type=environ.get("CONTENT_TYPE"),
                widget_header=environ.get(_WIDGET_HEADER_KEY),
                query_string=query,
                body=body,
            )
        except RequestError as error:
            verifier.log_error(error.code, error.widget_id)
            return error.code
        except _Unreadable as exc:
            verifier.log_error("malformed_body", None, exc.__cause__)
            return "malformed_body"

        business = self._resolve(parsed.widget_id)
        if not isinstance(business, Business):
            return business
        decision = verifier.decide(parsed, business)
        if decision.error is not None:
            return decision.error

        final = body if decision.body is None else decision.body
        new = _clean_environ(environ)
        new["wsgi.input"] = io.BytesIO(final)
        if final or "CONTENT_LENGTH" in environ:
            new["CONTENT_LENGTH"] = str(len(final))
        if decision.query is not None:
            new["QUERY_STRING"] = decision.query.decode("latin-1")
        for key in RAW_TARGET_KEYS:
            if key in new:
                new[key] = rewrite_target(new[key], new.get("QUERY_STRING", ""))
        new[ENVIRON_KEY] = decision.user
        return new

    def _resolve(self, widget_id: str) -> Business | str:
        """The business, or the error code to answer with (logged here)."""
        result: Business | None
        found = False
        if self._peek is not None:
            found, result = self._peek(widget_id)
        if not found:
            try:
                result = _checked(self._lookup(widget_id), self.config.resolver)
            except Exception as exc:  # a failing or slow store: never fail open
                self.verifier.log_error("resolver_unavailable", widget_id, exc)
                return "resolver_unavailable"
        if result is None:
            self.verifier.log_error("unknown_widget", widget_id)
            return "unknown_widget"
        return result


def _sync_lookup(resolver: object, timeout: float | None) -> Callable[[str], object]:
    resolve = resolver_method(resolver, "resolve")
    if resolve is not None:
        return resolve  # type: ignore[no-any-return]
    aresolve = resolver_method(resolver, "aresolve")  # MiddlewareConfig.build checked it exists

    def run(widget_id: str) -> object:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "an async-only resolver cannot run from a thread with a running event "
                "loop; give AinisaWSGIMiddleware a resolver with a sync resolve()"
            )

        async def bounded() -> object:
            return await asyncio.wait_for(aresolve(widget_id), timeout)

        return asyncio.run(bounded())

    return run


def _environ_bytes(value: str) -> bytes:
    # PEP 3333: environ strings carry the raw bytes as latin-1 characters. A
    # server that decoded them as UTF-8 instead is undone the same way.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def _path(environ: WSGIEnvironment, key: str) -> str:
    # Prefixes match the decoded UTF-8 path, as on the other hosts.
    value: str = environ.get(key, "")
    return _environ_bytes(value).decode("utf-8", "replace") if value else value


def _is_preflight(environ: WSGIEnvironment, limit: int) -> bool:
    """Whether an ``OPTIONS`` request is a genuine preflight (see :func:`is_cors_preflight`).

    A server that ends the input itself (``wsgi.input_terminated``, as HTTP/2
    servers do) may carry a body no header announces: it is read (at most
    ``limit + 1`` bytes, so an oversized one still answers 413) and put back as
    a sized input for the inspection.
    """
    verdict = partial(
        is_cors_preflight,
        "OPTIONS",
        environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
        environ.get("CONTENT_LENGTH"),
        environ.get("HTTP_TRANSFER_ENCODING"),
    )
    if not verdict() or "CONTENT_LENGTH" in environ or "wsgi.input_terminated" not in environ:
        return verdict()
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size:
        environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
        environ["CONTENT_LENGTH"] = str(size)
        del environ["wsgi.input_terminated"]
    return verdict(unannounced_body=size > 0)


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """At most ``limit`` bytes of body; raises ``body_too_large`` past it.

    werkzeug's ``get_input_stream`` gives a stream bounded by ``CONTENT_LENGTH``,
    or, when the server sets ``wsgi.input_terminated`` (chunked requests), the
    raw stream capped at ``limit + 1``; with neither, an empty one.
    """
    declared = get_content_length(environ)
    if declared is not None and declared > limit:
        raise RequestError("body_too_large")
    kept = _body_kept_above(environ, limit)
    if kept is not None:
        return kept
    chunks: list[bytes] = []
    size = 0
    try:
        if declared is not None and "wsgi.input_terminated" not in environ:
            # The common case, a Content-Length within the limit: read exactly that
            # much as werkzeug's LimitedStream would, without its layers per read.
            return _read_exactly(environ["wsgi.input"], declared)
        stream = get_input_stream(environ, safe_fallback=True, max_content_length=limit + 1)
        while size <= limit:
            chunk = stream.read(min(_READ_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except RequestEntityTooLarge:
        raise RequestError("body_too_large") from None
    except ClientDisconnected as exc:
        # A Content-Length that promised more than the client sent.
        raise _Unreadable from exc
    if size > limit:
        raise RequestError("body_too_large")
    return b"".join(chunks)


def _read_exactly(stream: Any, length: int) -> bytes:
    """``length`` bytes of ``stream``; :class:`ClientDisconnected` if it ends or fails first."""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        try:
            chunk = stream.read(min(_READ_CHUNK, remaining))
        except (OSError, ValueError):
            raise ClientDisconnected() from None
        if not chunk:
            raise ClientDisconnected()
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _ConsumedAbove(Exception):
    """A layer above parsed the form from ``wsgi.input`` and kept no raw body."""


def _body_kept_above(environ: WSGIEnvironment, limit: int) -> bytes | None:
    """The body as a framework above the middleware kept it, or ``None``: read ``wsgi.input``.

    A framework that parsed the request first leaves ``wsgi.input`` drained.
    Bottle and WebOb make a seekable copy the new ``wsgi.input``: rewound, it is
    the request. werkzeug's ``Request`` (``environ["werkzeug.request"]``) keeps the
    raw bytes once ``get_data``, ``.data`` or ``.json`` read them, but a form parse
    keeps only the parsed form: that request is refused (``malformed_body``, or
    ``unsupported_media_type`` for multipart as for any multipart body) rather
    than passed on with an empty body. Only a stream the framework read counts: a
    ``wsgi.input`` put in its place since is the request. This reads framework
    internals; ``tests/test_wsgi_hosts.py`` breaks if they change.
    """
    stream: Any = environ.get("wsgi.input")
    buffered: Any = environ.get("bottle.request.body")
    if buffered is not None and buffered is stream:
        # Bottle read the whole body (de-chunked) into this buffer, which has no
        # Content-Length when the request was chunked: read it to its end.
        buffered.seek(0)
        body: bytes = buffered.read(limit + 1)
        if len(body) > limit:
            raise RequestError("body_too_large")
        return body
    if environ.get("webob.is_body_seekable"):
        # WebOb's copy, with CONTENT_LENGTH set to its size, left at its end.
        stream.seek(0)
        return None
    request = environ.get("werkzeug.request")
    state = getattr(request, "__dict__", None)
    if not state or "stream" not in state:
        return None  # nothing above read the input through werkzeug
    used = state["stream"]  # a LimitedStream around the input it read
    if getattr(used, "_stream", used) is not stream:
        return None
    cached = getattr(request, "_cached_data", None)
    if isinstance(cached, bytes):
        if len(cached) > limit:
            raise RequestError("body_too_large")
        return cached
    mimetype = getattr(request, "mimetype", "")
    if "form" in state and mimetype == "multipart/form-data":
        raise RequestError("unsupported_media_type")
    if "form" in state and mimetype == "application/x-www-form-urlencoded":
        raise _Unreadable from _ConsumedAbove()
    return None


def _clean_environ(environ: WSGIEnvironment) -> WSGIEnvironment:
    """A copy of ``environ`` without cached parses and stream framing of the original."""
    new = environ.copy()
    # CGI variables have no dot; only namespaced keys can be caches.
    for key in [k for k in environ if "." in k and (k in _CACHED or k.startswith(_PREFIXES))]:
        del new[key]
    # The new input is a sized BytesIO: no chunked framing, no server termination.
    new.pop("HTTP_TRANSFER_ENCODING", None)
    new.pop("wsgi.input_terminated", None)
    return new


def _error_response(code: str) -> Response:
    return Response(error_body(code), status=ERRORS[code].status, content_type="application/json")
