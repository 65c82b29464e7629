"""Fuzz the WSGI path: AinisaWSGIMiddleware in front of a werkzeug-parsing app.

python fuzz/fuzz_wsgi.py fuzz/corpus -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["ainisa_middleware"]):
    from common import parse_input
    from tests.hardening.hosts import drive_wsgi, make_wsgi, wsgi_environ
    from tests.hardening.strategies import BUSINESSES
    from tests.hardening.views import CONTRACT_STATUSES, check_answer, check_passed

APPS = [make_wsgi(mode=mode) for mode in ("strip", "enforce")]


def test_one_input(data: bytes) -> None:
    req = parse_input(data)
    for app in APPS:
        outcome = drive_wsgi(app, wsgi_environ(req))
        if outcome.seen is None:
            if req.method == "HEAD" and outcome.body == b"":
                assert outcome.status in CONTRACT_STATUSES
            elif outcome.status != 200:
                check_answer(outcome.status, outcome.headers, outcome.body)
        elif outcome.seen.user is not None:
            check_passed(outcome.seen, req.sent, BUSINESSES)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
