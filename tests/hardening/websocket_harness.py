"""Driving a WebSocket connection through the ASGI middleware, and the properties it keeps.

Shared by the property test (``test_properties_websocket.py``) and the ASGI fuzz target.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from ainisa_middleware import StaticResolver
from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware

from .strategies import BUSINESSES

KEPT = {"user_id", "firstname", "lastname", "email"}
COUNTS: Counter[str] = Counter()
#: the one user id whose valid hashes the generators and seeds hold
VALID_USER_ID = "42"


class Setup:
    """The middleware in one mode around an echo app that records what it received."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seen: list[tuple[Any, Any]] = []
        self.middleware = AinisaMiddleware(
            self._echo, resolver=StaticResolver(BUSINESSES), paths=["/chat"], mode=mode
        )

    async def _echo(self, scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            self.seen.append((message, scope["state"][STATE_KEY]))
            if message["type"] != "websocket.receive":
                return


async def drive(setup: Setup, query: str, sent: list[str | bytes]) -> list[tuple[Any, Any]]:
    """The frames (and disconnect) the app received, each with the visitor at that moment."""
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    for frame in sent:
        key = "bytes" if isinstance(frame, bytes) else "text"
        incoming.append({"type": "websocket.receive", key: frame})
    incoming.append({"type": "websocket.disconnect", "code": 1000})
    feed = iter(incoming)
    seen = setup.seen = []
    closed: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(feed)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            closed.append(message)

    scope = {
        "type": "websocket",
        "path": "/chat",
        "query_string": query.encode(),
        "headers": [],
        "extensions": {"websocket.http.response": {}},
    }
    await setup.middleware(scope, receive, send)
    if closed:
        assert seen and seen[-1][0]["type"] == "websocket.disconnect"
        assert seen[-1][0]["code"] == closed[0]["code"] in (1003, 1008, 1009)
        COUNTS["closed"] += 1
    return seen


def check_connection(
    seen: list[tuple[Any, Any]],
    sent: list[str | bytes],
    identity: bool,
    may_verify: Callable[[str | None], bool] = lambda user_id: user_id == VALID_USER_ID,
) -> None:
    """The properties of the frames the app received.

    ``identity``: the connect carried user data; ``may_verify``: whether a
    visitor may be verified as this user id (a valid hash for it was sent).
    """
    received = [(m, u) for m, u in seen if m["type"] == "websocket.receive"]
    for index, (message, visitor) in enumerate(received):
        assert "bytes" not in message or message.get("text") is not None  # property 3
        obj = json.loads(message["text"])
        assert type(obj) is dict  # property 3
        assert "user_hash" not in obj  # property 1
        if "user" in obj:  # property 1
            assert index == 0 and not identity and visitor.verified
            assert set(obj["user"]) <= KEPT
        if visitor.verified:  # property 2
            assert may_verify(visitor.user_id)
            COUNTS["verified"] += 1
        original = sent[index]
        if (
            isinstance(original, str)
            and (index > 0 or identity)
            and not {"user", "user_hash"} & set(json.loads(original))
        ):
            assert message["text"] == original  # property 4
            COUNTS["byte_for_byte"] += 1
        COUNTS["frames"] += 1
