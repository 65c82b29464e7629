"""Pure ASGI middleware: Starlette, FastAPI, Litestar, Quart, any ASGI app.

Install the extra, ``pip install "ainisa-middleware[starlette]"``, then::

    app.add_middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"])

or wrap any ASGI app: ``app = AinisaMiddleware(app, resolver=resolver, paths=["/chat"])``.
With Starlette's ``CORSMiddleware``, call ``add_middleware`` for this one first and
for CORS after it: the last one added is the outermost, so preflights never reach
this middleware and its error answers still carry CORS headers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import IO, TypeVar

try:
    import anyio
    import anyio.lowlevel
    import anyio.to_thread
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ainisa_middleware.asgi needs anyio: install it with "
        "'pip install \"ainisa-middleware[starlette]\"'."
    ) from exc

from . import _litestar
from ._litestar import LITESTAR_STATE_KEY
from ._types import ASGIApp, Message, Receive, Scope, Send
from .config import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_FORM_FIELDS,
    DEFAULT_MAX_UPLOAD_SIZE,
    DEFAULT_RESOLVER_TIMEOUT,
    MiddlewareConfig,
    Mode,
)
from .decisions import DecisionHook
from .errors import RENDERED, AinisaIdentityError, RequestError
from .models import Business
from .multipart import READ_CHUNK, MultipartSpool
from .paths import is_cors_preflight
from .request import (
    OFF_LOOP_BODY_SIZE,
    WIDGET_ID_HEADER,
    BodyReader,
    ParsedRequest,
    body_kind,
    declared_length,
    parses_quickly,
)
from .resolvers import AnyResolver, Runtime, SyncCall
from .rewrite import rewrite_target
from .verify import Decision, Verifier

__all__ = [
    "CACHED_SCOPE_KEYS",
    "LITESTAR_STATE_KEY",
    "STATE_KEY",
    "AinisaIdentityError",
    "AinisaMiddleware",
    "send_error",
]

#: Key in ``scope["state"]``; Starlette exposes it as ``request.state.ainisa_user``.
STATE_KEY = "ainisa_user"
#: Parsed-request caches older hosts kept in the scope itself (Starlite 1 kept
#: its body and parses there, early Litestar 2 its headers): dropped from the
#: app's copy of the scope.
CACHED_SCOPE_KEYS = ("_body", "_json", "_form", "_msgpack", "_headers")
_CACHED_SCOPE_KEYS = frozenset(CACHED_SCOPE_KEYS)
#: After a large body's parse in a worker thread, the next large body waits this
#: many times the wall time that parse took (see :func:`_off_loop`).
OFF_LOOP_PAUSE = 2.0

_WIDGET_HEADER = WIDGET_ID_HEADER.encode("latin-1")
_PREFLIGHT_HEADERS = frozenset(
    {b"access-control-request-method", b"content-length", b"transfer-encoding"}
)


@asynccontextmanager
async def _deadline(seconds: float | None) -> AsyncIterator[None]:
    with anyio.fail_after(seconds):
        yield


async def _to_thread(fn: SyncCall, arg: str) -> object:
    # abandon_on_cancel: a timeout answers 503 while a hung resolver's thread finishes.
    return await anyio.to_thread.run_sync(fn, arg, abandon_on_cancel=True)


def _no_coroutines(fn: object, arg: str, timeout: float | None) -> object:  # pragma: no cover
    raise RuntimeError("the ASGI middleware awaits its resolver; it never runs one to completion")


#: The bridges' primitives under any event loop anyio drives (asyncio or trio).
ANYIO = Runtime(to_thread=_to_thread, deadline=_deadline, run_coroutine=_no_coroutines)


async def send_error(send: Send, code: str) -> None:
    """Answer with the contract's JSON error for ``code``."""
    error = RENDERED[code]
    await send(
        {"type": "http.response.start", "status": error.status, "headers": error.raw_headers}
    )
    await send({"type": "http.response.body", "body": error.body, "more_body": False})


class _Disconnected(Exception):
    pass


class AinisaMiddleware:
    """Verify Ainisa chat visitors before an ASGI app sees the request.

    On paths under ``paths`` it reads the body (at most ``max_body_size``
    bytes), resolves the widget's business, checks the user hash, removes every
    identity field it could not verify from the body and query string, and
    puts an :class:`~ainisa_middleware.AinisaUser` in ``scope["state"]["ainisa_user"]``.
    Other paths and CORS preflights pass through untouched.

    Security: the app must read identity from ``request.state.ainisa_user``;
    names and email beside a verified ``user_id`` are not signed.

    :param app: the ASGI app to protect.
    :param resolver: finds the :class:`~ainisa_middleware.Business` for a widget ID.
    :param paths: path prefixes of the chat endpoints, segment-aware.
    :param mode: ``"strip"`` (unverified visitors continue anonymous) or ``"enforce"``
        (user data that fails verification gets 401).
    :param max_body_size: largest body accepted, in bytes; larger gets 413.
    :param resolver_timeout: seconds to wait for the resolver before 503; ``None`` waits.
    :param max_form_fields: most fields a form body (else 400 ``malformed_body``) or
        query string (else 400 ``malformed_request``) may hold.
    :param max_upload_size: largest ``multipart/form-data`` body, file parts included;
        larger gets 413 (``max_body_size`` bounds its other parts).
    :param websocket_frames: ``"json"`` (every frame of a WebSocket under ``paths``
        must be a JSON object, else the connection closes with 1003) or ``"any"``
        (binary and non-JSON text frames pass unchanged: only for apps whose
        frames carry no identity; see ``docs/websocket.md``).
    :param on_decision: called with a :class:`~ainisa_middleware.decisions.DecisionRecord`
        for every intercepted request (metrics, traces); see :mod:`ainisa_middleware.decisions`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: AnyResolver,
        paths: Sequence[str],
        mode: Mode = "strip",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        resolver_timeout: float | None = DEFAULT_RESOLVER_TIMEOUT,
        max_form_fields: int = DEFAULT_MAX_FORM_FIELDS,
        max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE,
        websocket_frames: str = "json",
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
        self.verifier = Verifier(self.config, ANYIO)
        self._matches = self.config.matcher.matches
        from ._websocket import WebSocketGuard  # imports this module's helpers

        self._websocket = WebSocketGuard(self.verifier, frames=websocket_frames)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self._matches(
                scope["path"], scope.get("root_path", "")
            ):
                await self._websocket(self.app, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        preflight = False
        if scope["method"] == "OPTIONS":
            preflight, receive = await _preflight(scope, receive)
        try:
            if not preflight and self._matches(scope["path"], scope.get("root_path", "")):
                await self._handle(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        except AinisaIdentityError as refused:
            # An endpoint refused the visitor (require_verified_user) before its
            # response began: answer in the contract's shape. A server refuses a
            # second response start, so a response already begun keeps the error.
            try:
                await send_error(send, refused.code)
            except Exception:
                raise refused from None

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        verifier = self.verifier
        limit = self.config.max_body_size
        content_type, widget_header, length, at, chunked = _headers(scope["headers"])
        if content_type is not None and body_kind(content_type) is None:
            spool = MultipartSpool.for_request(content_type, self.config)
            if spool is not None:
                head = (content_type, widget_header, length, at, chunked)
                await self._handle_multipart(scope, receive, send, spool, head)
                return
        state = scope.get("state")
        # Litestar middleware above this one may have read the request already:
        # the receive channel is then drained, and its cached body is the request.
        cache = _litestar.connection_cache(state) if state else None
        cached: bytes | None = None
        try:
            declared = declared_length(length, limit)
            if cache is not None:
                cached = _litestar.cached_body(cache, content_type, declared)
            if cached is not None:
                body = cached
                if len(body) > limit:
                    raise RequestError("body_too_large")
            else:
                message = await receive()
                if message.get("type") == "http.request" and not message.get("more_body", False):
                    # The whole body in one message, as servers send small ones: no copy.
                    body = message.get("body", b"")
                    if len(body) > limit:
                        raise RequestError("body_too_large")
                else:
                    body = await _read_body(receive, limit, message)
            query = scope.get("query_string", b"")
            decision: Decision | None = None
            off_loop = len(body) > OFF_LOOP_BODY_SIZE and not parses_quickly(
                body_kind(content_type), body
            )
            if off_loop:
                # Costly enough to hold the loop noticeably: parsed in a worker
                # thread, and decided there too when the cache knows the business.
                parsed, business, decision = await _off_loop(
                    partial(_inspect_off_loop, verifier, content_type, widget_header, query, body)
                )
            else:
                parsed = verifier.inspect(content_type, widget_header, query, body)
                business = verifier.peek(parsed.widget_id)
        except _Disconnected:
            return  # nobody is listening: the app is never called
        except RequestError as error:
            verifier.log_error(error.code, error.widget_id)
            await send_error(send, error.code)
            return

        if business is None:
            business = await verifier.alookup(parsed.widget_id)
        if isinstance(business, str):
            await send_error(send, business)
            return
        if decision is None:
            if off_loop:  # re-serialising costs about as much as parsing
                decision = await _off_loop(partial(_decide_and_release, verifier, parsed, business))
            else:
                decision = verifier.decide(parsed, business)
        if decision.error is not None:
            await send_error(send, decision.error)
            return

        new = _app_scope(scope, decision)
        if decision.body is not None:
            final = decision.body
            new["headers"] = _with_length(scope["headers"], len(final), at, chunked)
        else:
            final = body
        if cache is not None:
            # After the rewrite, so no cached view of the original outlives it.
            _litestar.reset_cache(new["state"], cache, cached, decision.body)
        replay = _replay_message(
            {"type": "http.request", "body": final, "more_body": False}, receive
        )
        await self.app(new, replay, send)

    async def _handle_multipart(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        spool: MultipartSpool,
        head: tuple[str | None, str | None, bytes | None, int, bool],
    ) -> None:
        """A ``multipart/form-data`` request: read into a spool, judged, replayed from it."""
        verifier = self.verifier
        config = self.config
        content_type, widget_header, length, at, chunked = head
        state = scope.get("state")
        cache = _litestar.connection_cache(state) if state else None
        with spool:
            try:
                declared = declared_length(length, config.max_upload_size)
                cached = _litestar.cached_body(cache, content_type, declared) if cache else None
                if cached is not None:
                    spool.feed(cached)
                else:
                    await _read_into(receive, spool)
                spool.finish()
                parsed = spool.inspect(verifier, widget_header, scope.get("query_string", b""))
            except _Disconnected:
                return  # nobody is listening: the app is never called
            except RequestError as error:
                verifier.log_error(error.code, error.widget_id)
                await send_error(send, error.code)
                return
            business = await verifier.afind(parsed.widget_id)
            if isinstance(business, str):
                await send_error(send, business)
                return
            decision = verifier.decide(parsed, business)
            if decision.error is not None:
                await send_error(send, decision.error)
                return
            stream, size = spool.body(decision)
            new = _app_scope(scope, decision)
            new["headers"] = _with_length(scope["headers"], size, at, chunked)
            if cache is not None:
                _litestar.reset_cache(new["state"], cache, None, None)
            await self.app(new, _replay_stream(stream, size, receive), send)


def _app_scope(scope: Scope, decision: Decision) -> Scope:
    """The scope the app gets: the rewritten query, no cached parse, the visitor in its state."""
    new = dict(scope)
    for key in CACHED_SCOPE_KEYS:
        if key in new:
            del new[key]
    if decision.query is not None:
        new["query_string"] = decision.query
    raw_path = scope.get("raw_path")
    if raw_path and (b"?" in raw_path or b"#" in raw_path):
        # The ASGI spec leaves the query out of raw_path; a server that keeps
        # it (or a fragment) there must not hand the original on.
        target = rewrite_target(
            raw_path.decode("latin-1"), new.get("query_string", b"").decode("latin-1")
        )
        new["raw_path"] = target.encode("latin-1")
    state = scope.get("state")
    if state is None:
        state = new["state"] = {}
    state[STATE_KEY] = decision.user
    return new


#: Multipart chunks larger than this are parsed in a worker thread (see :func:`_read_into`).
OFF_LOOP_MULTIPART_CHUNK = 4096


async def _read_into(receive: Receive, spool: MultipartSpool) -> None:
    """Feed the request's body to ``spool`` as it arrives; a disconnect ends it unread.

    python-multipart parses headers in Python, byte by byte with a call per
    header: 64 KiB of tiny parts takes about 50 ms, too long to hold the loop.
    So any chunk past :data:`OFF_LOOP_MULTIPART_CHUNK` is parsed (and spooled)
    off it, one at a time as large JSON bodies are; a file's data costs about
    2 ms per MiB there.
    """
    refused: RequestError | None = None
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "http.disconnect":
            raise _Disconnected
        if kind == "http.request":
            chunk = message.get("body", b"")
            if refused is not None:
                # A body refused before its end is read to its end all the same,
                # as any other body is: the answer goes to a client still there.
                spool.size += len(chunk)
                if spool.size > spool.max_upload_size:
                    raise refused
            elif chunk:
                try:
                    if len(chunk) > OFF_LOOP_MULTIPART_CHUNK:
                        await _off_loop(partial(spool.feed, chunk))
                    else:
                        spool.feed(chunk)
                except RequestError as error:
                    if error.code == "body_too_large":
                        raise  # refused unread, as on every path
                    refused = error
            if not message.get("more_body", False):
                if refused is not None:
                    raise refused
                return


def _replay_stream(stream: IO[bytes], size: int, receive: Receive) -> Receive:
    """``size`` bytes of ``stream`` in chunks of :data:`READ_CHUNK`, then the server's
    own messages, so the app still hears a disconnect."""
    remaining = size
    done = False

    async def replay() -> Message:
        nonlocal remaining, done
        if done:
            return await receive()
        chunk = stream.read(min(READ_CHUNK, remaining))
        remaining -= len(chunk)
        done = remaining <= 0 or not chunk
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return replay


def _headers(
    headers: Sequence[tuple[bytes, bytes]],
) -> tuple[str | None, str | None, bytes | None, int, bool]:
    """Content type, widget header, ``Content-Length``, its position, whether chunked.

    Repeated headers join with ", " as WSGI servers do. No valid widget ID
    contains that, and no media type we inspect does either: a request whose
    frameworks could disagree on its content type is refused (415), not guessed.
    """
    content_type: str | None = None
    widget: str | None = None
    length: bytes | None = None
    at = -1
    chunked = False
    index = -1
    for name, value in headers:
        index += 1
        if name == b"content-type":
            text = value.decode("latin-1")
            content_type = text if content_type is None else f"{content_type}, {text}"
        elif name == _WIDGET_HEADER:
            text = value.decode("latin-1")
            widget = text if widget is None else f"{widget}, {text}"
        elif name == b"content-length":
            length, at = value, index
        elif name == b"transfer-encoding":
            chunked = True
    return content_type, widget, length, at, chunked


def _with_length(
    headers: Sequence[tuple[bytes, bytes]], size: int, at: int, chunked: bool
) -> list[tuple[bytes, bytes]]:
    """The headers for a body of ``size`` bytes, sent whole."""
    new = list(headers)
    length = (b"content-length", str(size).encode("latin-1"))
    if chunked:  # the replayed body is one message: no framing of the original survives
        new = [(n, v) for n, v in new if n not in (b"content-length", b"transfer-encoding")]
        new.append(length)
    elif at >= 0:
        new[at] = length
    else:
        new.append(length)
    return new


async def _read_body(receive: Receive, limit: int, message: Message) -> bytes:
    """The body whose first message is ``message``."""
    reader = BodyReader(limit)
    while True:
        kind = message.get("type")
        if kind == "http.disconnect":
            raise _Disconnected
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                reader.add(chunk)
            if not message.get("more_body", False):
                return reader.body() if reader.size else b""
        message = await receive()


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
    return verdict(unannounced_body=unannounced), _replay_message(first, receive)


def _replay_message(message: Message, receive: Receive) -> Receive:
    """``message`` first (the rewritten body, or what a preflight check read), then the
    server's own messages, so the app still hears a disconnect."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return message
        return await receive()

    return replay


# -- large bodies: off the event loop, one at a time --------------------------------

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
    a time, and after each the next waits :data:`OFF_LOOP_PAUSE` times the wall
    time the last one took (raised or not): large bodies get at most a third of
    the time, the loop and every other request the rest. A benign 1 MiB chat
    message costs a few milliseconds, so only bodies built to be slow feel the pause.
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


def _inspect_off_loop(
    verifier: Verifier,
    content_type: str | None,
    widget_header: str | None,
    query: bytes,
    body: bytes,
) -> tuple[ParsedRequest, Business | str | None, Decision | None]:
    """Parse, ask the cache, and decide when it knows the business: one hop, not two."""
    parsed = verifier.inspect(content_type, widget_header, query, body)
    business = verifier.peek(parsed.widget_id)
    if isinstance(business, Business):
        return parsed, business, _decide_and_release(verifier, parsed, business)
    return parsed, business, None


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
