"""FastAPI dependencies over the ASGI middleware."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from ainisa_middleware import AinisaUser
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.fastapi import (
    AinisaIdentityError,
    get_ainisa_user,
    identity_error_handler,
    require_verified_user,
)

from .cases import ADA, PATHS, RESOLVER


def build(add_middleware: bool = True) -> FastAPI:
    app = FastAPI()

    @app.post("/chat")
    def chat(user: Annotated[AinisaUser | None, Depends(get_ainisa_user)]) -> dict[str, object]:
        return {"status": user.status if user else None, "user_id": user.user_id if user else None}

    @app.post("/chat/private")
    async def private(
        user: Annotated[AinisaUser, Depends(require_verified_user)],
    ) -> dict[str, object]:
        return {"hello": user.firstname, "signed": sorted(user.signed_fields)}

    @app.get("/public")
    def public(user: Annotated[AinisaUser | None, Depends(get_ainisa_user)]) -> dict[str, object]:
        return {"user": user is not None}

    if add_middleware:
        app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)
    return app


client = TestClient(build())


def test_get_ainisa_user_returns_the_visitor() -> None:
    response = client.post("/chat", json={"widget_id": "w_pro", "user": ADA})
    assert response.json() == {"status": "verified", "user_id": "42"}
    response = client.post("/chat", json={"widget_id": "w_pro", "user": {**ADA, "user_id": "1"}})
    assert response.json() == {"status": "invalid_hash", "user_id": None}


def test_get_ainisa_user_is_none_where_the_middleware_did_not_run() -> None:
    assert client.get("/public").json() == {"user": False}


def test_require_verified_user_lets_verified_visitors_in() -> None:
    response = client.post("/chat/private", json={"widget_id": "w_pro", "user": ADA})
    assert response.status_code == 200
    assert response.json() == {"hello": "Ada", "signed": ["user_id"]}


def test_require_verified_user_answers_the_contract_401() -> None:
    for body in (
        {"widget_id": "w_pro"},
        {"widget_id": "w_pro", "user": {**ADA, "user_hash": "0" * 64}},
    ):
        response = client.post("/chat/private", json=body)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "identity_required"
        assert set(response.json()) == {"error", "detail"}


def test_identity_error_handler_for_apps_wrapped_by_hand() -> None:
    inner = build(add_middleware=False)
    inner.add_exception_handler(AinisaIdentityError, identity_error_handler)
    wrapped = AinisaMiddleware(inner, resolver=RESOLVER, paths=PATHS)
    response = TestClient(wrapped).post("/chat/private", json={"widget_id": "w_pro"})
    assert response.status_code == 401
    assert response.json()["error"] == "identity_required"
