"""WebSocket chat under the ASGI middleware: ``websocket`` scopes on protected paths.

Browsers cannot set headers on a WebSocket, so a widget names itself in the
connect URL's query string and may send its identity in the first text frame
(a connect URL lands in every server's access log; a frame does not). Every
rule is the HTTP one: :meth:`Verifier.inspect` parses the connect as a request
without a body and the first frame as a JSON chat body, :meth:`Verifier.peek`
and :meth:`Verifier.alookup` find the business once per connection,
:meth:`Verifier.decide` judges and rewrites, and later frames lose their
identity through :func:`~ainisa_middleware.rewrite.rewrite_json`.

What a client sees for each failure is in ``docs/websocket.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any, Final, Literal, get_args

from ._types import ASGIApp, Message, Receive, Scope, Send
from .asgi import STATE_KEY, _app_scope, _off_loop
from .errors import RENDERED, AinisaIdentityError, ConfigurationError, RequestError
from .models import Business
from .request import (
    OFF_LOOP_BODY_SIZE,
    PROOF_FIELDS,
    WIDGET_ID_FIELD,
    WIDGET_ID_HEADER,
    parse_json_object,
)
from .rewrite import rewrite_json
from .verify import Decision, Verifier

__all__ = [
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_UNSUPPORTED_DATA",
    "DENIAL_EXTENSION",
    "WEBSOCKET_FRAMES",
    "WebSocketFrames",
    "WebSocketGuard",
    "close_code",
    "deny",
    "send_close",
]

#: ``"json"``: every frame must be a strict JSON object (others close 1003);
#: ``"any"``: binary frames and text frames that do not open with ``{`` pass unchanged.
WebSocketFrames = Literal["json", "any"]
WEBSOCKET_FRAMES: tuple[WebSocketFrames, ...] = get_args(WebSocketFrames)

# RFC 6455 section 7.4.1 and the IANA registry.
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_TRY_AGAIN_LATER: Final = 1013
#: The ASGI extension that lets a server answer a handshake with an HTTP response.
DENIAL_EXTENSION: Final = "websocket.http.response"

_WIDGET_HEADER = WIDGET_ID_HEADER.encode("latin-1")
_JSON = "application/json"


def close_code(code: str) -> int:
    """The close code a connection ends with for an error ``code`` of the error table."""
    if code == "resolver_unavailable":
        return CLOSE_TRY_AGAIN_LATER
    if code == "body_too_large":
        return CLOSE_TOO_BIG
    if code in ("malformed_body", "unsupported_media_type"):
        return CLOSE_UNSUPPORTED_DATA
    return CLOSE_POLICY_VIOLATION


class _Closed(Exception):
    """The middleware closed the connection; ``message`` is what the app hears."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.message: Message = {"type": "websocket.disconnect", "code": code, "reason": reason}


class WebSocketGuard:
    """Decides a WebSocket connection at connect and its first frame, and cleans later frames.

    Built by :class:`~ainisa_middleware.asgi.AinisaMiddleware`, which hands it
    the ``websocket`` scopes under its paths.
    """

    def __init__(self, verifier: Verifier, *, frames: object = "json") -> None:
        if frames not in WEBSOCKET_FRAMES:
            raise ConfigurationError(
                "ainisa-middleware is not configured correctly:\n- websocket_frames must be "
                f"'json' (the default) or 'any', not {frames!r}."
            )
        # Its own verifier (the same engine), so decision records say "websocket".
        self.verifier = verifier.for_transport("websocket")
        self.any_frames = frames == "any"
        self.limit = verifier.config.max_body_size

    async def __call__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first.get("type") != "websocket.connect":
            return  # the client left before its handshake: the app never runs
        verifier = self.verifier
        widget_header = _widget_header(scope.get("headers", ()))
        query: bytes = scope.get("query_string", b"")
        try:
            parsed = verifier.inspect(None, widget_header, query, b"")
        except RequestError as error:
            verifier.log_error(error.code, error.widget_id)
            await deny(scope, send, error.code)
            return
        business = await verifier.afind(parsed.widget_id)
        if isinstance(business, str):
            await deny(scope, send, business)
            return
        # A connect without user data may be followed by a first frame that
        # carries it: require_identity is applied to that frame, not here.
        pending = parsed.source is None
        judged = business
        if pending and business.require_identity:
            judged = dataclasses.replace(business, require_identity=False)
        decision = verifier.decide(parsed, judged)
        if decision.error is not None:
            await deny(scope, send, decision.error)
            return
        new = _app_scope(scope, decision)  # the HTTP path's rule: query, raw_path, state
        state = new["state"]
        connection = _Connection(
            self, business, parsed.widget_id, widget_header, query, state, pending, receive, send
        )
        try:
            await app(new, connection.replay(first), connection.send)
        except AinisaIdentityError as refused:
            # An endpoint refused the visitor (require_verified_user on a
            # WebSocket route): deny the handshake, or close if it was accepted.
            if connection.closed:
                return
            try:
                if connection.accepted:
                    await send_close(send, close_code(refused.code), refused.code)
                else:
                    await deny(scope, send, refused.code)
            except Exception:
                raise refused from None


class _Connection:
    """One connection's frames: the first decided, the later ones cleaned."""

    __slots__ = (
        "accepted",
        "business",
        "closed",
        "guard",
        "pending",
        "query",
        "state",
        "widget_header",
        "widget_id",
        "_closing",
        "_receive",
        "_send",
    )

    def __init__(
        self,
        guard: WebSocketGuard,
        business: Business,
        widget_id: str,
        widget_header: str | None,
        query: bytes,
        state: dict[str, Any],
        pending: bool,
        receive: Receive,
        send: Send,
    ) -> None:
        self.guard = guard
        self.business = business
        self.widget_id = widget_id
        self.widget_header = widget_header
        self.query = query
        self.state = state
        #: the identity may still come in the first frame
        self.pending = pending
        self.accepted = False
        self.closed = False
        self._closing: Message | None = None
        self._receive = receive
        self._send = send

    def replay(self, connect: Message) -> Receive:
        given = False

        async def receive() -> Message:
            nonlocal given
            if not given:
                given = True
                return connect
            return await self.receive()

        return receive

    async def receive(self) -> Message:
        if self._closing is not None:
            return self._closing
        message = await self._receive()
        if message.get("type") != "websocket.receive":
            return message
        try:
            return await self._frame(message)
        except _Closed as closed:
            self._closing = closed.message
            self.closed = True
            # A client already gone: the app hears the disconnect all the same.
            with contextlib.suppress(OSError):
                await send_close(self._send, closed.message["code"], closed.args[0])
            return closed.message

    async def send(self, message: Message) -> None:
        if self.closed:
            # As a server does once a connection is gone (uvicorn raises
            # ClientDisconnected, an OSError); Starlette turns it into WebSocketDisconnect.
            raise OSError("the WebSocket was closed by ainisa-middleware")
        kind = message.get("type")
        if kind == "websocket.accept":
            self.accepted = True
        elif kind == "websocket.close":
            self.closed = True
        await self._send(message)

    async def _frame(self, message: Message) -> Message:
        guard = self.guard
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            if not guard.any_frames:
                raise _Closed(CLOSE_UNSUPPORTED_DATA, "unsupported_media_type")
            if len(data) > guard.limit:
                raise _Closed(CLOSE_TOO_BIG, "body_too_large")
            if self.pending:
                self._settle_without_identity()
            return message
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if size > guard.limit:
            raise _Closed(CLOSE_TOO_BIG, "body_too_large")
        if guard.any_frames and text.lstrip(" \t\r\n")[:1] != "{":
            if self.pending:
                self._settle_without_identity()
            return message
        if not text:
            raise _Closed(CLOSE_UNSUPPORTED_DATA, "malformed_body")
        body = text.encode("utf-8", "surrogatepass")
        if self.pending:
            self.pending = False
            decision = await self._decide_first(body)
            self.state[STATE_KEY] = decision.user
            assert decision.body is not None  # a JSON body is always re-serialised
            return {"type": "websocket.receive", "text": decision.body.decode("utf-8")}
        cleaned = await self._clean(body)
        if cleaned is None:
            return message
        return {"type": "websocket.receive", "text": cleaned.decode("utf-8")}

    async def _decide_first(self, body: bytes) -> Decision:
        """The first frame as a JSON chat body beside the connect's widget ID and query."""
        verifier = self.guard.verifier
        inspect = verifier.inspect
        try:
            if len(body) > OFF_LOOP_BODY_SIZE:
                parsed = await _off_loop(
                    lambda: inspect(_JSON, self.widget_header, self.query, body)
                )
            else:
                parsed = inspect(_JSON, self.widget_header, self.query, body)
        except RequestError as error:
            verifier.log_error(error.code, error.widget_id or self.widget_id)
            raise _Closed(close_code(error.code), error.code) from None
        decision = verifier.decide(parsed, self.business)
        if decision.error is not None:
            raise _Closed(CLOSE_POLICY_VIOLATION, decision.error)
        return decision

    def _settle_without_identity(self) -> None:
        """A first frame that is not a JSON object: judged as a request without user data."""
        self.pending = False
        verifier = self.guard.verifier
        parsed = verifier.inspect(None, self.widget_header, self.query, b"")
        decision = verifier.decide(parsed, self.business)
        if decision.error is not None:
            raise _Closed(CLOSE_POLICY_VIOLATION, decision.error)
        self.state[STATE_KEY] = decision.user

    async def _clean(self, body: bytes) -> bytes | None:
        """A later frame without ``user`` or a top-level ``user_hash`` or ``user_token``;
        ``None``: unchanged."""
        try:
            if len(body) > OFF_LOOP_BODY_SIZE:
                obj = await _off_loop(lambda: parse_json_object(body))
            else:
                obj = parse_json_object(body)
        except RequestError as error:
            raise _Closed(close_code(error.code), error.code) from None
        named = obj.get(WIDGET_ID_FIELD, self.widget_id)
        if named != self.widget_id:
            raise _Closed(CLOSE_POLICY_VIOLATION, "conflicting_widget_id")
        if "user" not in obj and not any(field in obj for field in PROOF_FIELDS):
            return None
        return rewrite_json(obj, keep_user=False)


def _widget_header(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    found = [value.decode("latin-1") for name, value in headers if name == _WIDGET_HEADER]
    # Joined as on HTTP: no valid widget ID holds ", ", so repeats are malformed.
    return ", ".join(found) if found else None


async def send_close(send: Send, code: int, reason: str) -> None:
    """Close with ``code`` and ``reason``, or ``4000 + code % 1000`` where the server refuses it.

    Daphne (autobahn) lets an application close only with 1000 or 3000 to 4999,
    and raises on 1008: the private-use 4008 (4003, 4009, 4013) says the same.
    Daphne also drops every reason.
    """
    try:
        await send({"type": "websocket.close", "code": code, "reason": reason})
    except Exception:
        await send({"type": "websocket.close", "code": 4000 + code % 1000, "reason": reason})


async def deny(scope: Scope, send: Send, code: str) -> None:
    """Refuse a handshake with ``code``'s error, the best way the server allows.

    With the ``websocket.http.response`` extension: the section 3 status and
    JSON body, as on HTTP. Without it: accept, then close at once with
    :func:`close_code` and the code as the reason, since a close before accept
    reaches a browser as a bare 403 (or 1006) with no reason at all. The
    accept names the client's first subprotocol, if it offered any: a browser
    fails a handshake that ignores its subprotocols, and would never see the reason.
    """
    error = RENDERED[code]
    extensions = scope.get("extensions") or {}
    if DENIAL_EXTENSION in extensions:
        await send(
            {
                "type": "websocket.http.response.start",
                "status": error.status,
                "headers": list(error.raw_headers),
            }
        )
        await send({"type": "websocket.http.response.body", "body": error.body})
        return
    accept: Message = {"type": "websocket.accept"}
    subprotocols = scope.get("subprotocols") or ()
    if subprotocols:
        accept["subprotocol"] = subprotocols[0]
    await send(accept)
    await send_close(send, close_code(code), code)
