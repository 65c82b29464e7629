"""Litestar's parse cache in the ASGI scope, read before and reset after the rewrite.

Litestar keeps what it parsed from a request in ``scope["state"]``, shared by
every layer of the connection. A Litestar middleware above ours may have read
the body already (the receive channel is then drained, and the cache is the
request); after the rewrite no cached view of the original may survive. This
reads Litestar internals; ``tests/hosts/test_litestar.py`` breaks if they change.
"""

from __future__ import annotations

from typing import Any

from .errors import RequestError

__all__ = [
    "LITESTAR_KEPT_FIELDS",
    "LITESTAR_LEGACY_STATE_KEY",
    "LITESTAR_LEGACY_VIEWS",
    "LITESTAR_STATE_KEY",
    "cached_body",
    "connection_cache",
    "reset_cache",
]

#: Litestar 2 keeps one object per connection under this key of ``scope["state"]``
#: (``litestar.utils.scope.state.ScopeState``): its parsed body, JSON, form,
#: msgpack, query, headers and URLs, beside per-request state that is not a view
#: of the request. Early 2.x releases kept a dict under the second key.
LITESTAR_STATE_KEY = "_ls_connection_state"
LITESTAR_LEGACY_STATE_KEY = "__litestar__"
#: Fields of Litestar's connection state that are not views of the request. They
#: are kept: outer layers and the app share them (the exception middleware reads
#: ``response_started`` and ``exception_handlers``; sessions, CSRF tokens, flash
#: messages and the response cache flags live there). Every other field, those a
#: future release may add included, is reset to its default, so nothing parsed
#: from the original request survives.
LITESTAR_KEPT_FIELDS = frozenset(
    {
        "_compat_ns",
        "csrf_token",
        "dependency_cache",
        "do_cache",
        "exception_handlers",
        "flash_messages",
        "http_response_body",
        "http_response_start",
        "is_cached",
        "log_context",
        "response_compressed",
        "response_started",
        "session_id",
    }
)
#: Views of the request in the early 2.x dict: removed (a missing key is unparsed).
LITESTAR_LEGACY_VIEWS = (
    "accept",
    "base_url",
    "body",
    "content_type",
    "cookies",
    "form",
    "json",
    "msgpack",
    "parsed_query",
    "url",
)


def connection_cache(state: dict[str, Any]) -> Any:
    cache = state.get(LITESTAR_STATE_KEY)
    return state.get(LITESTAR_LEGACY_STATE_KEY) if cache is None else cache


def cached_body(cache: Any, content_type: str | None, declared: int | None) -> bytes | None:
    """The body a layer above already read, or ``None`` when the channel still holds it.

    A multipart form parsed above streamed the body away without keeping it:
    the request is refused (``unsupported_media_type``: its identity parts cannot
    be inspected) instead of waiting on a drained channel.
    """
    if isinstance(cache, dict):
        body, form = cache.get("body"), cache.get("form")
    else:
        body, form = getattr(cache, "body", None), getattr(cache, "form", None)
    if isinstance(body, bytes):
        return body
    # A form() call on any other content type reads nothing (Litestar answers {}),
    # and an urlencoded one caches the body first.
    if isinstance(form, dict) and content_type and "multipart/" in content_type.lower():
        if declared == 0:
            return b""
        raise RequestError("unsupported_media_type")
    return None


def reset_cache(
    state: dict[str, Any], cache: Any, cached: bytes | None, new_body: bytes | None
) -> None:
    """Make Litestar's connection cache describe the rewritten request.

    The object is shared with the layers above (mutated in place, not replaced:
    Litestar's exception middleware holds it). Every view of the request goes
    back to its default; the body stays cached only if it was, now rewritten
    (a body not cached yet is read from the replay, under Litestar's own limit).
    """
    body = (cached if new_body is None else new_body) if cached is not None else None
    if isinstance(cache, dict):
        for key in LITESTAR_LEGACY_VIEWS:
            cache.pop(key, None)
        if body is not None:
            cache["body"] = body
        return
    try:
        fresh = type(cache)()
        for name in _slot_names(cache):
            if name not in LITESTAR_KEPT_FIELDS and not name.startswith("__"):
                setattr(cache, name, getattr(fresh, name))
        if body is not None:
            cache.body = body
    except Exception:
        # A release whose state this code does not understand: drop it whole
        # (Litestar builds a fresh one) rather than leave a stale view behind.
        state.pop(LITESTAR_STATE_KEY, None)


def _slot_names(obj: object) -> list[str]:
    names: list[str] = []
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    names.extend(getattr(obj, "__dict__", ()))
    return names
