"""The engine, called directly: inspect, peek, lookup, alookup, decide, and its log records.

Adapters only translate what :class:`~ainisa_middleware.verify.Verifier` answers;
the resolver table (``test_resolver_table.py``) and the shared table (``cases.py``)
check that every adapter does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from ainisa_middleware import Business, CachedResolver, StaticResolver, user_hash
from ainisa_middleware.config import MiddlewareConfig
from ainisa_middleware.errors import RequestError
from ainisa_middleware.request import ParsedRequest, Source
from ainisa_middleware.verify import Decision, Verifier

from .cases import (
    ADA,
    ALL_HASHES,
    BUSINESSES,
    FOREIGN,
    FORM,
    GOOD,
    JSON,
    OLD,
    PATHS,
    RESOLVER,
)
from .conftest import AsyncOnlyResolver, CountingResolver, FailingResolver, SlowResolver

PRO = BUSINESSES["w_pro"]


def verifier(resolver: object = RESOLVER, **options: Any) -> Verifier:
    return Verifier(MiddlewareConfig.build(resolver=resolver, paths=PATHS, **options))


def inspect(
    engine: Verifier,
    body: bytes = b"",
    *,
    content_type: str | None = JSON,
    query: bytes = b"",
    header: str | None = None,
) -> ParsedRequest:
    return engine.inspect(
        content_type=content_type, widget_header=header, query_string=query, body=body
    )


def json_request(engine: Verifier, obj: dict[str, Any], **kw: Any) -> ParsedRequest:
    return inspect(engine, json.dumps(obj).encode(), **kw)


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "ainisa_middleware"]


def assert_private(caplog: pytest.LogCaptureFixture) -> None:
    """No record holds a secret, a hash or an email."""
    for record in ours(caplog):
        text = record.getMessage() + repr(record.__dict__)
        for business in BUSINESSES.values():
            for secret in business.secrets:
                assert secret not in text
        for hashed in ALL_HASHES:
            assert hashed not in text and hashed.upper() not in text
        assert "ada@example.com" not in text


# --- inspect ---------------------------------------------------------------------------


def test_inspect_finds_the_widget_and_the_source_of_user_data() -> None:
    parsed = json_request(verifier(), {"widget_id": "w_pro", "user": ADA})
    assert parsed.widget_id == "w_pro"
    assert parsed.source is Source.JSON
    query = inspect(verifier(), query=b"widget_id=w_pro&user_id=42")
    assert query.source is Source.QUERY
    assert inspect(verifier(), header="w_pro").source is None


def test_inspect_applies_the_configurations_limits() -> None:
    with pytest.raises(RequestError) as info:
        inspect(verifier(max_body_size=10), b'{"widget_id": "w_pro"}')
    assert info.value.code == "body_too_large"
    assert inspect(verifier(max_body_size=10), b'{"a": "b"}', header="w_pro").widget_id
    small = verifier(max_form_fields=3)
    with pytest.raises(RequestError) as info:
        inspect(small, b"a=1&b=2&c=3&d", content_type=FORM, header="w_pro")
    assert info.value.code == "malformed_body"
    with pytest.raises(RequestError) as info:
        inspect(small, query=b"widget_id=w_pro&a=1&b=2&c=3")
    assert info.value.code == "malformed_request"
    assert inspect(small, query=b"widget_id=w_pro&a=1&b=2").widget_id == "w_pro"


def test_errors_found_after_the_widget_id_carry_it_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = verifier()
    raised: list[RequestError] = []
    for body, query in (
        (b"", b"widget_id=w_pro&user_id=1&user_id=2"),
        (b'{"widget_id": "w_pro", "user": {"email": "a"}}', b"user_id=1"),
        (b"[", b"widget_id=w_pro"),
    ):
        with pytest.raises(RequestError) as info:
            inspect(engine, body, query=query)
        raised.append(info.value)
    assert [(e.code, e.widget_id) for e in raised] == [
        ("malformed_request", "w_pro"),
        ("conflicting_user_data", "w_pro"),
        ("malformed_body", None),  # the body names the widget, and could not be read
    ]
    with caplog.at_level(logging.WARNING, logger="ainisa_middleware"):
        for error in raised:
            engine.log_error(error.code, error.widget_id)
    assert [(r.ainisa_widget_id, r.ainisa_outcome) for r in ours(caplog)] == [  # type: ignore[attr-defined]
        ("w_pro", "malformed_request"),
        ("w_pro", "conflicting_user_data"),
        (None, "malformed_body"),
    ]


# --- peek, lookup, alookup ---------------------------------------------------------------


def test_peek_answers_from_memory_and_logs_an_unknown_widget_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = verifier(StaticResolver(BUSINESSES))
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        assert engine.peek("w_pro") is PRO
        assert ours(caplog) == []
        assert engine.peek("w_nope") == "unknown_widget"
    (record,) = ours(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "ainisa: widget=w_nope outcome=unknown_widget"
    assert record.ainisa_outcome == "unknown_widget"  # type: ignore[attr-defined]
    assert record.ainisa_widget_id == "w_nope"  # type: ignore[attr-defined]


def test_peek_without_a_memory_says_nothing_and_asks_nobody() -> None:
    store = CountingResolver()
    assert verifier(store).peek("w_pro") is None
    assert store.calls == []


def test_find_asks_the_store_once_then_answers_from_memory() -> None:
    store = CountingResolver()
    engine = verifier(CachedResolver(store))
    assert engine.find("w_pro") is PRO
    assert engine.find("w_nope") == "unknown_widget"
    assert asyncio.run(engine.afind("w_pro")) is PRO  # a hit: no thread, no await of the store
    assert asyncio.run(engine.afind("w_nope")) == "unknown_widget"
    assert engine.find("w_pro") is PRO
    assert store.calls == ["w_pro", "w_nope"]
    fresh = CountingResolver()
    assert asyncio.run(verifier(CachedResolver(fresh)).afind("w_pro")) is PRO
    assert fresh.calls == ["w_pro"]


def test_peek_answers_a_cache_hit_or_miss_only_after_a_lookup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = CountingResolver()
    engine = verifier(CachedResolver(store))
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        assert engine.peek("w_pro") is None
        assert engine.peek("w_nope") is None
        assert ours(caplog) == []  # a miss of the cache is no answer: nothing logged yet
        assert engine.lookup("w_pro") is PRO
        assert engine.lookup("w_nope") == "unknown_widget"
        assert len(ours(caplog)) == 1  # the unknown widget, once
        assert engine.peek("w_pro") is PRO
        assert engine.peek("w_nope") == "unknown_widget"
    assert store.calls == ["w_pro", "w_nope"]


@pytest.mark.parametrize(
    "exc", [ConnectionError("down"), TimeoutError(), RuntimeError("boom"), ValueError("x")]
)
def test_lookup_and_alookup_answer_503_for_any_exception_and_name_its_class(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingResolver(exc)
    engine = verifier(store)
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        assert engine.lookup("w_pro") == "resolver_unavailable"
        assert asyncio.run(engine.alookup("w_pro")) == "resolver_unavailable"
    assert store.calls == 2
    messages = [record.getMessage() for record in ours(caplog)]
    name = type(exc).__name__
    assert messages == [f"ainisa: widget=w_pro outcome=resolver_unavailable ({name})"] * 2
    assert all(record.levelno == logging.WARNING for record in ours(caplog))


def test_lookup_finds_a_business_or_logs_an_unknown_widget_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = CountingResolver()
    engine = verifier(store)
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        assert engine.lookup("w_pro") is PRO
        assert ours(caplog) == []  # the decision logs the request, not the lookup
        assert engine.lookup("w_nope") == "unknown_widget"
        assert asyncio.run(engine.alookup("w_nope")) == "unknown_widget"
    assert [r.ainisa_outcome for r in ours(caplog)] == ["unknown_widget"] * 2  # type: ignore[attr-defined]
    assert store.calls == ["w_pro", "w_nope", "w_nope"]


@pytest.mark.parametrize("value", [{"id": "shop"}, "shop", 42, PRO.secrets])
def test_a_resolver_returning_the_wrong_type_is_503(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    class Wrong:
        def resolve(self, widget_id: str) -> object:
            return value

    engine = verifier(Wrong())
    with caplog.at_level(logging.WARNING, logger="ainisa_middleware"):
        assert engine.lookup("w_pro") == "resolver_unavailable"
        assert asyncio.run(engine.alookup("w_pro")) == "resolver_unavailable"
    assert all("(TypeError)" in record.getMessage() for record in ours(caplog))
    assert_private(caplog)


def test_lookup_runs_an_async_only_resolver_to_completion_within_the_timeout() -> None:
    assert verifier(AsyncOnlyResolver()).lookup("w_pro") is PRO
    slow = verifier(AsyncOnlyResolver(delay=5), resolver_timeout=0.05)
    assert slow.lookup("w_pro") == "resolver_unavailable"


def test_lookup_of_an_async_only_resolver_inside_a_running_loop_is_503() -> None:
    engine = verifier(AsyncOnlyResolver())

    async def inside() -> object:
        return engine.lookup("w_pro")

    assert asyncio.run(inside()) == "resolver_unavailable"


def test_alookup_awaits_an_async_resolver_and_runs_a_sync_one_in_a_thread() -> None:
    assert asyncio.run(verifier(AsyncOnlyResolver()).alookup("w_pro")) is PRO
    store = CountingResolver()
    assert asyncio.run(verifier(store).alookup("w_pro")) is PRO
    assert len(store.threads) == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_alookup_is_bounded_by_the_timeout(kind: str) -> None:
    slow = SlowResolver(delay=5)
    engine = verifier(slow if kind == "sync" else AsyncOnlyResolver(delay=5), resolver_timeout=0.05)

    async def bounded() -> object:
        try:
            return await engine.alookup("w_pro")
        finally:
            slow.release.set()  # the abandoned thread ends before the loop closes

    assert asyncio.run(bounded()) == "resolver_unavailable"


def test_alookup_without_a_timeout_waits() -> None:
    engine = verifier(AsyncOnlyResolver(delay=0.1), resolver_timeout=None)
    assert asyncio.run(engine.alookup("w_pro")) is PRO


# --- decide ------------------------------------------------------------------------------

#: user object sent -> the status it earns from a business with identity
USERS = {
    "verified": ADA,
    "anonymous": None,
    "missing_user_id": {"firstname": "Ada", "email": "ada@example.com"},
    "missing_hash": {"user_id": "42", "email": "ada@example.com"},
    "invalid_hash": {"user_id": "42", "user_hash": FOREIGN, "email": "ada@example.com"},
    "malformed_user": {"user_id": True, "user_hash": GOOD},
}


def expected_error(status: str, widget: str, mode: str) -> str | None:
    """CONTRACT 3.4, restated."""
    if status == "identity_disabled":
        return None  # the plan turns the feature off; require_identity has no effect
    if mode == "enforce" and status not in ("verified", "anonymous"):
        return "identity_verification_failed"  # wins over require_identity
    if BUSINESSES[widget].require_identity and status != "verified":
        return "identity_required"
    return None


@pytest.mark.parametrize("mode", ["strip", "enforce"])
@pytest.mark.parametrize("widget", ["w_pro", "w_req", "w_free", "w_free_req"])
@pytest.mark.parametrize("sent", list(USERS))
def test_decide_each_status_in_each_mode(sent: str, widget: str, mode: str) -> None:
    engine = verifier(mode=mode)
    body: dict[str, Any] = {"widget_id": widget, "msg": "hi"}
    if USERS[sent] is not None:
        body["user"] = USERS[sent]
    business = BUSINESSES[widget]
    status = sent if business.identity_enabled else "identity_disabled"
    decision = engine.decide(json_request(engine, body), business)
    error = expected_error(status, widget, mode)
    if error is not None:
        assert decision == Decision(user=None, error=error)
        return
    assert decision.error is None
    user = decision.user
    assert user is not None
    assert (user.status, user.widget_id, user.business_id) == (status, widget, business.id)
    assert user.verified is (status == "verified")
    assert decision.body is not None
    seen = json.loads(decision.body)
    if status == "verified":
        assert (user.user_id, user.firstname, user.lastname, user.email) == (
            "42",
            "Ada",
            "Lovelace",
            "ada@example.com",
        )
        assert seen["user"] == {k: v for k, v in ADA.items() if k != "user_hash"}
    else:
        assert (user.user_id, user.firstname, user.lastname, user.email) == (None,) * 4
        assert "user" not in seen
    assert seen["msg"] == "hi"
    assert decision.query is None  # no identity in the query: left as it is


def test_decide_rewrites_the_query_and_form_it_judged() -> None:
    engine = verifier()
    verified = inspect(engine, query=f"widget_id=w_pro&user_id=42&user_hash={GOOD}&x=1".encode())
    decision = engine.decide(verified, PRO)
    assert decision.query == b"widget_id=w_pro&user_id=42&x=1"
    assert decision.body is None  # no body
    form = inspect(
        engine,
        f"widget_id=w_pro&user_id=42&user_hash={GOOD}&firstname=Ada&m=1".encode(),
        content_type=FORM,
    )
    assert engine.decide(form, PRO).body == b"widget_id=w_pro&user_id=42&firstname=Ada&m=1"
    invalid = inspect(
        engine, f"widget_id=w_pro&user_id=43&user_hash={GOOD}&m=1".encode(), content_type=FORM
    )
    assert engine.decide(invalid, PRO).body == b"widget_id=w_pro&m=1"


def test_decide_leaves_a_form_without_identity_alone() -> None:
    engine = verifier()
    form = inspect(engine, b"widget_id=w_pro&m=1", content_type=FORM)
    decision = engine.decide(form, PRO)
    assert (decision.error, decision.body, decision.query) == (None, None, None)
    assert decision.user is not None and decision.user.status == "anonymous"


def test_a_json_body_is_always_re_serialised_without_the_top_level_hash() -> None:
    engine = verifier()
    parsed = json_request(engine, {"widget_id": "w_pro", "user_hash": GOOD, "n": 1.0})
    assert engine.decide(parsed, PRO).body == b'{"widget_id":"w_pro","n":1.0}'


# --- the one log record of a decision -----------------------------------------------------


def test_one_record_per_decision_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    engine = verifier()
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        engine.decide(json_request(engine, {"widget_id": "w_pro", "user": ADA}), PRO)
    (record,) = ours(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "ainisa: widget=w_pro business=shop status=verified outcome=pass secret=sec_new"
    )
    assert {
        key: getattr(record, key)
        for key in (
            "ainisa_widget_id",
            "ainisa_business_id",
            "ainisa_status",
            "ainisa_outcome",
            "ainisa_secret",
        )
    } == {
        "ainisa_widget_id": "w_pro",
        "ainisa_business_id": "shop",
        "ainisa_status": "verified",
        "ainisa_outcome": "pass",
        "ainisa_secret": "sec_new",
    }
    assert_private(caplog)


@pytest.mark.parametrize("sent", list(USERS))
@pytest.mark.parametrize("mode", ["strip", "enforce"])
def test_every_decision_logs_once_and_privately(
    sent: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = verifier(mode=mode)
    body: dict[str, Any] = {"widget_id": "w_req"}
    if USERS[sent] is not None:
        body["user"] = USERS[sent]
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        decision = engine.decide(json_request(engine, body), BUSINESSES["w_req"])
    (record,) = ours(caplog)
    assert record.ainisa_status == sent  # type: ignore[attr-defined]
    assert record.ainisa_outcome == (decision.error or "pass")  # type: ignore[attr-defined]
    assert record.levelno == (logging.INFO if decision.error is None else logging.WARNING)
    assert_private(caplog)


def test_log_names_the_previous_secret_during_rotation(caplog: pytest.LogCaptureFixture) -> None:
    engine = verifier()
    user = {"user_id": "42", "user_hash": OLD}
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        engine.decide(json_request(engine, {"widget_id": "w_pro", "user": user}), PRO)
    assert [r.ainisa_secret for r in ours(caplog)] == ["sec_old"]  # type: ignore[attr-defined]


def test_log_names_secret_position_without_ids(caplog: pytest.LogCaptureFixture) -> None:
    business = Business(id="b", secrets=("one", "two"))
    engine = verifier(StaticResolver({"w": business}))
    user = {"user_id": "9", "user_hash": user_hash("two", "9")}
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        engine.decide(json_request(engine, {"widget_id": "w", "user": user}), business)
    assert [r.ainisa_secret for r in ours(caplog)] == ["1"]  # type: ignore[attr-defined]


def test_a_plan_without_identity_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    engine = verifier()
    with caplog.at_level(logging.INFO, logger="ainisa_middleware"):
        engine.decide(
            json_request(engine, {"widget_id": "w_free", "user": ADA}), BUSINESSES["w_free"]
        )
    (record,) = ours(caplog)
    assert record.ainisa_status == "identity_disabled"  # type: ignore[attr-defined]
    assert record.ainisa_secret is None  # type: ignore[attr-defined]
    assert record.getMessage().endswith("secret=-")


def test_a_process_logging_only_warnings_gets_only_the_refusals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = verifier(mode="enforce")
    with caplog.at_level(logging.WARNING, logger="ainisa_middleware"):
        engine.decide(json_request(engine, {"widget_id": "w_pro", "user": ADA}), PRO)
        assert ours(caplog) == []
        bad = {"widget_id": "w_pro", "user": USERS["invalid_hash"]}
        engine.decide(json_request(engine, bad), PRO)
    assert [r.ainisa_outcome for r in ours(caplog)] == ["identity_verification_failed"]  # type: ignore[attr-defined]


def test_log_error_without_a_widget_or_a_cause(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ainisa_middleware"):
        verifier().log_error("missing_widget_id")
        verifier().log_error("malformed_body", None, OSError("reset"))
    assert [r.getMessage() for r in ours(caplog)] == [
        "ainisa: widget=- outcome=missing_widget_id",
        "ainisa: widget=- outcome=malformed_body (OSError)",
    ]
    record = ours(caplog)[0]
    assert (record.ainisa_business_id, record.ainisa_status, record.ainisa_secret) == (  # type: ignore[attr-defined]
        None,
        None,
        None,
    )


def test_nothing_is_logged_when_the_logger_is_off(caplog: pytest.LogCaptureFixture) -> None:
    engine = verifier(mode="enforce")
    with caplog.at_level(logging.CRITICAL, logger="ainisa_middleware"):
        bad = {"widget_id": "w_pro", "user": USERS["invalid_hash"]}
        assert engine.decide(json_request(engine, bad), PRO).error is not None
        engine.log_error("malformed_body")
        assert engine.lookup("w_nope") == "unknown_widget"
    assert ours(caplog) == []


# --- known bugs ----------------------------------------------------------------------------


class _PeekRaises(CountingResolver):
    def peek(self, widget_id: str) -> tuple[bool, Business | None]:
        raise ConnectionError("the cache is down")


class _PeekAnswersARow(CountingResolver):
    def peek(self, widget_id: str) -> tuple[bool, object]:
        return True, {"id": "shop"}


def test_a_peek_that_raises_is_resolver_unavailable() -> None:
    assert verifier(_PeekRaises()).peek("w_pro") == "resolver_unavailable"


def test_a_peek_answering_the_wrong_type_is_resolver_unavailable() -> None:
    assert verifier(_PeekAnswersARow()).peek("w_pro") == "resolver_unavailable"


def test_lookup_through_a_cache_of_an_async_store_keeps_the_timeout() -> None:
    assert verifier(AsyncOnlyResolver(delay=0.5), resolver_timeout=0.05).lookup("w_pro") == (
        "resolver_unavailable"
    )  # the store alone: bounded
    cached = verifier(CachedResolver(AsyncOnlyResolver(delay=0.5)), resolver_timeout=0.05)
    assert cached.lookup("w_pro") == "resolver_unavailable"
