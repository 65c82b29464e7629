"""The five properties through the WSGI adapter and the Django middleware."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import AsgiRunner, passthrough_variant
from .hosts import (
    adrive_django,
    django_middleware,
    drive_django,
    drive_wsgi,
    environ_headers,
    make_wsgi,
    wsgi_environ,
)
from .profile import FAST, MODES, PASS_RATIO, hypothesis_settings, run_counted
from .strategies import BUSINESSES, SECRETS, Request, any_requests
from .views import (
    CONTRACT_STATUSES,
    Seen,
    check_answer,
    check_passed,
    check_untouched,
    log_leak_check,
)


def _judge(
    counts: Counter[str], req: Request, status: int, headers: object, body: bytes, seen: Seen | None
) -> None:
    counts["p3_never_500"] += 1
    if seen is None:
        if req.method == "HEAD" and body == b"":  # werkzeug drops a HEAD answer's body
            assert status in CONTRACT_STATUSES, status
            return
        check_answer(status, headers, body)  # type: ignore[arg-type]
        return
    assert status == 200
    check_passed(seen, req.sent, BUSINESSES)
    counts["p1_no_user_hash"] += 1
    counts["p2_identity_only_valid"] += 1
    counts["p4_no_differential"] += 1
    counts["verified"] += bool(getattr(seen.user, "verified", False))


def test_wsgi_properties() -> None:
    apps = {mode: make_wsgi(mode=mode) for mode in ("strip", "enforce")}

    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(any_requests(fast=FAST), MODES)
        def test(req: Request, mode: str) -> None:
            app = apps[mode]
            outcome = drive_wsgi(app, wsgi_environ(req))
            log.check(SECRETS, req.sent.hashes)
            _judge(counts, req, outcome.status, outcome.headers, outcome.body, outcome.seen)
            other = passthrough_variant(req)
            env = wsgi_environ(other)
            expected = environ_headers(env)
            untouched = drive_wsgi(app, env)
            assert untouched.status == 200 and untouched.seen is not None
            body = other.body if "CONTENT_LENGTH" in env or other.body == b"" else other.body
            check_untouched(untouched.seen, body, other.query, expected)
            counts["p5_passthrough_identical"] += 1

        return test

    with log_leak_check() as log:
        run_counted("wsgi", make, ratio=PASS_RATIO)


@pytest.fixture(scope="module")
def runner() -> Iterator[AsgiRunner]:
    loop = AsgiRunner()
    yield loop
    loop.close()


def test_django_properties(runner: AsgiRunner) -> None:
    with django_middleware("strip") as strip, django_middleware("enforce") as enforce:
        apps = {"strip": strip, "enforce": enforce}

        def make(counts: Counter[str], examples: int) -> Callable[[], None]:
            @hypothesis_settings(examples)
            @given(any_requests(fast=FAST), MODES, st.booleans())
            def test(req: Request, mode: str, asynchronous: bool) -> None:
                sync_mw, async_mw = apps[mode]
                if asynchronous:
                    outcome = runner.run(adrive_django(async_mw, req))
                else:
                    outcome = drive_django(sync_mw, req)
                log.check(SECRETS, req.sent.hashes)
                if outcome is None:  # Django itself refused the request (400)
                    return
                _judge(counts, req, outcome.status, outcome.headers, outcome.body, outcome.seen)
                other = passthrough_variant(req)
                if asynchronous:
                    untouched = runner.run(adrive_django(async_mw, other))
                else:
                    untouched = drive_django(sync_mw, other)
                assert untouched is not None
                assert untouched.status == 200 and untouched.seen is not None
                # Django's WSGI handler reads only Content-Length framed bodies.
                framed = asynchronous or any(n == b"content-length" for n, _ in other.headers)
                check_untouched(
                    untouched.seen,
                    other.body if framed else b"",
                    other.query,
                    untouched.seen.headers,
                )
                counts["p5_passthrough_identical"] += 1

            return test

        with log_leak_check() as log:
            run_counted("django", make, ratio=PASS_RATIO * 0.95)
