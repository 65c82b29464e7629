"""System checks (``manage.py check``), registered by the app under ``Tags.security``.

Ids: ``ainisa.E001`` .. ``E011`` and ``E013`` mirror the startup errors of
``settings.AINISA`` (:mod:`ainisa_middleware.django.conf`); ``ainisa.W001`` and
``W002`` are about where the middleware sits in ``MIDDLEWARE``; ``ainisa.W010``
says secrets are stored in plaintext (no master key) and ``E012`` that the
master key is not a key; ``ainisa.E030`` and on are the deployment check
(:mod:`ainisa_middleware.django.deployment`, ``--database`` only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from django.conf import settings
from django.core import checks

from ainisa_middleware.django import conf

__all__ = [
    "MIDDLEWARE_PATH",
    "OUTER_MIDDLEWARE",
    "check_master_key",
    "check_middleware_order",
    "check_settings",
]

#: How ``MIDDLEWARE`` names the middleware.
MIDDLEWARE_PATH: Final = "ainisa_middleware.django.AinisaMiddleware"
_ALIASES: Final = (MIDDLEWARE_PATH, "ainisa_middleware.django.middleware.AinisaMiddleware")
#: Middleware that must run before (above) ours: CORS answers preflights and adds
#: its headers to our error responses only from there.
OUTER_MIDDLEWARE: Final = ("corsheaders.middleware.CorsMiddleware",)


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.Error]:
    """``settings.AINISA`` is complete and valid: the same problems the middleware raises."""
    installed = _position(settings.MIDDLEWARE) is not None
    found = conf.problems(middleware_installed=installed)
    return [checks.Error(p.message, hint=p.hint, id=p.id) for p in found]


def check_middleware_order(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The middleware is in ``MIDDLEWARE``, below CORS."""
    middleware = list(settings.MIDDLEWARE)
    position = _position(middleware)
    if position is None:
        return [
            checks.Warning(
                f"{MIDDLEWARE_PATH!r} is not in MIDDLEWARE, so no chat request is verified.",
                hint=f"Add {MIDDLEWARE_PATH!r} to MIDDLEWARE, above CsrfViewMiddleware, or "
                "silence ainisa.W002 if this project only uses the models and admin.",
                id="ainisa.W002",
            )
        ]
    found: list[checks.CheckMessage] = []
    for outer in OUTER_MIDDLEWARE:
        if outer in middleware[position + 1 :]:
            found.append(
                checks.Warning(
                    f"{outer!r} comes after {MIDDLEWARE_PATH!r} in MIDDLEWARE, so the "
                    "middleware's error responses (401, 413 ...) carry no CORS headers and "
                    "the widget cannot read them.",
                    hint=f"Move {outer!r} above {MIDDLEWARE_PATH!r}.",
                    id="ainisa.W001",
                )
            )
    return found


def check_master_key(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Secrets are encrypted at rest: a master key is set, and it is a valid one."""
    from django.core.exceptions import ImproperlyConfigured

    from ainisa_middleware.django.sealing import cipher

    try:
        encrypting = cipher().encrypting
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="ainisa.E012")]
    if encrypting:
        return []
    return [
        checks.Warning(
            "No master key is set, so Ainisa secrets are stored in plaintext: anyone who "
            "reads the database or a backup can sign visitors as any user.",
            hint="Set AINISA['MASTER_KEY'] (or the AINISA_MASTER_KEY environment variable) "
            "to a key from 'ainisa-middleware store genkey', then run "
            "'manage.py ainisa_reencrypt'.",
            id="ainisa.W010",
        )
    ]


def _position(middleware: Sequence[str]) -> int | None:
    for index, path in enumerate(middleware):
        if path in _ALIASES:
            return index
    return None


def register() -> None:
    """Register the checks; the app's ``ready()`` calls this."""
    checks.register(check_settings, checks.Tags.security)
    checks.register(check_middleware_order, checks.Tags.security)
    checks.register(check_master_key, checks.Tags.security)
    from ainisa_middleware.django.deployment import check_deployment

    checks.register(check_deployment, checks.Tags.database)
