"""Properties of tokens through the ASGI adapter, read with Starlette's own parsers.

Whatever a request does with ``user_token`` (any source, encoded names, valid or
forged, beside a hash, repeated), no parser of the app finds it, and the app sees
identity only when a valid token for the request's widget verified.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware

from .cases import GOOD, PATHS, RESOLVER, TOK, TOK_ADA, TOK_EXPIRED, TOK_FOREIGN, TOK_OTHER_WIDGET


async def _echo(request: Request) -> JSONResponse:
    seen: dict[str, Any] = {"query": list(request.query_params.multi_items())}
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        seen["form"] = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    elif kind.startswith("application/json"):
        body = await request.body()
        seen["json"] = json.loads(body) if body else None
    user = getattr(request.state, STATE_KEY, None)
    seen["status"] = None if user is None else user.status.value
    seen["user_id"] = None if user is None else user.user_id
    return JSONResponse(seen)


CLIENT = TestClient(
    AinisaMiddleware(
        Starlette(routes=[Route("/chat", _echo, methods=["GET", "POST"])]),
        resolver=RESOLVER,
        paths=PATHS,
    )
)

TOKENS = st.sampled_from([TOK, TOK_ADA, TOK_EXPIRED, TOK_FOREIGN, TOK_OTHER_WIDGET, "x.y.z", ""])
NAMES = st.sampled_from(["user_token", "user%5Ftoken", "user_%74oken"])
EXTRAS = st.lists(
    st.sampled_from(
        [
            ("user_id", "42"),
            ("user_id", "7"),
            ("firstname", "Eve"),
            ("user_hash", GOOD),
            ("m", "hi"),
        ]
    ),
    max_size=3,
)


def _flat(name: str, token: str, extras: list[tuple[str, str]], repeat: bool) -> str:
    parts = [f"{name}={quote(token, safe='')}"] + [f"{k}={quote(v)}" for k, v in extras]
    if repeat:
        parts.append(f"user_token={quote(token, safe='')}")
    return "&".join(parts)


def _verifies(token: str, fields: dict[str, str], widget: str) -> bool:
    """The contract, restated: which requests of these strategies verify."""
    if token:
        return (
            "user_hash" not in fields
            and widget == "w_tok"  # the only widget accepting tokens that these are made for
            and token in (TOK, TOK_ADA)
            and fields.get("user_id", "42") == "42"
        )
    return widget in ("w_pro", "w_both") and fields.get("user_id") == "42" and "user_hash" in fields


def _check(seen: dict[str, Any], tokens: tuple[str, ...]) -> None:
    text = json.dumps(seen)
    for token in tokens:
        if token:
            assert token not in text
    names = [k for k, _ in seen["query"]] + [k for k, _ in seen.get("form", [])]
    doc = seen.get("json")
    if isinstance(doc, dict):
        names += list(doc) + list(doc.get("user", {}) or {})
    assert "user_token" not in names and "user_hash" not in names
    if seen["status"] != "verified":
        assert not {"user_id", "firstname", "email"} & set(names)
    else:
        assert seen["user_id"] == "42"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    where=st.sampled_from(["query", "form"]),
    name=NAMES,
    token=TOKENS,
    extras=EXTRAS,
    repeat=st.booleans(),
    widget=st.sampled_from(["w_tok", "w_both", "w_pro"]),
)
def test_flat_tokens_never_reach_the_app(
    where: str, name: str, token: str, extras: list[tuple[str, str]], repeat: bool, widget: str
) -> None:
    data = _flat(name, token, extras, repeat)
    headers = {"X-Ainisa-Widget-Id": widget}
    if where == "query":
        response = CLIENT.get(f"/chat?{data}", headers=headers)
    else:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = CLIENT.post("/chat", content=data.encode(), headers=headers)
    if response.status_code == 400:
        assert response.json()["error"] == "malformed_request"  # a repeated field
        return
    assert response.status_code == 200
    seen = response.json()
    _check(seen, (token,))
    assert (seen["status"] == "verified") is _verifies(token, dict(extras), widget)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    token=TOKENS,
    extras=EXTRAS,
    top=st.booleans(),
    widget=st.sampled_from(["w_tok", "w_both", "w_pro"]),
)
def test_json_tokens_never_reach_the_app(
    token: str, extras: list[tuple[str, str]], top: bool, widget: str
) -> None:
    user: dict[str, Any] = {"user_token": token, **dict(extras)}
    body: dict[str, Any] = {"message": "hi", "user": user}
    if top:
        body["user_token"] = token
    response = CLIENT.post("/chat", json=body, headers={"X-Ainisa-Widget-Id": widget})
    assert response.status_code == 200
    seen = response.json()
    _check(seen, (token,))
    assert (seen["status"] == "verified") is _verifies(token, dict(extras), widget)
