"""Drivers that push a generated request through the core or an adapter.

Each returns an :class:`Outcome`: the answer, and what the app behind the
middleware saw if it was called. The echo apps read the request with the host's
own parsers, so a differential between the middleware and the host shows up in
``Seen.parsed``.
"""

from __future__ import annotations

import asyncio
import json
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.requests import Request as StarletteRequest

from ainisa_middleware import StaticResolver
from ainisa_middleware import request as core
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.errors import RequestError
from ainisa_middleware.paths import is_cors_preflight
from ainisa_middleware.verify import Verifier

from .strategies import BUSINESSES, PATH, Request, as_preflight
from .views import Seen, flat_identity, json_identity

#: scope key under which the echo app leaves what it saw, so concurrent requests
#: each find their own record (the middleware copies the scope, keys included)
BOX = "hardening.seen"


@dataclass
class Outcome:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    seen: Seen | None


def starlette_is_form(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether Starlette's ``request.form()`` parses the body (it reads the first Content-Type)."""
    for name, value in headers:
        if name == b"content-type":
            media, _ = parse_options_header(value.decode("latin-1"))
            return media == b"application/x-www-form-urlencoded"
    return False


def starlette_is_multipart(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether Starlette's ``request.form()`` reads the body as multipart."""
    for name, value in headers:
        if name == b"content-type":
            media, _ = parse_options_header(value.decode("latin-1"))
            return media == b"multipart/form-data"
    return False


def passthrough_variant(req: Request) -> Request:
    """The same request where the middleware must not look: a preflight or another path."""
    pick = (len(req.body) + len(req.query) + len(req.headers)) % 6
    if pick == 0:
        return as_preflight(req)
    path = ["/chatter", "/", "/other/chat", "/Chat", "/chat.json"][pick - 1]
    return replace(req, path=path, root="")


def is_preflight(req: Request) -> bool:
    """Whether ``req`` is a genuine CORS preflight, its headers read as ASGI servers give them."""
    found = {name: value.decode("latin-1") for name, value in req.headers}
    return is_cors_preflight(
        req.method,
        found.get(b"access-control-request-method"),
        found.get(b"content-length"),
        found.get(b"transfer-encoding"),
    )


# -- core, sans-IO -------------------------------------------------------------


def core_outcome(req: Request, mode: str = "strip") -> Outcome:
    """What the engine decides, applied as an adapter applies it."""
    config = MiddlewareConfig.build(resolver=StaticResolver(BUSINESSES), paths=[PATH], mode=mode)
    verifier = Verifier(config)
    if not config.intercepts(req.path, req.root, preflight=is_preflight(req)):
        seen = Seen(req.body, req.query, list(req.headers), None)
        return Outcome(200, [], b"", seen)
    types = [v.decode("latin-1") for n, v in req.headers if n == b"content-type"]
    widgets = [v.decode("latin-1") for n, v in req.headers if n == b"x-ainisa-widget-id"]
    try:
        parsed = verifier.inspect(
            content_type=", ".join(types) if types else None,
            widget_header=", ".join(widgets) if widgets else None,
            query_string=req.query,
            body=req.body,
        )
        business = BUSINESSES.get(parsed.widget_id)
        if business is None:
            raise RequestError("unknown_widget")
        decision = verifier.decide(parsed, business)
        if decision.error is not None:
            raise RequestError(decision.error)
    except RequestError as error:
        return Outcome(error.status, [(b"content-type", b"application/json")], error.body, None)
    body = req.body if decision.body is None else decision.body
    query = req.query if decision.query is None else decision.query
    seen = Seen(body, query, list(req.headers), decision.user)
    seen.form_body = starlette_is_form(req.headers)
    return Outcome(200, [], b"", seen)


# -- the two JSON parsing paths ------------------------------------------------

#: What either JSON path makes of a body it refuses.
MALFORMED = "malformed_body"


def hooked_json(text: str) -> object:
    """The small-body path of ``parse_json_object``: the hooked scanner, then the depth walk.

    The object, or :data:`MALFORMED`; any other exception escapes, as it would
    from the middleware.
    """
    try:
        obj, end = core._scan(text, core._WHITESPACE.match(text).end())  # type: ignore[union-attr]
    except (StopIteration, ValueError, RecursionError):
        return MALFORMED
    if core._WHITESPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
        return MALFORMED
    if type(obj) is not dict:
        return MALFORMED
    if core._too_deep(obj):
        # parse_json_object walks the depth only past 32 brackets: fewer cannot nest deeper.
        assert text.count("{") + text.count("[") > core.MAX_JSON_DEPTH
        return MALFORMED
    return obj


def large_json(body: bytes, text: str) -> object:
    """The large-body path: ``_parse_large``, then the object check ``parse_json_object`` makes."""
    try:
        obj = core._parse_large(body, text)
    except (StopIteration, ValueError, RecursionError):
        return MALFORMED
    return obj if type(obj) is dict else MALFORMED


def same_json(a: object, b: object) -> bool:
    """Equal, and of the same types throughout (``1 == 1.0`` and ``0.0 == -0.0`` are not)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return repr(a) == repr(b)
    if type(a) is dict:
        assert isinstance(b, dict)
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if type(a) is list:
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(same_json, a, b))
    return a == b


def check_json_paths_agree(body: bytes) -> object:
    """Both JSON paths give ``body`` one verdict, and ``parse_json_object`` gives it too.

    The hooked path runs on bodies up to ``_HOOKS_UP_TO`` bytes, ``_parse_large``
    on larger ones: no body may be accepted or refused for its size alone.
    Returns the verdict: the object, or :data:`MALFORMED`.
    """
    try:
        public: object = core.parse_json_object(body)
    except RequestError as error:
        assert error.code == MALFORMED, error.code
        public = MALFORMED
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        assert public == MALFORMED
        return MALFORMED
    hooked = hooked_json(text)
    large = large_json(body, text)
    assert same_json(hooked, large), (
        f"the two JSON paths disagree on {body[:300]!r}: hooked {reprlib.repr(hooked)}, "
        f"large {reprlib.repr(large)}"
    )
    assert same_json(public, hooked), (
        f"parse_json_object differs on {body[:300]!r}: {reprlib.repr(public)}, "
        f"hooked {reprlib.repr(hooked)}"
    )
    return hooked


# -- ASGI ----------------------------------------------------------------------


def make_echo_app(record: list[Seen]) -> Callable[..., Any]:
    """A Starlette-request app that reads everything with Starlette's own parsers."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = StarletteRequest(scope, receive)
        body = await request.body()
        state = scope.get("state") or {}
        seen = Seen(body, scope["query_string"], list(scope["headers"]), state.get("ainisa_user"))
        seen.form_body = starlette_is_form(scope["headers"])
        seen.parsed["query/starlette"] = flat_identity(request.query_params.multi_items())
        if seen.form_body:
            try:
                form = await request.form()
            except Exception:  # too many fields and the like: the app's problem, not a view
                pass
            else:
                items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
                seen.parsed["body/starlette-form"] = flat_identity(items)
                await form.close()
        if starlette_is_multipart(scope["headers"]):
            try:
                form = await request.form()
            except Exception:  # malformed for Starlette: the app's 400, not a view
                pass
            else:
                # A file part under an identity name counts too: form["user_id"] is it.
                items = [(k, v if isinstance(v, str) else "<file>") for k, v in form.multi_items()]
                seen.parsed["body/starlette-multipart"] = flat_identity(items)
                await form.close()
        try:
            doc = await request.json()
        except (ValueError, RecursionError):
            pass
        else:
            if isinstance(doc, dict):  # an app reads identity only from an object
                seen.parsed["body/starlette-json"] = json_identity(doc)
        record.append(seen)
        box = scope.get(BOX)
        if box is not None:
            box.append(seen)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def make_asgi(
    resolver: object | None = None, *, mode: str = "strip", **options: Any
) -> tuple[AinisaMiddleware, list[Seen]]:
    record: list[Seen] = []
    middleware = AinisaMiddleware(
        make_echo_app(record),
        resolver=resolver if resolver is not None else StaticResolver(BUSINESSES),
        paths=[PATH],
        mode=mode,
        **options,
    )
    return middleware, record


def http_scope(req: Request) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": "http",
        "path": req.path,
        "raw_path": req.path.encode(),
        "root_path": req.root,
        "query_string": req.query,
        "headers": list(req.headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def drive_asgi(
    app: Callable[..., Any],
    scope: dict[str, Any],
    chunks: list[bytes],
    record: list[Seen],
) -> Outcome:
    """Run one request through ``app``; an exception escaping it fails the caller."""
    queue = list(chunks) or [b""]
    messages: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            chunk = queue.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(queue)}
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        messages.append(message)

    box: list[Seen] = []
    scope[BOX] = box
    await app(scope, receive, send)
    start = [m for m in messages if m["type"] == "http.response.start"]
    assert len(start) == 1, messages
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    seen = box[0] if box else None
    return Outcome(start[0]["status"], list(start[0].get("headers", [])), body, seen)


class AsgiRunner:
    """One event loop for many examples (a loop per example costs more than the request)."""

    def __init__(self) -> None:
        # A bare loop: asyncio.Runner.run installs and removes a SIGINT handler
        # on every call, which costs more than a request.
        self._loop = asyncio.new_event_loop()

    def run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


def error_code(outcome: Outcome) -> str:
    return str(json.loads(outcome.body)["error"])
