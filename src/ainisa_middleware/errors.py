"""The error table and the exceptions.

Every adapter renders request errors from :data:`ERRORS`, so the status and the
sentence a client sees are the same whatever the host. No detail names a secret,
a hash, or which check failed beyond the code itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

__all__ = [
    "ERRORS",
    "RENDERED",
    "AinisaIdentityError",
    "ConfigurationError",
    "ErrorResponse",
    "ErrorSpec",
    "RequestError",
    "error_body",
]


class ConfigurationError(ValueError):
    """The middleware or a resolver was set up wrongly; the message says what to change."""


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One row of the error table: what the client gets for a code."""

    code: str
    status: int
    detail: str


_ROWS = (
    ErrorSpec("body_too_large", 413, "The request body is larger than this endpoint accepts."),
    ErrorSpec(
        "unsupported_media_type",
        415,
        "Chat requests must be sent as application/json or application/x-www-form-urlencoded.",
    ),
    ErrorSpec(
        "malformed_body", 400, "The request body could not be read as strict JSON or form data."
    ),
    ErrorSpec("missing_widget_id", 400, "The request does not name a widget."),
    ErrorSpec(
        "malformed_widget_id",
        400,
        "The widget ID must be 1 to 128 characters of letters, digits, '_', '-' or '.'.",
    ),
    ErrorSpec("conflicting_widget_id", 400, "The request names more than one widget ID."),
    ErrorSpec("malformed_request", 400, "A parameter that may appear once appears more than once."),
    ErrorSpec(
        "conflicting_user_data",
        400,
        "User data was sent in more than one place; send it in the body or the query "
        "string, not both.",
    ),
    ErrorSpec("unknown_widget", 404, "No business is registered for this widget."),
    ErrorSpec(
        "resolver_unavailable",
        503,
        "The widget's business could not be looked up right now; try again shortly.",
    ),
    ErrorSpec(
        "identity_verification_failed",
        401,
        "The user data sent with this request could not be verified.",
    ),
    ErrorSpec("identity_required", 401, "This chat is only available to signed-in users."),
)

#: code -> (status, detail). Adapters render from here and never reword it.
ERRORS: dict[str, ErrorSpec] = {row.code: row for row in _ROWS}

_BODIES: dict[str, bytes] = {
    row.code: json.dumps({"error": row.code, "detail": row.detail}).encode("utf-8") for row in _ROWS
}


def error_body(code: str) -> bytes:
    """The JSON body for ``code``, built once at import."""
    return _BODIES[code]


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """An error as every host sends it: adapters only copy these fields out."""

    status: int
    #: the WSGI status line, ``"404 Not Found"``
    status_line: str
    body: bytes
    #: header names in lower case, values as str (WSGI) ...
    headers: tuple[tuple[str, str], ...]
    #: ... and as bytes (ASGI)
    raw_headers: tuple[tuple[bytes, bytes], ...]


def _render(row: ErrorSpec) -> ErrorResponse:
    body = _BODIES[row.code]
    headers = (("content-type", "application/json"), ("content-length", str(len(body))))
    return ErrorResponse(
        status=row.status,
        status_line=f"{row.status} {HTTPStatus(row.status).phrase}",
        body=body,
        headers=headers,
        raw_headers=tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in headers),
    )


#: code -> the response every adapter sends for it, built once at import.
RENDERED: dict[str, ErrorResponse] = {row.code: _render(row) for row in _ROWS}


class RequestError(Exception):
    """A request the middleware answers itself, with a row of :data:`ERRORS`."""

    def __init__(self, code: str, widget_id: str | None = None) -> None:
        spec = ERRORS[code]
        super().__init__(f"{spec.status} {code}")
        self.code = code
        #: the widget ID when it was known before the error, for the log record
        self.widget_id = widget_id
        self.status = spec.status
        self.detail = spec.detail

    @property
    def body(self) -> bytes:
        return _BODIES[self.code]


class AinisaIdentityError(Exception):
    """Raised by an endpoint to refuse a visitor; the middleware answers with ``code``'s error.

    :func:`ainisa_middleware.fastapi.require_verified_user` raises it; the ASGI
    middleware renders it as the contract's JSON error.
    """

    def __init__(self, code: str = "identity_required") -> None:
        super().__init__(code)
        self.code = code
