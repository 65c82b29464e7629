"""Secrets at rest for the SQL store: the shared scheme (:mod:`ainisa_middleware.sealing`),
raising :class:`~.errors.StoreError` so the command line prints one line."""

from __future__ import annotations

import logging
import threading

from ainisa_middleware import sealing
from ainisa_middleware.sealing import (
    FERNET_PREFIX,
    MASTER_KEY_ENV,
    generate_master_key,
    master_keys,
)

from .errors import StoreError

__all__ = [
    "FERNET_PREFIX",
    "MASTER_KEY_ENV",
    "Cipher",
    "generate_master_key",
    "master_keys",
    "warn_plaintext",
]


# The package's logger: one name for the whole store, the one the docs give.
logger = logging.getLogger(__package__)


class Cipher(sealing.Cipher):
    error = StoreError


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_plaintext(where: str) -> None:
    """Warn once per database (``where``, its URL without password) that secrets are plaintext."""
    with _warned_lock:
        if where in _warned:
            return
        _warned.add(where)
    logger.warning(
        "ainisa store: %s is not set, so secrets in %s are stored in plaintext; "
        "set it (make a key with 'ainisa-middleware store genkey') and run "
        "'ainisa-middleware store reencrypt'",
        MASTER_KEY_ENV,
        where,
    )
