"""WebSocket chat behind real servers with a real client (the ``websockets`` package).

uvicorn offers the ``websocket.http.response`` extension in each of its
WebSocket implementations, so a refused connect is an HTTP response with the
contract's status and JSON. Daphne (running the Django example, Channels
underneath) offers none: a refused connect is accepted and closed at once with
1008 and the error code as the reason.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ainisa_middleware import user_hash
from ainisa_middleware._types import ASGIApp
from tests.cases import ALL_HASHES, GOOD
from tests.test_websocket import make_app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "django"
#: Seconds any one step may take before the test fails.
TIMEOUT = 10.0
START_TIMEOUT = 60.0
ADA = {"user_id": "42", "user_hash": GOOD, "firstname": "Ada"}


@contextmanager
def uvicorn_server(app: ASGIApp, ws: str) -> Iterator[str]:
    """``app`` under uvicorn with its ``ws`` implementation, in a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # log_config=None: uvicorn leaves logging alone, and its records reach caplog.
    config = uvicorn.Config(app, ws=ws, lifespan="off", log_level="info", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()


# uvicorn's legacy "websockets" implementation is deprecated upstream (it warns
# when chosen); "websockets-sansio" is what its "auto" picks with websockets installed.
IMPLEMENTATIONS = ["websockets-sansio", "wsproto"]


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def uvicorn_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with uvicorn_server(make_app(mode="enforce"), request.param) as url:
        yield url


def _open(url: str, **kw: Any) -> ClientConnection:
    return connect(url, open_timeout=TIMEOUT, close_timeout=2, **kw)


def test_uvicorn_identity_in_the_first_frame(uvicorn_url: str) -> None:
    with _open(f"{uvicorn_url}/chat/ws?widget_id=w_pro") as ws:
        ws.send(json.dumps({"msg": "hi", "user": ADA}))
        first = json.loads(ws.recv(timeout=TIMEOUT))
        ws.send(json.dumps({"msg": "again", "user": {"user_id": "7"}, "user_hash": GOOD}))
        later = json.loads(ws.recv(timeout=TIMEOUT))
    assert first["user"]["status"] == "verified" and first["user"]["user_id"] == "42"
    assert json.loads(first["frame"]) == {
        "msg": "hi",
        "user": {"user_id": "42", "firstname": "Ada"},
    }
    assert json.loads(later["frame"]) == {"msg": "again"}
    assert later["user"]["user_id"] == "42"


def test_uvicorn_identity_in_the_connect_url_is_rewritten(uvicorn_url: str) -> None:
    with _open(f"{uvicorn_url}/chat/ws?widget_id=w_pro&user_id=42&user_hash={GOOD}") as ws:
        ws.send('{"msg":"hi"}')
        seen = json.loads(ws.recv(timeout=TIMEOUT))
    assert seen["query"] == "widget_id=w_pro&user_id=42"
    assert seen["user"]["status"] == "verified"


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("widget_id=w_nope", 404, "unknown_widget"),
        ("", 400, "missing_widget_id"),
        (f"widget_id=w_pro&user_id=43&user_hash={GOOD}", 401, "identity_verification_failed"),
    ],
)
def test_uvicorn_denies_the_handshake_with_the_contract_error(
    uvicorn_url: str, query: str, status: int, error: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _open(f"{uvicorn_url}/chat/ws?{query}")
    response = refused.value.response
    assert response.status_code == status
    assert json.loads(response.body or b"")["error"] == error


def test_uvicorn_closes_on_a_forged_first_frame_in_enforce_mode(uvicorn_url: str) -> None:
    with _open(f"{uvicorn_url}/chat/ws?widget_id=w_pro") as ws:
        ws.send(json.dumps({"msg": "hi", "user": {**ADA, "user_id": "43"}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1008,
        "identity_verification_failed",
    )


@pytest.mark.parametrize(
    ("frame", "code"), [(b"\x00\x01", 1003), ("not json", 1003), ("x" * 1_048_577, 1009)]
)
def test_uvicorn_closes_on_frames_it_cannot_inspect(
    uvicorn_url: str, frame: str | bytes, code: int
) -> None:
    with _open(f"{uvicorn_url}/chat/ws?widget_id=w_pro") as ws:
        ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


def test_identity_in_the_first_frame_stays_out_of_the_access_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Why the widget sends identity in a frame: servers log the connect URL."""
    with (
        caplog.at_level(logging.INFO),
        uvicorn_server(make_app(), "websockets-sansio") as url,
    ):
        with _open(f"{url}/chat/ws?widget_id=w_pro") as ws:
            ws.send(json.dumps({"user": ADA}))
            assert json.loads(ws.recv(timeout=TIMEOUT))["user"]["status"] == "verified"
        in_frame = caplog.text
        with _open(f"{url}/chat/ws?widget_id=w_pro&user_id=42&user_hash={GOOD}") as ws:
            ws.send("{}")
            ws.recv(timeout=TIMEOUT)
    assert "/chat/ws?widget_id=w_pro" in in_frame
    assert not any(h in in_frame for h in ALL_HASHES)
    assert GOOD in caplog.text  # the access log keeps what a connect URL carries


# -- Django Channels under Daphne: the Django example -------------------------------

DJANGO_SECRET = "django-example-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def daphne_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("channels-example") / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "AINISA_EXAMPLE_DB": str(database),
        "AINISA_DEMO_SECRET": DJANGO_SECRET,
        "PYTHONPATH": str(EXAMPLE),
    }
    env.pop("PYTHONDEVMODE", None)
    for command in (["migrate", "--verbosity", "0"], ["seed_demo"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    port = _free_port()
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["chatsite.asgi:application"],
            cwd=EXAMPLE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "daphne did not start: " + log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(TIMEOUT)


def test_channels_consumer_reads_the_verified_visitor(daphne_url: str) -> None:
    ann = {"user_id": "42", "user_hash": user_hash(DJANGO_SECRET, "42"), "firstname": "Ann"}
    with _open(f"{daphne_url}/chat/ws?widget_id=demo-widget") as ws:
        ws.send(json.dumps({"message": "hi", "user": ann}))
        first = json.loads(ws.recv(timeout=TIMEOUT))
        ws.send(json.dumps({"message": "again", "user": {"user_id": "1", "firstname": "Eve"}}))
        later = json.loads(ws.recv(timeout=TIMEOUT))
    assert first == {"reply": "Welcome back, Ann!", "status": "verified", "echo": "hi"}
    assert later == {"reply": "Welcome back, Ann!", "status": "verified", "echo": "again"}


def test_channels_tampered_first_frame_is_a_guest(daphne_url: str) -> None:
    forged = {"user_id": "43", "user_hash": user_hash(DJANGO_SECRET, "42")}
    with _open(f"{daphne_url}/chat/ws?widget_id=demo-widget") as ws:
        ws.send(json.dumps({"message": "hi", "user": forged}))
        seen = json.loads(ws.recv(timeout=TIMEOUT))
    assert seen == {"reply": "Hello, guest!", "status": "invalid_hash", "echo": "hi"}


# Daphne offers no denial extension, lets an application close only with 1000
# or 3000-4999 (4008 stands for 1008) and drops the reason.
@pytest.mark.parametrize("query", ["widget_id=nope", ""])
def test_daphne_without_the_denial_extension_accepts_then_closes(
    daphne_url: str, query: str
) -> None:
    with _open(f"{daphne_url}/chat/ws?{query}") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4008, "")


def test_channels_binary_frame_closes_1003(daphne_url: str) -> None:
    with _open(f"{daphne_url}/chat/ws?widget_id=demo-widget") as ws:
        ws.send(b"\x00")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
