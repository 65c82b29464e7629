"""The chat apps the soak serves: every request is checked by the app itself.

Each app reads what it received with its host's own parsers and appends one
JSON line per request to ``AINISA_SOAK_LOG``: the status the middleware
decided and every problem it saw (a ``user_hash`` anywhere, an identity field
that is not the verified one). The soak counts those lines.

    uvicorn tests.hardening.soak_apps:asgi_app      (AINISA_SOAK_DB, AINISA_SOAK_LOG)
    waitress-serve tests.hardening.soak_apps:wsgi_app
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable
from typing import Any

from ainisa_middleware.stores.sql import SQLResolver

from .views import flat_identity, json_identity

KEPT = ("user_id", "firstname", "lastname", "email")
_lock = threading.Lock()


def problems(user: Any, views: dict[str, dict[str, list[str]]]) -> list[str]:
    """What the app saw that it must not have: a hash, or identity not as verified."""
    found: list[str] = []
    verified = bool(getattr(user, "verified", False))
    expected = {k: getattr(user, k) for k in KEPT if getattr(user, k, None) is not None}
    for where, fields in views.items():
        if "user_hash" in fields:
            found.append(f"user_hash in {where}")
        for key, values in fields.items():
            for value in values:
                if value == "" or key == "user_hash":
                    continue
                if not verified or expected.get(key) != value:
                    found.append(f"unverified {key} in {where}")
    return found


def record(user: Any, views: dict[str, dict[str, list[str]]]) -> None:
    line = json.dumps(
        {
            "status": getattr(getattr(user, "status", None), "value", None),
            "problems": problems(user, views),
        }
    )
    with _lock, open(os.environ["AINISA_SOAK_LOG"], "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _resolver() -> SQLResolver:
    return SQLResolver(os.environ["AINISA_SOAK_DB"], timeout=5.0)


# -- ASGI (Starlette) --------------------------------------------------------


def _asgi() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ainisa_middleware.asgi import AinisaMiddleware

    async def chat(request: Request) -> JSONResponse:
        views = {"query": flat_identity(request.query_params.multi_items())}
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = await request.form()
            views["form"] = flat_identity(
                (k, v) for k, v in form.multi_items() if isinstance(v, str)
            )
        with contextlib.suppress(ValueError):
            views["json"] = json_identity(json.loads(body))
        user = getattr(request.state, "ainisa_user", None)
        record(user, views)
        return JSONResponse({"status": getattr(getattr(user, "status", None), "value", None)})

    app = Starlette(routes=[Route("/chat", chat, methods=["GET", "POST", "PUT", "DELETE"])])
    return AinisaMiddleware(app, resolver=_resolver(), paths=["/chat"])


# -- WSGI (werkzeug) ---------------------------------------------------------


def _wsgi() -> Any:
    from werkzeug.wrappers import Request, Response

    from ainisa_middleware.wsgi import AinisaWSGIMiddleware

    def chat(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        views: dict[str, dict[str, list[str]]] = {}
        with contextlib.suppress(UnicodeDecodeError):
            views["query"] = flat_identity(request.args.items(multi=True))
        if request.mimetype == "application/x-www-form-urlencoded":
            views["form"] = flat_identity(request.form.items(multi=True))
        with contextlib.suppress(ValueError):
            views["json"] = json_identity(json.loads(request.get_data()))
        user = environ.get("ainisa.user")
        record(user, views)
        status = getattr(getattr(user, "status", None), "value", None)
        response = Response(json.dumps({"status": status}), content_type="application/json")
        return response(environ, start_response)

    return AinisaWSGIMiddleware(chat, resolver=_resolver(), paths=["/chat"])


if "AINISA_SOAK_DB" in os.environ:  # only when served by the soak
    asgi_app = _asgi()
    wsgi_app = _wsgi()
