"""Fuzz the whole ASGI path: AinisaMiddleware in front of a Starlette-parsing app.

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

APPS = {mode: make_asgi(mode=mode) for mode in ("strip", "enforce")}
RUNNER = asyncio.Runner(debug=False)


def test_one_input(data: bytes) -> None:
    req = parse_input(data)
    for app, record in APPS.values():
        outcome = RUNNER.run(drive_asgi(app, http_scope(req), req.chunks, record))
        if outcome.seen is None:
            if outcome.status != 200:
                check_answer(outcome.status, outcome.headers, outcome.body)
        elif outcome.seen.user is not None:
            check_passed(outcome.seen, req.sent, BUSINESSES)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
