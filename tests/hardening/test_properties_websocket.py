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
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ainisa_middleware import user_hash

from .harness import AsgiRunner
from .profile import FLOOR, MODES, hypothesis_settings
from .strategies import SECRET_NEW, SECRET_OLD, SECRET_OTHER
from .websocket_harness import COUNTS, Setup, check_connection, drive

HASHES = [
    user_hash(SECRET_NEW, "42"),
    user_hash(SECRET_OLD, "42").upper(),
    user_hash(SECRET_OTHER, "42"),
    user_hash(SECRET_NEW, "43"),
    "0" * 64,
    "",
]

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


SETUPS = {mode: Setup(mode) for mode in ("strip", "enforce")}


def test_websocket_frame_properties(runner: AsgiRunner) -> None:
    @hypothesis_settings(FLOOR)
    @given(connects, st.lists(frames, min_size=1, max_size=5), MODES)
    def test(connect: tuple[str, str], sent: list[str | bytes], mode: str) -> None:
        widget, identity = connect
        seen = runner.run(drive(SETUPS[mode], f"widget_id={widget}{identity}", sent))
        COUNTS["connections"] += 1
        check_connection(seen, sent, bool(identity))

    test()
    assert COUNTS["connections"] >= FLOOR
    assert COUNTS["frames"] > 0 and COUNTS["closed"] > 0 and COUNTS["verified"] > 0
