"""The ASGI floor: the least a pure-ASGI middleware can do for a JSON chat request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ainisa_middleware import Business

from ._floor_core import Floor

_LIMIT = 1_048_576
_WIDGET = b"x-ainisa-widget-id"


async def _error(send: Any, status: int, code: bytes) -> None:
    body = json.dumps({"error": code.decode()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FloorASGIMiddleware:
    def __init__(self, app: Any, businesses: Mapping[str, Business], path: str) -> None:
        self.app = app
        self.floor = Floor(businesses)
        self.path = path
        self.prefix = path + "/"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or (path != self.path and not path.startswith(self.prefix))
        ):
            await self.app(scope, receive, send)
            return
        widget_id = ""
        for name, value in scope["headers"]:
            if name == _WIDGET:
                widget_id = value.decode("latin-1")
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > _LIMIT:
                await _error(send, 413, b"body_too_large")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        status, new_body, user = self.floor.check(widget_id, body)
        if status != 200:
            await _error(send, status, new_body)
            return
        scope = dict(scope)
        headers = [(n, v) for n, v in scope["headers"] if n != b"content-length"]
        headers.append((b"content-length", str(len(new_body)).encode()))
        scope["headers"] = headers
        state = scope.get("state")
        scope["state"] = state = {} if state is None else state
        state["ainisa_user"] = user
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": new_body, "more_body": False}

        await self.app(scope, replay, send)
