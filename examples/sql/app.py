"""A chat endpoint whose businesses, widgets and secrets live in a SQL database.

Run it from the repository root::

    pip install "ainisa-middleware[fastapi,sql]" uvicorn
    export AINISA_DATABASE_URL=sqlite:///ainisa.db     # or postgresql://..., mysql://...
    ainisa-middleware store init
    uvicorn --app-dir examples/sql app:app --port 8000

Businesses, widgets and secrets are managed with ``ainisa-middleware business``,
``widget`` and ``secret`` (see docs/stores.md); the app only reads them.
``SQLResolver`` keeps a cache and an index of widget IDs in front of the
database, and answers 503 while the database cannot be reached. With
``AINISA_INVALIDATION_URL`` set (``postgresql://...`` or ``redis://...``), every
worker drops a change made with the command line at once (docs/scaling.md);
``resolver.close()`` in the lifespan ends its listening thread.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from ainisa_middleware import AinisaUser
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.fastapi import get_ainisa_user
from ainisa_middleware.stores.sql import SQLResolver

#: Seconds to wait for the database, for the middleware and the store alike.
TIMEOUT = float(os.environ.get("AINISA_RESOLVER_TIMEOUT", "5"))

# None: AINISA_DATABASE_URL, else sqlite:///ainisa.db in the working directory.
resolver = SQLResolver(None, timeout=TIMEOUT)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Refuse to start on a database without the schema (run 'store init' first),
    # rather than answering 503 to every chat request.
    await asyncio.to_thread(resolver.store.check)
    yield
    resolver.close()


app = FastAPI(lifespan=lifespan)
app.add_middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"], resolver_timeout=TIMEOUT)


@app.post("/chat")
async def chat(user: Annotated[AinisaUser, Depends(get_ainisa_user)]) -> dict[str, Any]:
    """Say who the middleware vouches for; a real app would answer the message."""
    return {
        "business": user.business_id,
        "status": user.status.value,
        "user_id": user.user_id,
        "firstname": user.firstname,
    }
