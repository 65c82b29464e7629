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

__all__ = ["PathMatcher", "is_cors_preflight", "normalise_path", "normalise_prefix"]

# Encoded '/' and '.': some servers leave them encoded in the path they hand on,
# and a router or proxy behind them may decode them (a double-encoded one too:
# ``%252F`` decodes to ``%2F`` once, to '/' twice).
_ENCODED = re.compile(r"%(?:25)*2[fFeE]")
# Anything that makes a path read differently once normalised.
_NEEDS_WORK = re.compile(r"//|/\.|%|\\")


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

        ``root`` is the mount point: ASGI ``root_path``, WSGI ``SCRIPT_NAME``.
        Hosts disagree on whether ``path`` already includes it (Starlette's
        ``Mount`` and uvicorn's ``--root-path`` do, the WSGI convention and
        older ASGI servers do not), so the path is tried with it, without it,
        and as it is.
        """
        if self._everything:
            return True
        if self._covers(path):  # the common case: a plain path that matches
            return True
        normal = normalise_path(path)
        if normal is not path and self._covers(normal):
            return True
        if root and root != "/":
            base = normalise_path(root).rstrip("/")
            if base:
                mounted = normal == base or normal.startswith(base + "/")
                if mounted and self._covers(normal[len(base) :] or "/"):
                    return True
                if self._covers(normalise_path(base + "/" + path)):
                    return True
        return False


#: What makes an OPTIONS request a CORS preflight (Fetch standard, section 4.8).
PREFLIGHT_HEADER: Final = "access-control-request-method"


def is_cors_preflight(
    method: str,
    request_method_header: str | None,
    content_length: str | None,
    transfer_encoding: str | None,
) -> bool:
    """Whether a request is a genuine CORS preflight, the one thing never inspected.

    A preflight is ``OPTIONS`` with ``Access-Control-Request-Method`` and no
    body. An ``OPTIONS`` request with a body may reach a view that accepts any
    method, so it is inspected like any other request.
    """
    if method != "OPTIONS" or not request_method_header:
        return False
    if transfer_encoding:
        return False
    return not content_length or content_length.strip() == "0"
