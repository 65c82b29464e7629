"""Pure ASGI middleware: Starlette, FastAPI, Litestar, Quart, any ASGI app.

Install the extra, ``pip install "ainisa-middleware[starlette]"``, then::

    app.add_middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"])

or wrap any ASGI app: ``app = AinisaMiddleware(app, resolver=resolver, paths=["/chat"])``.
With Starlette's ``CORSMiddleware``, call ``add_middleware`` for this one first and
for CORS after it: the last one added is the outermost, so preflights never reach
this middleware and its error answers still carry CORS headers.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

try:
    import anyio
    import anyio.lowlevel
    import anyio.to_thread
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ainisa_middleware.asgi needs anyio: install it with "
        "'pip install \"ainisa-middleware[starlette]\"'."
    ) from exc

from ._types import ASGIApp, Message, Receive, Scope, Send
from .config import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_FORM_FIELDS,
    DEFAULT_RESOLVER_TIMEOUT,
    MiddlewareConfig,
)
from .errors import RequestError, error_body
from .models import Business
from .paths import is_cors_preflight
from .request import OFF_LOOP_BODY_SIZE, WIDGET_ID_HEADER, ParsedRequest
from .resolvers import _checked, resolver_method
from .rewrite import rewrite_target
from .verify import Decision, Verifier

__all__ = ["STATE_KEY", "AinisaIdentityError", "AinisaMiddleware"]

#: Key in ``scope["state"]``; Starlette exposes it as ``request.state.ainisa_user``.
STATE_KEY = "ainisa_user"
#: Parsed-request caches older hosts kept in the scope itself (Starlite 1 kept
#: its body and parses there, early Litestar 2 its headers): dropped from the
#: app's copy of the scope.
CACHED_SCOPE_KEYS = ("_body", "_json", "_form", "_msgpack", "_headers")
#: Litestar 2 keeps one object per connection under this key of ``scope["state"]``
#: (``litestar.utils.scope.state.ScopeState``): its parsed body, JSON, form,
#: msgpack, query, headers and URLs, beside per-request state that is not a view
#: of the request. Early 2.x releases kept a dict under the second key.
LITESTAR_STATE_KEY = "_ls_connection_state"
LITESTAR_LEGACY_STATE_KEY = "__litestar__"
#: Fields of Litestar's connection state that are not views of the request. They
#: are kept: outer layers and the app share them (the exception middleware reads
#: ``response_started`` and ``exception_handlers``; sessions, CSRF tokens, flash
#: messages and the response cache flags live there). Every other field, those a
#: future release may add included, is reset to its default, so nothing parsed
#: from the original request survives.
LITESTAR_KEPT_FIELDS = frozenset(
    {
        "_compat_ns",
        "csrf_token",
        "dependency_cache",
        "do_cache",
        "exception_handlers",
        "flash_messages",
        "http_response_body",
        "http_response_start",
        "is_cached",
        "log_context",
        "response_compressed",
        "response_started",
        "session_id",
    }
)
#: Views of the request in the early 2.x dict: removed (a missing key is unparsed).
LITESTAR_LEGACY_VIEWS = (
    "accept",
    "base_url",
    "body",
    "content_type",
    "cookies",
    "form",
    "json",
    "msgpack",
    "parsed_query",
    "url",
)

#: After a large body's parse in a worker thread, the next large body waits this
#: many times that parse's CPU time (see :func:`_off_loop`).
OFF_LOOP_PAUSE = 2.0

_WIDGET_HEADER = WIDGET_ID_HEADER.encode("latin-1")
_JSON_HEADERS = [(b"content-type", b"application/json")]
_UNKNOWN: tuple[bool, Business | None] = (False, None)


async def send_error(send: Send, code: str) -> None:
    """Answer with the contract's JSON error for ``code``."""
    body = error_body(code)
    status = RequestError(code).status
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode("latin-1"))],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Disconnected(Exception):
    pass


_T = TypeVar("_T")
# One per event loop (anyio's own thread limiter is kept the same way), shared
# by every middleware instance on it: the GIL they compete for is the process's.
_OFF_LOOP_LIMITER: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "ainisa_off_loop_limiter"
)


def _off_loop_limiter() -> anyio.CapacityLimiter:
    try:
        return _OFF_LOOP_LIMITER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(1)
        _OFF_LOOP_LIMITER.set(limiter)
        return limiter


async def _off_loop(func: Callable[[], _T]) -> _T:
    """``func()`` in a worker thread, one at a time, then a pause before the next.

    A thread keeps a large parse off the event loop, but not off the GIL: the C
    scanner and encoder hold it for milliseconds at a time, and the loop must
    win it back for every step of every other request. Unbounded, four clients
    posting hostile bodies keep the GIL busy with parses all the time and an
    unrelated request waits behind one after another. So large bodies go one at
    a time, and after each the next waits :data:`OFF_LOOP_PAUSE` times the CPU
    time the last one took (raised or not): large bodies get at most a third of
    the time, the loop and every other request the rest. A benign 1 MiB chat message costs a few
    milliseconds, so only bodies built to be slow feel the pause.
    """
    spent = 0.0

    def timed() -> _T:
        nonlocal spent
        started = time.perf_counter()
        try:
            return func()
        finally:
            spent = time.perf_counter() - started

    async with _off_loop_limiter():
        try:
            return await anyio.to_thread.run_sync(timed)
        finally:
            await anyio.sleep(spent * OFF_LOOP_PAUSE)


def _decide_and_release(verifier: Verifier, parsed: ParsedRequest, business: Business) -> Decision:
    """``verifier.decide``, then the parsed body dropped here in the worker thread.

    Freeing a tree of a few hundred thousand values takes milliseconds: left to
    the end of the request, it would happen on the event loop.
    """
    try:
        return verifier.decide(parsed, business)
    finally:
        parsed.json_body = None
        parsed.form = None


class AinisaIdentityError(Exception):
    """Raised by an endpoint (see :func:`ainisa_middleware.fastapi.require_verified_user`)
    to refuse a visitor; the middleware answers it with the contract's JSON error."""

    def __init__(self, code: str = "identity_required") -> None:
        super().__init__(code)
        self.code = code


class AinisaMiddleware:
    """Verify Ainisa chat visitors before an ASGI app sees the request.

    On paths under ``paths`` it reads the body (at most ``max_body_size``
    bytes), resolves the widget's business, checks the user hash, removes every
    identity field it could not verify from the body and query string, and
    puts an :class:`~ainisa_middleware.AinisaUser` in ``scope["state"]["ainisa_user"]``.
    Other paths and ``OPTIONS`` preflights pass through untouched.

    Security: the app must read identity from ``request.state.ainisa_user``;
    names and email beside a verified ``user_id`` are not signed.

    :param app: the ASGI app to protect.
    :param resolver: finds the :class:`~ainisa_middleware.Business` for a widget ID.
    :param paths: path prefixes of the chat endpoints, segment-aware.
    :param mode: ``"strip"`` (unverified visitors continue anonymous) or ``"enforce"``
        (user data that fails verification gets 401).
    :param max_body_size: largest body accepted, in bytes; larger gets 413.
    :param max_form_fields: most fields a form body (else 400 ``malformed_body``) or
        query string (else 400 ``malformed_request``) may hold.
    :param resolver_timeout: seconds to wait for the resolver before 503; ``None`` waits.
    """

    def __init__(
        self,
        app: ASGIApp,
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
        self._lookup = self._make_lookup(resolver)

    def _make_lookup(self, resolver: object) -> Callable[[str], Awaitable[object]]:
        aresolve = resolver_method(resolver, "aresolve")
        if aresolve is not None and inspect.iscoroutinefunction(aresolve):
            return aresolve  # type: ignore[no-any-return]
        resolve = resolver_method(resolver, "resolve")
        if resolve is None:
            # Only an aresolve that is not ``async def`` (a partial, a callable
            # object): await what it returns when that is awaitable.
            async def awaited(widget_id: str) -> object:
                result = aresolve(widget_id)
                if inspect.isawaitable(result):
                    result = await result
                return result

            return awaited

        async def in_thread(widget_id: str) -> object:
            # A sync resolver may block on a database: never on the event loop.
            # abandon_on_cancel lets a timeout answer 503 while the thread finishes.
            return await anyio.to_thread.run_sync(resolve, widget_id, abandon_on_cancel=True)

        return in_thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        preflight = False
        if scope["method"] == "OPTIONS":
            preflight, receive = await _preflight(scope, receive)
        try:
            if self.config.intercepts(
                scope["path"], scope.get("root_path", ""), preflight=preflight
            ):
                await self._handle(scope, receive, tracking_send)
            else:
                await self.app(scope, receive, tracking_send)
        except AinisaIdentityError as exc:
            # An endpoint refused the visitor (require_verified_user): answer in
            # the contract's shape, unless the app already began its response.
            if started:
                raise
            await send_error(send, exc.code)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        verifier = self.verifier
        content_type, widget_header, declared = _headers(scope["headers"])
        limit = self.config.max_body_size
        if declared is not None and declared > limit:
            verifier.log_error("body_too_large")
            await send_error(send, "body_too_large")
            return
        # Litestar middleware above this one may have read the request already:
        # the receive channel is then drained, and its cached body is the request.
        state = scope.get("state")
        cache = _litestar_cache(state) if state else None
        try:
            cached = None if cache is None else _cached_body(cache, content_type, declared)
            if cached is not None:
                body = _limited(cached, limit)
            else:
                message = await receive()
                if message.get("type") == "http.request" and not message.get("more_body", False):
                    # The whole body in one message, as servers send small ones: no copy.
                    body = message.get("body", b"")
                    if len(body) > limit:
                        raise RequestError("body_too_large")
                else:
                    body = await _read_body(receive, limit, message)
        except _Disconnected:
            return  # nobody is listening: the app is never called
        except RequestError as error:
            verifier.log_error(error.code)
            await send_error(send, error.code)
            return
        try:
            if len(body) > OFF_LOOP_BODY_SIZE:
                # Large enough to hold the loop noticeably: parse in a worker thread.
                parsed = await _off_loop(
                    partial(
                        verifier.inspect,
                        content_type=content_type,
                        widget_header=widget_header,
                        query_string=scope.get("query_string", b""),
                        body=body,
                    )
                )
            else:
                parsed = verifier.inspect(
                    content_type=content_type,
                    widget_header=widget_header,
                    query_string=scope.get("query_string", b""),
                    body=body,
                )
        except RequestError as error:
            verifier.log_error(error.code, error.widget_id)
            await send_error(send, error.code)
            return

        # A cache hit is answered here, without a coroutine or a thread.
        found, business = self._peek(parsed.widget_id) if self._peek is not None else _UNKNOWN
        if not found or business is None:
            resolved = await self._resolve(parsed.widget_id, found)
            if not isinstance(resolved, Business):
                await send_error(send, resolved)
                return
            business = resolved

        if len(body) > OFF_LOOP_BODY_SIZE:  # re-serialising costs about as much
            decision = await _off_loop(partial(_decide_and_release, verifier, parsed, business))
        else:
            decision = verifier.decide(parsed, business)
        if decision.error is not None:
            await send_error(send, decision.error)
            return

        scope = _rewritten_scope(scope, decision.query, decision.body)
        if cache is not None:
            # After the rewrite, so no cached view of the original outlives it.
            _reset_litestar_cache(scope["state"], cache, cached, decision.body)
        scope["state"][STATE_KEY] = decision.user
        await self.app(
            scope, _replay(body if decision.body is None else decision.body, receive), send
        )

    async def _resolve(self, widget_id: str, found: bool) -> Business | str:
        """The business, or the error code to answer with (logged here).

        ``found``: :meth:`peek` already knows the widget is unknown.
        """
        result: Business | None = None
        if not found:
            try:
                with anyio.fail_after(self.config.resolver_timeout):
                    result = _checked(await self._lookup(widget_id), self.config.resolver)
            except Exception as exc:  # a failing or slow store: never fail open
                self.verifier.log_error("resolver_unavailable", widget_id, exc)
                return "resolver_unavailable"
        if result is None:
            self.verifier.log_error("unknown_widget", widget_id)
            return "unknown_widget"
        return result


async def _preflight(scope: Scope, receive: Receive) -> tuple[bool, Receive]:
    """Whether an ``OPTIONS`` request is a genuine preflight, and the receive to go on with.

    Over HTTP/2 and HTTP/3 a body needs no header, so a request whose headers
    say preflight is one only if its first message holds no body; that message
    is then handed on first.
    """
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _PREFLIGHT_HEADERS:
            found[name] = value.decode("latin-1")
    verdict = partial(
        is_cors_preflight,
        "OPTIONS",
        found.get(b"access-control-request-method"),
        found.get(b"content-length"),
        found.get(b"transfer-encoding"),
    )
    if not verdict() or scope.get("http_version", "1.1") in ("1.0", "1.1"):
        return verdict(), receive
    first = await receive()
    unannounced = first.get("type") == "http.request" and bool(
        first.get("body") or first.get("more_body")
    )
    return verdict(unannounced_body=unannounced), _prepend(first, receive)


def _prepend(message: Message, receive: Receive) -> Receive:
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return message
        return await receive()

    return replay


_PREFLIGHT_HEADERS = frozenset(
    {b"access-control-request-method", b"content-length", b"transfer-encoding"}
)


def _headers(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str | None, str | None, int | None]:
    content_types: list[str] = []
    widget: list[str] = []
    declared: int | None = None
    for name, value in headers:
        if name == b"content-type":
            content_types.append(value.decode("latin-1"))
        elif name == _WIDGET_HEADER:
            widget.append(value.decode("latin-1"))
        elif name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None
    # Repeated headers join with ", " as WSGI servers do. No valid widget ID
    # contains that, and no media type we inspect does either: a request whose
    # frameworks could disagree on its content type is refused (415), not guessed.
    return (
        ", ".join(content_types) if content_types else None,
        ", ".join(widget) if widget else None,
        declared,
    )


async def _read_body(receive: Receive, limit: int, message: Message) -> bytes:
    """The body whose first message is ``message``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        kind = message.get("type")
        if kind == "http.disconnect":
            raise _Disconnected
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise RequestError("body_too_large")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        message = await receive()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _rewritten_scope(scope: Scope, query: bytes | None, body: bytes | None) -> Scope:
    new = dict(scope)
    for key in CACHED_SCOPE_KEYS:
        new.pop(key, None)
    if query is not None:
        new["query_string"] = query
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes) and (b"?" in raw_path or b"#" in raw_path):
        # The ASGI spec leaves the query out of raw_path; a server that keeps it
        # (or a fragment) there must not hand the original on.
        query_string = new.get("query_string", b"").decode("latin-1")
        target = rewrite_target(raw_path.decode("latin-1"), query_string)
        new["raw_path"] = target.encode("latin-1")
    if body is not None:
        length = str(len(body)).encode("latin-1")
        headers = [
            (n, v)
            for n, v in scope["headers"]
            if n not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", length))
        new["headers"] = headers
    if new.get("state") is None:
        new["state"] = {}
    return new


def _litestar_cache(state: dict[str, Any]) -> Any:
    cache = state.get(LITESTAR_STATE_KEY)
    return state.get(LITESTAR_LEGACY_STATE_KEY) if cache is None else cache


def _cached_body(cache: Any, content_type: str | None, declared: int | None) -> bytes | None:
    """The body a layer above already read, or ``None`` when the channel still holds it.

    A multipart form parsed above streamed the body away without keeping it:
    the request is refused as the contract refuses any multipart body
    (``unsupported_media_type``) instead of waiting on a drained channel.
    """
    if isinstance(cache, dict):
        body, form = cache.get("body"), cache.get("form")
    else:
        body, form = getattr(cache, "body", None), getattr(cache, "form", None)
    if isinstance(body, bytes):
        return body
    # A form() call on any other content type reads nothing (Litestar answers {}),
    # and an urlencoded one caches the body first.
    if isinstance(form, dict) and content_type and "multipart/" in content_type.lower():
        if declared == 0:
            return b""
        raise RequestError("unsupported_media_type")
    return None


def _limited(body: bytes, limit: int) -> bytes:
    if len(body) > limit:
        raise RequestError("body_too_large")
    return body


def _reset_litestar_cache(
    state: dict[str, Any], cache: Any, cached: bytes | None, new_body: bytes | None
) -> None:
    """Make Litestar's connection cache describe the rewritten request.

    The object is shared with the layers above (mutated in place, not replaced:
    Litestar's exception middleware holds it). Every view of the request goes
    back to its default; the body stays cached only if it was, now rewritten
    (a body not cached yet is read from the replay, under Litestar's own limit).
    """
    body = (cached if new_body is None else new_body) if cached is not None else None
    if isinstance(cache, dict):
        for key in LITESTAR_LEGACY_VIEWS:
            cache.pop(key, None)
        if body is not None:
            cache["body"] = body
        return
    try:
        fresh = type(cache)()
        for name in _slot_names(cache):
            if name not in LITESTAR_KEPT_FIELDS and not name.startswith("__"):
                setattr(cache, name, getattr(fresh, name))
        if body is not None:
            cache.body = body
    except Exception:
        # A release whose state this code does not understand: drop it whole
        # (Litestar builds a fresh one) rather than leave a stale view behind.
        state.pop(LITESTAR_STATE_KEY, None)


def _slot_names(obj: object) -> list[str]:
    names: list[str] = []
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    names.extend(getattr(obj, "__dict__", ()))
    return names


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # Later calls wait on the server, so the app still hears http.disconnect.
        return await receive()

    return replay
