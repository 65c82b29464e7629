"""Businesses, widgets and secrets in a SQL database: SQLite, PostgreSQL, MariaDB/MySQL.

Install the extra, ``pip install "ainisa-middleware[sql]"`` (``[postgres]`` adds
psycopg 3, ``[mysql]`` adds PyMySQL), create the schema once with
``ainisa-middleware store init``, then put the resolver behind the middleware::

    resolver = SQLResolver("postgresql+psycopg://app@db/app")
    app.add_middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"])

:class:`SQLStore` is the administrative side (add businesses and widgets,
rotate and retire secrets); :class:`SQLResolver` is what the middleware asks,
with a cache and an in-memory index of widget IDs in front of the database so
that a flood of made-up widget IDs never reaches it.

Secrets are encrypted at rest with Fernet when ``AINISA_MASTER_KEY`` holds one
or more keys (the first encrypts, every one decrypts, so the master key can be
rotated). Without it they are stored in plaintext and a warning is logged.

The modules import one way: :mod:`.errors`, then :mod:`.schema`, :mod:`.crypto`
and :mod:`.engine`, then :mod:`.store`, then :mod:`.resolver`. Every name below
is importable from this package, as it was before the store became one.
"""

from __future__ import annotations

# One sentence naming the extra, before any module of the store needs either.
try:
    import cryptography.fernet  # noqa: F401
    import sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ainisa_middleware.stores.sql needs SQLAlchemy and cryptography: install them with "
        "'pip install \"ainisa-middleware[sql]\"'."
    ) from exc

from .crypto import MASTER_KEY_ENV, generate_master_key
from .engine import DATABASE_URL_ENV, DEFAULT_DATABASE_URL
from .errors import StoreError, describe_error
from .resolver import SQLResolver
from .schema import DEFAULT_TABLE_PREFIX, SCHEMA_VERSION
from .schema import MIGRATIONS as MIGRATIONS
from .store import (
    DEFAULT_GRACE,
    DEFAULT_IDENTITY_PLANS,
    DEFAULT_PLANS,
    BusinessInfo,
    NewSecret,
    SecretInfo,
    SQLStore,
    WidgetInfo,
)

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_GRACE",
    "DEFAULT_IDENTITY_PLANS",
    "DEFAULT_PLANS",
    "DEFAULT_TABLE_PREFIX",
    "MASTER_KEY_ENV",
    "SCHEMA_VERSION",
    "BusinessInfo",
    "NewSecret",
    "SQLResolver",
    "SQLStore",
    "SecretInfo",
    "StoreError",
    "WidgetInfo",
    "describe_error",
    "generate_master_key",
]
