"""Rewrite what the app will read so it holds only verified identity.

``user_hash`` and ``user_token`` never survive: a valid hash is a lasting
credential for its user id (a token one until it expires) and must not reach
the app's logs. Unverified identity fields are removed
wherever they appear. JSON bodies are re-serialised from the parsed object, so
the app's parser reads exactly what the middleware checked.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Container
from typing import Any

from .request import IDENTITY_FIELDS, KEPT_FIELDS, PROOF_FIELDS, FlatData

__all__ = [
    "ALL_IDENTITY",
    "HASH_ONLY",
    "RAW_TARGET_KEYS",
    "rewrite_flat",
    "rewrite_json",
    "rewrite_target",
]

#: Drop every identity field.
ALL_IDENTITY: frozenset[str] = frozenset((*IDENTITY_FIELDS, *PROOF_FIELDS))
#: Drop the proof (hash or token) and keep the verified fields beside it.
HASH_ONLY: frozenset[str] = frozenset(PROOF_FIELDS)

_USER_KEY = "user"
#: Environ keys in which WSGI servers keep the request target as sent, query
#: included: gunicorn's ``RAW_URI``; waitress's, uWSGI's and mod_wsgi's
#: ``REQUEST_URI``. Debug pages, error e-mails and loggers print them.
RAW_TARGET_KEYS: tuple[str, ...] = ("RAW_URI", "REQUEST_URI")


def rewrite_target(target: str, query: str) -> str:
    """A raw request target (``/chat?a=1#f``) rebuilt from its path and ``query``.

    Servers keep the request line as it was sent: after the query string is
    rewritten that copy would still hold the hash and the unverified fields, and
    a fragment (which servers cut from the query string but keep in the line)
    can carry more. The rebuilt target says exactly what the app's query says.
    """
    path = target.partition("?")[0].partition("#")[0]
    return f"{path}?{query}" if query else path


def rewrite_flat(data: FlatData, drop: Container[str]) -> bytes | None:
    """The query string or form body without the ``drop`` fields; ``None`` if unchanged.

    Kept segments stay byte for byte as sent. Fields of different ``&``
    segments stay apart by ``&`` and fields of one segment joined by ``;``, so
    a parser that splits on ``&`` only reads the kept fields as before.
    """
    if not data.has_identity_fields:
        return None
    kept: list[bytes] = []
    changed = False
    group = -1
    for field in data.fields:
        if field.name in drop:
            changed = True
            continue
        if kept:
            kept.append(b"&" if field.group != group else b";")
        group = field.group
        kept.append(field.raw)
    return b"".join(kept) if changed else None


def rewrite_json(body: dict[str, Any], *, keep_user: bool) -> bytes:
    """Re-serialise ``body`` with the hash removed and ``user`` kept only when verified."""
    body.pop("user_hash", None)
    if "user_token" in body:  # a lasting credential too, until it expires
        del body["user_token"]
    if keep_user:
        user = body[_USER_KEY]
        kept = {}
        for key in KEPT_FIELDS:  # a loop, not a comprehension: no extra frame per request
            if key in user:
                kept[key] = user[key]
        body[_USER_KEY] = kept
    else:
        body.pop(_USER_KEY, None)
    try:  # dump_json, inlined: this runs on every JSON request
        return "".join(_chunks_utf8(body, 0)).encode("utf-8")
    except UnicodeEncodeError:
        return _dump_ascii(body).encode("ascii")


def _compact_encoder(ensure_ascii: bool, *, use_c: bool = True) -> Callable[[Any], str]:
    """``json.dumps(obj, separators=(",", ":"), allow_nan=False, ...)`` made once.

    ``json.dumps`` with keyword arguments builds an encoder, and the encoder builds
    its C encoder, on every call. The C encoder is built here once, the way
    ``JSONEncoder.iterencode`` builds it, and checked against the stdlib at import;
    anything unexpected falls back to a plain ``JSONEncoder``. Circular references
    are not checked: a parsed JSON document has none.
    """
    encoder = json.JSONEncoder(
        ensure_ascii=ensure_ascii, separators=(",", ":"), allow_nan=False, check_circular=False
    )
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or not use_c:
        return encoder.encode
    strings = (
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    )
    try:
        c_encode = make(None, encoder.default, strings, None, ":", ",", False, False, False)
    except TypeError:  # another signature: a future or another Python
        return encoder.encode

    def encode(obj: Any) -> str:
        return "".join(c_encode(obj, 0))

    encode.c_encode = c_encode  # type: ignore[attr-defined]

    sample = {"a": [1, 2.5, -0.0, 1e300, None, True, False, 'é\u2028"\\/'], "b": {}, "c": []}
    try:
        if encode(sample) == encoder.encode(sample):
            return encode
    except Exception:  # pragma: no cover - only on an unexpected interpreter
        pass
    return encoder.encode  # pragma: no cover - only on an unexpected interpreter


_dump_utf8 = _compact_encoder(ensure_ascii=False)
_dump_ascii = _compact_encoder(ensure_ascii=True)
# The C encoder itself when there is one (one C call and a join, no Python frame).
_chunks_utf8: Callable[[Any, int], Any] = getattr(
    _dump_utf8, "c_encode", lambda obj, _level: (_dump_utf8(obj),)
)


def dump_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON; lone surrogates (legal JSON escapes) fall back to ``\\u`` escapes."""
    try:
        return _dump_utf8(obj).encode("utf-8")
    except UnicodeEncodeError:
        return _dump_ascii(obj).encode("ascii")
