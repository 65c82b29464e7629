"""Streamed replies and uploads through the Django middleware behind real servers:
uvicorn (ASGI, an async view streaming an async generator) and werkzeug (WSGI, a
sync view streaming a generator). See ``tests/hosts/test_streaming_servers.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, StreamingHttpResponse
from django.test import override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from ainisa_middleware.django import get_ainisa_user
from tests.cases import PATHS, RESOLVER
from tests.hosts.test_streaming_servers import (
    GATE,
    PATIENCE,
    UPLOAD,
    VERIFIED,
    _uvicorn,
    _werkzeug,
    read_stream,
)
from tests.multipart_cases import TYPE


def _first(request: HttpRequest) -> bytes:
    request.POST  # noqa: B018 - parses a multipart body (the upload) like a chat view would
    user = get_ainisa_user(request)
    return f"data: first {user.status if user else None}\n\n".encode()


@csrf_exempt
def sync_sse(request: HttpRequest) -> StreamingHttpResponse:
    first = _first(request)

    def events() -> Iterator[bytes]:
        yield first
        GATE.first_read.wait(PATIENCE)
        GATE.last_produced.set()
        yield b"data: last\n\n"

    return StreamingHttpResponse(events(), content_type="text/event-stream")


@csrf_exempt
async def async_sse(request: HttpRequest) -> StreamingHttpResponse:
    first = _first(request)

    async def events() -> AsyncIterator[bytes]:
        yield first
        deadline = time.monotonic() + PATIENCE
        while not GATE.first_read.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        GATE.last_produced.set()
        yield b"data: last\n\n"

    return StreamingHttpResponse(events(), content_type="text/event-stream")


class Urls:
    urlpatterns = [path("chat/sync", sync_sse), path("chat/async", async_sse)]


# Each server with the view that streams natively on it (Django warns when it must
# consume a sync iterator under ASGI, or an async one under WSGI, to serve it).
SERVERS = {
    "uvicorn-asgi-async-view": (lambda: _uvicorn(ASGIHandler()), "async"),
    "werkzeug-wsgi-sync-view": (lambda: _werkzeug(WSGIHandler()), "sync"),
}


@pytest.fixture(params=list(SERVERS), scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    settings: dict[str, Any] = {"RESOLVER": RESOLVER, "PATHS": PATHS}
    start, view = SERVERS[request.param]
    with override_settings(AINISA=settings, ROOT_URLCONF=Urls):
        number, stop = start()
        yield number, view
        stop()


@pytest.mark.parametrize(
    ("payload", "content_type", "status"),
    [(VERIFIED, "application/json", "verified"), (UPLOAD, TYPE, "anonymous")],
    ids=["json", "multipart"],
)
def test_first_event_reaches_the_client_before_the_view_produces_the_last(
    server: tuple[int, str], payload: bytes, content_type: str, status: str
) -> None:
    port, view = server
    first, rest = read_stream(port, f"/chat/{view}", payload, content_type)
    assert first.startswith(f"data: first {status}\n\n".encode())
    assert (first + rest).endswith(b"data: last\n\n")
