"""The demo end to end in Debian's Chromium, driven by Playwright.

Each server is the demo as ``ainisa-middleware demo`` builds it, on a free
port of 127.0.0.1 and a fresh SQLite store. Every page load fails the test on a
console error, so a script blocked by the page's Content-Security-Policy
(a wrong nonce, say) is caught too.

Set ``AINISA_DEMO_SCREENSHOT=1`` to refresh ``docs/demo.png``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ainisa_demo.server import build_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "demo.png"
TIMEOUT_MS = 10_000


class DemoServer:
    """The demo served by uvicorn in a thread, on a socket bound before it starts."""

    def __init__(self, db_path: Path, mode: str) -> None:
        self.mode = mode
        self.server, self.store = build_server(
            host="127.0.0.1",
            port=8000,  # unused: the server takes the socket below
            db_url=f"sqlite:///{db_path}",
            mode=mode,
            log_level="warning",
            configure_logging=False,
        )
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> DemoServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


@pytest.fixture(scope="module")
def strip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with DemoServer(tmp_path_factory.mktemp("strip") / "demo.db", "strip") as server:
        yield server


@pytest.fixture(scope="module")
def enforce_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with DemoServer(tmp_path_factory.mktemp("enforce") / "demo.db", "enforce") as server:
        yield server


@pytest.fixture
def problems() -> list[str]:
    """Console errors and uncaught exceptions of the test's page."""
    return []


@pytest.fixture
def page(browser: Browser, problems: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert problems == [], f"the page reported errors: {problems}"


def log_in(page: Page, url: str, firstname: str) -> None:
    page.goto(url)
    page.get_by_role("group", name="Log in as").get_by_role("button", name=firstname).click()
    page.wait_for_url(url)
    assert firstname in page.locator("#who").inner_text()


def send(page: Page, message: str) -> None:
    """Open the widget if needed, type a message and press Enter."""
    toggle = page.get_by_role("button", name="Chat with us")
    if toggle.get_attribute("aria-expanded") == "false":
        toggle.click()
    box = page.get_by_label("Your message")
    box.fill(message)
    box.press("Enter")


def last_reply(page: Page, count: int) -> str:
    """The text of the assistant's ``count``-th reply, once it has arrived."""
    replies = page.locator(".ainisa-assistant .ainisa-text")
    replies.nth(count - 1).wait_for()
    return replies.nth(count - 1).inner_text()


def inspector(page: Page) -> dict[str, str]:
    return {
        name: page.locator(f"#inspector-{name}").inner_text()
        for name in ("mode", "status", "http", "stripped", "sent", "received")
    }


def wait_for_exchange(page: Page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.ainisa-visitor').length >= n"
        " && document.getElementById('inspector-http').textContent !== '-'"
        " && !document.querySelector('.ainisa-log[aria-busy]')",
        arg=count,
    )


def test_logged_in_user_is_greeted_by_name_and_sees_orders_and_history(
    page: Page, tmp_path: Path
) -> None:
    # A server of its own: other tests chat as Ada too, and this one reads her
    # saved history from its very start, whatever order the tests run in.
    with DemoServer(tmp_path / "demo.db", "strip") as own:
        _greeted_with_orders_and_history(page, own, tmp_path)


def _greeted_with_orders_and_history(page: Page, strip_server: DemoServer, tmp_path: Path) -> None:
    log_in(page, strip_server.url + "/", "Ada")
    send(page, "Where is my order?")
    first = last_reply(page, 1)
    assert first.startswith("Hi Ada!")
    assert "#1001 Espresso machine (shipped)" in first
    assert "start of our saved conversation" in first
    wait_for_exchange(page, 1)
    shown = inspector(page)
    assert shown["status"] == "verified"
    assert shown["http"] == "200"
    assert shown["stripped"] == "user_hash (always removed)"
    assert '"user_id": "1"' in shown["received"]
    assert "user_hash" not in shown["received"]
    assert '"user_hash": "' in shown["sent"]

    send(page, "Thanks!")
    second = last_reply(page, 2)
    assert 'the last was "Where is my order?"' in second

    page.screenshot(path=str(tmp_path / "demo.png"))
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    if os.environ.get("AINISA_DEMO_SCREENSHOT"):
        shutil.copyfile(tmp_path / "demo.png", DOCS_SCREENSHOT)


def test_guest_chats_anonymously(page: Page, strip_server: DemoServer) -> None:
    page.goto(strip_server.url + "/")
    assert page.locator("#who").inner_text() == "a guest"
    send(page, "Hello?")
    assert "chatting as a guest" in last_reply(page, 1)
    wait_for_exchange(page, 1)
    shown = inspector(page)
    assert shown["status"] == "anonymous"
    assert shown["stripped"] == "nothing"
    assert shown["received"] == "null"


def tamper(page: Page, user_id: str) -> None:
    page.get_by_label("Set window.ainisaUser.user_id to").fill(user_id)
    page.get_by_role("button", name="Tamper").click()
    assert page.evaluate("window.ainisaUser.user_id") == user_id


def test_tampered_user_id_is_stripped_to_anonymous(page: Page, strip_server: DemoServer) -> None:
    log_in(page, strip_server.url + "/", "Grace")
    tamper(page, "1")
    send(page, "Show me Ada's orders")
    reply = last_reply(page, 1)
    assert "chatting as a guest" in reply
    assert "Ada" not in reply and "#1001" not in reply
    wait_for_exchange(page, 1)
    shown = inspector(page)
    assert shown["status"] == "invalid_hash"
    assert shown["http"] == "200"
    assert shown["stripped"] == "user_id, user_hash, firstname, lastname, email"
    assert shown["received"] == "null"

    page.get_by_role("button", name="Restore").click()
    send(page, "And mine?")
    assert last_reply(page, 2).startswith("Hi Grace!")


def test_tampered_user_id_is_rejected_in_enforce_mode(
    page: Page, enforce_server: DemoServer, problems: list[str]
) -> None:
    log_in(page, enforce_server.url + "/", "Ada")
    send(page, "Hello")
    assert last_reply(page, 1).startswith("Hi Ada!")
    tamper(page, "2")
    send(page, "Show me Grace's orders")
    alert = page.get_by_role("alert")
    assert "could not be verified" in alert.inner_text(timeout=TIMEOUT_MS)
    assert "identity_verification_failed" in alert.inner_text()
    wait_for_exchange(page, 2)
    shown = inspector(page)
    assert shown["mode"] == "enforce"
    assert shown["status"] == "rejected"
    assert shown["http"] == "401 identity_verification_failed"
    assert page.locator(".ainisa-assistant").count() == 1
    # The browser logs the refused request; that one error is expected.
    assert problems == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    problems.clear()


@pytest.mark.parametrize("mode", ["strip", "enforce"])
def test_free_plan_business_never_verifies(
    page: Page, mode: str, request: pytest.FixtureRequest
) -> None:
    server: DemoServer = request.getfixturevalue(f"{mode}_server")
    log_in(page, server.url + "/free", "Alan")
    # The page signed Alan correctly; the plan still turns identity off.
    assert len(page.evaluate("window.ainisaUser.user_hash")) == 64
    send(page, "Who am I?")
    reply = last_reply(page, 1)
    assert "Free plan" in reply and "Alan" not in reply
    wait_for_exchange(page, 1)
    shown = inspector(page)
    assert shown["status"] == "identity_disabled"
    assert shown["http"] == "200"
    assert shown["stripped"] == "user_id, user_hash, firstname, lastname, email"


def test_widget_works_from_the_keyboard(page: Page, strip_server: DemoServer) -> None:
    from playwright.sync_api import expect

    page.goto(strip_server.url + "/free")
    toggle = page.get_by_role("button", name="Chat with us")
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    box = page.get_by_label("Your message")
    assert box.evaluate("node => node === document.activeElement")
    # What a screen reader is given: a named region with its controls, all labelled.
    expect(page.get_by_role("region", name="Chat")).to_match_aria_snapshot(
        """
        - button "Close chat"
        - heading "Chat" [level=2]
        - log "Conversation"
        - text: Your message
        - textbox "Your message"
        - button "Send"
        - checkbox "Send over a WebSocket"
        """
    )
    page.keyboard.type("Hi")
    page.keyboard.press("Enter")
    assert "Free plan" in last_reply(page, 1)
    assert page.get_by_role("log", name="Conversation").count() == 1
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.evaluate("node => node === document.activeElement")


def test_a_message_with_an_attachment_is_sent_as_multipart_and_verified(
    page: Page, strip_server: DemoServer, tmp_path: Path
) -> None:
    receipt = tmp_path / "receipt.png"
    receipt.write_bytes(bytes(range(256)) * 16)
    log_in(page, strip_server.url + "/", "Ada")
    page.get_by_role("button", name="Chat with us").click()
    page.get_by_label("Attach a file").set_input_files(str(receipt))
    assert page.locator(".ainisa-attached").inner_text() == "Attached: receipt.png"
    send(page, "Here is my receipt")
    reply = last_reply(page, 1)
    assert reply.startswith("Hi Ada!")
    assert reply.endswith("I received your file receipt.png (4096 bytes).")
    wait_for_exchange(page, 1)
    shown = inspector(page)
    assert shown["status"] == "verified"
    assert '"user_id": "1"' in shown["received"] and "user_hash" not in shown["received"]
    assert '"attachment"' in shown["sent"]

    tamper(page, "2")  # the same page, now claiming Grace's id with Ada's hash
    page.get_by_label("Attach a file").set_input_files(str(receipt))
    send(page, "And Grace's orders?")
    second = last_reply(page, 2)
    assert "Grace" not in second and "chatting as a guest" in second
    assert second.endswith("I received your file receipt.png (4096 bytes).")


# -- the WebSocket transport: identity in the first frame ----------------------------


def over_websocket(page: Page) -> None:
    toggle = page.get_by_role("button", name="Chat with us")
    if toggle.get_attribute("aria-expanded") == "false":
        toggle.click()
    page.get_by_role("checkbox", name="Send over a WebSocket").check()


def test_websocket_first_frame_verifies_and_later_frames_keep_the_visitor(
    page: Page, strip_server: DemoServer
) -> None:
    sockets: list[str] = []
    frames: list[str] = []

    def watch(ws: Any) -> None:
        sockets.append(ws.url)
        ws.on("framesent", lambda payload: frames.append(str(payload)))

    page.on("websocket", watch)
    log_in(page, strip_server.url + "/", "Ada")
    over_websocket(page)
    send(page, "Where is my order?")
    assert last_reply(page, 1).startswith("Hi Ada!")
    wait_for_exchange(page, 1)
    shown = inspector(page)
    assert shown["status"] == "verified"
    assert shown["http"] == "WebSocket reply"
    assert shown["stripped"] == "user_hash (always removed)"
    assert '"user_id": "1"' in shown["received"] and "user_hash" not in shown["received"]

    send(page, "Thanks!")
    assert 'the last was "Where is my order?"' in last_reply(page, 2)
    # One connection; the widget ID in its URL, identity only in the first frame.
    assert len(sockets) == 1 and sockets[0].endswith("/chat/ws?widget_id=wid_demo")
    assert "user_hash" not in sockets[0]
    assert len(frames) == 2 and '"user_hash"' in frames[0] and '"user"' not in frames[1]


def test_websocket_tampered_user_id_reconnects_and_is_stripped(
    page: Page, strip_server: DemoServer
) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    log_in(page, strip_server.url + "/", "Grace")
    over_websocket(page)
    send(page, "Hello")
    assert last_reply(page, 1).startswith("Hi Grace!")
    tamper(page, "1")
    send(page, "Show me Ada's orders")
    reply = last_reply(page, 2)
    assert "chatting as a guest" in reply and "#1001" not in reply
    wait_for_exchange(page, 2)
    shown = inspector(page)
    assert shown["status"] == "invalid_hash"
    assert shown["stripped"] == "user_id, user_hash, firstname, lastname, email"
    assert shown["received"] == "null"
    assert len(sockets) == 2  # a changed user object opens a new connection


def test_websocket_tampered_user_id_is_closed_in_enforce_mode(
    page: Page, enforce_server: DemoServer
) -> None:
    log_in(page, enforce_server.url + "/", "Ada")
    over_websocket(page)
    send(page, "Hello")
    assert last_reply(page, 1).startswith("Hi Ada!")
    tamper(page, "2")
    send(page, "Show me Grace's orders")
    alert = page.get_by_role("alert")
    page.wait_for_function(
        "() => document.querySelector('.ainisa-error').textContent.includes('closed')"
    )
    assert "1008 identity_verification_failed" in alert.inner_text()
    wait_for_exchange(page, 2)
    shown = inspector(page)
    assert shown["status"] == "rejected"
    assert shown["http"] == "WebSocket closed 1008 identity_verification_failed"
    assert page.locator(".ainisa-assistant").count() == 1
