"""Attachments through Django: the multipart table read by ``request.POST`` and
``request.FILES``, with the sync ``Client`` (WSGI) and the ``AsyncClient`` (ASGI)."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from ainisa_middleware.django import get_ainisa_user
from tests.cases import PATHS, RESOLVER
from tests.multipart_cases import (
    MULTIPART_ROWS,
    TYPE,
    MultipartCase,
    attachment,
    body,
    check,
    multipart_payload,
    part,
)


def _payload(request: HttpRequest) -> JsonResponse:
    fields = [(name, value) for name, values in request.POST.lists() for value in values]
    files = []
    for name, uploads in request.FILES.lists():
        for upload in uploads:
            files.append((name, upload.name or "", upload.read()))
            upload.close()
    query = request.META.get("QUERY_STRING", "")
    return JsonResponse(multipart_payload(fields, files, query, get_ainisa_user(request)))


def sync_echo(request: HttpRequest) -> JsonResponse:
    return _payload(request)


async def async_echo(request: HttpRequest) -> JsonResponse:
    return _payload(request)


class SyncUrls:
    urlpatterns = [path("chat", sync_echo)]


class AsyncUrls:
    urlpatterns = [path("chat", async_echo)]


def send(client_kind: str, case: MultipartCase) -> Any:
    url = "/chat" + ("?" + case.query if case.query else "")
    kwargs: dict[str, Any] = {"content_type": case.content_type, "headers": dict(case.headers)}
    if client_kind == "client":
        return Client().generic("POST", url, case.body, **kwargs)
    return asyncio.run(AsyncClient().generic("POST", url, case.body, **kwargs))


def _settings(case: MultipartCase) -> dict[str, Any]:
    extra = {key.upper(): value for key, value in case.options.items()}
    return {"RESOLVER": RESOLVER, "PATHS": PATHS, "MODE": case.mode, **extra}


@pytest.mark.parametrize(("client_kind", "urls"), [("client", SyncUrls), ("async", AsyncUrls)])
@pytest.mark.parametrize("case", MULTIPART_ROWS)
def test_multipart_table_django(case: MultipartCase, client_kind: str, urls: type) -> None:
    with override_settings(AINISA=_settings(case), ROOT_URLCONF=urls):
        response = send(client_kind, case)
    check(case, response.status_code, response.json())


def test_body_shorter_than_its_content_length_is_malformed() -> None:
    """Under WSGI Django reads what CONTENT_LENGTH promised; a client that stops early
    gets the middleware's 400, not whatever the view makes of half a file."""
    sent = body(part("message", "hi"), attachment())
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/chat",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "CONTENT_TYPE": TYPE,
        "CONTENT_LENGTH": str(len(sent) + 1000),
        "HTTP_X_AINISA_WIDGET_ID": "w_pro",
        "wsgi.input": io.BytesIO(sent),
    }
    statuses: list[str] = []
    settings = {"RESOLVER": RESOLVER, "PATHS": PATHS}
    with override_settings(AINISA=settings, ROOT_URLCONF=SyncUrls):
        handler = WSGIHandler()
        response = handler(environ, lambda status, headers: statuses.append(status))  # type: ignore[arg-type, func-returns-value]
        answer = b"".join(response)
        response.close()  # type: ignore[attr-defined]
    assert statuses == ["400 Bad Request"]
    assert json.loads(answer)["error"] == "malformed_body"


def test_max_upload_size_check() -> None:
    from ainisa_middleware.django.checks import check_settings

    with override_settings(AINISA={"RESOLVER": RESOLVER, "PATHS": PATHS, "MAX_UPLOAD_SIZE": 0}):
        found = check_settings()
    assert [error.id for error in found] == ["ainisa.E013"]
    assert "MAX_UPLOAD_SIZE" in found[0].msg
