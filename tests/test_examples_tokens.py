"""The token example in examples/tokens/ runs and behaves as its README says."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from starlette.testclient import TestClient

from ainisa_middleware import user_hash, user_token

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tokens" / "app.py"
HEADERS = {"X-Ainisa-Widget-Id": "token-widget"}


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    name = "ainisa_example_tokens_app"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


def test_the_page_token_verifies_and_opens_the_members_endpoint(example: ModuleType) -> None:
    with TestClient(example.app) as client:
        page = client.get("/").text
        match = re.search(r"window\.ainisaUser = (\{.*?\});</script>", page)
        assert match is not None
        user = json.loads(match.group(1))
        assert example.SECRET not in page and "user_hash" not in user
        answer = client.post("/chat", json={"user": user}, headers=HEADERS).json()
        assert answer == {"reply": "Welcome back, Ada", "user_id": "42"}
        orders = client.post("/chat/orders", json={"user": user}, headers=HEADERS)
        assert (orders.status_code, orders.json()) == (200, {"orders_of": "42"})


def test_anything_else_is_a_guest_and_forbidden(example: ModuleType) -> None:
    other = user_token(example.SECRET, 42, widget_id="other-widget")
    hashed = {"user_id": "42", "user_hash": user_hash(example.SECRET, "42")}
    with TestClient(example.app) as client:
        for user, status in (({"user_token": other}, "invalid_token"), (hashed, "invalid_hash")):
            answer = client.post("/chat", json={"user": user}, headers=HEADERS).json()
            assert answer == {"reply": "Hello, guest", "status": status}
            refused = client.post("/chat/orders", json={"user": user}, headers=HEADERS)
            assert refused.status_code == 403
