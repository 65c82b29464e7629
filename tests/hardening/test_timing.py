"""Timing: what a wrong hash costs must not depend on the secret or the business.

Each check times two kinds of request in many small batches, interleaved in a
random order so that load from the rest of the machine falls on both alike,
and compares low quantiles (noise only ever adds time, so the fast end of each
distribution is what the code itself costs). A control run first proves the
method can see a leak: a comparison that stops at the first wrong character,
patched in for the occasion, must be caught.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
from collections.abc import Callable, Iterator

import pytest

from ainisa_middleware import Business, StaticResolver, user_hash
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.request import ParsedRequest
from ainisa_middleware.verify import Verifier

pytestmark = pytest.mark.slow

SECRET = "sk_live_timing_7a5c9e1b3d"
UID = "user-4711"
GOOD = user_hash(SECRET, UID)
ENABLED = Business(id="on", secrets=(SECRET,))
DISABLED = Business(id="off", secrets=(SECRET,), identity_enabled=False)
#: largest relative gap between two low quantiles that counts as "the same time"
TOLERANCE = 0.02
SAMPLES = 1500  # per kind
BATCH = 24  # calls per sample


def wrong_with_prefix(n: int) -> str:
    """A wrong hash that agrees with the right one on its first ``n`` characters."""
    flip = "0" if GOOD[n] != "0" else "1"
    return GOOD[:n] + flip + GOOD[n + 1 :]


def parsed_request(candidate: str) -> ParsedRequest:
    verifier = Verifier(MiddlewareConfig.build(resolver=StaticResolver({}), paths=["/chat"]))
    body = json.dumps({"message": "hi", "user": {"user_id": UID, "user_hash": candidate}})
    return verifier.inspect(
        content_type="application/json",
        widget_header="w",
        query_string=b"",
        body=body.encode(),
    )


def decide_timer(business: Business, candidate: str) -> Callable[[], None]:
    verifier = Verifier(MiddlewareConfig.build(resolver=StaticResolver({}), paths=["/chat"]))
    template = parsed_request(candidate)

    def once() -> None:
        # decide() rewrites the body it is given, so each call gets a fresh copy
        # of the parsed request (the copy costs the same for every kind).
        parsed = ParsedRequest(
            widget_id=template.widget_id,
            kind=template.kind,
            json_body={"message": "hi", "user": dict(template.json_body["user"])},  # type: ignore[index]
            form=None,
            query=template.query,
            source=template.source,
        )
        verifier.decide(parsed, business)

    return once


def measure(kinds: dict[str, Callable[[], None]], seed: int) -> dict[str, list[float]]:
    """Per-call nanoseconds of each kind, batches interleaved in a seeded random order."""
    order = [name for name in kinds for _ in range(SAMPLES)]
    random.Random(seed).shuffle(order)
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for fn in kinds.values():  # warm caches (the keyed HMAC, the JSON encoder)
        for _ in range(200):
            fn()
    clock = time.perf_counter_ns
    for name in order:
        fn = kinds[name]
        start = clock()
        for _ in range(BATCH):
            fn()
        times[name].append((clock() - start) / BATCH)
    return times


def gap(a: list[float], b: list[float]) -> float:
    """Largest relative difference of the 5th, 10th and 25th percentiles."""
    qa = statistics.quantiles(a, n=20)
    qb = statistics.quantiles(b, n=20)
    return max(abs(qa[i] - qb[i]) / min(qa[i], qb[i]) for i in (0, 1, 4))


def same_time(kinds: dict[str, Callable[[], None]], attempts: int = 3) -> float:
    """The smallest gap seen in up to ``attempts`` runs (a real leak shows in every run)."""
    best = float("inf")
    for attempt in range(attempts):
        times = measure(kinds, seed=attempt)
        a, b = times.values()
        best = min(best, gap(a, b))
        if best < TOLERANCE:
            break
    return best


@pytest.fixture(autouse=True)
def quiet_logger() -> Iterator[None]:
    # The log line is the same for both kinds of every pair; leave it out of the clock.
    logger = logging.getLogger("ainisa_middleware")
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = False


def leaky_compare(a: bytes | str, b: bytes | str) -> bool:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return False
    return len(a) == len(b)


def test_the_method_catches_a_comparison_that_stops_early(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ainisa_middleware.signing.compare_digest", leaky_compare)
    kinds = {
        "prefix-0": decide_timer(ENABLED, wrong_with_prefix(0)),
        "prefix-63": decide_timer(ENABLED, wrong_with_prefix(63)),
    }
    times = measure(kinds, seed=99)
    assert gap(*times.values()) > 1.5 * TOLERANCE, "the timing method cannot see a real leak"


def test_wrong_hash_time_does_not_depend_on_the_matching_prefix() -> None:
    kinds = {
        "prefix-0": decide_timer(ENABLED, wrong_with_prefix(0)),
        "prefix-63": decide_timer(ENABLED, wrong_with_prefix(63)),
    }
    assert same_time(kinds) < TOLERANCE


def test_wrong_hash_time_does_not_depend_on_the_plan() -> None:
    # The same wrong hash to a business with identity and to one without: the
    # contract answers both the same way in strip mode, so must the clock.
    kinds = {
        "enabled": decide_timer(ENABLED, wrong_with_prefix(40)),
        "disabled": decide_timer(DISABLED, wrong_with_prefix(40)),
    }
    assert same_time(kinds) < TOLERANCE


def test_the_plan_check_catches_a_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control for the plan test: skipping the check for a disabled plan is visible."""
    import ainisa_middleware.verify as verify
    from ainisa_middleware.models import Status

    real = verify._judge

    def shortcut(parsed: ParsedRequest, business: Business) -> object:
        if not business.identity_enabled:
            return Status.IDENTITY_DISABLED, {}, None
        return real(parsed, business)

    monkeypatch.setattr(verify, "_judge", shortcut)
    kinds = {
        "enabled": decide_timer(ENABLED, wrong_with_prefix(40)),
        "disabled": decide_timer(DISABLED, wrong_with_prefix(40)),
    }
    times = measure(kinds, seed=7)
    assert gap(*times.values()) > 1.5 * TOLERANCE
