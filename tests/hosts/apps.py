"""The apps the real-server tests serve, importable by a server in a subprocess.

``gunicorn tests.hosts.apps:flask_app`` and the like load them from the
repository root. Every echo view answers with what the handler itself read: the
parsed query, JSON and form, the raw body, the raw request line the server kept
(``RAW_URI``, ``REQUEST_URI``, ASGI ``raw_path``) and the trusted user. Besides
``/chat``, a catch-all view answers every other path (as a single-page app's
fallback route does), so whichever reading of an odd path a router settles on,
the request reaches a handler that shows what it got.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware
from ainisa_middleware.wsgi import ENVIRON_KEY, AinisaWSGIMiddleware
from tests.cases import PATHS, RESOLVER, user_dict

__all__ = [
    "METHODS",
    "RAW_TARGET_KEYS",
    "asgi_app",
    "dispatched_app",
    "flask_app",
    "flask_echo_app",
    "mounted_asgi_app",
    "rooted_asgi_app",
    "starlette_echo_app",
]

#: Every view accepts these, OPTIONS included (a view that takes any method).
METHODS = ["GET", "POST", "PUT", "OPTIONS"]
#: Where WSGI servers keep the request line as it was sent.
RAW_TARGET_KEYS = ("RAW_URI", "REQUEST_URI")


def flask_echo_app(name: str) -> Flask:
    """A Flask app with ``/chat`` and a catch-all, both echoing what they read."""
    app = Flask(name)

    def echo(view: str) -> ResponseReturnValue:
        environ = request.environ
        form = request.form.to_dict(flat=False)  # before the body: a form parse consumes it
        body = request.get_data(as_text=True)
        return jsonify(
            view=view,
            path=request.path,
            script_name=environ.get("SCRIPT_NAME", ""),
            path_info=environ.get("PATH_INFO", ""),
            args=request.args.to_dict(flat=False),
            json=request.get_json(silent=True),
            form=form,
            body=body,
            query_string=environ.get("QUERY_STRING", ""),
            raw_targets={key: environ[key] for key in RAW_TARGET_KEYS if key in environ},
            user=user_dict(environ.get(ENVIRON_KEY)),
        )

    @app.route("/chat", methods=METHODS)
    def chat() -> ResponseReturnValue:
        return echo("chat")

    @app.route("/", defaults={"rest": ""}, methods=METHODS)
    @app.route("/<path:rest>", methods=METHODS)
    def catch_all(rest: str) -> ResponseReturnValue:
        return echo("catch-all")

    return app


def _protected_flask() -> Flask:
    app = flask_echo_app("ainisa_hosts_flask")
    app.wsgi_app = AinisaWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, resolver=RESOLVER, paths=PATHS
    )
    return app


def _dispatched() -> DispatcherMiddleware:
    root = Flask("ainisa_hosts_root")

    @root.route("/")
    def index() -> ResponseReturnValue:
        return jsonify(view="root")

    chat = flask_echo_app("ainisa_hosts_mounted")
    protected = AinisaWSGIMiddleware(chat.wsgi_app, resolver=RESOLVER, paths=PATHS)
    return DispatcherMiddleware(root, {"/api": protected})


async def _starlette_echo(request: Request, view: str) -> JSONResponse:
    body = await request.body()
    form: dict[str, list[str]] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        async with request.form() as data:
            form = {key: [str(value) for value in data.getlist(key)] for key in data}
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    scope = request.scope
    raw_path = scope.get("raw_path")
    state = scope.get("state") or {}
    return JSONResponse(
        {
            "view": view,
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "args": {key: request.query_params.getlist(key) for key in request.query_params},
            "json": parsed,
            "form": form,
            "body": body.decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "raw_targets": {} if raw_path is None else {"raw_path": raw_path.decode("latin-1")},
            "user": user_dict(state.get(STATE_KEY)),
        }
    )


async def _chat(request: Request) -> JSONResponse:
    return await _starlette_echo(request, "chat")


async def _catch_all(request: Request) -> JSONResponse:
    return await _starlette_echo(request, "catch-all")


def starlette_echo_app(*, catch_all: bool = True) -> Starlette:
    """A Starlette app with ``/chat`` (and a catch-all), echoing what they read."""
    routes = [Route("/chat", _chat, methods=METHODS)]
    if catch_all:
        routes.append(Route("/{rest:path}", _catch_all, methods=METHODS))
    return Starlette(routes=routes)


#: gunicorn, werkzeug's server, waitress: ``app.wsgi_app`` wrapped, as the README says.
flask_app = _protected_flask()
#: gunicorn: werkzeug's DispatcherMiddleware mounting the protected chat app at /api.
dispatched_app = _dispatched()
#: uvicorn, hypercorn, daphne: the middleware around the whole app.
asgi_app = AinisaMiddleware(starlette_echo_app(), resolver=RESOLVER, paths=PATHS)
#: uvicorn: the protected app under Starlette's Mount("/api").
mounted_asgi_app = Starlette(
    routes=[
        Mount("/api", app=AinisaMiddleware(starlette_echo_app(), resolver=RESOLVER, paths=PATHS))
    ]
)
#: uvicorn --root-path /api: only /chat, no catch-all (the router strips the root path).
rooted_asgi_app = AinisaMiddleware(
    starlette_echo_app(catch_all=False), resolver=RESOLVER, paths=PATHS
)
