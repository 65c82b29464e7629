"""Bugs the property tests and fuzzers found, each pinned by the smallest request.

Every test here failed before its fix; those marked ``xfail`` still await one.
The ASGI ones go through Starlette's own parsers (``request.query_params``,
``request.form()``, ``request.json()``), the views an app would take.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from ainisa_middleware import Status, user_hash
from ainisa_middleware.errors import RequestError
from ainisa_middleware.request import BodyKind, body_kind, parse_flat, parse_request
from ainisa_middleware.rewrite import ALL_IDENTITY, rewrite_flat

from .harness import AsgiRunner, Outcome, drive_asgi, http_scope, make_asgi
from .strategies import SECRET_NEW, Request
from .views import Sent

FORM = b"application/x-www-form-urlencoded"
GOOD_7 = user_hash(SECRET_NEW, "7")


@pytest.fixture(scope="module")
def runner() -> Iterator[AsgiRunner]:
    logging.getLogger("ainisa_middleware").disabled = True
    loop = AsgiRunner()
    yield loop
    loop.close()
    logging.getLogger("ainisa_middleware").disabled = False


def send(
    runner: AsgiRunner,
    *,
    query: bytes = b"",
    body: bytes = b"",
    content_type: bytes | None = None,
    method: str = "POST",
) -> Outcome:
    headers = [(b"x-ainisa-widget-id", b"w_pro")]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    req = Request(method, "/chat", headers, query, body, [body], Sent("w_pro"))
    app, record = make_asgi()
    return runner.run(drive_asgi(app, http_scope(req), [body], record))  # type: ignore[no-any-return]


def app_fields(outcome: Outcome) -> dict[str, dict[str, list[str]]]:
    assert outcome.seen is not None, outcome.body
    return {k: v for k, v in outcome.seen.parsed.items() if v}


# -- ';' inside an '&' segment ---------------------------------------------------


def test_semicolon_glued_value_is_not_vouched_for_in_the_query(runner: AsgiRunner) -> None:
    # Was: verified as "7" (the middleware split on ';') while Starlette's
    # query_params gave the app user_id="7;x", a value nobody signed.
    outcome = send(runner, query=b"user_id=7;x&user_hash=" + GOOD_7.encode())
    assert outcome.status == 200
    assert outcome.seen is not None
    assert outcome.seen.user.status is Status.MALFORMED_USER  # type: ignore[attr-defined]
    assert app_fields(outcome) == {}
    assert outcome.seen.query == b"x"


def test_semicolon_glued_value_is_not_vouched_for_in_a_form(runner: AsgiRunner) -> None:
    body = b"user_id=7;x&user_hash=" + GOOD_7.encode()
    outcome = send(runner, body=body, content_type=FORM)
    assert outcome.seen is not None
    assert outcome.seen.user.status is Status.MALFORMED_USER  # type: ignore[attr-defined]
    assert app_fields(outcome) == {}


def test_semicolon_hidden_field_is_still_removed(runner: AsgiRunner) -> None:
    # A parser that splits on ';' sees user_id here; one that does not sees x="1;...".
    outcome = send(runner, query=b"x=1;user_id=evil&lang=en")
    assert outcome.seen is not None
    assert outcome.seen.query == b"x=1&lang=en"


def test_rewrite_keeps_ampersand_segments_apart() -> None:
    # Was: "a=1;b=2", which a parse_qsl app reads as a="1;b=2".
    assert rewrite_flat(parse_flat(b"a=1&user_id=5;b=2"), ALL_IDENTITY) == b"a=1&b=2"
    assert rewrite_flat(parse_flat(b"a=1;user_id=5;b=2"), ALL_IDENTITY) == b"a=1;b=2"
    assert rewrite_flat(parse_flat(b"user_id=5&a=1"), ALL_IDENTITY) == b"a=1"


def test_widget_id_in_a_semicolon_segment_is_malformed() -> None:
    for query in (b"widget_id=w_pro;x", b"x=1;widget_id=w_pro"):
        with pytest.raises(RequestError) as caught:
            parse_request(
                content_type=None,
                widget_header=None,
                query_string=query,
                body=b"",
                max_body_size=100,
            )
        assert caught.value.code == "malformed_widget_id"


# -- raw non-ASCII bytes ---------------------------------------------------------


def test_raw_utf8_user_id_in_a_form_is_not_vouched_for(runner: AsgiRunner) -> None:
    # Was: verified as "é" while Starlette's form (latin-1) gave the app "Ã©".
    good = user_hash(SECRET_NEW, "é").encode()
    outcome = send(runner, body="user_id=é&user_hash=".encode() + good, content_type=FORM)
    assert outcome.seen is not None
    assert outcome.seen.user.status is Status.MALFORMED_USER  # type: ignore[attr-defined]
    assert app_fields(outcome) == {}


def test_raw_utf8_user_id_in_the_query_is_not_vouched_for(runner: AsgiRunner) -> None:
    good = user_hash(SECRET_NEW, "é").encode()
    outcome = send(runner, query="user_id=é&user_hash=".encode() + good)
    assert outcome.seen is not None
    assert outcome.seen.user.status is Status.MALFORMED_USER  # type: ignore[attr-defined]


@pytest.mark.parametrize("escape", [b"%FF", b"%C3", b"%ED%A0%80", b"%C0%AF"])
def test_escape_that_is_not_utf8_is_not_vouched_for(runner: AsgiRunner, escape: bytes) -> None:
    # werkzeug keeps "%FF" as the text "%FF" where the middleware and Starlette
    # read U+FFFD: a verified id must read the same to every parser.
    uid = (b"7" + escape).decode("latin-1")
    from urllib.parse import unquote

    digest = user_hash(SECRET_NEW, unquote(uid)).encode()
    outcome = send(runner, query=b"user_id=7" + escape + b"&user_hash=" + digest)
    assert outcome.seen is not None
    assert outcome.seen.user.status is Status.MALFORMED_USER  # type: ignore[attr-defined]
    assert app_fields(outcome) == {}


def test_percent_encoded_utf8_user_id_still_verifies(runner: AsgiRunner) -> None:
    good = user_hash(SECRET_NEW, "é").encode()
    outcome = send(runner, body=b"user_id=%C3%A9&user_hash=" + good, content_type=FORM)
    assert outcome.seen is not None
    assert outcome.seen.user.status is Status.VERIFIED  # type: ignore[attr-defined]
    assert app_fields(outcome)["body/starlette-form"] == {"user_id": ["é"]}


def test_percent_encoded_identity_names_are_identity(runner: AsgiRunner) -> None:
    outcome = send(runner, query=b"user%5Fid=7&%75ser_hash=" + GOOD_7.encode())
    assert outcome.seen is not None
    assert outcome.seen.user.status is Status.VERIFIED  # type: ignore[attr-defined]
    assert app_fields(outcome) == {"query/starlette": {"user_id": ["7"]}}


# -- content types ---------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=utf-7",
        "application/x-www-form-urlencoded; charset=utf-16",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/x-www-form-urlencoded; charset=utf-8; charset=utf-7",
        "application/x-www-form-urlencoded; charset*=utf-8''utf-7",
        "application/json;charset=utf-16",
        "application/json, application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded, application/vnd.x+json",
        "\x1capplication/json",
        "application/json\x0b",
        "application /json",
    ],
)
def test_content_types_apps_could_read_differently_are_refused(content_type: str) -> None:
    # Django decodes a form body and the query string with the charset parameter:
    # "user+AF8-id=victim" is user_id=victim in UTF-7.
    assert body_kind(content_type) is None


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", BodyKind.JSON),
        ("Application/JSON", BodyKind.JSON),
        ("application/json; charset=UTF-8", BodyKind.JSON),
        ('application/json; charset="utf-8"', BodyKind.JSON),
        ("application/vnd.api+json", BodyKind.JSON),
        ("application/x-www-form-urlencoded ; charset=utf8", BodyKind.FORM),
        ("\tapplication/x-www-form-urlencoded ", BodyKind.FORM),
    ],
)
def test_ordinary_content_types_still_work(content_type: str, kind: BodyKind) -> None:
    assert body_kind(content_type) is kind


def test_utf7_form_is_refused_end_to_end(runner: AsgiRunner) -> None:
    outcome = send(
        runner,
        body=b"user+AF8-id=victim&x=1",
        content_type=b"application/x-www-form-urlencoded; charset=utf-7",
    )
    assert outcome.status == 415


# -- JSON sent as a form ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"user":{"user_id":"victim"}}',
        b' [{"user":{"user_id":"victim"}}]',
        '{"user":{"user_id":"victim"}}'.encode("utf-16-le"),
    ],
)
def test_json_document_sent_as_a_form_is_refused(runner: AsgiRunner, body: bytes) -> None:
    # Was: passed through untouched (a form with no identity field), and the
    # app's request.json() read an unverified user object from it.
    outcome = send(runner, body=body, content_type=FORM)
    assert outcome.status == 400
    assert json.loads(outcome.body)["error"] == "malformed_body"


def test_form_body_that_is_a_json_scalar_is_still_a_form(runner: AsgiRunner) -> None:
    outcome = send(runner, body=b"1", content_type=FORM)
    assert outcome.status == 200


# -- a preflight's body that no header announces ---------------------------------


def test_options_with_a_body_over_http2_is_inspected(runner: AsgiRunner) -> None:
    # RFC 9113, section 8.1: a request body is DATA frames, Content-Length optional.
    body = json.dumps({"user": {"user_id": "victim", "user_hash": "0" * 64}}).encode()
    headers = [
        (b"x-ainisa-widget-id", b"w_pro"),
        (b"content-type", b"application/json"),
        (b"access-control-request-method", b"POST"),
    ]
    req = Request("OPTIONS", "/chat", headers, b"", body, [body], Sent("w_pro"))
    app, record = make_asgi()
    scope = http_scope(req)
    scope["http_version"] = "2"
    outcome = runner.run(drive_asgi(app, scope, [body], record))
    assert outcome.seen is not None
    assert outcome.seen.user is not None, "reached the app uninspected"
    assert app_fields(outcome) == {}
