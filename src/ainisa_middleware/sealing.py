"""Secrets at rest: Fernet under the master key(s) in ``AINISA_MASTER_KEY``, else plaintext.

One scheme for every store: the SQL store (:mod:`ainisa_middleware.stores.sql`)
and the Django models (:mod:`ainisa_middleware.django`) seal secret values with
it, so the same key opens both. The first key encrypts and every key decrypts,
so the master key can be rotated (``ainisa-middleware store reencrypt``,
``manage.py ainisa_reencrypt``). Without a key, values are stored as
``plain:<value>``. Needs ``cryptography`` (extras ``sql`` and ``django``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ainisa_middleware.errors import ConfigurationError

__all__ = [
    "FERNET_PREFIX",
    "MASTER_KEY_ENV",
    "PLAIN_PREFIX",
    "Cipher",
    "generate_master_key",
    "master_keys",
]


#: One Fernet key, or several separated by commas (the first encrypts).
MASTER_KEY_ENV = "AINISA_MASTER_KEY"
#: How a stored value starts: encrypted with a master key, or not.
FERNET_PREFIX = "fernet:"
PLAIN_PREFIX = "plain:"
_PLAIN = PLAIN_PREFIX


def generate_master_key() -> str:
    """A new random Fernet key for ``AINISA_MASTER_KEY``."""
    return Fernet.generate_key().decode("ascii")


class Cipher:
    """Encrypts secret values with the master key(s); plaintext when there is none.

    A value that cannot be opened raises :attr:`error` (each store sets its own).
    """

    #: what :meth:`open` raises; the SQL store's subclass raises its ``StoreError``
    error: type[Exception] = ValueError

    def __init__(self, keys: Sequence[str]) -> None:
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                # Never echo the key: it is as sensitive as every secret it protects.
                raise ConfigurationError(
                    f"{MASTER_KEY_ENV} key #{position} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes); make one with 'ainisa-middleware store genkey'."
                ) from None
        self._first = fernets[0] if fernets else None
        self._fernet = MultiFernet(fernets) if fernets else None

    @property
    def encrypting(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None:
            return _PLAIN + value
        return FERNET_PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, stored: str, secret_id: int) -> str:
        if stored.startswith(_PLAIN):
            return stored[len(_PLAIN) :]
        if not stored.startswith(FERNET_PREFIX):
            raise self.error(f"secret {secret_id} has a value in an unknown format")
        if self._fernet is None:
            raise self.error(
                f"secret {secret_id} is encrypted but {MASTER_KEY_ENV} is not set; set it "
                "to the key that encrypted it"
            )
        try:
            token = stored[len(FERNET_PREFIX) :].encode("ascii")
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise self.error(
                f"secret {secret_id} cannot be decrypted with the keys in {MASTER_KEY_ENV}; "
                "keep the old key in the list until 'ainisa-middleware store reencrypt' has run"
            ) from None

    def reseal(self, stored: str, secret_id: int) -> str | None:
        """The value sealed under the first master key, or ``None`` when it already is."""
        assert self._first is not None  # reencrypt() checked
        plain = self.open(stored, secret_id)  # raises when no key given opens it
        if stored.startswith(FERNET_PREFIX):
            try:
                self._first.decrypt(stored[len(FERNET_PREFIX) :].encode("ascii"))
            except InvalidToken:
                pass
            else:
                return None
        return self.seal(plain)


def master_keys(given: str | Sequence[str] | None) -> list[str]:
    """The keys given, or those in ``AINISA_MASTER_KEY`` when ``given`` is ``None``."""
    master_key: object = os.environ.get(MASTER_KEY_ENV, "") if given is None else given
    if isinstance(master_key, str):
        return [part.strip() for part in master_key.split(",") if part.strip()]
    if not isinstance(master_key, Sequence) or not all(isinstance(k, str) for k in master_key):
        raise ConfigurationError(
            f"master_key must be a Fernet key, a list of them, or None to read {MASTER_KEY_ENV}."
        )
    return [k.strip() for k in master_key if isinstance(k, str) and k.strip()]
