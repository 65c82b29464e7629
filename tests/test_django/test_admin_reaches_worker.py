"""The Django admin's rotate and retire reach a running ASGI worker through the bus.

One uvicorn process serves a small Django project with the middleware over
:class:`~ainisa_middleware.django.ModelResolver`, cache times of 300 s and
``AINISA["INVALIDATION_URL"]`` on Redis, so only the bus can make a change
visible. This process shares its SQLite file and, as a logged-in superuser,
runs the admin's actions through Django's test client.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.utils import load_backend
from django.test import Client, override_settings

from ainisa_middleware import user_hash
from ainisa_middleware.django import invalidation as django_bus
from ainisa_middleware.django.models import Business, Secret, Widget
from ainisa_middleware.invalidation import ThreadedBus
from tests.buses import bus_url

ROOT = Path(__file__).resolve().parents[2]
USER = "42"
WIDGET = "wid_shop"
#: Seconds the worker may take to start, and any one subprocess to finish.
START_TIMEOUT = 20.0

SETTINGS = """\
SECRET_KEY = "tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "tests.test_django.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "ainisa_middleware.django",
]
MIDDLEWARE = ["ainisa_middleware.django.AinisaMiddleware"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
AINISA = {{
    "RESOLVER": "adm_worker.resolver",
    "PATHS": ["/chat"],
    "INVALIDATION_URL": {bus!r},
}}
"""

RESOLVER = """\
from ainisa_middleware.django import ModelResolver

resolver = ModelResolver(ttl=300, negative_ttl=300, invalidation={bus!r})
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Worker:
    """The uvicorn process and what it answers for a visitor."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def status(self, secret: str, widget: str = WIDGET) -> str:
        """``verified``, ``invalid_hash`` (or another user status), or the error code."""
        body = json.dumps(
            {"message": "hi", "user": {"user_id": USER, "user_hash": user_hash(secret, USER)}}
        )
        headers = {"Content-Type": "application/json", "X-Ainisa-Widget-Id": widget}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("POST", "/chat", body=body, headers=headers)
            response = connection.getresponse()
            payload = json.loads(response.read())
        finally:
            connection.close()
        if response.status == 200:
            return str(payload["user"]["status"])
        return str(payload["error"])

    def until(self, secret: str, want: str, since: float, limit: float = 1.0) -> float:
        """Poll until the answer is ``want``; seconds since ``since`` (a ``perf_counter``)."""
        start = since
        while (answer := self.status(secret)) != want:
            took = time.perf_counter() - start
            assert took < limit, f"the worker still answers {answer!r} after {took:.3f} s"
            time.sleep(0.005)
        return time.perf_counter() - start


@contextmanager
def shared_database(path: Path) -> Iterator[None]:
    """This thread's default connection on the worker's SQLite file, then back."""
    wanted = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}}
    params = connections.configure_settings(wanted)["default"]
    wrapper = load_backend(params["ENGINE"]).DatabaseWrapper(params, "default")
    saved = connections["default"]
    connections["default"] = wrapper
    ContentType.objects.clear_cache()
    try:
        yield
    finally:
        wrapper.close()
        connections["default"] = saved
        ContentType.objects.clear_cache()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    """A migrated SQLite file, the worker serving it, and this process on the same bus."""
    bus = f"{bus_url('redis')}?channel=t{uuid.uuid4().hex[:12]}"
    db = tmp_path / "shared.sqlite3"
    (tmp_path / "adm_worker_settings.py").write_text(SETTINGS.format(db=str(db), bus=bus))
    (tmp_path / "adm_worker.py").write_text(RESOLVER.format(bus=bus))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "adm_worker_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), str(ROOT)])),
    }
    env.pop("AINISA_INVALIDATION_URL", None)
    migrated = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0", "--skip-checks"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=START_TIMEOUT, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "worker.log"
    port = _free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "django.core.asgi:get_asgi_application",
             "--factory", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
             "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
    django_bus.reset()
    try:
        with (
            shared_database(db),
            override_settings(AINISA={**settings.AINISA, "INVALIDATION_URL": bus}),
        ):
            running = Worker(port, process, log)
            _wait_listening(running)
            yield running
    finally:
        django_bus.reset()
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_listening(worker: Worker) -> None:
    """Until the worker answers and its resolver hears the bus.

    A widget the worker has cached as unknown is added; this process publishes
    it on this process's bus until the worker serves it, which only a message
    on the bus can cause (messages sent before the worker subscribed are lost).
    """
    deadline = time.monotonic() + START_TIMEOUT
    probe = "wid_probe"
    while True:
        assert worker.process.poll() is None, f"worker exited:\n{worker.log.read_text()[-3000:]}"
        try:
            if worker.status("x", probe) == "unknown_widget":
                break
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, f"worker not up in {START_TIMEOUT} s"
        time.sleep(0.05)
    bus = django_bus.get_bus()  # this process's, which the admin publishes on
    assert isinstance(bus, ThreadedBus)
    business = Business.objects.create(id="probe", name="Probe", plan="pro")
    Widget.objects.create(id=probe, business=business)
    while worker.status("x", probe) == "unknown_widget":
        assert time.monotonic() < deadline, "the worker never heard the bus"
        bus.publish(widgets=[probe])
        time.sleep(0.05)


def test_admin_rotate_and_retire_reach_a_running_asgi_worker_within_a_second(
    worker: Worker,
) -> None:
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    Widget.objects.create(id=WIDGET, business=business)
    old = Secret.objects.create(business=business, value="old-secret-value")
    assert worker.status(old.value) == "verified"
    assert worker.status("not-the-secret") == "invalid_hash"  # cached now, for 300 s

    staff = Client()
    staff.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    response = staff.post(
        "/admin/ainisa/business/", {"action": "rotate_secret", "_selected_action": ["shop"]}
    )
    returned = time.perf_counter()
    assert response.status_code == 200
    new = Secret.objects.filter(business=business).exclude(pk=old.pk).get()
    assert new.value.encode() in response.content  # shown once, on this page
    rotated = worker.until(new.value, "verified", since=returned)
    assert worker.status(old.value) == "verified"  # still within the grace period

    response = staff.post(
        "/admin/ainisa/secret/",
        {"action": "retire", "_selected_action": [str(old.pk)]},
    )
    returned = time.perf_counter()
    assert response.status_code == 302
    retired = worker.until(old.value, "invalid_hash", since=returned)
    told = staff.get(response["Location"])
    assert b"They stop verifying at once in every process on the invalidation bus" in told.content
    assert worker.status(new.value) == "verified"
    print(f"\nrotate reached the worker in {rotated:.3f} s, retire in {retired:.3f} s")
