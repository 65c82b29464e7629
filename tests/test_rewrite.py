"""Rewriting what the app reads: query strings, form and JSON bodies, the raw request target."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ainisa_middleware import rewrite
from ainisa_middleware.request import IDENTITY_FIELDS, KEPT_FIELDS, parse_flat
from ainisa_middleware.rewrite import (
    ALL_IDENTITY,
    HASH_ONLY,
    RAW_TARGET_KEYS,
    dump_json,
    rewrite_flat,
    rewrite_json,
    rewrite_target,
)

HASH = "0" * 64


def test_what_each_rewrite_drops() -> None:
    assert frozenset({*IDENTITY_FIELDS, "user_token"}) == ALL_IDENTITY
    assert frozenset({"user_hash", "user_token"}) == HASH_ONLY
    assert set(KEPT_FIELDS) == ALL_IDENTITY - HASH_ONLY


# --- query strings and form bodies -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "hash_only", "all_identity"),
    [
        pytest.param(b"a=1", None, None, id="no-identity-unchanged"),
        pytest.param(b"", None, None, id="empty"),
        pytest.param(b"email=&a=1", None, b"a=1", id="empty-identity-field-only-dropped-as-all"),
        pytest.param(b"user_hash=x", b"", b"", id="only-the-hash"),
        pytest.param(
            b"widget_id=w&user_id=42&user_hash=x&firstname=Ada&m=hi+there",
            b"widget_id=w&user_id=42&firstname=Ada&m=hi+there",
            b"widget_id=w&m=hi+there",
            id="hash-or-every-identity-field",
        ),
        pytest.param(
            b"user_hash=x&a=%20+1&b=%C3%A9",
            b"a=%20+1&b=%C3%A9",
            b"a=%20+1&b=%C3%A9",
            id="kept-segments-byte-for-byte",
        ),
        pytest.param(
            b"a=1&user_id=2;b=3&user_hash=x",
            b"a=1&user_id=2;b=3",
            b"a=1&b=3",
            id="fields-of-one-segment-stay-joined-by-semicolons",
        ),
        pytest.param(
            b"a=1;user_hash=x;b=2&c=3", b"a=1;b=2&c=3", b"a=1;b=2&c=3", id="semicolon-group-kept"
        ),
        pytest.param(b"&&a=1&&user_hash=x&", b"a=1", b"a=1", id="empty-segments-dropped"),
        pytest.param(
            b"user%5Fhash=x&user_id=1", b"user_id=1", b"", id="percent-encoded-names-match"
        ),
    ],
)
def test_rewrite_flat(data: bytes, hash_only: bytes | None, all_identity: bytes | None) -> None:
    assert rewrite_flat(parse_flat(data), HASH_ONLY) == hash_only
    assert rewrite_flat(parse_flat(data), ALL_IDENTITY) == all_identity


# --- JSON bodies ---------------------------------------------------------------------------

USER = {"user_id": "42", "user_hash": HASH, "firstname": "Ada", "role": "admin", "email": "a@b.c"}


def test_verified_json_keeps_the_user_fields_but_the_hash() -> None:
    body: dict[str, Any] = {"m": "hi", "user_hash": HASH, "user": dict(USER)}
    out = rewrite_json(body, keep_user=True)
    assert json.loads(out) == {
        "m": "hi",
        "user": {"user_id": "42", "firstname": "Ada", "email": "a@b.c"},
    }
    assert out == b'{"m":"hi","user":{"user_id":"42","firstname":"Ada","email":"a@b.c"}}'


def test_unverified_json_loses_the_whole_user_and_the_top_level_hash() -> None:
    body: dict[str, Any] = {"user_id": "7", "user_hash": HASH, "user": dict(USER), "m": 1}
    assert rewrite_json(body, keep_user=False) == b'{"user_id":"7","m":1}'
    assert rewrite_json({"m": 1}, keep_user=False) == b'{"m":1}'


def test_json_is_compact_utf8_and_keeps_what_it_parsed() -> None:
    body = {"t": "é\u2028😀", "n": [1.5, -0.0, 10**30, None, True], "o": {}}
    out = rewrite_json(dict(body), keep_user=False)
    assert out == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert json.loads(out) == body


def test_a_lone_surrogate_falls_back_to_escapes() -> None:
    assert rewrite_json({"t": "\ud800é"}, keep_user=False) == b'{"t":"\\ud800\\u00e9"}'
    assert dump_json({"t": "\udc00"}) == b'{"t":"\\udc00"}'
    assert dump_json({"t": "é"}) == '{"t":"é"}'.encode()


def test_an_interpreter_without_the_c_encoders_signature_gets_the_plain_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = json.encoder.c_make_encoder
    calls: list[int] = []

    def another_signature(*args: Any) -> Any:
        calls.append(len(args))
        if len(calls) == 1:  # _compact_encoder's own call fails: another interpreter
            raise TypeError("another signature")
        return real(*args)

    monkeypatch.setattr(json.encoder, "c_make_encoder", another_signature)
    encode = rewrite._compact_encoder(ensure_ascii=False)
    assert encode({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert calls[0] == 9
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert rewrite._compact_encoder(ensure_ascii=True)({"a": "é"}) == '{"a":"\\u00e9"}'


# --- the raw request target -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "query", "rewritten"),
    [
        pytest.param(
            f"/chat?user_id=7&user_hash={HASH}", "user_id=7", "/chat?user_id=7", id="query-replaced"
        ),
        pytest.param(f"/chat?user_hash={HASH}", "", "/chat", id="empty-query-drops-the-mark"),
        pytest.param("/chat?", "", "/chat", id="bare-question-mark-dropped"),
        pytest.param("/chat", "", "/chat", id="no-query"),
        pytest.param("/chat", "a=1", "/chat?a=1", id="query-added"),
        pytest.param(
            f"/chat?a=1?user_hash={HASH}", "a=1", "/chat?a=1", id="question-mark-in-the-query"
        ),
        pytest.param("/c%3Fhat?user_hash=x", "", "/c%3Fhat", id="encoded-mark-in-the-path"),
        pytest.param("//chat/../x?user_hash=x", "", "//chat/../x", id="path-kept-byte-for-byte"),
        pytest.param(
            f"http://example.com/chat?user_hash={HASH}&a=1",
            "a=1",
            "http://example.com/chat?a=1",
            id="absolute-form-target",
        ),
    ],
)
def test_rewrite_target(target: str, query: str, rewritten: str) -> None:
    assert rewrite_target(target, query) == rewritten


def test_raw_target_keys_name_the_servers_copies() -> None:
    # gunicorn's RAW_URI; waitress', uWSGI's and mod_wsgi's REQUEST_URI
    assert set(RAW_TARGET_KEYS) == {"RAW_URI", "REQUEST_URI"}
