"""A small chat backend for the Ainisa widget, built on FastAPI.

Run it from the repository root::

    pip install "ainisa-middleware[fastapi]" uvicorn
    uvicorn --app-dir examples/fastapi app:app --port 8000

``AinisaMiddleware`` checks every request under ``/chat``: the user hash is
verified against the business's secret, anything that fails is stripped, and
the endpoints read the visitor from the dependencies, never from the body.
``/chat/stream`` streams its reply as Server-Sent Events (the middleware passes
each event on as the app sends it); ``/chat/upload`` takes a message with an
attachment as ``multipart/form-data`` (identity parts are verified, the file is
passed on unchanged).
``CORSMiddleware`` is added *after* it, which makes CORS the outer layer: the
browser's preflight is answered before it reaches the verification, and the
JSON errors the verification sends still carry CORS headers.

Settings come from the environment so the secret never lives in the code:

``AINISA_DEMO_SECRET``
    the business's secret key (a throwaway default is used for local runs).
``AINISA_DEMO_WIDGET_ID``
    the widget ID the page sends (default ``demo-widget``).
``AINISA_DEMO_ORIGINS``
    comma-separated origins allowed to call the API
    (default ``http://localhost:8000,http://127.0.0.1:8000``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ainisa_middleware import AinisaUser, Business, CachedResolver, StaticResolver
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.fastapi import get_ainisa_user, require_verified_user

#: Used when AINISA_DEMO_SECRET is unset; only good for a local try-out.
DEMO_SECRET = "demo-secret-change-me"
DEMO_WIDGET_ID = "demo-widget"
DEMO_ORIGINS = ("http://localhost:8000", "http://127.0.0.1:8000")
#: Messages kept per verified user.
HISTORY_LENGTH = 50


class ChatMessage(BaseModel):
    """What the widget posts. Identity is not read from here: ``user`` is for the middleware."""

    message: str = Field(min_length=1, max_length=4000)


class ChatReply(BaseModel):
    reply: str
    status: str
    user_id: str | None = None


class History:
    """Recent messages per verified user id, in memory (a real app uses its database)."""

    def __init__(self, length: int = HISTORY_LENGTH) -> None:
        self._lock = threading.Lock()
        self._messages: defaultdict[str, deque[str]] = defaultdict(lambda: deque(maxlen=length))

    def add(self, user_id: str, message: str) -> None:
        with self._lock:
            self._messages[user_id].append(message)

    def get(self, user_id: str) -> list[str]:
        with self._lock:
            return list(self._messages.get(user_id, ()))


def create_app(
    *,
    secret: str,
    widget_id: str = DEMO_WIDGET_ID,
    origins: tuple[str, ...] = DEMO_ORIGINS,
    mode: str = "strip",
) -> FastAPI:
    """Build the chat API for one business with one widget."""
    shop = Business(id="demo-shop", secrets=(secret,))
    # In production the inner resolver reads a database; the cache keeps that
    # off the hot path and answers repeat widget IDs without leaving the event loop.
    resolver = CachedResolver(StaticResolver({widget_id: shop}), ttl=60.0)
    history = History()

    app = FastAPI(title="Ainisa chat example")
    # Order matters: the middleware added LAST is the OUTERMOST.
    app.add_middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"], mode=mode)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "x-ainisa-widget-id"],
    )

    @app.post("/chat")
    async def chat(
        message: ChatMessage,
        user: Annotated[AinisaUser | None, Depends(get_ainisa_user)],
    ) -> ChatReply:
        """Answer anyone; greet and remember verified visitors."""
        if user is None or not user.verified:
            status = user.status.value if user is not None else "unchecked"
            return ChatReply(reply="Hello! How can I help you today?", status=status)
        assert user.user_id is not None  # a verified user always has an id
        history.add(user.user_id, message.message)
        # firstname is NOT signed: fine for a greeting, never for access control.
        name = user.firstname or "there"
        return ChatReply(
            reply=f"Welcome back, {name}!", status=user.status.value, user_id=user.user_id
        )

    @app.post("/chat/stream")
    async def chat_stream(
        message: ChatMessage,
        user: Annotated[AinisaUser | None, Depends(get_ainisa_user)],
    ) -> StreamingResponse:
        """The reply as Server-Sent Events, word by word, as a language model streams it."""
        name = (user.firstname or "there") if user is not None and user.verified else "there"
        words = f"Hello {name}, you wrote: {message.message}".split()

        async def events() -> AsyncIterator[str]:
            for word in words:
                yield f"data: {word}\n\n"
                await asyncio.sleep(0.01)  # a model producing its next token
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/chat/upload")
    async def chat_upload(
        message: Annotated[str, Form(max_length=4000)],
        file: UploadFile,
        user: Annotated[AinisaUser | None, Depends(get_ainisa_user)],
    ) -> dict[str, Any]:
        """A message with an attachment: the file is read in chunks, never whole."""
        digest = hashlib.sha256()
        size = 0
        while chunk := await file.read(65536):
            digest.update(chunk)
            size += len(chunk)
        return {
            "message": message,
            "file": {"name": file.filename, "size": size, "sha256": digest.hexdigest()},
            "status": user.status.value if user is not None else "unchecked",
            "user_id": user.user_id if user is not None else None,
        }

    @app.post("/chat/history")
    async def chat_history(
        user: Annotated[AinisaUser, Depends(require_verified_user)],
    ) -> dict[str, Any]:
        """Only a verified visitor may read their own history; others get 401."""
        return {"user_id": user.user_id, "messages": history.get(user.user_id or "")}

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Outside ``/chat``: the middleware does not look at it."""
        return {"status": "ok"}

    return app


def app_from_env(environ: Mapping[str, str] = os.environ) -> FastAPI:
    """Build the app from the ``AINISA_DEMO_*`` variables described above."""
    origins = environ.get("AINISA_DEMO_ORIGINS")
    return create_app(
        secret=environ.get("AINISA_DEMO_SECRET") or DEMO_SECRET,
        widget_id=environ.get("AINISA_DEMO_WIDGET_ID") or DEMO_WIDGET_ID,
        origins=tuple(o.strip() for o in origins.split(",") if o.strip())
        if origins
        else DEMO_ORIGINS,
    )


app = app_from_env()
