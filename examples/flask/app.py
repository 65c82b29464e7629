"""A Flask chat backend for the Ainisa widget, protected by AinisaWSGIMiddleware.

Run it from the repository root::

    pip install -e ".[flask]"
    export AINISA_DEMO_SECRET='pick-a-secret'
    flask --app examples/flask/app.py run --port 5000
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from flask import Flask, jsonify, request

from ainisa_middleware import AinisaUser, Business, CachedResolver, StaticResolver
from ainisa_middleware.wsgi import AinisaWSGIMiddleware

DEFAULT_SECRET = "demo-secret-change-me"


def _visitor() -> AinisaUser:
    # Set by the middleware on every request under /chat.
    user: AinisaUser = request.environ["ainisa.user"]
    return user


def create_app(secret: str | None = None, widget_id: str | None = None) -> Flask:
    """The app; the secret and widget ID default to the environment."""
    secret = secret or os.environ.get("AINISA_DEMO_SECRET", DEFAULT_SECRET)
    widget_id = widget_id or os.environ.get("AINISA_DEMO_WIDGET_ID", "demo-widget")
    shop = Business(id="demo-shop", secrets=(secret,))
    resolver = CachedResolver(StaticResolver({widget_id: shop}), ttl=60.0)

    app = Flask(__name__)
    history: dict[str, list[str]] = defaultdict(list)

    @app.post("/chat")
    def chat() -> Any:
        user = _visitor()
        message = str((request.get_json(silent=True) or {}).get("message", ""))
        if user.verified and user.user_id is not None:
            history[user.user_id].append(message)
            # user_id is verified; firstname is whatever the visitor typed.
            name = user.firstname or f"user {user.user_id}"
            return jsonify(reply=f"Welcome back, {name}!", status=user.status)
        return jsonify(reply="Hello, guest!", status=user.status)

    @app.post("/chat/history")
    def chat_history() -> Any:
        user = _visitor()
        if not user.verified or user.user_id is None:
            return jsonify(error="identity_required", detail="Sign in to see your history."), 401
        return jsonify(user_id=user.user_id, messages=history[user.user_id])

    @app.get("/health")
    def health() -> Any:
        return jsonify(ok=True, inspected="ainisa.user" in request.environ)

    # Wrap the WSGI app, not the Flask object: Flask's routing stays as it is.
    app.wsgi_app = AinisaWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, resolver=resolver, paths=["/chat"]
    )
    return app


app = create_app()

if __name__ == "__main__":
    app.run(port=5000)
