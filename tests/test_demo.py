"""The demo app through Starlette's TestClient, and its command line.

The browser tests (``test_demo_browser.py``) show the same flows in Chromium;
these are the fast checks of every branch behind them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from ainisa_demo.app import SESSION_COOKIE, create_app
from ainisa_demo.data import BAKERY, CAFE, SHOP, USERS
from ainisa_demo.server import banner, base_url, serve
from ainisa_demo.store import TABLE_PREFIX, DemoStore, sqlite_file
from ainisa_middleware import user_hash
from ainisa_middleware.cli import main
from ainisa_middleware.stores.sql import SQLStore

WIDGET = {"X-Ainisa-Widget-Id": SHOP.widget_id}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'demo.db'}"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(db_url)) as client:
        yield client


def secret_of(client: TestClient, business: Any = SHOP) -> str:
    store: DemoStore = client.app.state.demo_store  # type: ignore[attr-defined]
    return store.signing_secret(business)


def rendered_user(page: str) -> str:
    match = re.search(r"window\.ainisaUser = (\{.*?\});</script>", page)
    assert match is not None, "the page renders no window.ainisaUser"
    return match.group(1)


def signed(client: TestClient, user_id: str, business: Any = SHOP) -> dict[str, str]:
    customer = USERS.get(user_id)
    return {
        "user_id": user_id,
        "user_hash": user_hash(secret_of(client, business), user_id),
        "firstname": customer.firstname if customer else "",
        "lastname": customer.lastname if customer else "",
        "email": customer.email if customer else "",
    }


def chat(client: TestClient, user: dict[str, str] | None, widget: str = SHOP.widget_id) -> Any:
    body: dict[str, Any] = {"message": "Where is my order?"}
    if user is not None:
        body["user"] = user
    return client.post("/chat", json=body, headers={"X-Ainisa-Widget-Id": widget})


# -- the website ------------------------------------------------------------------


def test_guest_page_renders_empty_user_and_loads_the_widget(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.text
    assert '"user_id": ""' in rendered_user(page)
    assert '"user_hash": ""' in rendered_user(page)
    assert 'src="/static/widget.js"' in page
    assert 'data-widget-id="wid_demo"' in page
    # The user snippet comes before the widget script, as the vendor guide requires.
    assert page.index("window.ainisaUser =") < page.index("/static/widget.js")


def test_page_scripts_carry_the_csp_nonce(client: TestClient) -> None:
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    inline = re.findall(r"<script nonce=\"([^\"]+)\">", response.text)
    assert inline == [nonce.group(1)]
    assert client.get("/").headers["content-security-policy"] != policy  # fresh per response


def test_logged_in_page_signs_the_user_id_with_the_stores_secret(client: TestClient) -> None:
    response = client.post("/login", data={"user": "1", "next": "/"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = client.get("/").text
    user = rendered_user(page)
    assert f'"user_hash": "{user_hash(secret_of(client), "1")}"' in user
    assert '"firstname": "Ada"' in user
    assert 'Logged in as <strong id="who">Ada Lovelace</strong>' in page
    # Each business signs with its own secret.
    cafe = rendered_user(client.get("/free").text)
    assert f'"user_hash": "{user_hash(secret_of(client, CAFE), "1")}"' in cafe
    assert secret_of(client, CAFE) != secret_of(client)


def test_logout_returns_to_the_guest_view(client: TestClient) -> None:
    client.post("/login", data={"user": "2", "next": "/free"})
    response = client.post("/logout", data={"next": "/free"}, follow_redirects=False)
    assert response.headers["location"] == "/free"
    assert SESSION_COOKIE not in client.cookies
    assert 'Browsing as <strong id="who">a guest</strong>' in client.get("/free").text


def test_login_refuses_unknown_users_and_foreign_redirects(client: TestClient) -> None:
    refused = client.post("/login", data={"user": "99"}, follow_redirects=False)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unknown_user"
    response = client.post(
        "/login", data={"user": "1", "next": "https://elsewhere.example/"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"


def test_forged_session_cookie_is_a_guest(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "1.0000")
    assert '"user_id": ""' in rendered_user(client.get("/").text)


def test_widget_files_are_served(client: TestClient) -> None:
    script = client.get("/static/widget.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "X-Ainisa-Widget-Id" in script.text
    assert client.get("/static/widget.css").status_code == 200
    assert client.get("/static/inspector.js").status_code == 200


# -- the chat backend -------------------------------------------------------------


def test_verified_visitor_gets_orders_and_history(client: TestClient) -> None:
    first = chat(client, signed(client, "1"))
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "verified"
    assert body["verified"] is True
    assert body["signed_fields"] == ["user_id"]
    assert body["reply"].startswith("Hi Ada! Your orders: #1001 Espresso machine (shipped)")
    assert "start of our saved conversation" in body["reply"]
    assert body["received"] == {
        "user_id": "1",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "email": "ada@example.com",
    }
    assert [o["number"] for o in body["orders"]] == ["1001", "1002"]
    assert body["history"] == []

    second = chat(client, signed(client, "1")).json()
    assert [m["author"] for m in second["history"]] == ["visitor", "assistant"]
    assert 'the last was "Where is my order?"' in second["reply"]


def test_greeting_uses_the_apps_name_for_the_verified_id_not_the_unsigned_one(
    client: TestClient,
) -> None:
    user = signed(client, "2") | {"firstname": "Mallory"}
    body = chat(client, user).json()
    assert body["status"] == "verified"
    assert body["reply"].startswith("Hi Grace!")
    assert body["received"]["firstname"] == "Mallory"  # passed on, but unsigned


def test_verified_id_without_an_account(client: TestClient) -> None:
    body = chat(client, signed(client, "42")).json()
    assert body["status"] == "verified"
    assert "no account under that id" in body["reply"]
    assert body["orders"] == []


def test_guest_chats_anonymously(client: TestClient) -> None:
    guest = dict.fromkeys(("user_id", "user_hash", "firstname", "lastname", "email"), "")
    body = chat(client, guest).json()
    assert body["status"] == "anonymous"
    assert "chatting as a guest" in body["reply"]
    assert body["received"] is None
    assert body["orders"] == [] and body["history"] == []


def test_tampered_user_id_is_stripped(client: TestClient) -> None:
    user = signed(client, "2") | {"user_id": "1"}
    body = chat(client, user).json()
    assert body["status"] == "invalid_hash"
    assert body["verified"] is False
    assert body["received"] is None
    assert "Ada" not in body["reply"] and "#1001" not in body["reply"]


def test_tampered_user_id_is_rejected_in_enforce_mode(db_url: str) -> None:
    with TestClient(create_app(db_url, mode="enforce")) as client:
        user = signed(client, "2") | {"user_id": "1"}
        response = chat(client, user)
        assert response.status_code == 401
        assert response.json()["error"] == "identity_verification_failed"
        assert chat(client, signed(client, "2")).json()["status"] == "verified"


def test_token_business_renders_a_token_the_chat_verifies(client: TestClient) -> None:
    client.post("/login", data={"user": "1", "next": BAKERY.path})
    page = client.get(BAKERY.path).text
    user = json.loads(rendered_user(page))
    assert set(user) == {"user_id", "user_token", "firstname", "lastname", "email"}
    assert secret_of(client, BAKERY) not in page and "user_hash" not in user
    body = chat(client, user, widget=BAKERY.widget_id).json()
    assert (body["status"], body["user_id"]) == ("verified", "1")
    assert body["signed_fields"] == ["email", "firstname", "lastname", "user_id"]
    assert body["received"] == {
        "user_id": "1",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "email": "ada@example.com",
    }
    assert "#1001" in body["reply"]
    # The token is bound to its widget and its user; the business takes no hash.
    assert chat(client, user, widget=SHOP.widget_id).json()["status"] == "invalid_token"
    tampered = chat(client, user | {"user_id": "2"}, widget=BAKERY.widget_id).json()
    assert tampered["status"] == "invalid_token" and tampered["received"] is None
    hashed = chat(client, signed(client, "1", BAKERY), widget=BAKERY.widget_id).json()
    assert hashed["status"] == "invalid_hash"


def test_free_plan_business_never_verifies(client: TestClient) -> None:
    body = chat(client, signed(client, "1", CAFE), widget=CAFE.widget_id).json()
    assert body["status"] == "identity_disabled"
    assert body["received"] is None
    assert "Free plan" in body["reply"] and "Ada" not in body["reply"]
    assert body["business"] == {"id": "cafe", "name": CAFE.name, "plan": "free"}


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        pytest.param({"user": {}}, "non-empty string 'message'", id="missing"),
        pytest.param({"message": "   "}, "non-empty string 'message'", id="blank"),
        pytest.param({"message": 7}, "non-empty string 'message'", id="not-a-string"),
        pytest.param({"message": "x" * 2001}, "at most 2000", id="too-long"),
    ],
)
def test_bad_messages_get_400(client: TestClient, payload: Any, detail: str) -> None:
    response = client.post("/chat", json=payload, headers=WIDGET)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_message"
    assert detail in response.json()["detail"]


def test_form_encoded_chat_gets_400(client: TestClient) -> None:
    response = client.post("/chat", data={"message": "hi"}, headers=WIDGET)
    assert response.status_code == 400
    assert response.json()["detail"] == "Send the message as a JSON object."


def test_unknown_widget_is_answered_by_the_middleware(client: TestClient) -> None:
    response = chat(client, None, widget="wid_nobody")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_widget"


# -- the store --------------------------------------------------------------------


def test_second_run_reuses_the_store_and_reset_starts_afresh(db_url: str) -> None:
    first = DemoStore(db_url)
    secret = first.signing_secret(SHOP)
    first.save_message("shop", "1", "visitor", "hello")
    first.close()
    assert first.seeded

    again = DemoStore(db_url)
    assert not again.seeded
    assert again.signing_secret(SHOP) == secret
    assert again.history("shop", "1") == [{"author": "visitor", "text": "hello"}]
    again.close()

    fresh = DemoStore(db_url, reset=True)
    assert fresh.seeded
    assert fresh.signing_secret(SHOP) != secret
    assert fresh.history("shop", "1") == []
    fresh.close()


def test_reset_leaves_a_real_store_in_the_same_database_alone(db_url: str) -> None:
    real = SQLStore(db_url)
    real.init()
    real.add_business("real", plan="pro")
    DemoStore(db_url, reset=True).close()
    DemoStore(db_url, reset=True).close()
    assert real.get_business("real").plan == "pro"
    tables = set(sa.inspect(real.engine).get_table_names())
    demo_tables = {name for name in tables if name.startswith(TABLE_PREFIX)}
    assert f"{TABLE_PREFIX}businesses" in demo_tables
    assert f"{TABLE_PREFIX}chat_messages" in demo_tables
    assert "ainisa_businesses" in tables
    real.close()


def test_a_secret_rotated_while_running_signs_and_verifies_at_once(client: TestClient) -> None:
    client.post("/login", data={"user": "1"})
    before = secret_of(client)
    store: DemoStore = client.app.state.demo_store  # type: ignore[attr-defined]
    rotated = store.store.rotate_secret("shop")
    assert secret_of(client) == rotated.value != before
    page = rendered_user(client.get("/").text)
    assert f'"user_hash": "{user_hash(rotated.value, "1")}"' in page
    assert chat(client, signed(client, "1")).json()["status"] == "verified"
    # A page rendered before the rotation still verifies during the grace period.
    old = signed(client, "1") | {"user_hash": user_hash(before, "1")}
    assert chat(client, old).json()["status"] == "verified"


def test_disabled_widget_is_unknown_but_its_website_still_signs(client: TestClient) -> None:
    store: DemoStore = client.app.state.demo_store  # type: ignore[attr-defined]
    store.store.disable_widget(SHOP.widget_id)
    client.post("/login", data={"user": "1"})
    assert f'"user_hash": "{user_hash(secret_of(client), "1")}"' in client.get("/").text
    assert chat(client, signed(client, "1")).json()["error"] == "unknown_widget"


def test_page_without_an_active_secret_says_how_to_make_one(
    client: TestClient, db_url: str
) -> None:
    store: DemoStore = client.app.state.demo_store  # type: ignore[attr-defined]
    for secret in store.store.get_business("cafe").secrets:
        store.store.retire_secret(secret.id)
    response = client.get("/free")
    assert response.status_code == 503
    assert f"secret rotate --db {db_url} --table-prefix ainisa_demo_ cafe" in response.text
    assert client.get("/").status_code == 200


def test_history_keeps_the_latest_messages_in_order(db_url: str) -> None:
    store = DemoStore(db_url)
    for n in range(5):
        store.save_message("shop", "3", "visitor", f"m{n}")
    store.save_message("cafe", "3", "visitor", "elsewhere")
    assert [m["text"] for m in store.history("shop", "3", limit=3)] == ["m2", "m3", "m4"]
    store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///demo.db", Path("demo.db")),
        ("sqlite:////tmp/x/demo.db", Path("/tmp/x/demo.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://postgres@127.0.0.1/test", None),
    ],
)
def test_sqlite_file(url: str, expected: Path | None) -> None:
    assert sqlite_file(url) == expected


# -- the command line ---------------------------------------------------------------


def test_banner_names_the_url_the_sites_and_the_logins(db_url: str) -> None:
    store = DemoStore(db_url)
    text = banner(base_url("127.0.0.1", 8000), mode="strip", db_url=db_url, store=store)
    store.close()
    assert text.startswith("ainisa-middleware demo: http://127.0.0.1:8000/")
    assert "http://127.0.0.1:8000/free" in text and "(Free plan, widget wid_free)" in text
    for user in USERS.values():
        assert f"user_id {user.id}" in text and user.email in text
    assert "Ctrl-C" in text
    assert base_url("::1", 8000) == "http://[::1]:8000"


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_demo_refuses_bad_ports(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--port", port])
    assert exit_info.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_demo_without_its_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "ainisa_demo"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "the demo needs its extra (uvicorn is not installed)" in err
    assert 'pip install "ainisa-middleware[demo]"' in err


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """uvicorn configures logging process-wide; put back what it changes."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "ainisa_middleware"]
    saved = {
        name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        for name in names
        for lg in [logging.getLogger(name)]
    }
    yield
    for name, (level, handlers, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.disabled = disabled


@pytest.mark.usefixtures("restore_logging")
def test_serve_reports_a_port_in_use(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--db", db_url, "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert f"ainisa-middleware demo: http://127.0.0.1:{port}/" in out
    assert f"could not serve on 127.0.0.1:{port}" in err


@pytest.mark.usefixtures("restore_logging")
def test_serve_warns_off_loopback_and_reports_a_bad_db(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--db", "not a url"]) == 2
    assert "is not a SQLAlchemy URL" in capsys.readouterr().err
    with pytest.raises(Exception, match="could not serve"):
        serve(host="192.0.2.1", port=1, db_url="sqlite:///:memory:")
    assert "keep it on 127.0.0.1" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_command_serves_until_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "ainisa_middleware", "demo", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--db", f"sqlite:///{tmp_path / 'demo.db'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/free", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the demo exited early"
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
        assert page.status_code == 200 and "Corner Cafe" in page.text
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert f"ainisa-middleware demo: http://127.0.0.1:{port}/" in output
    assert "Ada Lovelace" in output and "(seeded)" in output
    assert "Demo stopped." in output
    assert "Traceback" not in output


def test_a_message_with_an_attachment_is_verified_and_the_file_received(
    client: TestClient,
) -> None:
    data = bytes(range(256)) * 40
    user = {k: v for k, v in signed(client, "1").items() if v}
    files = {"file": ("receipt.png", data, "image/png")}
    response = client.post(
        "/chat", data={"message": "See my receipt", **user}, files=files, headers=WIDGET
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "verified"
    assert body["received"] == {k: v for k, v in user.items() if k != "user_hash"}
    assert body["attachment"] == {
        "name": "receipt.png",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert body["reply"].endswith(f"I received your file receipt.png ({len(data)} bytes).")

    forged = user | {"user_id": "2"}
    body = client.post(
        "/chat", data={"message": "See my receipt", **forged}, files=files, headers=WIDGET
    ).json()
    assert body["status"] == "invalid_hash" and body["received"] is None
    assert body["attachment"]["size"] == len(data)
