"""Django integration: the middleware, and an installable app with models, admin and checks.

Install the extra, ``pip install "ainisa-middleware[django]"``, then in settings::

    MIDDLEWARE = [..., "ainisa_middleware.django.AinisaMiddleware", ...]
    AINISA = {"RESOLVER": "myproject.ainisa.resolver", "PATHS": ["/chat"]}

Add ``"ainisa_middleware.django"`` to ``INSTALLED_APPS`` for ``manage.py check``,
the business/widget/secret models, their admin and :class:`ModelResolver`.

Django imports this package before its apps are ready, so nothing here imports
``models.py``: the names below load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ainisa_middleware.django.middleware import AinisaMiddleware, get_ainisa_user
    from ainisa_middleware.django.resolver import ModelResolver

__all__ = ["AinisaMiddleware", "ModelResolver", "get_ainisa_user"]

_LAZY = {
    "AinisaMiddleware": "ainisa_middleware.django.middleware",
    "ModelResolver": "ainisa_middleware.django.resolver",
    "get_ainisa_user": "ainisa_middleware.django.middleware",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
