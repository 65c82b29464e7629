"""Drivers that push a generated request through the core or an adapter.

Each returns an :class:`Outcome`: the answer, and what the app behind the
middleware saw if it was called. The echo apps read the request with the host's
own parsers, so a differential between the middleware and the host shows up in
``Seen.parsed``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.requests import Request as StarletteRequest

from ainisa_middleware import StaticResolver
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.errors import RequestError
from ainisa_middleware.verify import Verifier

from .strategies import BUSINESSES, PATH, Request
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


def passthrough_variant(req: Request) -> Request:
    """The same request where the middleware must not look: OPTIONS or another path."""
    pick = (len(req.body) + len(req.query) + len(req.headers)) % 6
    if pick == 0:
        return replace(req, method="OPTIONS")
    path = ["/chatter", "/", "/other/chat", "/Chat", "/chat.json"][pick - 1]
    return replace(req, path=path)


# -- core, sans-IO -------------------------------------------------------------


def core_outcome(req: Request, mode: str = "strip") -> Outcome:
    """What the engine decides, applied as an adapter applies it."""
    config = MiddlewareConfig.build(resolver=StaticResolver(BUSINESSES), paths=[PATH], mode=mode)
    verifier = Verifier(config)
    if not config.intercepts(req.method, req.path):
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
        "root_path": "",
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
