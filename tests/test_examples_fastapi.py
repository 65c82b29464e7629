"""The FastAPI example in examples/fastapi/ runs and behaves as its README says."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.testclient import TestClient

from ainisa_middleware import Business, StaticResolver, user_hash
from ainisa_middleware.asgi import AinisaMiddleware

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi" / "app.py"
SECRET = "example-test-secret"
WIDGET = "demo-widget"
ORIGIN = "http://localhost:8000"
HEADERS = {"x-ainisa-widget-id": WIDGET}


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    name = "ainisa_example_fastapi_app"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the models' annotations through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


@pytest.fixture
def client(example: ModuleType) -> Iterator[TestClient]:
    with TestClient(example.create_app(secret=SECRET)) as test_client:
        yield test_client


def signed(user_id: str, secret: str = SECRET, **names: str) -> dict[str, Any]:
    return {"user_id": user_id, "user_hash": user_hash(secret, user_id), **names}


def test_verified_visitor_is_greeted_and_remembered(client: TestClient) -> None:
    user = signed("42", firstname="Ann")
    reply = client.post("/chat", json={"message": "hi", "user": user}, headers=HEADERS)
    assert reply.status_code == 200
    assert reply.json() == {"reply": "Welcome back, Ann!", "status": "verified", "user_id": "42"}

    history = client.post("/chat/history", json={"user": signed("42")}, headers=HEADERS)
    assert history.status_code == 200
    assert history.json() == {"user_id": "42", "messages": ["hi"]}


def test_integer_user_id_is_verified_as_its_decimal_string(client: TestClient) -> None:
    user = {"user_id": 42, "user_hash": user_hash(SECRET, 42)}
    reply = client.post("/chat", json={"message": "hi", "user": user}, headers=HEADERS)
    assert reply.json()["user_id"] == "42"


def test_anonymous_visitor_chats_but_cannot_read_history(client: TestClient) -> None:
    reply = client.post("/chat", json={"message": "hi"}, headers=HEADERS)
    assert reply.json() == {
        "reply": "Hello! How can I help you today?",
        "status": "anonymous",
        "user_id": None,
    }
    history = client.post("/chat/history", json={}, headers=HEADERS)
    assert history.status_code == 401
    assert history.json()["error"] == "identity_required"
    assert history.headers["content-type"] == "application/json"


def test_widget_id_in_query_or_body_works_like_the_header(client: TestClient) -> None:
    body = {"message": "hi", "user": signed("7"), "widget_id": WIDGET}
    assert client.post("/chat", json=body).json()["status"] == "verified"
    query = client.post(f"/chat?widget_id={WIDGET}", json={"message": "hi", "user": signed("7")})
    assert query.json()["status"] == "verified"


@pytest.mark.parametrize(
    "user",
    [
        pytest.param({**signed("42"), "user_id": "43"}, id="other-user-id"),
        pytest.param(signed("42", secret="someone-elses-secret"), id="wrong-secret"),
        pytest.param({"user_id": "42", "user_hash": "not-a-hash"}, id="garbage-hash"),
    ],
)
def test_tampered_identity_is_stripped_to_anonymous(
    client: TestClient, user: dict[str, Any]
) -> None:
    reply = client.post("/chat", json={"message": "hi", "user": user}, headers=HEADERS)
    assert reply.status_code == 200
    assert reply.json() == {
        "reply": "Hello! How can I help you today?",
        "status": "invalid_hash",
        "user_id": None,
    }
    history = client.post("/chat/history", json={"user": user}, headers=HEADERS)
    assert history.status_code == 401


def test_tampered_identity_is_rejected_in_enforce_mode(example: ModuleType) -> None:
    with TestClient(example.create_app(secret=SECRET, mode="enforce")) as enforcing:
        user = {**signed("42"), "user_id": "43"}
        reply = enforcing.post("/chat", json={"message": "hi", "user": user}, headers=HEADERS)
    assert reply.status_code == 401
    assert reply.json()["error"] == "identity_verification_failed"


def test_names_are_not_signed_so_edited_names_still_verify(client: TestClient) -> None:
    # The hash covers user_id only: a visitor can change firstname freely.
    user = signed("42", firstname="Mallory")
    reply = client.post("/chat", json={"message": "hi", "user": user}, headers=HEADERS)
    assert reply.json()["reply"] == "Welcome back, Mallory!"
    assert reply.json()["user_id"] == "42"


def test_unknown_widget_is_404(client: TestClient) -> None:
    reply = client.post("/chat", json={"message": "hi"}, headers={"x-ainisa-widget-id": "nope"})
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_widget"


def test_paths_outside_chat_are_not_inspected(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_preflight_is_answered_by_cors_and_never_reaches_the_middleware(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ainisa_middleware")
    preflight = client.options(
        "/chat",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-ainisa-widget-id",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "x-ainisa-widget-id" in preflight.headers["access-control-allow-headers"].lower()
    assert [r for r in caplog.records if r.name == "ainisa_middleware"] == []


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        pytest.param("/chat", {"message": "hi"}, {}, 400, "missing_widget_id", id="400"),
        pytest.param("/chat/history", {}, HEADERS, 401, "identity_required", id="401-dependency"),
        pytest.param(
            "/chat",
            {"message": "hi"},
            {"x-ainisa-widget-id": "nope"},
            404,
            "unknown_widget",
            id="404",
        ),
    ],
)
def test_middleware_errors_carry_cors_headers(
    client: TestClient,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    reply = client.post(path, json=body, headers={**headers, "origin": ORIGIN})
    assert reply.status_code == status
    assert reply.json()["error"] == code
    assert reply.headers["access-control-allow-origin"] == ORIGIN


def test_enforce_401_carries_cors_headers(example: ModuleType) -> None:
    with TestClient(example.create_app(secret=SECRET, mode="enforce")) as enforcing:
        reply = enforcing.post(
            "/chat",
            json={"message": "hi", "user": {"user_id": "42"}},
            headers={**HEADERS, "origin": ORIGIN},
        )
    assert reply.status_code == 401
    assert reply.json()["error"] == "identity_verification_failed"
    assert reply.headers["access-control-allow-origin"] == ORIGIN


def test_the_wrong_order_loses_cors_headers_on_errors() -> None:
    # What the quickstart warns about: CORS added first ends up inside ours.
    app = FastAPI()
    app.add_middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["POST"])
    app.add_middleware(
        AinisaMiddleware,
        resolver=StaticResolver({WIDGET: Business(id="shop", secrets=(SECRET,))}),
        paths=["/chat"],
    )
    with TestClient(app) as wrong:
        error = wrong.post("/chat", json={}, headers={"origin": ORIGIN})
        preflight = wrong.options(
            "/chat", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
        )
    assert error.status_code == 400
    assert "access-control-allow-origin" not in error.headers
    # OPTIONS is never intercepted, so even in this order the preflight passes.
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN


def test_module_level_app_reads_the_environment(example: ModuleType) -> None:
    app = example.app_from_env(
        {
            "AINISA_DEMO_SECRET": "from-env",
            "AINISA_DEMO_WIDGET_ID": "env-widget",
            "AINISA_DEMO_ORIGINS": "https://shop.example, https://www.shop.example",
        }
    )
    with TestClient(app) as env_client:
        reply = env_client.post(
            "/chat",
            json={"message": "hi", "user": signed("9", secret="from-env")},
            headers={"x-ainisa-widget-id": "env-widget", "origin": "https://www.shop.example"},
        )
    assert reply.json()["status"] == "verified"
    assert reply.headers["access-control-allow-origin"] == "https://www.shop.example"


def test_default_app_uses_the_demo_settings(example: ModuleType) -> None:
    assert isinstance(example.app, FastAPI)  # what `uvicorn app:app` serves
    with TestClient(example.app_from_env({})) as default_client:
        reply = default_client.post(
            "/chat",
            json={"message": "hi", "user": signed("1", secret=example.DEMO_SECRET)},
            headers=HEADERS,
        )
    assert reply.json()["status"] == "verified"


def test_streamed_reply_arrives_as_server_sent_events(client: TestClient) -> None:
    user = signed("42", firstname="Ann")
    with client.stream(
        "POST", "/chat/stream", json={"message": "hi", "user": user}, headers=HEADERS
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        chunks = list(reply.iter_raw())
    assert len(chunks) > 2  # one event per chunk, not one buffered reply
    events = b"".join(chunks).decode().split("\n\n")
    assert events[:3] == ["data: Hello", "data: Ann,", "data: you"]
    assert "event: done\ndata: {}" in events


def test_upload_keeps_the_file_and_verifies_identity_parts(client: TestClient) -> None:
    data = bytes(range(256)) * 1000
    identity = signed("42", email="ann@example.com")
    reply = client.post(
        "/chat/upload",
        data={"message": "see attached", **identity},
        files={"file": ("shot.png", data, "image/png")},
        headers=HEADERS,
    )
    assert reply.status_code == 200
    assert reply.json() == {
        "message": "see attached",
        "file": {"name": "shot.png", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        "status": "verified",
        "user_id": "42",
    }
    forged = {**identity, "user_hash": "0" * 64}
    reply = client.post(
        "/chat/upload",
        data={"message": "see attached", **forged},
        files={"file": ("shot.png", data, "image/png")},
        headers=HEADERS,
    )
    assert reply.json()["status"] == "invalid_hash" and reply.json()["user_id"] is None
