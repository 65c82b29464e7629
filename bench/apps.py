"""The chat apps every variant wraps: the same endpoint on Starlette, werkzeug and Django.

Each app parses its JSON body (a bare app still pays for that) and echoes the
status of the visitor it was handed, so a driver can check that every variant
did its job before it is timed.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .workload import PATH

USER_KEY = "ainisa_user"


def visitor_status(user: Any) -> str | None:
    """The status word of whatever a variant put on the request (``None``: nothing)."""
    if user is None:
        return None
    return str(getattr(user, "status", user))


async def _chat(request: Request) -> JSONResponse:
    data = await request.json()
    user = request.scope.get("state", {}).get(USER_KEY)
    return JSONResponse(
        {"ok": True, "status": visitor_status(user), "chars": len(data.get("message", ""))}
    )


def starlette_app(middleware: list[Middleware] | None = None) -> Starlette:
    """The Starlette chat app, with ``middleware`` around its router."""
    return Starlette(routes=[Route(PATH, _chat, methods=["POST"])], middleware=middleware)


def chat_payload(body: bytes, user: Any) -> bytes:
    """What the WSGI and Django apps answer, the same as the Starlette one."""
    data = json.loads(body)
    return json.dumps(
        {"ok": True, "status": visitor_status(user), "chars": len(data.get("message", ""))}
    ).encode()


def werkzeug_app() -> Any:
    """The werkzeug chat app: ``Request.get_json()``, the visitor from the environ."""
    from werkzeug.wrappers import Request as WRequest
    from werkzeug.wrappers import Response as WResponse

    @WRequest.application  # type: ignore[arg-type]
    def chat(request: WRequest) -> WResponse:
        data = request.get_json()
        user = request.environ.get("ainisa.user")
        payload = {
            "ok": True,
            "status": visitor_status(user),
            "chars": len(data.get("message", "")),
        }
        return WResponse(json.dumps(payload), content_type="application/json")

    return chat
