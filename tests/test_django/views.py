"""Views that echo everything a Django view can read, through every public API."""

from __future__ import annotations

import json
from typing import Any

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ainisa_middleware import AinisaUser
from tests.cases import echo_payload


def _snapshot(request: HttpRequest) -> dict[str, Any]:
    body = request.body
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = None
    user = getattr(request, "ainisa_user", None)
    return {
        "body": body.decode("utf-8", "replace"),
        "json": parsed,
        "POST": {key: request.POST.getlist(key) for key in request.POST},
        "GET": {key: request.GET.getlist(key) for key in request.GET},
        "query_string": request.META.get("QUERY_STRING", ""),
        "content_length": request.META.get("CONTENT_LENGTH"),
        "user": _user(user),
    }


def _user(user: object) -> dict[str, Any] | None:
    if not isinstance(user, AinisaUser):
        return None
    return {
        "status": user.status.value,
        "user_id": user.user_id,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "email": user.email,
        "business_id": user.business_id,
        "widget_id": user.widget_id,
    }


@csrf_exempt
def echo(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_snapshot(request))


@csrf_exempt
async def async_echo(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_snapshot(request))


def _table_payload(request: HttpRequest) -> dict[str, Any]:
    query: str = request.META.get("QUERY_STRING", "")
    if not isinstance(request, WSGIRequest):
        query = query.encode("utf-8").decode("latin-1")  # the raw bytes, as the table expects
    return echo_payload(
        request.body,
        query,
        getattr(request, "ainisa_user", None),
        request.META.get("CONTENT_LENGTH"),
    )


@csrf_exempt
def table_echo(request: HttpRequest, rest: str = "") -> JsonResponse:
    """The shared table's echo: the raw body and query string the view reads."""
    return JsonResponse(_table_payload(request))


@csrf_exempt
async def async_table_echo(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse(_table_payload(request))
