"""The shared table (``cases.py``) read as WebSocket connections (CONTRACT.md section 5).

A row becomes a connection where a rule of the row applies to WebSocket:

- a row without a body is a **connect**: its query string and headers go in
  the handshake, then the client sends one plain frame (``PING``) so that a
  connect without user data settles its identity (``require_identity`` is
  judged on that first frame);
- a row with a JSON body is a **first frame**: its query string and headers go
  in the handshake (plus the body's widget ID as the header when the row names
  the widget only in its body), and the body is the first frame.

Rows with no WebSocket meaning are left out, each for a reason given in
:func:`ws_case`: forms and other media types (a frame is JSON or nothing),
bytes that are not UTF-8 (a text frame cannot carry them), CORS preflights,
user data in both the connect and the frame (the connect settles the identity
and the frame's ``user`` is removed: its own test), and first-frame rows
whose connect alone is already refused (the connect's error comes first).

Outcomes: an error decided at connect denies the handshake with the row's
status and JSON; an error decided on the first frame closes the accepted
connection with :func:`~ainisa_middleware._websocket.close_code` and the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ainisa_middleware._websocket import close_code
from ainisa_middleware.errors import RequestError
from ainisa_middleware.request import parse_request
from tests.cases import ROWS, Case

#: The frame a connect row sends after the handshake.
PING = '{"msg":"ping"}'
#: Errors decided while resolving the business: always at connect.
RESOLVER_ERRORS = frozenset({"unknown_widget", "resolver_unavailable"})


@dataclass(frozen=True)
class WsCase:
    """A row of the shared table as a WebSocket connection."""

    case: Case
    #: query string and headers of the handshake
    query: str
    headers: tuple[tuple[str, str], ...]
    #: the first frame the client sends
    frame: str
    #: "ok", "denied" (handshake refused) or "closed" (closed after the first frame)
    outcome: str
    #: for "closed": the close code
    code: int | None = None

    @property
    def is_connect_row(self) -> bool:
        return not self.case.body


def _is_json(content_type: str | None) -> bool:
    return bool(content_type) and "json" in str(content_type).lower()


def _connect_fails(query: str, headers: tuple[tuple[str, str], ...]) -> bool:
    widget = [v for n, v in headers if n.lower() == "x-ainisa-widget-id"]
    try:
        parse_request(
            None, ", ".join(widget) if widget else None, query.encode(), b"", max_body_size=1
        )
    except RequestError:
        return True
    return False


def _query_has_user_data(query: str) -> bool:
    from urllib.parse import parse_qsl

    fields = ("user_id", "user_hash", "firstname", "lastname", "email")
    return any(n in fields and v for n, v in parse_qsl(query, keep_blank_values=True))


def ws_case(case: Case) -> WsCase | str:
    """The row as a WebSocket connection, or why it has none."""
    if case.method == "OPTIONS":
        return "CORS preflights do not exist for WebSocket"
    headers = case.headers
    if not case.body:
        if case.error is None:
            return WsCase(case, case.query, headers, PING, "ok")
        if case.error == "identity_required" and not _query_has_user_data(case.query):
            return WsCase(case, case.query, headers, PING, "closed", close_code(case.error))
        return WsCase(case, case.query, headers, PING, "denied")
    if not _is_json(case.content_type):
        return "a frame is JSON; forms and other media types have no frame form"
    try:
        frame = case.body.decode("utf-8")
    except UnicodeDecodeError:
        return "a text frame is UTF-8 by definition"
    if _query_has_user_data(case.query):
        return "user data at connect settles the identity; the frame's user is removed"
    names_widget = "widget_id=" in case.query or any(
        n.lower() == "x-ainisa-widget-id" for n, _ in headers
    )
    if not names_widget:
        try:
            widget = json.loads(frame).get("widget_id", None)
        except (ValueError, RecursionError):
            widget = "w_pro"  # a body that is not JSON: its error comes from the frame
        if widget is None and case.error == "missing_widget_id":
            return WsCase(case, case.query, headers, frame, "denied")
        if not isinstance(widget, str) or not widget:
            return "the connect must name the widget; this row names none a header could carry"
        headers = (*headers, ("X-Ainisa-Widget-Id", widget))
    if _connect_fails(case.query, headers):
        return "the connect alone is refused, before any frame"
    if case.error is None:
        return WsCase(case, case.query, headers, frame, "ok")
    if case.error in RESOLVER_ERRORS:
        return WsCase(case, case.query, headers, frame, "denied")
    return WsCase(case, case.query, headers, frame, "closed", close_code(case.error))


def _params() -> tuple[list[Any], list[str]]:
    params: list[Any] = []
    left_out: list[str] = []
    for row in ROWS:
        mapped = ws_case(row.values[0])
        if isinstance(mapped, str):
            left_out.append(str(row.id))
        else:
            params.append(pytest.param(mapped, id=row.id))
    return params, left_out


WS_ROWS, LEFT_OUT = _params()


def payload_for_check(
    frame: str, query: str, user: dict[str, Any] | None, connect_row: bool
) -> dict[str, Any]:
    """What :func:`tests.cases.check` reads: the frame stands for the body."""
    body = "" if connect_row else frame.encode("utf-8").decode("latin-1")
    return {"body": body, "query": query, "content_length": None, "user": user}
