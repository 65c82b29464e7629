"""From a database URL to a SQLAlchemy engine whose every wait is bounded.

The middleware's ``resolver_timeout`` becomes each driver's own connect and
query limits here, so a sync host that cannot time a call out from outside
still never waits longer than it for the database.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ainisa_middleware.errors import ConfigurationError

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "connect_args",
    "make_engine",
    "once_more",
    "safe_url",
    "validate_timeout",
]

_T = TypeVar("_T")

#: Read when no URL is given.
DATABASE_URL_ENV = "AINISA_DATABASE_URL"
#: The embedded default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///ainisa.db"

_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_DRIVER_EXTRAS = {"psycopg": "postgres", "pymysql": "mysql"}


def safe_url(url: URL) -> str:
    """The URL as logs and messages may show it: without its password."""
    return url.render_as_string(hide_password=True)


def validate_timeout(timeout: object) -> float | None:
    """``timeout`` as seconds, or ``None`` for none; anything else is a configuration error."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < math.inf
    ):
        raise ConfigurationError(
            f"timeout must be a positive number of seconds, or None; not {timeout!r}."
        )
    return float(timeout)


def connect_args(url: URL, timeout: float) -> dict[str, Any]:
    """The middleware's ``resolver_timeout`` as each driver's own connect and query limits."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        return {"timeout": timeout}  # how long to wait for a lock
    if backend == "postgresql" and driver == "psycopg":
        options = f"-c statement_timeout={max(1, math.ceil(timeout * 1000))}"
        given = url.query.get("options")
        if isinstance(given, str) and given:
            options = f"{given} {options}"  # keep the URL's own options
        return {
            # libpq counts whole seconds and treats 1 as 2.
            "connect_timeout": max(2, math.ceil(timeout)),
            "options": options,
        }
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        return {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    return {}


def make_engine(url: str | URL | None, timeout: float | None) -> Engine:
    """An engine for ``url`` (``None``: ``AINISA_DATABASE_URL``, else ``sqlite:///ainisa.db``).

    ``postgresql://`` (or ``postgres://``) means psycopg 3 and ``mysql://`` / ``mariadb://``
    mean PyMySQL;
    a missing driver names the extra that installs it.
    """
    if url is None:
        url = os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "the database URL is not one SQLAlchemy understands; write it as "
            "sqlite:///ainisa.db, postgresql+psycopg://user@host/db or "
            "mysql+pymysql://user@host/db."
        ) from None
    if parsed.drivername.split("+")[0] == "postgres":
        # Heroku, libpq and most providers write postgres://; SQLAlchemy wants postgresql.
        parsed = parsed.set(drivername="postgresql" + parsed.drivername[len("postgres") :])
    backend = parsed.get_backend_name()
    if "+" not in parsed.drivername and backend in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=f"{backend}+{_DEFAULT_DRIVERS[backend]}")
    options: dict[str, Any] = {}
    arguments: dict[str, Any] = {}
    if timeout is not None:
        arguments = connect_args(parsed, timeout)
        options["pool_timeout"] = timeout
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        # One shared in-memory database for every thread (tests, demos).
        options = {"poolclass": StaticPool}
        arguments["check_same_thread"] = False
    try:
        return sa.create_engine(parsed, connect_args=arguments, **options)
    except (ImportError, NoSuchModuleError) as exc:
        driver = parsed.get_driver_name()
        extra = _DRIVER_EXTRAS.get(driver)
        hint = f'pip install "ainisa-middleware[{extra}]"' if extra else f"install {driver}"
        raise ConfigurationError(
            f"the database driver for {safe_url(parsed)} is not installed ({exc}); {hint}."
        ) from None


def once_more(function: Callable[[], _T]) -> _T:
    """Run ``function``; again, once, if the database had dropped the pooled connection.

    SQLAlchemy invalidates the whole pool on such an error, so the second try
    opens a fresh connection: a database restart costs no failed request.
    """
    try:
        return function()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return function()
