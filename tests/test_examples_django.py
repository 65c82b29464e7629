"""The Django example in examples/django/ runs as its README says.

It runs in a subprocess: the example has its own settings, and Django is
configured once per process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django"
SECRET = "django-example-secret"

DRIVER = r"""
import asyncio, json, sys
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()  # adds "testserver" to ALLOWED_HOSTS for the test clients
from django.core.management import call_command
from django.test import AsyncClient, Client
from chatsite.wsgi import application  # the WSGI entry point loads
from chatsite.asgi import application as asgi_application
from ainisa_middleware import user_hash

call_command("migrate", verbosity=0)
call_command("seed_demo")
call_command("seed_demo")  # idempotent
call_command("check")
secret = sys.argv[1]
widget = {"X-Ainisa-Widget-Id": "demo-widget"}
user = {"user_id": "42", "user_hash": user_hash(secret, "42"), "firstname": "Ann"}
client = Client()
out = {}
def post(path, body, headers=widget):
    r = client.post(path, json.dumps(body), content_type="application/json", headers=headers)
    return [r.status_code, r.json()]
out["verified"] = post("/chat", {"message": "hi", "user": user})
out["history"] = post("/chat/history", {"user": user})
out["forged"] = post("/chat", {"message": "hi", "user": {**user, "user_hash": "0" * 64}})
out["no_widget"] = post("/chat", {"message": "hi"}, headers={})
out["health"] = client.get("/health").json()
async def async_post():
    r = await AsyncClient().post(
        "/chat", json.dumps({"message": "again", "user": user}),
        content_type="application/json", headers=widget)
    return [r.status_code, r.json()]
out["async"] = asyncio.run(async_post())
async def stream():
    r = await AsyncClient().post(
        "/chat/stream", json.dumps({"message": "hi", "user": user}),
        content_type="application/json", headers=widget)
    return [r.status_code, r["Content-Type"], [c.decode() async for c in r.streaming_content]]
out["stream"] = asyncio.run(stream())
from io import BytesIO
upload = BytesIO(bytes(range(256)) * 100)
upload.name = "shot.png"
r = client.post("/chat/upload", {"message": "see attached", "file": upload, **user},
                headers=widget)
out["upload"] = [r.status_code, r.json()]
forged = {**user, "user_hash": "0" * 64}
upload.seek(0)
r = client.post("/chat/upload", {"message": "x", "file": upload, **forged}, headers=widget)
out["upload_forged"] = [r.status_code, r.json()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    database = tmp_path_factory.mktemp("django-example") / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "AINISA_EXAMPLE_DB": str(database),
        "AINISA_DEMO_SECRET": SECRET,
        "PYTHONPATH": str(EXAMPLE),
    }
    env.pop("PYTHONDEVMODE", None)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, SECRET],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    return json.loads(last)  # type: ignore[no-any-return]


def test_verified_visitor_is_greeted(results: dict[str, Any]) -> None:
    assert results["verified"] == [200, {"reply": "Welcome back, Ann!", "status": "verified"}]
    assert results["history"] == [200, {"user_id": "42", "messages": ["hi"]}]


def test_forged_hash_is_a_guest(results: dict[str, Any]) -> None:
    assert results["forged"] == [200, {"reply": "Hello, guest!", "status": "invalid_hash"}]


def test_missing_widget_is_the_contract_error(results: dict[str, Any]) -> None:
    assert results["no_widget"] == [
        400,
        {"error": "missing_widget_id", "detail": "The request does not name a widget."},
    ]


def test_health_is_not_inspected_and_async_handler_verifies(results: dict[str, Any]) -> None:
    assert results["health"] == {"ok": True, "inspected": False}
    assert results["async"] == [200, {"reply": "Welcome back, Ann!", "status": "verified"}]


def test_streamed_reply_is_one_event_per_chunk(results: dict[str, Any]) -> None:
    status, content_type, chunks = results["stream"]
    assert status == 200 and content_type == "text/event-stream"
    assert chunks[:3] == ["data: Hello\n\n", "data: Ann,\n\n", "data: you\n\n"]
    assert chunks[-1] == "event: done\ndata: {}\n\n"


def test_upload_is_verified_and_the_file_unchanged(results: dict[str, Any]) -> None:
    data = bytes(range(256)) * 100
    status, payload = results["upload"]
    assert status == 200
    assert payload == {
        "message": "see attached",
        "file": {"name": "shot.png", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        "status": "verified",
        "user_id": "42",
    }
    status, payload = results["upload_forged"]
    assert status == 200 and payload["status"] == "invalid_hash" and payload["user_id"] is None


def test_seed_demo_refuses_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AINISA_DEMO_SECRET", "PYTHONDEVMODE")}
    env["AINISA_EXAMPLE_DB"] = str(tmp_path / "db.sqlite3")
    env["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"  # as manage.py would set it
    done = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Set AINISA_DEMO_SECRET first" in done.stderr
