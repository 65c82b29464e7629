"""Real clients over real sockets: Node's fetch and PHP's HTTP wrapper, signing as the guide does.

Each client computes ``user_hash`` itself (``crypto.createHmac`` / ``hash_hmac``),
sends a chat request to a server on 127.0.0.1 (uvicorn for the ASGI adapter,
the standard library's WSGI server for the WSGI one) and prints what came back:
what the app read and the status the middleware decided.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.wsgi import ENVIRON_KEY, AinisaWSGIMiddleware

from .cases import PATHS, RESOLVER, SECRET, echo_payload

NODE_CLIENT = r"""
const crypto = require('crypto');
const [url, secret, userId, kind, tamper] = process.argv.slice(1);
const userHash = crypto.createHmac('sha256', secret).update(userId).digest('hex');
const user = {user_id: tamper ? tamper : userId, user_hash: userHash,
              firstname: 'Zoë', lastname: "O'Brien", email: 'zoe@example.com'};
let options;
if (kind === 'json') {
  options = {method: 'POST', headers: {'Content-Type': 'application/json',
             'X-Ainisa-Widget-Id': 'w_pro'}, body: JSON.stringify({message: 'hi', user})};
} else {
  options = {method: 'POST', headers: {'X-Ainisa-Widget-Id': 'w_pro'},
             body: new URLSearchParams({message: 'hi', ...user})};
}
fetch(url, options).then(async (r) => {
  process.stdout.write(JSON.stringify({status: r.status, body: await r.json()}));
}).catch((e) => { console.error(e); process.exit(1); });
"""

PHP_CLIENT = r"""
[$_, $url, $secret, $userId, $kind, $tamper] = array_pad($argv, 6, '');
$userHash = hash_hmac('sha256', $userId, $secret);
$user = ['user_id' => $tamper !== '' ? $tamper : $userId, 'user_hash' => $userHash,
         'firstname' => 'Zoë', 'lastname' => "O'Brien", 'email' => 'zoe@example.com'];
if ($kind === 'json') {
    $body = json_encode(['message' => 'hi', 'user' => $user]);
    $type = 'application/json';
} else {
    $body = http_build_query(['message' => 'hi'] + $user);
    $type = 'application/x-www-form-urlencoded';
}
$context = stream_context_create(['http' => [
    'method' => 'POST', 'ignore_errors' => true, 'content' => $body,
    'header' => "Content-Type: $type\r\nX-Ainisa-Widget-Id: w_pro\r\n",
]]);
$reply = file_get_contents($url, false, $context);
preg_match('{HTTP/\S+ (\d+)}', $http_response_header[0], $match);
echo json_encode(['status' => (int) $match[1], 'body' => json_decode($reply, true)]);
"""


async def _asgi_echo(request: Request) -> Response:
    body = await request.body()
    user = getattr(request.state, STATE_KEY, None)
    query = request.scope["query_string"].decode("latin-1")
    return JSONResponse(echo_payload(body, query, user, request.headers.get("content-length")))


def _wsgi_echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    payload = echo_payload(
        body, environ.get("QUERY_STRING", ""), environ.get(ENVIRON_KEY), str(length)
    )
    data = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module", params=["asgi-uvicorn", "wsgi-wsgiref"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "asgi-uvicorn":
        app = Starlette(routes=[Route("/chat", _asgi_echo, methods=["POST"])])
        app.add_middleware(AinisaMiddleware, resolver=RESOLVER, paths=PATHS)
        port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:  # pragma: no cover - a broken environment
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/chat"
        server.should_exit = True
        thread.join(10)
    else:
        wsgi = AinisaWSGIMiddleware(_wsgi_echo, resolver=RESOLVER, paths=PATHS)
        httpd = make_server("127.0.0.1", 0, wsgi, handler_class=_Quiet)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_port}/chat"
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _client(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not on PATH but CI is set: make test installs it as root")
        pytest.skip(f"{name} is not on PATH; make test installs it when run as root")
    return path


def _send(client: str, url: str, kind: str, tamper: str = "") -> dict[str, Any]:
    if client == "node":
        command = [_client("node"), "-e", NODE_CLIENT, url, SECRET, "42", kind, tamper]
    else:
        command = [_client("php"), "-r", PHP_CLIENT, url, SECRET, "42", kind, tamper]
    done = subprocess.run(
        command, capture_output=True, text=True, encoding="utf-8", timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


@pytest.mark.parametrize("client", ["node", "php"])
@pytest.mark.parametrize("kind", ["json", "form"])
def test_a_client_signing_as_the_guide_shows_is_verified(
    server_url: str, client: str, kind: str
) -> None:
    reply = _send(client, server_url, kind)
    assert reply["status"] == 200
    seen = reply["body"]
    assert seen["user"]["status"] == "verified"
    assert seen["user"]["user_id"] == "42"
    assert seen["user"]["firstname"] == "Zoë"
    assert seen["user"]["lastname"] == "O'Brien"
    body = seen["body"].encode("latin-1").decode("utf-8")
    assert "user_hash" not in body
    if kind == "json":
        assert json.loads(body)["user"] == {
            "user_id": "42",
            "firstname": "Zoë",
            "lastname": "O'Brien",
            "email": "zoe@example.com",
        }


@pytest.mark.parametrize("client", ["node", "php"])
@pytest.mark.parametrize("kind", ["json", "form"])
def test_a_client_that_tampers_with_the_user_id_is_stripped(
    server_url: str, client: str, kind: str
) -> None:
    reply = _send(client, server_url, kind, tamper="1")
    assert reply["status"] == 200
    seen = reply["body"]
    assert seen["user"]["status"] == "invalid_hash"
    assert seen["user"]["user_id"] is None
    body = seen["body"].encode("latin-1").decode("utf-8")
    for field in ("user_hash", "user_id", "zoe@example.com", "Zo"):
        assert field not in body
    assert "hi" in body
