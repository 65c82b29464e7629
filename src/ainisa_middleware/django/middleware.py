"""``AinisaMiddleware`` for Django, sync and async.

In settings::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "corsheaders.middleware.CorsMiddleware",  # if you use django-cors-headers
        "ainisa_middleware.django.AinisaMiddleware",
        ...,
        "django.middleware.csrf.CsrfViewMiddleware",
        ...,
    ]
    AINISA = {"RESOLVER": "myproject.ainisa.resolver", "PATHS": ["/chat"]}

Views read the visitor from ``request.ainisa_user``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from io import BytesIO
from typing import IO, Any, Final

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from ainisa_middleware.django.conf import load_config
from ainisa_middleware.errors import RENDERED, RequestError
from ainisa_middleware.models import AinisaUser, Business
from ainisa_middleware.multipart import MultipartSpool
from ainisa_middleware.paths import is_cors_preflight
from ainisa_middleware.request import BodyReader, ParsedRequest, body_kind, declared_length
from ainisa_middleware.resolvers import AsyncCall, Runtime, SyncCall
from ainisa_middleware.rewrite import RAW_TARGET_KEYS, rewrite_target
from ainisa_middleware.verify import Verifier

__all__ = ["REQUEST_ATTRIBUTE", "AinisaMiddleware", "error_response", "get_ainisa_user"]

#: The attribute views read: ``request.ainisa_user``.
REQUEST_ATTRIBUTE: Final = "ainisa_user"
_WIDGET_HEADER: Final = "HTTP_X_AINISA_WIDGET_ID"
_READ_CHUNK: Final = 64 * 1024

_GetResponse = Callable[[HttpRequest], HttpResponseBase]
_AGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


def get_ainisa_user(request: HttpRequest) -> AinisaUser | None:
    """``request.ainisa_user``, typed; ``None`` on paths the middleware does not cover.

    Check ``user.verified`` before trusting ``user.user_id``.
    """
    user = getattr(request, REQUEST_ATTRIBUTE, None)
    return user if isinstance(user, AinisaUser) else None


def error_response(code: str) -> HttpResponse:
    """The contract's JSON error for ``code``, as every host renders it."""
    error = RENDERED[code]
    return HttpResponse(error.body, status=error.status, content_type="application/json")


def _to_thread(fn: SyncCall, arg: str) -> Awaitable[object]:
    # In the request's thread-sensitive worker, where Django's ORM expects to run.
    return sync_to_async(fn)(arg)


def _run_coroutine(fn: AsyncCall, arg: str, timeout: float | None) -> object:
    async def bounded(widget_id: str) -> object:
        return await asyncio.wait_for(fn(widget_id), timeout)

    # asgiref runs it on the outer event loop when there is one (ASGI with a sync
    # middleware chain) or on a loop of its own.
    return async_to_sync(bounded)(arg)


#: The bridges' primitives as Django wants them run.
DJANGO = Runtime(to_thread=_to_thread, deadline=asyncio.timeout, run_coroutine=_run_coroutine)


class AinisaMiddleware:
    """Verify Ainisa chat visitors before a Django view sees the request.

    On paths under ``AINISA["PATHS"]`` it reads the body (at most
    ``MAX_BODY_SIZE`` bytes), resolves the widget's business, checks the user
    hash and replaces what the view reads (``request.body``, ``request.POST``,
    ``request.GET``, ``request.read()``) with a version that holds only verified
    identity; ``request.ainisa_user`` is the :class:`~ainisa_middleware.AinisaUser`.
    Other paths and CORS preflights pass through untouched.

    Runs natively under WSGI and ASGI: in async mode an async resolver
    (``aresolve``) is awaited with ``RESOLVER_TIMEOUT``, a sync one runs in a
    worker thread; answers the resolver holds in memory (``peek``) never leave
    the event loop.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: _GetResponse | _AGetResponse) -> None:
        self.get_response = get_response
        self.config = load_config()
        self.verifier = Verifier(self.config, DJANGO)
        self._matches = self.config.matcher.matches
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        step = self._inspect(request)
        if step is None:
            return self.get_response(request)
        if isinstance(step, HttpResponseBase):
            return step
        parsed, body = step
        business = self.verifier.find(parsed.widget_id)
        try:
            failed = self._apply(request, parsed, body, business)
            return failed if failed is not None else self.get_response(request)
        finally:
            if isinstance(body, MultipartSpool):
                body.close()

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if "multipart/" in request.META.get("CONTENT_TYPE", "").lower():
            # python-multipart parses headers in Python: an upload is read and
            # parsed in a worker thread, off the event loop.
            step = await sync_to_async(self._inspect, thread_sensitive=False)(request)
        else:
            step = self._inspect(request)
        if step is None:
            return await self.get_response(request)  # type: ignore[no-any-return, misc]
        if isinstance(step, HttpResponseBase):
            return step
        parsed, body = step
        try:
            business = await self.verifier.afind(parsed.widget_id)
            failed = self._apply(request, parsed, body, business)
            if failed is not None:
                return failed
            return await self.get_response(request)  # type: ignore[no-any-return, misc]
        finally:
            if isinstance(body, MultipartSpool):
                body.close()

    def _inspect(
        self, request: HttpRequest
    ) -> tuple[ParsedRequest, bytes | MultipartSpool] | HttpResponseBase | None:
        """``None`` to pass through, an error response, or the parsed request and its body
        (a spool for a multipart body)."""
        meta = request.META
        if (request.method == "OPTIONS" and _is_preflight(request)) or not self._matches(
            request.path_info, meta.get("SCRIPT_NAME") or ""
        ):
            return None
        content_type = meta.get("CONTENT_TYPE")
        spool: MultipartSpool | None = None
        if content_type and body_kind(content_type) is None:
            spool = MultipartSpool.for_request(content_type, self.config)
        try:
            if spool is not None:
                self._read_into(request, spool)
                parsed = spool.inspect(
                    self.verifier, meta.get(_WIDGET_HEADER), _query_bytes(request)
                )
                return parsed, spool
            body = _read_body(request, self.config.max_body_size)
            parsed = self.verifier.inspect(
                content_type, meta.get(_WIDGET_HEADER), _query_bytes(request), body
            )
        except RequestError as error:
            self.verifier.log_error(error.code, error.widget_id)
            failed = error_response(error.code)
        except OSError as exc:  # the client went away mid-body (UnreadablePostError)
            self.verifier.log_error("malformed_body", None, exc)
            failed = error_response("malformed_body")
        except BaseException:
            if spool is not None:
                spool.close()
            raise
        else:
            return parsed, body
        if spool is not None:
            spool.close()
        return failed

    @staticmethod
    def _read_into(request: HttpRequest, spool: MultipartSpool) -> None:
        """The multipart body read through ``request.read()`` into ``spool``."""
        declared = declared_length(request.META.get("CONTENT_LENGTH"), spool.max_upload_size)
        while chunk := request.read(min(_READ_CHUNK, spool.wanted)):
            spool.feed(chunk)
        if declared is not None and spool.size < declared:
            raise RequestError("malformed_body")  # the client stopped before its body ended
        spool.finish()

    def _apply(
        self,
        request: HttpRequest,
        parsed: ParsedRequest,
        body: bytes | MultipartSpool,
        business: Business | str,
    ) -> HttpResponseBase | None:
        """Put the decision on the request; an error response if the visitor is refused."""
        if isinstance(business, str):
            return error_response(business)
        decision = self.verifier.decide(parsed, business)
        if decision.error is not None:
            return error_response(decision.error)
        query = None
        if decision.query is not None:
            query = decision.query.decode(_query_encoding(request))
        if isinstance(body, MultipartSpool):
            stream, size = body.body(decision)
            replace_request_stream(request, stream, size, query)
        else:
            replace_request_data(request, body if decision.body is None else decision.body, query)
        setattr(request, REQUEST_ATTRIBUTE, decision.user)
        return None


def replace_request_data(request: HttpRequest, body: bytes, query_string: str | None) -> None:
    """Make every public way of reading the request see ``body`` and ``query_string``.

    This is the one place that touches Django internals (``tests/test_django/
    test_internals.py`` breaks if Django changes them): ``HttpRequest.body``
    returns ``_body`` once set; ``read()`` and the multipart parser read
    ``_stream``; ``request.POST``/``FILES`` are cached in ``_post``/``_files``
    and rebuilt from ``_body`` when absent; ``request.GET`` is a
    ``cached_property`` stored in the instance ``__dict__`` and rebuilt from
    ``META["QUERY_STRING"]``. Whatever read the request before us (a middleware
    above this one), the view sees only what the middleware verified.
    """
    # Django decodes request.GET (and would decode request.POST) with the charset of
    # Content-Type, even for a bodiless GET: "charset=utf-7" turns "user+AF8-id=" into
    # "user_id=". The middleware read UTF-8, so the view reads UTF-8. Set as the
    # ``encoding`` setter does, minus its hasattr(request, "GET"), which would parse
    # the query string only to throw it away (the caches are dropped just below).
    replace_request_stream(request, BytesIO(body), len(body), query_string)
    request.__dict__["_body"] = body
    if "wsgi.input" in request.META:  # WSGI: the environ is META; raw readers get the new body
        request.META["wsgi.input"] = BytesIO(body)


def replace_request_stream(
    request: HttpRequest, stream: IO[bytes], size: int, query_string: str | None
) -> None:
    """As :func:`replace_request_data`, for a body of ``size`` bytes read from ``stream``.

    ``request.body`` is left unread (a multipart body may be large): Django's
    ``body``, ``read()`` and its multipart parser all read ``_stream`` then.
    """
    state = request.__dict__
    state["_encoding"] = "utf-8"
    state["_stream"] = stream
    state["_read_started"] = False
    for cached in ("_body", "_post", "_files", "GET"):
        state.pop(cached, None)
    meta = request.META
    meta["CONTENT_LENGTH"] = str(size)
    meta.pop("HTTP_TRANSFER_ENCODING", None)
    if "wsgi.input" in meta:  # WSGI: the environ is META; raw readers read the same stream
        meta["wsgi.input"] = stream
        meta.pop("wsgi.input_terminated", None)
    if query_string is not None:
        meta["QUERY_STRING"] = query_string
    # WSGI servers keep the request line as sent (RAW_URI, REQUEST_URI), fragment
    # included, and debug pages and error e-mails print META whole.
    for key in RAW_TARGET_KEYS:
        if key in meta:
            meta[key] = rewrite_target(meta[key], meta.get("QUERY_STRING", ""))


def _is_preflight(request: HttpRequest) -> bool:
    """Whether an ``OPTIONS`` request is a genuine preflight (see :func:`is_cors_preflight`).

    Under ASGI, Django reads the whole body before the request exists, whether
    or not a header announced it (HTTP/2 needs none): a preflight's must be empty.
    """
    meta = request.META
    verdict = partial(
        is_cors_preflight,
        "OPTIONS",
        meta.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
        meta.get("CONTENT_LENGTH"),
        meta.get("HTTP_TRANSFER_ENCODING"),
    )
    if not verdict() or isinstance(request, WSGIRequest):
        return verdict()  # WSGI: Django reads no body that CONTENT_LENGTH does not announce
    return verdict(unannounced_body=bool(request.body))


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """At most ``limit`` bytes of body through ``request.read()``; 413 past it."""
    declared_length(request.META.get("CONTENT_LENGTH"), limit)
    reader = BodyReader(limit)
    while True:  # ASGI: a chunked body has no Content-Length to check first
        chunk = request.read(min(_READ_CHUNK, reader.wanted))
        if not chunk:
            return reader.body() if reader.size else b""
        reader.add(chunk)


def _query_encoding(request: HttpRequest) -> str:
    # WSGIRequest keeps the WSGI convention (bytes as latin-1 characters, PEP 3333);
    # ASGIRequest decodes scope["query_string"] as UTF-8.
    return "latin-1" if isinstance(request, WSGIRequest) else "utf-8"


def _query_bytes(request: HttpRequest) -> bytes:
    query: str = request.META.get("QUERY_STRING", "")
    return query.encode(_query_encoding(request), "surrogateescape")
