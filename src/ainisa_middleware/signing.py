"""The signing scheme: ``user_hash = hex(HMAC-SHA256(secret, utf8(user_id)))``.

This is the one place that touches secrets. Comparison is constant time
(:func:`hmac.compare_digest`) and always runs against every secret, so the time
taken does not reveal which secret, if any, matched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from hmac import compare_digest
from typing import Any

__all__ = ["HASH_LENGTH", "match_secret", "user_hash", "verify_user_hash"]

#: Length of a well-formed hash: 32 bytes of SHA-256 as hex.
HASH_LENGTH = 64
_BLOCK = 64  # SHA-256's block size, the length HMAC pads its key to
_INNER = bytes(b ^ 0x36 for b in range(256))
_OUTER = bytes(b ^ 0x5C for b in range(256))


@lru_cache(maxsize=4096)
def _keyed(secret: str) -> tuple[Any, Any]:
    """SHA-256 states that have absorbed the inner and outer padded keys (RFC 2104).

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)). The two padded-key blocks
    are the same for every message, so they are hashed once per secret and the
    states copied per message: five OpenSSL calls, where ``hmac.digest``
    (``_hashlib.hmac_digest``) looks the digest up by name and keys a new
    context on every call, twice the time (``tests/test_fast_paths.py`` checks
    the result against :mod:`hmac` for keys of every length).
    """
    key = secret.encode("utf-8")
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_INNER)), hashlib.sha256(key.translate(_OUTER))


def _mac(secret: str, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``secret``, as raw bytes."""
    inner, outer = _keyed(secret)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.digest()  # type: ignore[no-any-return]


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


def match_secret(secrets: Sequence[str], user_id: str | int, candidate: object) -> int | None:
    """Return the position of the secret that signed ``candidate``, or ``None``.

    Every secret is tried, even after a match, so timing does not tell an
    attacker which one matched or how many a business holds beyond the first.
    Runs on every verified request: the HMAC of :func:`_mac` per secret from
    its keyed states, and the checks of :func:`_hash_bytes` and
    :func:`_message`, all written in line.
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
        # _mac written in line: this runs for every secret of every verified request.
        inner, outer = _keyed(secret)
        inner = inner.copy()
        inner.update(message)
        outer = outer.copy()
        outer.update(inner.digest())
        if compare_digest(outer.digest(), given) and found is None:
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
