"""The signing scheme: ``user_hash = hex(HMAC-SHA256(secret, utf8(user_id)))``.

This is the one place that touches secrets. Comparison is constant time
(:func:`hmac.compare_digest`) and always runs against every secret, so the time
taken does not reveal which secret, if any, matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from functools import lru_cache
from hmac import compare_digest


def _one_shot() -> Callable[[bytes, bytes, str], bytes]:
    """OpenSSL's one-shot HMAC, which ``hmac.digest`` calls: one C call, no Python frame."""
    try:
        from _hashlib import hmac_digest
    except ImportError:  # pragma: no cover - a Python built without OpenSSL
        return hmac.digest
    return hmac_digest


_digest = _one_shot()

__all__ = ["HASH_LENGTH", "match_secret", "user_hash", "verify_user_hash"]

#: Length of a well-formed hash: 32 bytes of SHA-256 as hex.
HASH_LENGTH = 64


@lru_cache(maxsize=4096)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 object keyed with ``secret``, to copy for each message.

    Keying hashes the padded key twice; doing it once per secret and copying
    the keyed object per message is the standard library's own fast path
    (OpenSSL underneath) and the cheapest correct way measured here.
    """
    return hmac.new(secret.encode("utf-8"), digestmod="sha256")


def _mac(secret: str, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``secret``, as raw bytes."""
    mac = _keyed(secret).copy()
    mac.update(message)
    return mac.digest()


def _message(user_id: str | int) -> bytes:
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        raise TypeError(f"user_id must be a str or an int, not {type(user_id).__name__}")
    return str(user_id).encode("utf-8")


def _check_secret(secret: object) -> str:
    if not isinstance(secret, str):
        raise TypeError(f"a secret must be a str, not {type(secret).__name__}")
    if not secret:
        raise ValueError("a secret must not be empty: an empty key signs nothing")
    return secret


def user_hash(secret: str, user_id: str | int) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``user_id`` under ``secret``.

    Compute it on the server that renders the page, never in the browser: the
    secret must not reach the visitor. Integers are hashed as their decimal
    string, as the widget sends them.

    >>> user_hash("s3cret", "42") == user_hash("s3cret", 42)
    True
    """
    return _mac(_check_secret(secret), _message(user_id)).hex()


def _hash_bytes(candidate: object) -> bytes | None:
    """The 32 bytes a well-formed hash spells (either case), or ``None``."""
    # Checked before any comparison: compare_digest raises TypeError on a
    # non-ASCII str, and a malformed hash must simply be "no match".
    if not isinstance(candidate, str) or len(candidate) != HASH_LENGTH:
        return None
    try:
        raw = bytes.fromhex(candidate)
    except ValueError:  # a character that is not a hex digit, non-ASCII included
        return None
    # fromhex skips ASCII whitespace; 64 characters make 32 bytes only if all are hex digits.
    return raw if len(raw) == HASH_LENGTH // 2 else None


@lru_cache(maxsize=4096)
def _key(secret: str) -> bytes:
    return secret.encode("utf-8")


def match_secret(secrets: Sequence[str], user_id: str | int, candidate: object) -> int | None:
    """Return the position of the secret that signed ``candidate``, or ``None``.

    Every secret is tried, even after a match, so timing does not tell an
    attacker which one matched or how many a business holds beyond the first.
    Runs on every verified request: one-shot ``hmac.digest`` (OpenSSL, no
    Python-level HMAC object) per secret, and the checks of :func:`_hash_bytes`
    and :func:`_message` written in line.
    """
    # Checked before any comparison: compare_digest raises TypeError on a
    # non-ASCII str, and a malformed hash must simply be "no match".
    if type(candidate) is not str or len(candidate) != HASH_LENGTH:
        return None
    try:
        given = bytes.fromhex(candidate)
        # A str user id, or an int (not a bool) hashed as its decimal string.
        if type(user_id) is str:
            message = user_id.encode("utf-8")
        elif type(user_id) is int:
            message = str(user_id).encode("utf-8")
        else:
            return None
    except (ValueError, UnicodeEncodeError):  # not hex; a lone surrogate has no UTF-8 form
        return None
    # fromhex skips ASCII whitespace; 64 characters make 32 bytes only if all are hex digits.
    if len(given) != HASH_LENGTH // 2:
        return None
    found: int | None = None
    for index, secret in enumerate(secrets):
        if compare_digest(_digest(_key(secret), message, "sha256"), given) and found is None:
            found = index
    return found


def verify_user_hash(secrets: str | Sequence[str], user_id: str | int, user_hash: object) -> bool:
    """Tell whether ``user_hash`` was made from ``user_id`` by one of ``secrets``.

    ``secrets`` is one secret or several (during a rotation both the new and the
    old secret are valid). Upper or lower case hex is accepted; anything that is
    not 64 hex characters is simply invalid, never an exception.
    """
    if isinstance(secrets, str):
        secrets = (secrets,)
    checked = tuple(_check_secret(s) for s in secrets)
    return match_secret(checked, user_id, user_hash) is not None
