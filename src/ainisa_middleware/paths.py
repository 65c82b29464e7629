"""Which requests the middleware inspects: path prefixes, matched as routers see paths.

A router may reach a handler through a path that does not start with the
configured prefix letter for letter: werkzeug collapses ``//chat`` to ``/chat``,
servers decode ``/%2Fchat`` to ``//chat``, clients and proxies resolve
``/x/../chat``, and a mounted app sees its mount point in ``root_path`` (ASGI)
or ``SCRIPT_NAME`` (WSGI), with or without it in the path. The middleware fails
closed: a request is inspected when *any* reading of its path falls under a
prefix, so a path some host could route to a chat handler never slips through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "PathMatcher",
    "is_cors_preflight",
    "normalise_path",
    "normalise_prefix",
    "readings",
]

# Encoded '/' and '.': some servers leave them encoded in the path they hand on,
# and a router or proxy behind them may decode them (a double-encoded one too:
# ``%252F`` decodes to ``%2F`` once, to '/' twice).
_ENCODED = re.compile(r"%(?:25)*2[fFeE]")
# Anything that makes a path read differently once normalised (a relative path
# such as Django's path_info under a root_path ending in '/' included).
_NEEDS_WORK = re.compile(r"//|(?:^|/)\.|%|\\")
_SLASHES = re.compile(r"/{2,}")


def normalise_prefix(prefix: str) -> str:
    """A configured prefix in the form paths are compared in."""
    return normalise_path(prefix).rstrip("/") or "/"


def _decode(match: re.Match[str]) -> str:
    return "/" if match.group().lower().endswith("f") else "."


def normalise_path(path: str) -> str:
    """``path`` as a normalising router reads it.

    Encoded slashes and dots decoded, backslashes read as slashes (as browsers
    do in URLs), repeated slashes collapsed and dot segments removed
    (RFC 3986, section 5.2.4). A trailing slash is kept.
    """
    if _NEEDS_WORK.search(path) is None:
        return path if path.startswith("/") else "/" + path
    path = _ENCODED.sub(_decode, path).replace("\\", "/")
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = path.endswith(("/", "/.", "/.."))
    out = "/" + "/".join(segments)
    return out + "/" if trailing and segments else out


class PathMatcher:
    """Segment-aware prefixes (``/chat`` covers ``/chat`` and ``/chat/x``, not ``/chatter``)."""

    __slots__ = ("_exact", "_everything", "_prefixes", "prefixes")

    def __init__(self, prefixes: Iterable[str]) -> None:
        self.prefixes: tuple[str, ...] = tuple(dict.fromkeys(normalise_prefix(p) for p in prefixes))
        self._everything = "/" in self.prefixes
        self._exact = frozenset(self.prefixes)
        self._prefixes = tuple(p + "/" for p in self.prefixes)

    def _covers(self, path: str) -> bool:
        return path in self._exact or path.startswith(self._prefixes)

    def matches(self, path: str, root: str = "") -> bool:
        """Whether some router could route ``path`` (under ``root``) to a prefix.

        Every reading of :func:`readings` is tried. ``root`` is the mount point:
        ASGI ``root_path``, WSGI ``SCRIPT_NAME``. Hosts disagree on whether
        ``path`` already includes it (Starlette's ``Mount`` and uvicorn's
        ``--root-path`` do, the WSGI convention and older ASGI servers do not),
        so each reading is also tried without it, and the path joined to it.
        """
        # The common case, a plain path that matches, in line.
        if self._everything or path in self._exact or path.startswith(self._prefixes):
            return True
        seen = readings(path)
        if any(self._covers(reading) for reading in seen):
            return True
        if root and root != "/":
            base = normalise_path(root).rstrip("/")
            if base:
                for reading in seen:
                    if reading.startswith(base + "/") and self._covers(reading[len(base) :]):
                        return True
                if any(self._covers(reading) for reading in readings(base + "/" + path)):
                    return True
        return False


def readings(path: str) -> set[str]:
    """The ways routers read ``path``: each one a router in use somewhere does.

    As sent; with repeated slashes merged and nothing else (werkzeug and
    Litestar route ``//chat/..`` to ``/chat/<rest>``); with encoded slashes and
    dots decoded too; and fully normalised (:func:`normalise_path`).
    """
    raw = path if path.startswith("/") else "/" + path
    if _NEEDS_WORK.search(path) is None:
        return {raw}
    decoded = _ENCODED.sub(_decode, raw).replace("\\", "/")
    return {raw, _SLASHES.sub("/", raw), _SLASHES.sub("/", decoded), normalise_path(path)}


#: What makes an OPTIONS request a CORS preflight (Fetch standard, section 4.8).
PREFLIGHT_HEADER: Final = "access-control-request-method"


def is_cors_preflight(
    method: str,
    request_method_header: str | None,
    content_length: str | None,
    transfer_encoding: str | None,
    *,
    unannounced_body: bool | None = False,
) -> bool:
    """Whether a request is a genuine CORS preflight, the one thing never inspected.

    A preflight is ``OPTIONS`` with ``Access-Control-Request-Method`` and no
    body. An ``OPTIONS`` request with a body may reach a view that accepts any
    method, so it is inspected like any other request.

    Over HTTP/1 a body is announced by ``Content-Length`` or
    ``Transfer-Encoding``. HTTP/2 and HTTP/3 frame a body without either (RFC
    9113, section 8.1), and so does a WSGI server that ends the input itself
    (``wsgi.input_terminated``): there ``unannounced_body`` says whether the
    adapter found body bytes (``None``: it could not tell, so not a preflight).
    """
    if method != "OPTIONS" or not request_method_header or transfer_encoding:
        return False
    if content_length is not None and content_length.strip() not in ("", "0"):
        return False
    return unannounced_body is False
