"""Every variant of every host, built the same way for the in-process drivers and uvicorn."""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware

from ainisa_middleware import CachedResolver
from ainisa_middleware.asgi import AinisaMiddleware

from . import apps
from .peers.floor_asgi import FloorASGIMiddleware
from .peers.naive_starlette import NaiveVerifyMiddleware
from .workload import BUSINESS, PATH, WIDGET_ID, resolver

#: Variant names in table order; "bare" comes first and is the baseline.
ASGI_VARIANTS = ("bare", "ours", "floor", "naive")


def asgi_app(variant: str) -> Any:
    """The Starlette chat app behind ``variant``."""
    businesses = {WIDGET_ID: BUSINESS}
    if variant == "bare":
        return apps.starlette_app()
    if variant == "ours":
        cached = CachedResolver(resolver())
        return apps.starlette_app([Middleware(AinisaMiddleware, resolver=cached, paths=[PATH])])
    if variant == "floor":
        return apps.starlette_app(
            [Middleware(FloorASGIMiddleware, businesses=businesses, path=PATH)]
        )
    if variant == "naive":
        return apps.starlette_app(
            [Middleware(NaiveVerifyMiddleware, businesses=businesses, path=PATH)]
        )
    raise ValueError(f"unknown ASGI variant {variant!r}")


def server_app(host: str, variant: str) -> Any:
    """The app uvicorn serves for ``host`` and ``variant``."""
    if host == "asgi":
        return asgi_app(variant)
    raise ValueError(f"unknown host {host!r}")
