"""In-process drivers: call an ASGI or WSGI app directly, with no network and no server.

A driver replays one prepared :class:`~bench.workload.Request` many times and
reports the CPU time of the whole batch (:data:`CLOCK`): the drivers never wait
on I/O, and CPU time does not count the moments another process had the core,
so a busy machine does not inflate the figures. The driver's own overhead is the
same for every variant, so it cancels in "us added" (variant minus bare).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from .workload import PATH, Request

Outcome = tuple[int, str | None]
#: The process's CPU clock (every thread, so a worker-thread hop is counted too).
CLOCK = time.process_time


class ASGIDriver:
    """Runs requests through an ASGI app on one private event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    @staticmethod
    def _scope(request: Request) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "root_path": "",
            "query_string": request.query_string,
            "headers": list(request.headers),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

    async def _one(self, template: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        scope = dict(template)
        scope["state"] = {}  # uvicorn hands every request its own state dict
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    async def _batch(self, request: Request, count: int) -> float:
        template = self._scope(request)
        body = request.body
        one = self._one
        start = CLOCK()
        for _ in range(count):
            await one(template, body)
        return CLOCK() - start

    def outcome(self, request: Request) -> Outcome:
        status, body = self.loop.run_until_complete(self._one(self._scope(request), request.body))
        return status, _echoed_status(status, body)

    def run(self, request: Request, count: int) -> float:
        """Seconds for ``count`` requests, one after another."""
        return self.loop.run_until_complete(self._batch(request, count))


class WSGIDriver:
    """Calls a WSGI app with a fresh environ and input stream per request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def close(self) -> None:
        pass

    @staticmethod
    def _environ(request: Request) -> dict[str, Any]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": PATH,
            "QUERY_STRING": request.query_string.decode("latin-1"),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers:
            key = name.decode("latin-1").upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = value.decode("latin-1")
        return environ

    def _one(self, template: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        status = [0]

        def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(line[:3])
            return None

        result = self.app(environ, start_response)
        try:
            out = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return status[0], out

    def outcome(self, request: Request) -> Outcome:
        status, body = self._one(self._environ(request), request.body)
        return status, _echoed_status(status, body)

    def run(self, request: Request, count: int) -> float:
        template = self._environ(request)
        body = request.body
        one = self._one
        start = CLOCK()
        for _ in range(count):
            one(template, body)
        return CLOCK() - start


def _echoed_status(status: int, body: bytes) -> str | None:
    """The visitor status the app echoed, or the error code a middleware answered."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if status == 200:
        return data.get("status")
    return data.get("error")
