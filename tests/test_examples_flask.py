"""The Flask example in examples/flask/ runs and behaves as its README says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from flask.testing import FlaskClient

from ainisa_middleware import user_hash

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "flask" / "app.py"
SECRET = "flask-example-secret"
WIDGET = {"X-Ainisa-Widget-Id": "demo-widget"}


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ainisa_example_flask_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client(example: ModuleType) -> FlaskClient:
    return example.create_app(secret=SECRET).test_client()  # type: ignore[no-any-return]


def signed(user_id: str, **names: str) -> dict[str, str]:
    return {"user_id": user_id, "user_hash": user_hash(SECRET, user_id), **names}


def test_verified_visitor_is_greeted_and_remembered(client: FlaskClient) -> None:
    reply = client.post(
        "/chat", json={"message": "hi", "user": signed("42", firstname="Ann")}, headers=WIDGET
    )
    assert reply.get_json() == {"reply": "Welcome back, Ann!", "status": "verified"}
    history = client.post("/chat/history", json={"user": signed("42")}, headers=WIDGET)
    assert history.get_json() == {"user_id": "42", "messages": ["hi"]}


def test_forged_hash_is_a_guest_and_has_no_history(client: FlaskClient) -> None:
    forged = {"user_id": "42", "user_hash": "forged"}
    reply = client.post("/chat", json={"message": "hi", "user": forged}, headers=WIDGET)
    assert reply.get_json() == {"reply": "Hello, guest!", "status": "invalid_hash"}
    history = client.post("/chat/history", json={"user": forged}, headers=WIDGET)
    assert history.status_code == 401


def test_missing_widget_is_the_contract_error(client: FlaskClient) -> None:
    reply = client.post("/chat", json={"message": "hi"})
    assert reply.status_code == 400
    assert reply.get_json() == {
        "error": "missing_widget_id",
        "detail": "The request does not name a widget.",
    }


def test_health_is_not_inspected(client: FlaskClient) -> None:
    assert client.get("/health").get_json() == {"ok": True, "inspected": False}


def test_module_level_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AINISA_DEMO_SECRET", "from-the-environment")
    monkeypatch.setenv("AINISA_DEMO_WIDGET_ID", "env-widget")
    spec = importlib.util.spec_from_file_location("ainisa_example_flask_env", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    user = {"user_id": "1", "user_hash": user_hash("from-the-environment", "1")}
    reply = module.app.test_client().post(
        "/chat", json={"user": user}, headers={"X-Ainisa-Widget-Id": "env-widget"}
    )
    assert reply.get_json()["status"] == "verified"
