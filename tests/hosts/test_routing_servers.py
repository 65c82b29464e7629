"""Paths as routers read them, mounts and raw request lines, behind real servers.

Each server listens on 127.0.0.1 on a socket bound here to port 0 (handed to a
subprocess by file descriptor, or to a server running in a thread), and the
requests go out through ``http.client``, which sends the target as written:
``//chat``, ``/%2Fchat`` and ``/x/../chat`` reach the server unnormalised.

What the servers do with such targets (observed, and what makes each case count):

- gunicorn keeps ``//chat`` and ``/x/../chat`` in ``PATH_INFO``, decodes
  ``/%2Fchat`` to ``//chat``, and keeps the whole request line in ``RAW_URI``.
  Flask routes ``//chat``, ``///chat`` and ``/%2Fchat`` to its ``/chat`` view.
- werkzeug's development server collapses ``//chat`` itself but hands on
  ``/%2Fchat`` as ``//chat``; it keeps the request line in ``RAW_URI`` and ``REQUEST_URI``.
- waitress collapses repeated slashes, keeps ``/x/../chat``, and keeps the
  request line in ``REQUEST_URI``.
- uvicorn, hypercorn and daphne hand on ``//chat`` and ``/x/../chat`` as sent and
  decode ``/%2Fchat`` to ``//chat``; none puts the query in ``raw_path``.
  ``uvicorn --root-path /api`` prefixes the path with the root path (``GET /chat``
  has path ``/api/chat``); hypercorn's and daphne's leave the path as sent, and
  Starlette's router, which strips the root path, routes ``/chat`` and ``/api/chat`` alike.

Every echo view reports what the handler read (see ``apps.py``); a request under
``/chat`` in any reading must reach it with no unverified identity and no
``user_hash`` anywhere, and with the trusted user set.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
import uvicorn
import waitress.server
from werkzeug.serving import make_server

from ainisa_middleware import user_hash
from tests.cases import GOOD, OTHER_SECRET
from tests.hosts.apps import asgi_app, flask_app, mounted_asgi_app, rooted_asgi_app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: Seconds a request may take; a server that has not answered by then has failed.
TIMEOUT = 10.0
#: Seconds a subprocess server may take to load its app and answer.
START_TIMEOUT = 30.0

FORGED = user_hash(OTHER_SECRET, "victim")
#: Unverified identity: a well-formed hash made with someone else's secret.
FORGED_USER = {
    "user_id": "victim",
    "user_hash": FORGED,
    "firstname": "Mallory",
    "email": "evil@example.com",
}
#: None of these may reach a handler of a path under /chat, in any form.
FORGED_MARKERS = ("user_hash", FORGED, "victim", "Mallory", "evil@example.com")
VALID_USER = {"user_id": "42", "user_hash": GOOD, "email": "ann@example.com"}

#: The ASGI apps the subprocess servers load (from the repository root).
APP = "tests.hosts.apps:asgi_app"
ROOTED_APP = "tests.hosts.apps:rooted_asgi_app"

SOURCES = ["query", "json", "form"]
#: Every target a router may read as /chat, for the apps served at the root.
CHAT_TARGETS = ["/chat", "//chat", "///chat", "/%2Fchat", "/x/../chat"]


# --- clients -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any  # the parsed JSON, or the text when the body is not JSON


def send(
    port: int,
    method: str,
    target: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        data: Any = json.loads(raw)
    except ValueError:
        data = raw.decode("latin-1")
    return Reply(response.status, data)


def identity_request(
    port: int,
    path: str,
    source: str,
    fields: dict[str, str],
    *,
    widget: str = "w_pro",
) -> Reply:
    """``fields`` sent to ``path`` in the query, a JSON body or a form body."""
    if source == "query":
        query = urlencode({"widget_id": widget, **fields, "x": "1"})
        return send(port, "GET", f"{path}?{query}")
    headers = {"X-Ainisa-Widget-Id": widget}
    if source == "json":
        document: dict[str, Any] = {"message": "hi", "user": fields}
        if "user_hash" in fields:
            document["user_hash"] = fields["user_hash"]  # a top-level copy goes too
        body = json.dumps(document).encode()
        headers["Content-Type"] = "application/json"
    else:
        body = urlencode({**fields, "message": "hi"}).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return send(port, "POST", f"{path}?x=1", body=body, headers=headers)


# --- what the handler may see ------------------------------------------------------------


def assert_forgery_stripped(reply: Reply, *, status: str = "invalid_hash") -> None:
    """The handler ran, with the trusted user set and no unverified identity anywhere."""
    assert reply.status == 200, reply
    seen = reply.data
    assert seen["user"] is not None, f"the middleware did not inspect {seen['path']!r}"
    assert seen["user"]["status"] == status
    assert seen["user"]["user_id"] is None
    text = json.dumps(seen)  # query args, JSON, form, body, raw request line
    leaked = [marker for marker in FORGED_MARKERS if marker in text]
    assert not leaked, (leaked, seen)


def assert_verified(reply: Reply, source: str) -> None:
    """A valid identity verified through the same route; its hash reached nobody."""
    assert reply.status == 200, reply
    seen = reply.data
    assert seen["user"] is not None
    assert seen["user"]["status"] == "verified"
    assert seen["user"]["user_id"] == "42"
    assert seen["user"]["email"] == "ann@example.com"
    text = json.dumps(seen)
    assert "user_hash" not in text
    assert GOOD not in text
    if source == "query":
        assert seen["args"]["user_id"] == ["42"]
    elif source == "json":
        assert seen["json"]["user"] == {"user_id": "42", "email": "ann@example.com"}
    else:
        assert seen["form"]["user_id"] == ["42"]


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply
    assert reply.data["error"] == code


# --- servers -----------------------------------------------------------------------------


def _listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener


def _port(listener: socket.socket) -> int:
    return int(listener.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers any request; fails at once if it exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            send(port, "GET", "/ready")
            return
        except (OSError, http.client.HTTPException):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"server did not start (exit {process.poll()}):\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.05)


@contextlib.contextmanager
def subprocess_server(
    command: Callable[[int], list[str]],
    log: Path,
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> Iterator[int]:
    """``python -m <command(fd)>`` serving on a socket bound here; stopped on exit."""
    listener = _listener()
    port = _port(listener)
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(cwd)]), **(env or {})}
    try:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", *command(listener.fileno())],
                cwd=cwd,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(listener.fileno(),),
            )
    finally:
        listener.close()  # the server holds its own copy
    try:
        _wait_ready(port, process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def gunicorn(app: str) -> Callable[[int], list[str]]:
    return lambda fd: [
        "gunicorn",
        "--bind",
        f"fd://{fd}",
        "--workers",
        "1",
        "--graceful-timeout",
        "3",
        "--log-level",
        "warning",
        app,
    ]


@contextlib.contextmanager
def uvicorn_in_thread(app: Any, **options: Any) -> Iterator[int]:
    listener = _listener()
    config = uvicorn.Config(app, lifespan="off", log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield _port(listener)
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        listener.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="module")
def gunicorn_flask(logs: Path) -> Iterator[int]:
    with subprocess_server(gunicorn("tests.hosts.apps:flask_app"), logs / "gunicorn.log") as port:
        yield port


@pytest.fixture(scope="module")
def gunicorn_dispatcher(logs: Path) -> Iterator[int]:
    command = gunicorn("tests.hosts.apps:dispatched_app")
    with subprocess_server(command, logs / "gunicorn-dispatcher.log") as port:
        yield port


@pytest.fixture(scope="module")
def werkzeug_flask() -> Iterator[int]:
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()
    thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def waitress_flask() -> Iterator[int]:
    # poll() reports a socket closed by stop() from this thread where select() would
    # raise EBADF in the server's thread.
    server = waitress.server.create_server(
        flask_app, host="127.0.0.1", port=0, threads=2, asyncore_use_poll=True
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield int(server.effective_port)  # type: ignore[union-attr]
    server.close()
    thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def uvicorn_asgi() -> Iterator[int]:
    with uvicorn_in_thread(asgi_app) as port:
        yield port


@pytest.fixture(scope="module")
def uvicorn_mount() -> Iterator[int]:
    with uvicorn_in_thread(mounted_asgi_app) as port:
        yield port


@pytest.fixture(scope="module")
def hypercorn_asgi(logs: Path) -> Iterator[int]:
    def command(fd: int) -> list[str]:
        return ["hypercorn", "--bind", f"fd://{fd}", "--log-level", "warning", APP]

    with subprocess_server(command, logs / "hypercorn.log") as port:
        yield port


@pytest.fixture(scope="module")
def daphne_asgi(logs: Path) -> Iterator[int]:
    def command(fd: int) -> list[str]:
        return ["daphne", "--fd", str(fd), "-v", "0", APP]

    with subprocess_server(command, logs / "daphne.log") as port:
        yield port


@pytest.fixture(scope="module")
def uvicorn_root_path() -> Iterator[int]:
    with uvicorn_in_thread(rooted_asgi_app, root_path="/api") as port:
        yield port


@pytest.fixture(scope="module")
def hypercorn_root_path(logs: Path) -> Iterator[int]:
    def command(fd: int) -> list[str]:
        return ["hypercorn", "--bind", f"fd://{fd}", "--root-path", "/api", ROOTED_APP]

    with subprocess_server(command, logs / "hypercorn-root-path.log") as port:
        yield port


@pytest.fixture(scope="module")
def daphne_root_path(logs: Path) -> Iterator[int]:
    def command(fd: int) -> list[str]:
        return ["daphne", "--fd", str(fd), "-v", "0", "--root-path", "/api", ROOTED_APP]

    with subprocess_server(command, logs / "daphne-root-path.log") as port:
        yield port


WSGI_SERVERS = ["gunicorn_flask", "werkzeug_flask", "waitress_flask"]
ASGI_SERVERS = ["uvicorn_asgi", "hypercorn_asgi", "daphne_asgi"]
#: Where each WSGI server keeps the request line, query included (the ASGI servers
#: here keep none: their ``raw_path`` never holds the query).
RAW_TARGETS: dict[str, tuple[str, ...]] = {
    "gunicorn_flask": ("RAW_URI",),
    "werkzeug_flask": ("RAW_URI", "REQUEST_URI"),
    "waitress_flask": ("REQUEST_URI",),
}


@pytest.fixture(params=WSGI_SERVERS + ASGI_SERVERS)
def server(request: pytest.FixtureRequest) -> tuple[str, int]:
    """Each server with the echo app at its root: (fixture name, port)."""
    name: str = request.param
    return name, request.getfixturevalue(name)


# --- every server, every reading of /chat ------------------------------------------------


def test_a_path_outside_chat_reaches_the_handler_untouched(server: tuple[str, int]) -> None:
    # The control: the catch-all echo shows what slips through, raw request line included.
    name, port = server
    reply = identity_request(port, "/other", "query", FORGED_USER)
    assert reply.status == 200
    assert reply.data["user"] is None
    assert reply.data["args"]["user_hash"] == [FORGED]
    for key in RAW_TARGETS.get(name, ()):
        assert FORGED in reply.data["raw_targets"][key]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("path", CHAT_TARGETS)
def test_forged_identity_never_reaches_the_handler(
    server: tuple[str, int], path: str, source: str
) -> None:
    _, port = server
    assert_forgery_stripped(identity_request(port, path, source, FORGED_USER))


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("path", CHAT_TARGETS)
def test_valid_identity_verifies_through_the_same_route(
    server: tuple[str, int], path: str, source: str
) -> None:
    _, port = server
    assert_verified(identity_request(port, path, source, VALID_USER), source)


@pytest.mark.parametrize("server_name", WSGI_SERVERS)
def test_the_raw_request_line_keeps_no_hash(
    server_name: str, request: pytest.FixtureRequest
) -> None:
    port: int = request.getfixturevalue(server_name)
    reply = identity_request(port, "/chat", "query", FORGED_USER)
    assert_forgery_stripped(reply)
    raw_targets = reply.data["raw_targets"]
    for key in RAW_TARGETS[server_name]:
        # Rewritten or removed; where kept, it holds what the app's query holds.
        if key in raw_targets:
            assert raw_targets[key].partition("?")[2] == reply.data["query_string"]


@pytest.mark.parametrize("server_name", WSGI_SERVERS)
def test_a_fragment_in_the_raw_request_line_keeps_no_identity(
    server_name: str, request: pytest.FixtureRequest
) -> None:
    # The servers cut the fragment from QUERY_STRING but keep it in RAW_URI and
    # REQUEST_URI; read as a query string, the request line names a user.
    port: int = request.getfixturevalue(server_name)
    fragment = urlencode({"user_id": "victim", "user_hash": FORGED})
    reply = send(port, "GET", f"//chat?widget_id=w_pro&x=1#&{fragment}")
    assert reply.status == 200, reply
    assert reply.data["user"]["status"] == "anonymous"
    for key, target in reply.data["raw_targets"].items():
        read = parse_qs(target.partition("?")[2])
        assert "user_id" not in read and "user_hash" not in read, (key, target)


@pytest.mark.parametrize("server_name", ASGI_SERVERS)
@pytest.mark.parametrize("path", ["/chat", "//chat", "/%2Fchat"])
def test_raw_path_keeps_no_hash(
    server_name: str, path: str, request: pytest.FixtureRequest
) -> None:
    port: int = request.getfixturevalue(server_name)
    reply = identity_request(port, path, "query", FORGED_USER)
    assert_forgery_stripped(reply)
    raw_path = reply.data["raw_targets"]["raw_path"]
    assert "user_hash" not in raw_path
    assert raw_path.partition("?")[0] == path  # the path as sent


# --- errors on a path that only a normalising router reads as /chat ---------------------


@pytest.mark.parametrize("path", ["//chat", "/%2Fchat", "/x/../chat"])
def test_errors_answer_on_odd_paths(server: tuple[str, int], path: str) -> None:
    _, port = server
    # A business that requires identity: anonymous and stripped visitors alike.
    assert_error(identity_request(port, path, "json", {}, widget="w_req"), 401, "identity_required")
    assert_error(
        identity_request(port, path, "json", FORGED_USER, widget="w_req"), 401, "identity_required"
    )
    assert_error(
        identity_request(port, path, "json", FORGED_USER, widget="w_nobody"), 404, "unknown_widget"
    )
    plain = {"X-Ainisa-Widget-Id": "w_pro", "Content-Type": "text/plain"}
    text = f"user_id=victim&user_hash={FORGED}".encode()
    assert_error(send(port, "POST", path, body=text, headers=plain), 415, "unsupported_media_type")
    # Identity in the query and in the body at once.
    both = json.dumps({"user": FORGED_USER}).encode()
    target = f"{path}?{urlencode({'user_id': 'victim', 'user_hash': FORGED})}"
    headers = {"X-Ainisa-Widget-Id": "w_pro", "Content-Type": "application/json"}
    assert_error(
        send(port, "POST", target, body=both, headers=headers), 400, "conflicting_user_data"
    )


# --- OPTIONS: only a genuine preflight passes untouched ----------------------------------


@pytest.mark.parametrize("path", ["/chat", "//chat"])
@pytest.mark.parametrize("preflight_header", [False, True], ids=["plain", "with-acrm"])
def test_options_with_a_body_is_inspected(
    server: tuple[str, int], path: str, preflight_header: bool
) -> None:
    _, port = server
    headers = {"X-Ainisa-Widget-Id": "w_pro", "Content-Type": "application/json"}
    if preflight_header:
        headers["Access-Control-Request-Method"] = "POST"
    body = json.dumps({"user": FORGED_USER, "user_hash": FORGED}).encode()
    reply = send(port, "OPTIONS", f"{path}?x=1", body=body, headers=headers)
    assert_forgery_stripped(reply)


def test_a_genuine_preflight_passes_untouched(server: tuple[str, int]) -> None:
    _, port = server
    headers = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    # No widget ID: inspected, this would be 400 missing_widget_id.
    reply = send(port, "OPTIONS", "/chat?x=1", headers=headers)
    assert reply.status == 200, reply
    assert reply.data["view"] == "chat"
    assert reply.data["user"] is None
    assert reply.data["query_string"] == "x=1"


# --- mounts: DispatcherMiddleware, Starlette's Mount, uvicorn --root-path -----------------

MOUNTED_TARGETS = ["/api/chat", "/api//chat", "/api/%2Fchat", "/api/x/../chat"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("path", MOUNTED_TARGETS)
def test_dispatcher_mount_under_gunicorn(gunicorn_dispatcher: int, path: str, source: str) -> None:
    forged = identity_request(gunicorn_dispatcher, path, source, FORGED_USER)
    assert_forgery_stripped(forged)
    assert forged.data["script_name"] == "/api"
    assert_verified(identity_request(gunicorn_dispatcher, path, source, VALID_USER), source)


def test_dispatcher_root_app_is_not_inspected(gunicorn_dispatcher: int) -> None:
    reply = send(gunicorn_dispatcher, "GET", f"/?user_hash={FORGED}")
    assert reply == Reply(200, {"view": "root"})


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("path", ["/api/chat", "/api//chat", "/api/%2Fchat"])
def test_starlette_mount_under_uvicorn(uvicorn_mount: int, path: str, source: str) -> None:
    forged = identity_request(uvicorn_mount, path, source, FORGED_USER)
    assert_forgery_stripped(forged)
    assert forged.data["root_path"] == "/api"
    assert_verified(identity_request(uvicorn_mount, path, source, VALID_USER), source)


#: The targets each server's --root-path /api makes Starlette route to /chat: uvicorn
#: prefixes the path with the root path, hypercorn and daphne hand it on as sent.
ROOT_PATH_ROUTES = {
    "uvicorn_root_path": ["/chat"],
    "hypercorn_root_path": ["/chat", "/api/chat"],
    "daphne_root_path": ["/chat", "/api/chat"],
}


@pytest.fixture(params=list(ROOT_PATH_ROUTES))
def root_path_server(request: pytest.FixtureRequest) -> tuple[str, int]:
    """Each ASGI server run with --root-path /api: (fixture name, port)."""
    name: str = request.param
    return name, request.getfixturevalue(name)


@pytest.mark.parametrize("source", SOURCES)
def test_root_path_routes(root_path_server: tuple[str, int], source: str) -> None:
    name, port = root_path_server
    for path in ROOT_PATH_ROUTES[name]:
        forged = identity_request(port, path, source, FORGED_USER)
        assert_forgery_stripped(forged)
        assert (forged.data["view"], forged.data["root_path"]) == ("chat", "/api")
        assert_verified(identity_request(port, path, source, VALID_USER), source)


@pytest.mark.parametrize("path", ["/chat", "/api/chat", "//chat", "/api//chat", "/api/%2Fchat"])
def test_root_path_other_targets_never_see_forgery(
    root_path_server: tuple[str, int], path: str
) -> None:
    # Whatever the router makes of these, a handler that gets one sees no forgery.
    _, port = root_path_server
    reply = identity_request(port, path, "query", FORGED_USER)
    if reply.status == 404:
        assert reply.data == "Not Found"  # Starlette's router: no handler ran
    else:
        assert_forgery_stripped(reply)


def test_root_path_preflight_and_options(root_path_server: tuple[str, int]) -> None:
    _, port = root_path_server
    headers = {"Access-Control-Request-Method": "POST", "Origin": "https://shop.example"}
    preflight = send(port, "OPTIONS", "/chat", headers=headers)
    assert preflight.status == 200
    assert preflight.data["user"] is None
    body = json.dumps({"user": FORGED_USER}).encode()
    json_headers = {"X-Ainisa-Widget-Id": "w_pro", "Content-Type": "application/json"}
    assert_forgery_stripped(send(port, "OPTIONS", "/chat", body=body, headers=json_headers))


# --- the repository's examples -----------------------------------------------------------

EXAMPLE_SECRET = "example-server-secret"
EXAMPLE_ENV = {"AINISA_DEMO_SECRET": EXAMPLE_SECRET, "AINISA_DEMO_WIDGET_ID": "demo-widget"}
EXAMPLE_HEADERS = {"X-Ainisa-Widget-Id": "demo-widget", "Content-Type": "application/json"}


def _example_post(port: int, path: str, user: dict[str, str]) -> Reply:
    body = json.dumps({"message": "hi", "user": user}).encode()
    return send(port, "POST", path, body=body, headers=EXAMPLE_HEADERS)


def _signed(user_id: str) -> dict[str, str]:
    return {"user_id": user_id, "user_hash": user_hash(EXAMPLE_SECRET, user_id)}


@pytest.fixture(scope="module")
def flask_example(logs: Path) -> Iterator[int]:
    command = gunicorn("app:app")
    cwd = EXAMPLES / "flask"
    with subprocess_server(command, logs / "flask-example.log", cwd=cwd, env=EXAMPLE_ENV) as port:
        yield port


@pytest.fixture(scope="module")
def fastapi_example(logs: Path) -> Iterator[int]:
    def command(fd: int) -> list[str]:
        return ["uvicorn", "--fd", str(fd), "--root-path", "/api", "--log-level", "warning"] + [
            "app:app"
        ]

    cwd = EXAMPLES / "fastapi"
    with subprocess_server(command, logs / "fastapi-example.log", cwd=cwd, env=EXAMPLE_ENV) as port:
        yield port


@pytest.mark.parametrize("path", ["/chat", "//chat", "/%2Fchat"])
def test_flask_example_under_gunicorn(flask_example: int, path: str) -> None:
    forged = _example_post(flask_example, path, {"user_id": "42", "user_hash": FORGED})
    assert forged == Reply(200, {"reply": "Hello, guest!", "status": "invalid_hash"})
    valid = _example_post(flask_example, path, {**_signed("42"), "firstname": "Ann"})
    assert valid == Reply(200, {"reply": "Welcome back, Ann!", "status": "verified"})
    history = _example_post(
        flask_example, f"{path}/history", {"user_id": "42", "user_hash": FORGED}
    )
    assert history.status == 401


def test_fastapi_example_under_uvicorn_root_path(fastapi_example: int) -> None:
    forged = _example_post(fastapi_example, "/chat", {"user_id": "42", "user_hash": FORGED})
    assert forged == Reply(
        200,
        {"reply": "Hello! How can I help you today?", "status": "invalid_hash", "user_id": None},
    )
    valid = _example_post(fastapi_example, "/chat", {**_signed("42"), "firstname": "Ann"})
    assert valid == Reply(
        200, {"reply": "Welcome back, Ann!", "status": "verified", "user_id": "42"}
    )
    history = _example_post(
        fastapi_example, "/chat/history", {"user_id": "42", "user_hash": FORGED}
    )
    assert history.status == 401
    assert history.data["error"] == "identity_required"
    mine = _example_post(fastapi_example, "/chat/history", _signed("42"))
    assert mine == Reply(200, {"user_id": "42", "messages": ["hi"]})
