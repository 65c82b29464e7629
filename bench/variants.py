"""Every variant of every host, built the same way for the in-process drivers and uvicorn."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from typing import Any

from starlette.middleware import Middleware

from ainisa_middleware import CachedResolver

from . import apps
from .workload import BUSINESS, PATH, SECRET, WIDGET_ID, resolver

#: Variant names in table order; "bare" comes first and is the baseline.
ASGI_VARIANTS = ("bare", "ours", "ours-sql", "floor", "naive")
WSGI_VARIANTS = ("bare", "ours", "ours-sql", "floor", "naive")
DJANGO_VARIANTS = ("bare", "ours", "floor", "naive")
VARIANTS = {"asgi": ASGI_VARIANTS, "wsgi": WSGI_VARIANTS, "django": DJANGO_VARIANTS}
#: ``ours`` with each ``on_decision`` hook (``python -m bench.hooks``; not in ``make bench``).
HOOK_VARIANTS = ("ours-hook", "ours-prom", "ours-otel")
#: What the network runs serve (the SQL variant answers from the same cache as "ours").
NET_VARIANTS = {"asgi": ("bare", "ours", "floor", "naive"), "django": DJANGO_VARIANTS}

_BUSINESSES = {WIDGET_ID: BUSINESS}


def decision_hook(variant: str) -> Any:
    """The ``on_decision`` hook of a :data:`HOOK_VARIANTS` name: a no-op, or an exporter."""
    if variant == "ours-hook":
        return lambda record: None
    if variant == "ours-prom":
        from prometheus_client import CollectorRegistry

        from ainisa_middleware.prometheus import decisions_hook

        return decisions_hook(CollectorRegistry())
    if variant == "ours-otel":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from ainisa_middleware.otel import decisions_hook as otel_hook

        return otel_hook(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    raise ValueError(f"unknown hook variant {variant!r}")


@cache
def sql_resolver() -> Any:
    """The process's ``SQLResolver`` on SQLite (see :func:`fresh_sql_resolver`)."""
    return fresh_sql_resolver()


def fresh_sql_resolver() -> Any:
    """``SQLResolver`` on a new SQLite file holding the benchmark's business."""
    from ainisa_middleware.stores.sql import SQLResolver, SQLStore, generate_master_key

    folder = tempfile.mkdtemp(prefix="ainisa-bench-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    store = SQLStore(
        f"sqlite:///{os.path.join(folder, 'bench.db')}", master_key=generate_master_key()
    )
    store.init()
    store.add_business(BUSINESS.id, plan="pro")
    store.rotate_secret(BUSINESS.id, value=SECRET)
    store.add_widget(WIDGET_ID, business_id=BUSINESS.id)
    return SQLResolver(store)


def asgi_app(variant: str) -> Any:
    """The Starlette chat app behind ``variant``."""
    from ainisa_middleware.asgi import AinisaMiddleware

    from .peers.floor_asgi import FloorASGIMiddleware
    from .peers.naive_starlette import NaiveVerifyMiddleware

    if variant == "bare":
        return apps.starlette_app()
    if variant == "ours":
        cached = CachedResolver(resolver())
        return apps.starlette_app([Middleware(AinisaMiddleware, resolver=cached, paths=[PATH])])
    if variant in HOOK_VARIANTS:
        cached, hook = CachedResolver(resolver()), decision_hook(variant)
        return apps.starlette_app(
            [Middleware(AinisaMiddleware, resolver=cached, paths=[PATH], on_decision=hook)]
        )
    if variant == "ours-sql":
        return apps.starlette_app(
            [Middleware(AinisaMiddleware, resolver=sql_resolver(), paths=[PATH])]
        )
    if variant == "floor":
        return apps.starlette_app(
            [Middleware(FloorASGIMiddleware, businesses=_BUSINESSES, path=PATH)]
        )
    if variant == "naive":
        return apps.starlette_app(
            [Middleware(NaiveVerifyMiddleware, businesses=_BUSINESSES, path=PATH)]
        )
    raise ValueError(f"unknown ASGI variant {variant!r}")


def wsgi_app(variant: str) -> Any:
    """The werkzeug chat app behind ``variant``."""
    from ainisa_middleware.wsgi import AinisaWSGIMiddleware

    from .peers.floor_wsgi import FloorWSGIMiddleware
    from .peers.naive_werkzeug import NaiveWSGIVerify

    app = apps.werkzeug_app()
    if variant == "bare":
        return app
    if variant == "ours":
        return AinisaWSGIMiddleware(app, resolver=CachedResolver(resolver()), paths=[PATH])
    if variant in HOOK_VARIANTS:
        return AinisaWSGIMiddleware(
            app,
            resolver=CachedResolver(resolver()),
            paths=[PATH],
            on_decision=decision_hook(variant),
        )
    if variant == "ours-sql":
        return AinisaWSGIMiddleware(app, resolver=sql_resolver(), paths=[PATH])
    if variant == "floor":
        return FloorWSGIMiddleware(app, _BUSINESSES, PATH)
    if variant == "naive":
        return NaiveWSGIVerify(app, _BUSINESSES, PATH)
    raise ValueError(f"unknown WSGI variant {variant!r}")


_DJANGO_MIDDLEWARE = {
    "bare": [],
    "ours": ["ainisa_middleware.django.AinisaMiddleware"],
    "floor": [],  # the WSGI or ASGI floor wraps Django's handler instead
    "naive": ["bench.peers.naive_django.NaiveDjangoVerify"],
}


def _django_ready() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_site")
    import django
    from django.conf import settings

    if os.environ["DJANGO_SETTINGS_MODULE"] != "bench.django_site":
        raise RuntimeError(
            "the Django benchmark needs DJANGO_SETTINGS_MODULE=bench.django_site; this "
            f"process uses {os.environ['DJANGO_SETTINGS_MODULE']!r}: run it in its own process"
        )
    django.setup()
    return settings


def django_app(variant: str, *, interface: str = "wsgi") -> Any:
    """Django's WSGI (or ASGI) handler with ``variant``'s middleware."""
    settings = _django_ready()
    if variant not in _DJANGO_MIDDLEWARE:
        raise ValueError(f"unknown Django variant {variant!r}")
    settings.MIDDLEWARE = _DJANGO_MIDDLEWARE[variant]
    if interface == "asgi":
        from django.core.handlers.asgi import ASGIHandler

        from .peers.floor_asgi import FloorASGIMiddleware

        handler: Any = ASGIHandler()
        if variant == "floor":
            handler = FloorASGIMiddleware(handler, _BUSINESSES, PATH)
        return handler
    from django.core.handlers.wsgi import WSGIHandler

    from .peers.floor_wsgi import FloorWSGIMiddleware

    handler = WSGIHandler()
    if variant == "floor":
        handler = FloorWSGIMiddleware(handler, _BUSINESSES, PATH)
    return handler


def server_app(host: str, variant: str) -> Any:
    """The ASGI app uvicorn serves for ``host`` and ``variant``."""
    if host == "asgi":
        return asgi_app(variant)
    if host == "django":
        return django_app(variant, interface="asgi")
    raise ValueError(f"unknown host {host!r}")
