"""The five properties through the ASGI adapter, read by Starlette's own parsers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ainisa_middleware import StaticResolver
from ainisa_middleware.asgi import AinisaMiddleware

from .harness import AsgiRunner, drive_asgi, http_scope, make_asgi, passthrough_variant
from .profile import FAST, FLOOR, MODES, PASS_RATIO, hypothesis_settings, run_counted
from .strategies import BUSINESSES, SECRETS, Request, any_requests, requests
from .views import check_answer, check_passed, check_untouched, log_leak_check


@pytest.fixture(scope="module")
def runner() -> Iterator[AsgiRunner]:
    loop = AsgiRunner()
    yield loop
    loop.close()


def test_asgi_properties(runner: AsgiRunner) -> None:
    apps = {mode: make_asgi(mode=mode) for mode in ("strip", "enforce")}

    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(any_requests(fast=FAST), MODES)
        def test(req: Request, mode: str) -> None:
            app, record = apps[mode]
            outcome = runner.run(drive_asgi(app, http_scope(req), req.chunks, record))
            log.check(SECRETS, req.sent.hashes)
            # Property 3: an answer of the contract's, never a 500, nothing raised.
            counts["p3_never_500"] += 1
            if outcome.seen is None:
                check_answer(outcome.status, outcome.headers, outcome.body)
            else:
                assert outcome.status == 200
                check_passed(outcome.seen, req.sent, BUSINESSES)
                counts["p1_no_user_hash"] += 1
                counts["p2_identity_only_valid"] += 1
                counts["p4_no_differential"] += 1
                counts["verified"] += bool(getattr(outcome.seen.user, "verified", False))
            # Property 5: the same request where the middleware must not look.
            other = passthrough_variant(req)
            untouched = runner.run(drive_asgi(app, http_scope(other), other.chunks, record))
            assert untouched.status == 200 and untouched.seen is not None
            check_untouched(untouched.seen, other.body, other.query, other.headers)
            counts["p5_passthrough_identical"] += 1

        return test

    with log_leak_check() as log:
        run_counted("asgi", make, ratio=PASS_RATIO)


# A websocket scope under the paths is verified (test_websocket.py); elsewhere it passes.
@pytest.mark.parametrize(("kind", "path"), [("websocket", "/live"), ("lifespan", "/chat")])
def test_asgi_other_scopes_reach_the_app_as_they_are(
    runner: AsgiRunner, kind: str, path: str
) -> None:
    seen: list[object] = []

    async def app(scope: object, receive: object, send: object) -> None:
        seen.append(scope)

    middleware = AinisaMiddleware(app, resolver=StaticResolver(BUSINESSES), paths=["/chat"])
    scope = {"type": kind, "path": path, "query_string": b"user_id=1", "headers": []}

    async def nothing() -> dict[str, object]:
        raise AssertionError("the middleware must not read a non-http scope")

    async def no_send(message: object) -> None:
        raise AssertionError("the middleware must not answer a non-http scope")

    runner.run(middleware(scope, nothing, no_send))
    assert seen == [scope] and seen[0] is scope


def test_asgi_chunking_does_not_change_the_decision(runner: AsgiRunner) -> None:
    """The same request in one message or many gets the same answer and app view."""
    app, record = make_asgi()

    @hypothesis_settings(max(FLOOR // 5, 50))
    @given(requests(), st.integers(1, 7))
    def test(req: Request, size: int) -> None:
        whole = runner.run(drive_asgi(app, http_scope(req), [req.body], record))
        pieces = [req.body[i : i + size] for i in range(0, len(req.body), size)] or [b""]
        split = runner.run(drive_asgi(app, http_scope(req), pieces, record))
        assert (whole.status, whole.body) == (split.status, split.body)
        if whole.seen is not None:
            assert split.seen is not None
            assert (whole.seen.body, whole.seen.query, whole.seen.user) == (
                split.seen.body,
                split.seen.query,
                split.seen.user,
            )

    with log_leak_check():
        test()
