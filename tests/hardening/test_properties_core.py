"""The five properties over the sans-IO core (request parsing, decision, rewrite)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hypothesis import given

from .harness import core_outcome, passthrough_variant
from .profile import FAST, MODES, PASS_RATIO, hypothesis_settings, run_counted
from .strategies import BUSINESSES, SECRETS, Request, any_requests
from .views import check_answer, check_passed, check_untouched, log_leak_check


def test_core_properties() -> None:
    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(any_requests(fast=FAST), MODES)
        def test(req: Request, mode: str) -> None:
            outcome = core_outcome(req, mode)
            log.check(SECRETS, req.sent.hashes)
            counts["p3_never_500"] += 1
            if outcome.seen is None:
                check_answer(outcome.status, outcome.headers, outcome.body)
            else:
                check_passed(outcome.seen, req.sent, BUSINESSES)
                counts["p1_no_user_hash"] += 1
                counts["p2_identity_only_valid"] += 1
                counts["p4_no_differential"] += 1
                counts["verified"] += bool(getattr(outcome.seen.user, "verified", False))
            other = passthrough_variant(req)
            untouched = core_outcome(other, mode)
            assert untouched.seen is not None
            check_untouched(untouched.seen, other.body, other.query, other.headers)
            counts["p5_passthrough_identical"] += 1

        return test

    # One log checker for the whole run: installing it per example costs more
    # than the example (setting a logger's level clears every logger's cache).
    with log_leak_check() as log:
        run_counted("core", make, ratio=PASS_RATIO)
