"""The WSGI frameworks' parse caches in the environ, read before and dropped after the rewrite.

Bottle, WebOb (Pyramid) and werkzeug (Flask) keep what they parsed from a
request in the environ. A layer of theirs above the middleware may have read
the body already (``wsgi.input`` is then drained, and their copy is the
request); after the rewrite no cached view of the original may survive. This
reads framework internals; ``tests/hosts/test_wsgi_hosts.py`` breaks if they change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .errors import RequestError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "CACHED_ENVIRON_KEYS",
    "CACHED_ENVIRON_PREFIXES",
    "READ_ABOVE",
    "Unreadable",
    "body_kept_above",
    "clean_environ",
]

#: Environ keys in which WSGI frameworks cache what they parsed from a request.
#: An outer middleware that already parsed the request would otherwise hand the
#: app the original, unverified body or query through them.
CACHED_ENVIRON_KEYS: Final = (
    "werkzeug.request",  # werkzeug Request(environ) stores itself here
    "webob._body_file",  # WebOb: the body stream and its length
    "webob._parsed_query_vars",
    "webob._parsed_post_vars",
    "webob.adhoc_attrs",  # WebOb: attributes set on Request objects (request.json_body ...)
    "webob.is_body_seekable",
    "webob.is_body_readable",
    "bottle.get",  # Bottle: the parsed query, beside bottle.request.query
    "webob._cache_control",  # WebOb: parsed Cache-Control
    "paste.parsed_querystring",  # Paste's parse_querystring / parse_formvars
    "paste.parsed_formvars",
)
#: Key prefixes with the same role: Bottle keeps ``bottle.request.body``,
#: ``bottle.request.json``, ``bottle.request.forms``, ``bottle.request.query`` ...
CACHED_ENVIRON_PREFIXES: Final = ("bottle.request", "webob._parsed_")

_CACHED: Final = frozenset(CACHED_ENVIRON_KEYS)
_BOTTLE, _WEBOB = CACHED_ENVIRON_PREFIXES
#: Keys whose presence says a framework above may have read the body: only then
#: need :func:`body_kept_above` be asked.
READ_ABOVE: Final = frozenset({"bottle.request.body", "webob.is_body_seekable", "werkzeug.request"})


class Unreadable(Exception):
    """The body cannot be had: the client stopped early, or a layer above consumed it."""


class _ConsumedAbove(Exception):  # its name is in the log line operators look for
    """A layer above parsed the form from ``wsgi.input`` and kept no raw body."""


def body_kept_above(environ: WSGIEnvironment, limit: int) -> bytes | None:
    """The body as a framework above the middleware kept it, or ``None``: read ``wsgi.input``.

    A framework that parsed the request first leaves ``wsgi.input`` drained.
    Bottle and WebOb make a seekable copy the new ``wsgi.input``: rewound, it is
    the request. werkzeug's ``Request`` (``environ["werkzeug.request"]``) keeps the
    raw bytes once ``get_data``, ``.data`` or ``.json`` read them, but a form parse
    keeps only the parsed form: that request is refused (``malformed_body``, or
    ``unsupported_media_type`` for multipart, whose parts are gone) rather
    than passed on with an empty body. Only a stream the framework read counts: a
    ``wsgi.input`` put in its place since is the request. This reads framework
    internals; ``tests/hosts/test_wsgi_hosts.py`` breaks if they change.
    """
    stream: Any = environ.get("wsgi.input")
    buffered: Any = environ.get("bottle.request.body")
    if buffered is not None and buffered is stream:
        # Bottle read the whole body (de-chunked) into this buffer, which has no
        # Content-Length when the request was chunked: read it to its end.
        buffered.seek(0)
        body: bytes = buffered.read(limit + 1)
        if len(body) > limit:
            raise RequestError("body_too_large")
        return body
    if environ.get("webob.is_body_seekable"):
        # WebOb's copy, with CONTENT_LENGTH set to its size, left at its end.
        stream.seek(0)
        return None
    request = environ.get("werkzeug.request")
    state = getattr(request, "__dict__", None)
    if not state or "stream" not in state:
        return None  # nothing above read the input through werkzeug
    used = state["stream"]  # a LimitedStream around the input it read
    if getattr(used, "_stream", used) is not stream:
        return None
    cached = getattr(request, "_cached_data", None)
    if isinstance(cached, bytes):
        if len(cached) > limit:
            raise RequestError("body_too_large")
        return cached
    mimetype = getattr(request, "mimetype", "")
    if "form" in state and mimetype == "multipart/form-data":
        raise RequestError("unsupported_media_type")
    if "form" in state and mimetype == "application/x-www-form-urlencoded":
        raise Unreadable from _ConsumedAbove()
    return None


def clean_environ(environ: WSGIEnvironment) -> WSGIEnvironment:
    """A copy of ``environ`` without cached parses and stream framing of the original."""
    new = environ.copy()
    # Most requests hold no cache at all: told in C (a set test over the few
    # known keys, one join of the keys and two substring searches) instead of a
    # Python loop over every key.
    keys = "\n".join(environ)
    if not environ.keys().isdisjoint(_CACHED) or _BOTTLE in keys or _WEBOB in keys:
        for key in [k for k in environ if k in _CACHED or k.startswith(CACHED_ENVIRON_PREFIXES)]:
            del new[key]
    # The new input is a sized BytesIO: no chunked framing, no server termination.
    new.pop("HTTP_TRANSFER_ENCODING", None)
    new.pop("wsgi.input_terminated", None)
    return new
