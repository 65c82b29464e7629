"""A one-view Django project for the upload memory test: settings made here, served
as ``tests.hosts.upload_django:application`` (ASGI) by a server in a subprocess."""

from __future__ import annotations

import hashlib

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="tests-only-not-a-secret",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=["ainisa_middleware.django.AinisaMiddleware"],
    AINISA={"RESOLVER": "tests.cases.RESOLVER", "PATHS": ["/chat"]},
)
django.setup()

from django.core.handlers.asgi import ASGIHandler  # noqa: E402 - needs settings
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def upload(request: HttpRequest) -> JsonResponse:
    found = {}
    for name, stored in request.FILES.items():
        digest = hashlib.sha256()
        for chunk in stored.chunks():
            digest.update(chunk)
        found[name] = [stored.size, digest.hexdigest()]
        stored.close()
    return JsonResponse(found)


urlpatterns = [path("chat", upload)]
application = ASGIHandler()
