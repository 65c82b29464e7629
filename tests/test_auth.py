"""Starlette's AuthenticationMiddleware over the verified visitor: request.user, scopes."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException
from fastapi import Request as FastAPIRequest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from ainisa_middleware import AinisaUser, Status
from ainisa_middleware._types import Receive, Scope, Send
from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.auth import VERIFIED_SCOPE, AinisaAuthBackend, AinisaAuthUser

from .cases import ADA, GOOD, PATHS, RESOLVER


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "display_name": user.display_name,
            "identity": getattr(user, "identity", None),
            "scopes": request.auth.scopes,
            "type": type(user).__name__,
        }
    )


@requires(VERIFIED_SCOPE)
async def members(request: Request) -> JSONResponse:
    return JSONResponse({"user_id": request.user.identity})


@requires(VERIFIED_SCOPE)
async def members_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user_id": websocket.user.identity})
    await websocket.close()


class FakeWebSocketIdentity:
    """Stands in for the WebSocket verification: puts a judged visitor on the scope."""

    def __init__(self, app: Any, user: AinisaUser) -> None:
        self.app, self.user = app, user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "state": {**scope.get("state", {}), STATE_KEY: self.user}}
        await self.app(scope, receive, send)


def starlette_client(ws_user: AinisaUser | None = None) -> TestClient:
    middleware = [Middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)]
    if ws_user is not None:
        middleware.append(Middleware(FakeWebSocketIdentity, user=ws_user))
    middleware.append(Middleware(AuthenticationMiddleware, backend=AinisaAuthBackend()))
    app = Starlette(
        routes=[
            Route("/chat/whoami", whoami, methods=["POST"]),
            Route("/chat/members", members, methods=["POST"]),
            Route("/open/whoami", whoami, methods=["POST"]),
            WebSocketRoute("/ws/members", members_ws),
        ],
        middleware=middleware,
    )
    return TestClient(app)


def post(client: TestClient, path: str, user: dict[str, Any] | None) -> Any:
    body: dict[str, Any] = {"widget_id": "w_pro", "message": "hi"}
    if user is not None:
        body["user"] = user
    return client.post(path, json=body)


def test_a_verified_visitor_is_an_authenticated_user_with_the_scope() -> None:
    with starlette_client() as client:
        seen = post(client, "/chat/whoami", ADA).json()
    assert seen == {
        "authenticated": True,
        "display_name": "Ada Lovelace",
        "identity": "42",
        "scopes": [VERIFIED_SCOPE],
        "type": "AinisaAuthUser",
    }


@pytest.mark.parametrize(
    "user",
    [None, {"user_id": "42", "user_hash": "0" * 64, "firstname": "Eve"}, {"firstname": "Eve"}],
    ids=["anonymous", "invalid-hash", "missing-user-id"],
)
def test_an_unverified_visitor_is_not_authenticated(user: dict[str, Any] | None) -> None:
    with starlette_client() as client:
        seen = post(client, "/chat/whoami", user).json()
        assert post(client, "/chat/members", user).status_code == 403
    assert seen["authenticated"] is False and seen["scopes"] == []
    assert seen["identity"] == "" and seen["display_name"] == ""


def test_requires_lets_a_verified_visitor_through() -> None:
    with starlette_client() as client:
        answer = post(client, "/chat/members", {"user_id": "42", "user_hash": GOOD})
    assert (answer.status_code, answer.json()) == (200, {"user_id": "42"})


def test_where_the_middleware_does_not_run_the_user_is_starlettes_unauthenticated() -> None:
    with starlette_client() as client:
        seen = post(client, "/open/whoami", ADA).json()
    assert seen["type"] == "UnauthenticatedUser" and seen["scopes"] == []


def test_requires_on_a_websocket() -> None:
    verified = AinisaUser("w_pro", "shop", Status.VERIFIED, user_id="42")
    with (
        starlette_client(ws_user=verified) as client,
        client.websocket_connect("/ws/members") as ws,
    ):
        assert ws.receive_json() == {"user_id": "42"}
    refused = AinisaUser("w_pro", "shop", Status.INVALID_HASH)
    with (
        starlette_client(ws_user=refused) as client,
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/ws/members") as ws,
    ):
        ws.receive_json()


def verified_only(request: FastAPIRequest) -> AinisaAuthUser:
    if VERIFIED_SCOPE not in request.auth.scopes:
        raise HTTPException(status_code=403)
    user: AinisaAuthUser = request.user
    return user


fastapi_app = FastAPI()
fastapi_app.add_middleware(AuthenticationMiddleware, backend=AinisaAuthBackend())
fastapi_app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)


@fastapi_app.post("/chat/me")
async def me(user: Annotated[AinisaAuthUser, Depends(verified_only)]) -> dict[str, str]:
    return {"identity": user.identity, "status": user.ainisa.status.value}


@fastapi_app.post("/chat/members")
@requires(VERIFIED_SCOPE)
async def fastapi_members(request: FastAPIRequest) -> dict[str, str]:
    return {"identity": request.user.identity}


def test_fastapi_dependency_and_requires_read_request_user() -> None:
    with TestClient(fastapi_app) as client:
        assert post(client, "/chat/members", ADA).json() == {"identity": "42"}
        assert post(client, "/chat/members", None).status_code == 403
        assert post(client, "/chat/me", ADA).json() == {"identity": "42", "status": "verified"}
        assert post(client, "/chat/me", None).status_code == 403


def test_display_name_falls_back_to_the_id_and_repr_shows_no_names() -> None:
    user = AinisaAuthUser(AinisaUser("w", "b", Status.VERIFIED, user_id="7", email="a@b.c"))
    assert user.display_name == "7"
    assert repr(user) == "AinisaAuthUser(status='verified', identity='7')"
