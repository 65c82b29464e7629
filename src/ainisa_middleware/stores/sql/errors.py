"""The store's error, and the one line it logs about any failure.

Every other module of the store raises :class:`StoreError`, so it sits at the
bottom, on the standard library alone.
"""

from __future__ import annotations

__all__ = ["StoreError", "describe_error"]


class StoreError(Exception):
    """An operation on the store cannot be done; the message says why (never a secret)."""


def describe_error(error: BaseException) -> str:
    """One line about a failure, safe for logs: never the SQL, its parameters or a URL password.

    SQLAlchemy's own message quotes the statement and its parameters; the
    driver's first line says what went wrong without them.
    """
    if isinstance(error, StoreError):
        return str(error)
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__
