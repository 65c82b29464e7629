"""A Starlette site and chat backend that sign visitors with expiring tokens.

The page renders ``window.ainisaUser`` with a ``user_token`` (bound to the widget,
expiring in an hour, names and email signed); ``AinisaMiddleware`` verifies it,
and Starlette's ``AuthenticationMiddleware`` with ``AinisaAuthBackend`` turns the
visitor into ``request.user``, so ``requires("ainisa:verified")`` guards the
members' endpoint.

    pip install "ainisa-middleware[starlette,tokens]" uvicorn
    export AINISA_DEMO_SECRET='pick-a-secret'
    uvicorn --app-dir examples/tokens app:app --port 8000
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ainisa_middleware import Business, StaticResolver, user_token
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.auth import VERIFIED_SCOPE, AinisaAuthBackend
from ainisa_middleware.snippet import user_script, widget_script

SECRET = os.environ.get("AINISA_DEMO_SECRET", "demo-secret-change-me")
WIDGET_ID = os.environ.get("AINISA_DEMO_WIDGET_ID", "token-widget")

#: The business accepts tokens only: a copied user_hash verifies nowhere here.
resolver = StaticResolver(
    {WIDGET_ID: Business(id="bakery", secrets=(SECRET,), proofs=frozenset({"token"}))}
)


async def page(request: Request) -> HTMLResponse:
    """The site's page for its logged-in customer 42 (a real site reads its session)."""
    token = user_token(SECRET, 42, widget_id=WIDGET_ID, ttl=3600, firstname="Ada")
    html = user_script(42, user_token=token, firstname="Ada") + widget_script(widget_id=WIDGET_ID)
    return HTMLResponse(f"<!doctype html><title>Bakery</title><body>{html}</body>")


async def chat(request: Request) -> JSONResponse:
    """Everyone may chat; request.user says who is verified."""
    user = request.user
    if user.is_authenticated:
        return JSONResponse(
            {"reply": f"Welcome back, {user.display_name}", "user_id": user.identity}
        )
    return JSONResponse({"reply": "Hello, guest", "status": user.ainisa.status.value})


@requires(VERIFIED_SCOPE)
async def orders(request: Request) -> JSONResponse:
    """Verified visitors only: Starlette answers 403 to everyone else."""
    return JSONResponse({"orders_of": request.user.identity})


app = Starlette(
    routes=[
        Route("/", page),
        Route("/chat", chat, methods=["POST"]),
        Route("/chat/orders", orders, methods=["POST"]),
    ],
    middleware=[
        # First in the list is outermost: the visitor is judged before the backend reads it.
        Middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"]),
        Middleware(AuthenticationMiddleware, backend=AinisaAuthBackend()),
    ],
)
