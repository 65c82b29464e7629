"""The demo's chat backend over a WebSocket: the same answers as over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ainisa_demo.app import create_app
from ainisa_demo.data import SHOP
from tests.test_demo import signed

URL = f"/chat/ws?widget_id={SHOP.widget_id}"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(f"sqlite:///{tmp_path / 'demo.db'}")) as client:
        yield client


def test_first_frame_identity_is_verified_and_settles_the_connection(client: TestClient) -> None:
    ada = signed(client, "1")
    with client.websocket_connect(URL) as ws:
        ws.send_json({"message": "Where is my order?", "user": ada})
        first = ws.receive_json()
        ws.send_json({"message": "And Grace's?", "user": signed(client, "2")})
        later = ws.receive_json()
    assert first["status"] == "verified" and first["reply"].startswith("Hi Ada!")
    assert "user_hash" not in first["received"] and first["received"]["user_id"] == "1"
    assert later["user_id"] == "1" and later["received"] is None  # settled: the user is removed
    assert 'the last was "Where is my order?"' in later["reply"]


def test_tampered_first_frame_is_a_guest_and_bad_messages_are_answered(
    client: TestClient,
) -> None:
    with client.websocket_connect(URL) as ws:
        ws.send_json({"message": "hi", "user": {**signed(client, "2"), "user_id": "1"}})
        first = ws.receive_json()
        ws.send_json({"message": ""})
        bad = ws.receive_json()
    assert first["status"] == "invalid_hash" and first["received"] is None
    assert bad["error"] == "bad_message"


def test_enforce_mode_closes_a_tampered_first_frame(tmp_path: Path) -> None:
    with TestClient(create_app(f"sqlite:///{tmp_path / 'demo.db'}", mode="enforce")) as client:
        forged = {**signed(client, "2"), "user_id": "1"}
        with client.websocket_connect(URL) as ws:
            ws.send_json({"message": "hi", "user": forged})
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
    assert (closed.value.code, closed.value.reason) == (1008, "identity_verification_failed")
