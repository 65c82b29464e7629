"""A one-view Django project for the benchmark (settings, URLs and the view in one module).

``DJANGO_SETTINGS_MODULE=bench.django_site``. Each variant is its own
``WSGIHandler`` / ``ASGIHandler`` built with a different ``MIDDLEWARE``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from ainisa_middleware import CachedResolver

from .apps import chat_payload
from .workload import resolver

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.django_site"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, Any] = {}
USE_TZ = True
LOGGING_CONFIG = None
AINISA = {"RESOLVER": CachedResolver(resolver()), "PATHS": ["/chat"]}


def chat(request: HttpRequest) -> HttpResponse:
    # ours sets request.ainisa_user; the WSGI floor the environ, the ASGI floor the scope.
    user = getattr(request, "ainisa_user", None) or request.META.get("ainisa.user")
    if user is None:
        user = getattr(request, "scope", {}).get("state", {}).get("ainisa_user")
    return HttpResponse(chat_payload(request.body, user), content_type="application/json")


urlpatterns = [path("chat", chat)]
