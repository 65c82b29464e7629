"""Secret values encrypted at rest in the Django models, as the SQL store encrypts them.

The key is ``AINISA["MASTER_KEY"]``, else ``$AINISA_MASTER_KEY``: one Fernet key,
or several (a list, or commas) of which the first encrypts and every one
decrypts. The scheme is :mod:`ainisa_middleware.sealing`, so a key made with
``ainisa-middleware store genkey`` serves both stores. Without a key values are
stored as ``plain:<value>`` and ``manage.py check`` warns (``ainisa.W010``).

:class:`SealedCharField` encrypts on the way to the database and decrypts on
the way back, so ``secret.value`` is the secret in Python and never in a row.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from ainisa_middleware.errors import ConfigurationError
from ainisa_middleware.sealing import (
    FERNET_PREFIX,
    MASTER_KEY_ENV,
    PLAIN_PREFIX,
    Cipher,
    master_keys,
)

__all__ = ["SealedCharField", "cipher", "is_sealed", "master_key_setting", "open_stored", "seal"]

_lock = threading.Lock()
_ciphers: dict[tuple[str, ...], Cipher] = {}


class _DjangoCipher(Cipher):
    error = ImproperlyConfigured


def master_key_setting() -> str | Sequence[str]:
    """``AINISA["MASTER_KEY"]``, else ``$AINISA_MASTER_KEY`` (empty: none)."""
    value = getattr(settings, "AINISA", None)
    key = value.get("MASTER_KEY") if isinstance(value, dict) else None
    if key is None:
        return os.environ.get(MASTER_KEY_ENV, "")
    return key  # type: ignore[no-any-return]


def cipher() -> Cipher:
    """The cipher for the configured key(s); built once per key."""
    try:
        keys = tuple(master_keys(master_key_setting()))
    except ConfigurationError as error:
        raise ImproperlyConfigured(
            str(error).replace("master_key", "AINISA['MASTER_KEY']")
        ) from None
    with _lock:
        found = _ciphers.get(keys)
        if found is None:
            try:
                found = _ciphers[keys] = _DjangoCipher(list(keys))
            except ConfigurationError as error:
                raise ImproperlyConfigured(str(error)) from None
        return found


def seal(value: str) -> str:
    """``value`` as stored: encrypted under the first key, or marked plain."""
    return cipher().seal(value)


def open_stored(stored: str, secret_id: object = "?") -> str:
    """The secret in a stored value; a value from before encryption (no prefix) is plaintext."""
    if not stored.startswith((FERNET_PREFIX, PLAIN_PREFIX)):
        return stored
    return cipher().open(stored, secret_id)  # type: ignore[arg-type]


def is_sealed(stored: str) -> bool:
    """Whether ``stored`` is in the sealed format (encrypted or marked plain)."""
    return stored.startswith((FERNET_PREFIX, PLAIN_PREFIX))


class SealedCharField(models.CharField):  # type: ignore[type-arg]
    """A ``CharField`` whose value is encrypted in the database and plain in Python.

    Lookups by value cannot match (each encryption differs): secrets are found
    by their business, never by value.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else open_stored(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or is_sealed(value):
            return value
        return seal(value)
