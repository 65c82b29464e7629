"""Fuzz the sans-IO core: request parsing, the decision and the rewrite.

python fuzz/fuzz_parser.py fuzz/corpus -max_total_time=60

Every body is also given to both JSON parsing paths directly, whatever its size:
the hooked scanner (bodies up to 2 KiB) and ``_parse_large`` (larger ones) must
accept and refuse alike, and return the same object; a disagreement is a crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["ainisa_middleware"]):
    from common import parse_input
    from tests.hardening.harness import check_json_paths_agree, core_outcome
    from tests.hardening.strategies import BUSINESSES
    from tests.hardening.views import check_answer, check_passed


def test_one_input(data: bytes) -> None:
    req = parse_input(data)
    for mode in ("strip", "enforce"):
        outcome = core_outcome(req, mode)
        if outcome.seen is None:
            check_answer(outcome.status, outcome.headers, outcome.body)
        elif outcome.seen.user is not None:
            check_passed(outcome.seen, req.sent, BUSINESSES)
    check_json_paths_agree(req.body)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
