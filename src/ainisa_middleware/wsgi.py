"""WSGI middleware: Flask, Bottle, Pyramid, Falcon, any WSGI app.

Install the extra, ``pip install "ainisa-middleware[wsgi]"``, then wrap the app::

    app.wsgi_app = AinisaWSGIMiddleware(app.wsgi_app, resolver=resolver, paths=["/chat"])

(Flask), or ``application = AinisaWSGIMiddleware(application, ...)`` for any other
WSGI app. The verified visitor is ``environ["ainisa.user"]``; in Flask,
``request.environ["ainisa.user"]``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from contextlib import suppress
from functools import partial
from typing import IO, TYPE_CHECKING, Any, Final

try:
    from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
    from werkzeug.wsgi import ClosingIterator, get_input_stream
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ainisa_middleware.wsgi needs werkzeug: install it with "
        "'pip install \"ainisa-middleware[wsgi]\"'."
    ) from exc

from ._wsgi_frameworks import (
    CACHED_ENVIRON_KEYS,
    CACHED_ENVIRON_PREFIXES,
    READ_ABOVE,
    Unreadable,
    body_kept_above,
    clean_environ,
)
from .config import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_FORM_FIELDS,
    DEFAULT_MAX_UPLOAD_SIZE,
    DEFAULT_RESOLVER_TIMEOUT,
    MiddlewareConfig,
    Mode,
)
from .decisions import DecisionHook
from .errors import RENDERED, RequestError
from .multipart import MultipartSpool
from .paths import is_cors_preflight
from .request import BodyReader, body_kind, declared_length
from .resolvers import AnyResolver
from .rewrite import RAW_TARGET_KEYS, rewrite_target
from .verify import Decision, Verifier

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
_WIDGET_HEADER_KEY: Final = "HTTP_X_AINISA_WIDGET_ID"
_READ_CHUNK: Final = 64 * 1024
#: Keys whose presence says a framework above may have read the body.
_READ_ABOVE: Final = frozenset(
    {"bottle.request.body", "webob.is_body_seekable", "werkzeug.request"}
)


class AinisaWSGIMiddleware:
    """Verify Ainisa chat visitors before a WSGI app sees the request.

    On paths under ``paths`` it reads the body (at most ``max_body_size``
    bytes, whatever ``Content-Length`` claims), resolves the widget's business,
    checks the user hash, and calls the app with a copy of the environ whose
    ``wsgi.input``, ``CONTENT_LENGTH`` and ``QUERY_STRING`` hold only verified
    identity, with no framework's cached parse of the original request, and
    with the visitor in ``environ["ainisa.user"]``. Other paths and CORS
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
    :param resolver_timeout: seconds an async-only resolver may take before 503;
        a sync resolver applies it as its own connect and query timeout.
    :param max_form_fields: most fields a form body (else 400 ``malformed_body``) or
        query string (else 400 ``malformed_request``) may hold.
    :param max_upload_size: largest ``multipart/form-data`` body, file parts included;
        larger gets 413 (``max_body_size`` bounds its other parts).
    :param on_decision: called with a :class:`~ainisa_middleware.decisions.DecisionRecord`
        for every intercepted request (metrics, traces); see :mod:`ainisa_middleware.decisions`.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        resolver: AnyResolver,
        paths: Sequence[str],
        mode: Mode = "strip",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        resolver_timeout: float | None = DEFAULT_RESOLVER_TIMEOUT,
        max_form_fields: int = DEFAULT_MAX_FORM_FIELDS,
        max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE,
        on_decision: DecisionHook | None = None,
    ) -> None:
        self.app = app
        self.config = MiddlewareConfig.build(
            resolver=resolver,
            paths=paths,
            mode=mode,
            max_body_size=max_body_size,
            resolver_timeout=resolver_timeout,
            max_form_fields=max_form_fields,
            max_upload_size=max_upload_size,
            on_decision=on_decision,
        )
        self.verifier = Verifier(self.config)
        self._matches = self.config.matcher.matches
        self._limit = self.config.max_body_size

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Prefixes match the decoded UTF-8 path, as on the other hosts.
        path: str = environ.get("PATH_INFO", "")
        if not path.isascii():
            path = _environ_bytes(path).decode("utf-8", "replace")
        root: str = environ.get("SCRIPT_NAME", "")
        if not root.isascii():
            root = _environ_bytes(root).decode("utf-8", "replace")
        if (
            environ.get("REQUEST_METHOD") == "OPTIONS" and _is_preflight(environ, self._limit)
        ) or not self._matches(path, root):
            return self.app(environ, start_response)
        # From here on the request is the middleware's: translate in, ask the
        # engine, translate out (one function: this runs on every chat request).
        verifier = self.verifier
        limit = self._limit
        content_type: str | None = environ.get("CONTENT_TYPE")
        if content_type and body_kind(content_type) is None:
            spool = MultipartSpool.for_request(content_type, self.config)
            if spool is not None:
                return self._multipart(environ, start_response, spool)
        try:
            length: str = environ.get("CONTENT_LENGTH", "")
            size = int(length) if length.isdigit() else -1
            if (
                0 <= size <= limit
                and "wsgi.input_terminated" not in environ
                and environ.keys().isdisjoint(READ_ABOVE)
            ):
                # The common case, a Content-Length within the limit and no framework
                # above: read exactly that much, as werkzeug's LimitedStream would.
                body = environ["wsgi.input"].read(size) if size else b""
                if len(body) != size:  # a short read: read on, or find the body cut short
                    body += _read_exactly(environ["wsgi.input"], size - len(body))
            else:
                body = _read_body(environ, limit)
            query: str = environ.get("QUERY_STRING", "")
            parsed = verifier.inspect(
                content_type,
                environ.get(_WIDGET_HEADER_KEY),
                _environ_bytes(query) if query else b"",
                body,
            )
        except RequestError as error:
            verifier.log_error(error.code, error.widget_id)
            return _refuse(error.code, start_response)
        except Unreadable as exc:
            verifier.log_error("malformed_body", None, exc.__cause__)
            return _refuse("malformed_body", start_response)

        business = verifier.find(parsed.widget_id)
        if isinstance(business, str):
            return _refuse(business, start_response)
        decision = verifier.decide(parsed, business)
        if decision.error is not None:
            return _refuse(decision.error, start_response)

        final = body if decision.body is None else decision.body
        new = _app_environ(environ, decision, io.BytesIO(final), len(final))
        if not final and "CONTENT_LENGTH" not in environ:
            del new["CONTENT_LENGTH"]
        return self.app(new, start_response)

    def _multipart(
        self, environ: WSGIEnvironment, start_response: StartResponse, spool: MultipartSpool
    ) -> Iterable[bytes]:
        """A ``multipart/form-data`` request: read into a spool, judged, handed on from it."""
        verifier = self.verifier
        handed_on = False
        try:
            try:
                _read_into(environ, spool)
                spool.finish()
                query: str = environ.get("QUERY_STRING", "")
                parsed = spool.inspect(
                    verifier,
                    environ.get(_WIDGET_HEADER_KEY),
                    _environ_bytes(query) if query else b"",
                )
            except RequestError as error:
                verifier.log_error(error.code, error.widget_id)
                return _refuse(error.code, start_response)
            except Unreadable as exc:
                verifier.log_error("malformed_body", None, exc.__cause__)
                return _refuse("malformed_body", start_response)
            business = verifier.find(parsed.widget_id)
            if isinstance(business, str):
                return _refuse(business, start_response)
            decision = verifier.decide(parsed, business)
            if decision.error is not None:
                return _refuse(decision.error, start_response)
            stream, size = spool.body(decision)
            result = self.app(_app_environ(environ, decision, stream, size), start_response)
            handed_on = True
            # The spool lives until the server closes the response, which may stream.
            return ClosingIterator(result, spool.close)
        finally:
            if not handed_on:
                spool.close()


def _app_environ(
    environ: WSGIEnvironment, decision: Decision, stream: IO[bytes], size: int
) -> WSGIEnvironment:
    """The environ the app gets: the new body and query, no cached parse, the visitor."""
    new = clean_environ(environ)
    new["wsgi.input"] = stream
    new["CONTENT_LENGTH"] = str(size)
    if decision.query is not None:
        new["QUERY_STRING"] = decision.query.decode("latin-1")
    if "RAW_URI" in new or "REQUEST_URI" in new:
        for key in RAW_TARGET_KEYS:
            if key in new:
                new[key] = rewrite_target(new[key], new.get("QUERY_STRING", ""))
    new[ENVIRON_KEY] = decision.user
    return new


def _read_into(environ: WSGIEnvironment, spool: MultipartSpool) -> None:
    """Feed the body to ``spool`` chunk by chunk, framed as :func:`_read_body` frames it."""
    limit = spool.max_upload_size
    declared = declared_length(environ.get("CONTENT_LENGTH"), limit)
    if not environ.keys().isdisjoint(READ_ABOVE):
        kept = body_kept_above(environ, limit)
        if kept is not None:
            spool.feed(kept)
            return
    if "wsgi.input_terminated" in environ:
        try:
            stream = get_input_stream(environ, max_content_length=limit + 1)
            while chunk := stream.read(min(_READ_CHUNK, spool.wanted)):
                spool.feed(chunk)
        except RequestEntityTooLarge:
            raise RequestError("body_too_large") from None
        except ClientDisconnected as exc:
            raise Unreadable from exc
        return
    remaining = declared or 0
    stream = environ["wsgi.input"]
    while remaining > 0:
        try:
            chunk = stream.read(min(_READ_CHUNK, remaining))
        except (OSError, ValueError) as exc:
            raise Unreadable from exc
        if not chunk:
            raise Unreadable from ClientDisconnected()
        remaining -= len(chunk)
        spool.feed(chunk)


def _refuse(code: str, start_response: StartResponse) -> list[bytes]:
    error = RENDERED[code]
    start_response(error.status_line, list(error.headers))
    return [error.body]


def _environ_bytes(value: str) -> bytes:
    # PEP 3333: environ strings carry the raw bytes as latin-1 characters. A
    # server that decoded them as UTF-8 instead is undone the same way.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


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
    reader = BodyReader(limit)
    with suppress(RequestError):  # over the limit: the inspection reads on and answers 413
        _read_to_end(environ["wsgi.input"], reader)
    if reader.size:
        environ["wsgi.input"] = io.BytesIO(reader.body())
        environ["CONTENT_LENGTH"] = str(reader.size)
        del environ["wsgi.input_terminated"]
    return verdict(unannounced_body=reader.size > 0)


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """At most ``limit`` bytes of body; raises ``body_too_large`` past it.

    With a ``Content-Length`` the body is read exactly, as werkzeug's
    ``LimitedStream`` would; a server that terminates the input itself (chunked
    requests, ``wsgi.input_terminated``) is read to its end, bounded; with
    neither, the body is empty, as werkzeug's ``get_input_stream`` has it.
    """
    declared = declared_length(environ.get("CONTENT_LENGTH"), limit)
    if not environ.keys().isdisjoint(READ_ABOVE):
        kept = body_kept_above(environ, limit)
        if kept is not None:
            return kept
    terminated = "wsgi.input_terminated" in environ
    if declared is not None and not terminated:
        # The common case, a Content-Length within the limit.
        return _read_exactly(environ["wsgi.input"], declared)
    if not terminated:
        return b""
    reader = BodyReader(limit)
    try:
        _read_to_end(get_input_stream(environ, max_content_length=limit + 1), reader)
    except RequestEntityTooLarge:
        raise RequestError("body_too_large") from None
    except ClientDisconnected as exc:
        raise Unreadable from exc
    return reader.body() if reader.size else b""


def _read_to_end(stream: Any, reader: BodyReader) -> None:
    while True:
        chunk = stream.read(min(_READ_CHUNK, reader.wanted))
        if not chunk:
            return
        reader.add(chunk)


def _read_exactly(stream: Any, length: int) -> bytes:
    """``length`` bytes of ``stream``; :class:`Unreadable` if it ends or fails first.

    A ``Content-Length`` that promised more than the client sent is a body that
    cannot be inspected whole (``400 malformed_body``).
    """
    if not length:
        return b""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        try:
            chunk = stream.read(min(_READ_CHUNK, remaining))
        except (OSError, ValueError) as exc:
            raise Unreadable from exc
        if not chunk:
            raise Unreadable from ClientDisconnected()
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
