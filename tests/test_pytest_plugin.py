"""The pytest plugin, run the way a host app's own suite runs it (``pytester``)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from ainisa_middleware import verify_user_hash
from ainisa_middleware.pytest_plugin import TAMPERINGS, ChatPayloads

HOST_APP = """
from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware.asgi import AinisaMiddleware


async def chat(request: Request) -> JSONResponse:
    user = request.state.ainisa_user
    body = await request.json()
    return JSONResponse({"status": user.status, "user_id": user.user_id, "body": body})


@pytest.fixture
def client(ainisa_resolver):
    app = Starlette(routes=[Route("/chat", chat, methods=["POST"])])
    app.add_middleware(AinisaMiddleware, resolver=ainisa_resolver, paths=["/chat"])
    with TestClient(app) as client:
        yield client
"""

HOST_TESTS = """
from __future__ import annotations

import pytest


def test_signed_visitor_is_verified(client, ainisa_signed_payload):
    response = client.post("/chat", json=ainisa_signed_payload(user_id="42", message="hi"))
    assert response.json()["status"] == "verified"
    assert response.json()["user_id"] == "42"
    assert response.json()["body"] == {
        "widget_id": WIDGET, "user": {"user_id": "42"}, "message": "hi"
    }


@pytest.mark.parametrize("how", ["user_id", "hash", "secret", "no_hash"])
def test_tampered_visitor_is_not_verified(client, ainisa_tampered_payload, how):
    response = client.post("/chat", json=ainisa_tampered_payload(user_id=7, how=how))
    assert response.json()["status"] != "verified"
    assert response.json()["user_id"] is None
    assert "user" not in response.json()["body"]


def test_token_signed_visitor_is_verified(client, ainisa_payloads):
    body = ainisa_payloads.token_signed(user_id=7, firstname="Ada", message="hi")
    assert set(body["user"]) == {"user_token"}
    response = client.post("/chat", json=body)
    assert response.json()["status"] == "verified"
    assert response.json()["body"]["user"] == {"user_id": "7", "firstname": "Ada"}


def test_anonymous_and_header(client, ainisa_payloads):
    response = client.post(
        "/chat", json=ainisa_payloads.anonymous(message="x"), headers=ainisa_payloads.headers()
    )
    assert response.json()["status"] == "anonymous"


def test_widget_id(ainisa_widget_id, ainisa_business, ainisa_secret):
    assert ainisa_widget_id == WIDGET
    assert ainisa_business.secrets == (ainisa_secret,)
"""


def _host_suite(pytester: pytest.Pytester, conftest_extra: str = "") -> None:
    pytester.makeconftest(HOST_APP + conftest_extra)


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins.get("ainisa") == "ainisa_middleware.pytest_plugin"


def test_host_suite_tests_its_integration_with_the_fixtures(pytester: pytest.Pytester) -> None:
    _host_suite(pytester)
    pytester.makepyfile(test_host=HOST_TESTS.replace("WIDGET", '"test-widget"'))
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=8)


def test_host_suite_can_override_widget_and_secret(pytester: pytest.Pytester) -> None:
    _host_suite(
        pytester,
        '\n@pytest.fixture\ndef ainisa_widget_id():\n    return "shop.main"\n'
        '\n@pytest.fixture\ndef ainisa_secret():\n    return "fixed-secret"\n',
    )
    pytester.makepyfile(
        test_host=HOST_TESTS.replace("WIDGET", '"shop.main"')
        + "\n\ndef test_fixed(ainisa_secret):\n    assert ainisa_secret == 'fixed-secret'\n"
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=9)


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(ainisa_signed_payload):\n    pass\n")
    result = pytester.runpytest("-p", "no:ainisa")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'ainisa_signed_payload' not found*"])


def test_each_test_gets_a_fresh_random_secret(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        seen = []

        def test_a(ainisa_secret):
            seen.append(ainisa_secret)

        def test_b(ainisa_secret):
            seen.append(ainisa_secret)
            assert len(set(seen)) == 2 and all(len(s) >= 32 for s in seen)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_payloads_carry_the_five_fields_only_as_given() -> None:
    payloads = ChatPayloads(widget_id="w", secret="s")
    body = payloads.signed(5, firstname="Ada", email="a@x", message="hi")
    assert body == {
        "widget_id": "w",
        "user": {
            "user_id": "5",
            "user_hash": body["user"]["user_hash"],
            "firstname": "Ada",
            "email": "a@x",
        },
        "message": "hi",
    }
    assert verify_user_hash("s", "5", body["user"]["user_hash"])


@pytest.mark.parametrize("how", TAMPERINGS)
def test_every_tampering_fails_verification(how: str) -> None:
    payloads = ChatPayloads(widget_id="w", secret="s")
    user = payloads.tampered("0", how=how, lastname="L")["user"]  # type: ignore[arg-type]
    assert user["user_id"] == "0"
    assert user["lastname"] == "L"
    assert not verify_user_hash("s", "0", user.get("user_hash"))


def test_unknown_tampering_is_refused() -> None:
    with pytest.raises(ValueError, match="how must be one of"):
        ChatPayloads(widget_id="w", secret="s").tampered(how="nothing")  # type: ignore[arg-type]
