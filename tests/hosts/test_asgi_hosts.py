"""Starlette hosts with a body-reading layer above the middleware.

Starlette caches what it parsed on the ``Request`` object only, never in the
scope; its ``BaseHTTPMiddleware`` replays a body it read to the layers below.
So a Starlette layer that read the request before ours leaves nothing stale
behind and the middleware reads the replayed body.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from tests.cases import GOOD, PATHS, RESOLVER

SEEN: list[Any] = []


class BodyReader(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        SEEN.append((await request.json(), dict(request.query_params)))
        return await call_next(request)


async def handler(request: Request) -> Response:
    return JSONResponse(
        {
            "json": await request.json(),
            "query": dict(request.query_params),
            "user": str(getattr(request.state, STATE_KEY).status),
        }
    )


def test_starlette_base_http_middleware_reading_first_leaves_nothing_stale() -> None:
    app = Starlette(routes=[Route("/chat", handler, methods=["POST"])])
    app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)
    app.add_middleware(BodyReader)  # added last: outermost, runs first
    user = {"user_id": "42", "user_hash": GOOD}
    response = TestClient(app).post("/chat?widget_id=w_pro&x=1", json={"user": user, "m": 1})
    assert response.status_code == 200
    assert SEEN[-1][0]["user"]["user_hash"] == GOOD  # the reader saw the original
    assert response.json() == {
        "json": {"user": {"user_id": "42"}, "m": 1},
        "query": {"widget_id": "w_pro", "x": "1"},
        "user": "verified",
    }
