"""Properties of WebSocket frames through the ASGI middleware, on generated connections.

Each example is a connection: a connect (widget and maybe query identity), then
a run of frames mixing chat objects with honest, forged and misplaced identity,
JSON that is not an object or not strict, plain text and binary. Whatever the
frames, the app:

1. never receives a top-level ``user_hash``, nor a ``user`` except in the first
   frame of a connection whose visitor that frame verified (and then only the
   kept fields);
2. is verified only for the user id the valid hash was made for;
3. never receives a binary frame or text that is not a JSON object, and after the
   middleware closes the connection hears only ``websocket.disconnect``
   (``1003``, ``1008`` or ``1009``);
4. sees a frame without identity byte for byte (a later frame the middleware
   had no reason to touch).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ainisa_middleware import StaticResolver, user_hash
from ainisa_middleware.asgi import STATE_KEY, AinisaMiddleware

from .harness import AsgiRunner
from .profile import FLOOR, MODES, hypothesis_settings
from .strategies import BUSINESSES, SECRET_NEW, SECRET_OLD, SECRET_OTHER

KEPT = {"user_id", "firstname", "lastname", "email"}
HASHES = [
    user_hash(SECRET_NEW, "42"),
    user_hash(SECRET_OLD, "42").upper(),
    user_hash(SECRET_OTHER, "42"),
    user_hash(SECRET_NEW, "43"),
    "0" * 64,
    "",
]
COUNTS: Counter[str] = Counter()

user_ids = st.sampled_from(["42", 42, "43", "", True, 4.2, None])
users = st.fixed_dictionaries(
    {},
    optional={
        "user_id": user_ids,
        "user_hash": st.sampled_from(HASHES),
        "firstname": st.sampled_from(["Ada", "", 7]),
        "email": st.just("a@b.c"),
        "role": st.just("admin"),
    },
)
chat_objects = st.fixed_dictionaries(
    {"message": st.text(max_size=20)},
    optional={
        "user": st.one_of(users, st.sampled_from(["42", None, []])),
        "user_hash": st.sampled_from(HASHES),
        "widget_id": st.sampled_from(["w_pro", "w_basic", "w_strict", "bad id", 7]),
        "meta": st.dictionaries(st.sampled_from(["a", "user"]), st.integers(), max_size=2),
    },
)
frames = st.one_of(
    chat_objects.map(lambda obj: json.dumps(obj)),
    chat_objects.map(lambda obj: json.dumps(obj, indent=1)),  # byte-for-byte matters
    st.sampled_from(
        ['["w_pro"]', '{"a": 1, "a": 2}', '{"n": NaN}', "", "hello", '{"user"', "null", " {} "]
    ),
    st.binary(max_size=8),
)
connects = st.tuples(
    st.sampled_from(["w_pro", "w_basic", "w_strict", "w_empty"]),
    st.sampled_from(["", f"&user_id=42&user_hash={HASHES[0]}", "&user_id=43&user_hash=00"]),
)


@pytest.fixture(scope="module")
def runner() -> Iterator[AsgiRunner]:
    loop = AsgiRunner()
    yield loop
    loop.close()


async def drive(app: Any, query: str, sent: list[str | bytes]) -> list[tuple[Any, Any]]:
    """The frames (and disconnect) the app received, each with the visitor at that moment."""
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    for frame in sent:
        key = "bytes" if isinstance(frame, bytes) else "text"
        incoming.append({"type": "websocket.receive", key: frame})
    incoming.append({"type": "websocket.disconnect", "code": 1000})
    feed = iter(incoming)
    seen: list[tuple[Any, Any]] = []
    closed: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(feed)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            closed.append(message)

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            seen.append((message, scope["state"][STATE_KEY]))
            if message["type"] != "websocket.receive":
                return

    scope = {
        "type": "websocket",
        "path": "/chat",
        "query_string": query.encode(),
        "headers": [],
        "extensions": {"websocket.http.response": {}},
    }
    await AinisaMiddleware(echo, resolver=app.resolver, paths=["/chat"], mode=app.mode)(
        scope, receive, send
    )
    if closed:
        assert seen and seen[-1][0]["type"] == "websocket.disconnect"
        assert seen[-1][0]["code"] == closed[0]["code"] in (1003, 1008, 1009)
        COUNTS["closed"] += 1
    return seen


class _Setup:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.resolver = StaticResolver(BUSINESSES)


def test_websocket_frame_properties(runner: AsgiRunner) -> None:
    @hypothesis_settings(FLOOR)
    @given(connects, st.lists(frames, min_size=1, max_size=5), MODES)
    def test(connect: tuple[str, str], sent: list[str | bytes], mode: str) -> None:
        widget, identity = connect
        seen = runner.run(drive(_Setup(mode), f"widget_id={widget}{identity}", sent))
        COUNTS["connections"] += 1
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
                assert visitor.user_id == "42"
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

    test()
    assert COUNTS["connections"] >= FLOOR
    assert COUNTS["frames"] > 0 and COUNTS["closed"] > 0 and COUNTS["verified"] > 0
