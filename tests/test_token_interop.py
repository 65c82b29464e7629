"""Tokens across languages: Node's ``jsonwebtoken`` and a PHP signer on ``hash_hmac``.

Tokens the two make verify here, through the middleware; ours verify in
``jsonwebtoken``. The Node package comes from ``tests/interop`` (installed by
``make test`` from its lock file, so no test reaches the network).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ainisa_middleware import Status, user_token
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.tokens import check_token

from .cases import BUSINESSES, OLD_SECRET, PATHS, RESOLVER, SECRET
from .test_real_clients import _client

INTEROP = Path(__file__).parent / "interop"
WIDGET = "w_tok"
BUSINESS = BUSINESSES[WIDGET]

#: Signs the tokens named on the command line; prints {name: token}.
NODE_SIGNER = r"""
const jwt = require('jsonwebtoken');
const [secret, oldSecret, widget] = process.argv.slice(1);
const now = Math.floor(Date.now() / 1000);
const names = {firstname: 'Zoë', lastname: "O'Brien", email: 'zoe@example.com'};
const out = {
  plain: jwt.sign({sub: '42'}, secret, {algorithm: 'HS256', audience: widget, expiresIn: 600}),
  claims: jwt.sign({sub: '42', ...names}, secret,
                   {algorithm: 'HS256', audience: widget, expiresIn: '10m'}),
  kid: jwt.sign({sub: '42'}, oldSecret,
                {algorithm: 'HS256', audience: widget, expiresIn: 600, keyid: 'sec_old'}),
  expired: jwt.sign({sub: '42', iat: now - 7200}, secret,
                    {algorithm: 'HS256', audience: widget, expiresIn: 3600}),
  hs512: jwt.sign({sub: '42'}, secret, {algorithm: 'HS512', audience: widget, expiresIn: 600}),
  other_widget: jwt.sign({sub: '42'}, secret,
                         {algorithm: 'HS256', audience: 'w_pro', expiresIn: 600}),
  too_long: jwt.sign({sub: '42'}, secret, {algorithm: 'HS256', audience: widget, expiresIn: '2d'}),
  not_before: jwt.sign({sub: '42'}, secret,
                       {algorithm: 'HS256', audience: widget, expiresIn: 600, notBefore: 300}),
};
process.stdout.write(JSON.stringify(out));
"""

#: Verifies each token of argv[2:] strictly; prints [{ok, sub | error}].
NODE_VERIFIER = r"""
const jwt = require('jsonwebtoken');
const [secret, widget, ...tokens] = process.argv.slice(1);
const out = tokens.map((token) => {
  try {
    const claims = jwt.verify(token, secret, {algorithms: ['HS256'], audience: widget,
                                              maxAge: '1d'});
    return {ok: true, claims};
  } catch (e) {
    return {ok: false, error: e.name};
  }
});
process.stdout.write(JSON.stringify(out));
"""

#: The signer a PHP site writes with nothing but hash_hmac (no JWT library).
PHP_SIGNER = r"""
[$_, $secret, $widget, $userId, $ttl] = $argv;
function b64url(string $raw): string {
    return rtrim(strtr(base64_encode($raw), '+/', '-_'), '=');
}
$now = time();
$header = ['alg' => 'HS256', 'typ' => 'JWT'];
$payload = ['sub' => $userId, 'aud' => $widget, 'iat' => $now, 'exp' => $now + (int) $ttl,
            'firstname' => 'Zoë', 'email' => 'zoe@example.com'];
$input = b64url(json_encode($header)) . '.' . b64url(json_encode($payload, JSON_UNESCAPED_UNICODE));
echo $input . '.' . b64url(hash_hmac('sha256', $input, $secret, true));
"""


def _node(script: str, *args: str) -> Any:
    node = _client("node")
    modules = INTEROP / "node_modules"
    if not (modules / "jsonwebtoken").is_dir():
        if os.environ.get("CI"):
            pytest.fail(
                "tests/interop/node_modules is missing but CI is set: make test installs it"
            )
        pytest.skip("jsonwebtoken is not installed; run 'make interop'")
    done = subprocess.run(
        [node, "-e", script, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
        env={**os.environ, "NODE_PATH": str(modules)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _php(script: str, *args: str) -> str:
    done = subprocess.run(
        [_client("php"), "-r", script, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def _chat(request: Request) -> JSONResponse:
    user = request.state.ainisa_user
    body = json.loads(await request.body() or b"{}")
    return JSONResponse(
        {
            "status": user.status.value,
            "user_id": user.user_id,
            "firstname": user.firstname,
            "signed": sorted(user.signed_fields),
            "body": body,
        }
    )


def _post(token: str) -> dict[str, Any]:
    app = AinisaMiddleware(
        Starlette(routes=[Route("/chat", _chat, methods=["POST"])]), resolver=RESOLVER, paths=PATHS
    )
    with TestClient(app) as client:
        body = {"widget_id": WIDGET, "message": "hi", "user": {"user_token": token}}
        answer: dict[str, Any] = client.post("/chat", json=body).json()
    return answer


@pytest.fixture(scope="module")
def node_tokens() -> dict[str, str]:
    tokens: dict[str, str] = _node(NODE_SIGNER, SECRET, OLD_SECRET, WIDGET)
    return tokens


def test_a_jsonwebtoken_token_is_verified_by_the_middleware(node_tokens: dict[str, str]) -> None:
    answer = _post(node_tokens["claims"])
    assert (answer["status"], answer["user_id"], answer["firstname"]) == ("verified", "42", "Zoë")
    assert answer["signed"] == ["email", "firstname", "lastname", "user_id"]
    assert answer["body"]["user"] == {
        "user_id": "42",
        "firstname": "Zoë",
        "lastname": "O'Brien",
        "email": "zoe@example.com",
    }
    assert check_token(node_tokens["plain"], BUSINESS, WIDGET).status is Status.VERIFIED
    assert check_token(node_tokens["kid"], BUSINESS, WIDGET).matched == 1


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("expired", Status.EXPIRED_TOKEN),
        ("hs512", Status.INVALID_TOKEN),
        ("other_widget", Status.INVALID_TOKEN),
        ("too_long", Status.INVALID_TOKEN),
        ("not_before", Status.INVALID_TOKEN),
    ],
)
def test_a_jsonwebtoken_token_outside_the_rules_is_refused(
    node_tokens: dict[str, str], name: str, status: Status
) -> None:
    assert check_token(node_tokens[name], BUSINESS, WIDGET).status is status


def test_our_tokens_verify_in_jsonwebtoken() -> None:
    ours = [
        user_token(SECRET, "42", widget_id=WIDGET),
        user_token(SECRET, 7, widget_id=WIDGET, firstname="Zoë", email="zoe@example.com"),
        user_token(SECRET, "42", widget_id="w_pro"),  # another widget: refused there too
        user_token(SECRET, "42", widget_id=WIDGET, now=time.time() - 7200),  # expired
    ]
    results = _node(NODE_VERIFIER, SECRET, WIDGET, *ours)
    assert [r["ok"] for r in results] == [True, True, False, False]
    assert results[1]["claims"]["sub"] == "7" and results[1]["claims"]["firstname"] == "Zoë"
    assert results[2]["error"] == "JsonWebTokenError"
    assert results[3]["error"] == "TokenExpiredError"


def test_a_php_hash_hmac_token_is_verified_by_the_middleware() -> None:
    token = _php(PHP_SIGNER, SECRET, WIDGET, "42", "600")
    answer = _post(token)
    assert (answer["status"], answer["user_id"], answer["firstname"]) == ("verified", "42", "Zoë")
    assert answer["signed"] == ["email", "firstname", "user_id"]
    too_long = _php(PHP_SIGNER, SECRET, WIDGET, "42", str(86_400 + 1))
    assert check_token(too_long, BUSINESS, WIDGET).status is Status.INVALID_TOKEN
    foreign = _php(PHP_SIGNER, "not-the-secret", WIDGET, "42", "600")
    assert _post(foreign)["status"] == "invalid_token"
