"""Fuzz the whole ASGI path: AinisaMiddleware in front of a Starlette-parsing app.

Each input is also a WebSocket connection: its body as the first frame (text),
then as a later frame, then as a binary frame, checked by the frame properties
of tests/hardening/websocket_harness.py.

python fuzz/fuzz_asgi.py fuzz/corpus -max_total_time=60
"""

from __future__ import annotations

import asyncio
import sys

import atheris

with atheris.instrument_imports(include=["ainisa_middleware"]):
    from common import parse_input
    from tests.hardening.harness import drive_asgi, http_scope, make_asgi
    from tests.hardening.strategies import BUSINESSES
    from tests.hardening.views import check_answer, check_passed
    from tests.hardening.websocket_harness import Setup, check_connection, drive

from ainisa_middleware import verify_user_hash

APPS = {mode: make_asgi(mode=mode) for mode in ("strip", "enforce")}
RUNNER = asyncio.Runner(debug=False)
SETUPS = [Setup("strip"), Setup("enforce")]
SECRETS = BUSINESSES["w_pro"].secrets


def test_one_input(data: bytes) -> None:
    req = parse_input(data)
    for app, record in APPS.values():
        outcome = RUNNER.run(drive_asgi(app, http_scope(req), req.chunks, record))
        if outcome.seen is None:
            if outcome.status != 200:
                check_answer(outcome.status, outcome.headers, outcome.body)
        elif outcome.seen.user is not None:
            check_passed(outcome.seen, req.sent, BUSINESSES)
    text = req.body.decode("utf-8", "replace")  # a text frame is UTF-8
    frames: list[str | bytes] = [text, text, req.body]

    def may_verify(user_id: str | None) -> bool:
        return user_id is not None and any(
            verify_user_hash(SECRETS, user_id, h) for h in req.sent.hashes
        )

    for setup in SETUPS:
        seen = RUNNER.run(drive(setup, "widget_id=w_pro", frames))
        check_connection(seen, frames, False, may_verify)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
