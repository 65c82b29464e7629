"""The WSGI floor: the least a WSGI middleware can do for a JSON chat request.

Around Django's ``WSGIHandler`` it is also the Django floor: Django reads the
rewritten ``wsgi.input`` as ``request.body``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ainisa_middleware import Business

from ._floor_core import Floor

_LIMIT = 1_048_576
_STATUS = {400: "400 Bad Request", 404: "404 Not Found", 413: "413 Content Too Large"}


class FloorWSGIMiddleware:
    def __init__(self, app: Any, businesses: Mapping[str, Business], path: str) -> None:
        self.app = app
        self.floor = Floor(businesses)
        self.path = path
        self.prefix = path + "/"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "OPTIONS" or (
            path != self.path and not path.startswith(self.prefix)
        ):
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > _LIMIT:
            return self._error(start_response, 413, b"body_too_large")
        body = environ["wsgi.input"].read(length) if length else b""
        status, new_body, user = self.floor.check(environ.get("HTTP_X_AINISA_WIDGET_ID", ""), body)
        if status != 200:
            return self._error(start_response, status, new_body)
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(new_body)
        environ["CONTENT_LENGTH"] = str(len(new_body))
        environ["ainisa.user"] = user
        return self.app(environ, start_response)

    @staticmethod
    def _error(start_response: Any, status: int, code: bytes) -> list[bytes]:
        body = json.dumps({"error": code.decode()}).encode()
        start_response(
            _STATUS[status],
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
