"""The five properties over the sans-IO core (request parsing, decision, rewrite)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from ainisa_middleware.errors import ERRORS

from .harness import core_outcome
from .profile import FLOOR, hypothesis_settings, run_counted
from .strategies import BUSINESSES, SECRETS, Request, requests
from .views import check_passed, check_untouched, log_leak_check


def _intercepted(mode: str) -> Callable[[Counter[str], int], Callable[[], None]]:
    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(requests())
        def test(req: Request) -> None:
            with log_leak_check() as log:
                outcome = core_outcome(req, mode)
            log.check(SECRETS, req.sent.hashes)
            counts["p3_never_500"] += 1
            if outcome.seen is None:
                assert outcome.status in {spec.status for spec in ERRORS.values()}
                return
            check_passed(outcome.seen, req.sent, BUSINESSES)
            counts["p1_no_user_hash"] += 1
            counts["p2_identity_only_valid"] += 1
            counts["p4_no_differential"] += 1
            counts["verified"] += bool(getattr(outcome.seen.user, "verified", False))

        return test

    return make


def test_core_strip_mode_properties() -> None:
    run_counted(
        "core",
        _intercepted("strip"),
        floors={
            "p1_no_user_hash": FLOOR,
            "p2_identity_only_valid": FLOOR,
            "p3_never_500": FLOOR,
            "p4_no_differential": FLOOR,
        },
        ratio=0.45,
    )


def test_core_enforce_mode_properties() -> None:
    run_counted(
        "core-enforce",
        _intercepted("enforce"),
        floors={"p1_no_user_hash": FLOOR // 5, "p3_never_500": FLOOR // 5},
        ratio=0.2,
    )


def test_core_passthrough_properties() -> None:
    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(requests(intercepted=False), st.sampled_from(["strip", "enforce"]))
        def test(req: Request, mode: str) -> None:
            outcome = core_outcome(req, mode)
            assert outcome.seen is not None
            check_untouched(outcome.seen, req.body, req.query, req.headers)
            counts["p5_passthrough_identical"] += 1

        return test

    run_counted("core", make, floors={"p5_passthrough_identical": FLOOR})
