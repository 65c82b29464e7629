"""Signed identity tokens: the sender, the strict checks, and hostile tokens (CONTRACT 7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ainisa_middleware import Business, ConfigurationError, Status, user_token
from ainisa_middleware.tokens import (
    LEEWAY,
    MAX_TOKEN_LENGTH,
    TokenCheck,
    check_token,
)

SECRET = "sk_live_token_secret_0123456789abcdef"
OLD = "sk_live_token_previous_fedcba9876543210"
WIDGET = "w_tok"
BUSINESS = Business(
    id="tok",
    secrets=(SECRET, OLD),
    secret_ids=("s2", "s1"),
    proofs=frozenset({"token"}),
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(
    payload: dict[str, Any] | bytes | None = None,
    header: dict[str, Any] | bytes | None = None,
    secret: str = SECRET,
    **claims: Any,
) -> str:
    """A token with exactly the header and payload bytes given, signed with HMAC-SHA256."""
    now = int(time.time())
    if payload is None:
        payload = {"sub": "42", "aud": WIDGET, "iat": now, "exp": now + 600, **claims}
    if header is None:
        header = {"alg": "HS256", "typ": "JWT"}
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(head)}.{b64(body)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def status_of(token: object, business: Business = BUSINESS) -> Status:
    return check_token(token, business, WIDGET).status


# --- the sender --------------------------------------------------------------------------


def test_user_token_verifies_with_claims_and_is_bound_to_its_widget() -> None:
    token = user_token(SECRET, 42, widget_id=WIDGET, firstname="Ada", email="ada@example.com")
    check = check_token(token, BUSINESS, WIDGET)
    assert check.status is Status.VERIFIED
    assert check.fields == {"user_id": "42", "firstname": "Ada", "email": "ada@example.com"}
    assert check.matched == 0
    assert check_token(token, BUSINESS, "w_other").status is Status.INVALID_TOKEN


def test_user_token_payload_and_header_are_what_the_format_says() -> None:
    token = user_token(OLD, "u-1", widget_id=WIDGET, ttl=120, kid="s1", now=1_700_000_000)
    head, body, _ = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {
        "alg": "HS256",
        "typ": "JWT",
        "kid": "s1",
    }
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == {
        "sub": "u-1",
        "aud": WIDGET,
        "iat": 1_700_000_000,
        "exp": 1_700_000_120,
    }


def test_user_token_is_a_jwt_pyjwt_reads() -> None:
    token = user_token(SECRET, "42", widget_id=WIDGET, lastname="Lovelace")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=WIDGET)
    assert claims["sub"] == "42" and claims["lastname"] == "Lovelace"


def test_a_token_pyjwt_signed_verifies() -> None:
    now = int(time.time())
    token = jwt.encode(
        {"sub": "7", "aud": WIDGET, "iat": now, "exp": now + 60, "email": "x@example.com"},
        OLD,
        algorithm="HS256",
        headers={"kid": "s1"},
    )
    check = check_token(token, BUSINESS, WIDGET)
    assert (check.status, check.matched) == (Status.VERIFIED, 1)
    assert check.fields == {"user_id": "7", "email": "x@example.com"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"secret": ""}, ValueError),
        ({"user_id": ""}, ValueError),
        ({"user_id": True}, TypeError),
        ({"user_id": 1.5}, TypeError),
        ({"widget_id": "bad widget"}, ValueError),
        ({"ttl": 0}, ValueError),
        ({"ttl": 86_401}, ValueError),
        ({"ttl": True}, ValueError),
        ({"kid": ""}, ValueError),
        ({"email": 5}, TypeError),
    ],
)
def test_user_token_refuses_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    args: dict[str, Any] = {"secret": SECRET, "user_id": "42", "widget_id": WIDGET, **kwargs}
    with pytest.raises(error):
        user_token(args.pop("secret"), args.pop("user_id"), **args)


def test_empty_names_are_left_out_of_the_claims() -> None:
    token = user_token(SECRET, "42", widget_id=WIDGET, firstname="", lastname=None)
    assert check_token(token, BUSINESS, WIDGET).fields == {"user_id": "42"}


# --- keys -------------------------------------------------------------------------------


def test_without_kid_every_active_secret_is_tried() -> None:
    assert check_token(forge(secret=OLD), BUSINESS, WIDGET).matched == 1


def test_kid_chooses_the_one_secret_tried() -> None:
    assert status_of(forge(secret=OLD, header={"alg": "HS256", "kid": "s1"})) is Status.VERIFIED
    assert status_of(forge(secret=OLD, header={"alg": "HS256", "kid": "s2"})) is (
        Status.INVALID_TOKEN
    )


@pytest.mark.parametrize("kid", ["s3", "", 1, None, ["s1"]])
def test_unknown_or_malformed_kid_is_invalid(kid: object) -> None:
    assert status_of(forge(header={"alg": "HS256", "kid": kid})) is Status.INVALID_TOKEN


def test_kid_without_store_ids_is_invalid() -> None:
    business = Business(id="b", secrets=(SECRET,), proofs="token")
    assert status_of(forge(header={"alg": "HS256", "kid": "s2"}), business) is Status.INVALID_TOKEN
    assert status_of(forge(), business) is Status.VERIFIED


def test_a_short_secret_verifies_without_a_warning() -> None:
    business = Business(id="b", secrets=("k",), proofs="token")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert status_of(forge(secret="k"), business) is Status.VERIFIED


def test_a_business_without_secrets_verifies_no_token() -> None:
    business = Business(id="b", secrets=(), proofs="token")
    assert status_of(forge(), business) is Status.INVALID_TOKEN


# --- time -------------------------------------------------------------------------------


def test_expired_and_within_leeway() -> None:
    now = int(time.time())
    expired = forge(iat=now - 3600, exp=now - LEEWAY - 5)
    assert status_of(expired) is Status.EXPIRED_TOKEN
    assert status_of(forge(iat=now - 3600, exp=now - LEEWAY + 20)) is Status.VERIFIED


def test_expired_with_a_bad_signature_is_invalid_not_expired() -> None:
    now = int(time.time())
    assert status_of(forge(secret="other", iat=now - 3600, exp=now - 600)) is (Status.INVALID_TOKEN)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"nbf": "future"}, id="future-nbf"),
        pytest.param({"iat": "future"}, id="future-iat"),
    ],
)
def test_not_yet_valid_is_invalid(claims: dict[str, str]) -> None:
    now = int(time.time())
    future = dict.fromkeys(claims, now + 600)
    assert status_of(forge(exp=now + 1200, **future)) is Status.INVALID_TOKEN
    within = dict.fromkeys(claims, now + LEEWAY - 20)
    assert status_of(forge(exp=now + 1200, **within)) is Status.VERIFIED


def test_lifetime_over_the_maximum_is_invalid() -> None:
    now = int(time.time())
    assert status_of(forge(iat=now, exp=now + 86_400)) is Status.VERIFIED
    assert status_of(forge(iat=now, exp=now + 86_401)) is Status.INVALID_TOKEN
    short = Business(id="b", secrets=(SECRET,), proofs="token", max_token_age=300)
    assert status_of(forge(iat=now, exp=now + 301), short) is Status.INVALID_TOKEN


def test_a_given_clock_is_judged_by_the_same_rules() -> None:
    token = user_token(SECRET, "42", widget_id=WIDGET, ttl=600, now=1_000_000)
    at = check_token  # a diagnostic asks "would this have verified at that time?"
    assert at(token, BUSINESS, WIDGET, now=1_000_100).status is Status.VERIFIED
    assert at(token, BUSINESS, WIDGET, now=1_000_700).status is Status.EXPIRED_TOKEN
    assert at(token, BUSINESS, WIDGET, now=999_000).status is Status.INVALID_TOKEN
    assert status_of(token) is Status.EXPIRED_TOKEN


# --- hostile tokens ---------------------------------------------------------------------


def _none_token() -> str:
    now = int(time.time())
    payload = {"sub": "42", "aud": WIDGET, "iat": now, "exp": now + 60}
    head = b64(b'{"alg":"none"}')
    return f"{head}.{b64(json.dumps(payload).encode())}."


def _swap_payload() -> str:
    head, _, sig = forge().split(".")
    now = int(time.time())
    other = {"sub": "1", "aud": WIDGET, "iat": now, "exp": now + 600}
    return f"{head}.{b64(json.dumps(other).encode())}.{sig}"


def _flip_last_bits(mask: int) -> str:
    token = forge()
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last of 43 characters carries 4 bits of signature and 2 unused ones.
    return token[:-1] + alphabet[alphabet.index(last) ^ mask]


HOSTILE: dict[str, Any] = {
    "alg-none-unsigned": _none_token(),
    "alg-none-with-signature": forge(header={"alg": "none"}),
    "alg-missing": forge(header={"typ": "JWT"}),
    "alg-lowercase": forge(header={"alg": "hs256"}),
    "alg-hs512": forge(header={"alg": "HS512"}),
    "alg-confusion-rs256": forge(header={"alg": "RS256"}),
    "alg-confusion-es256": forge(header={"alg": "ES256"}),
    "alg-list": forge(header={"alg": ["HS256"]}),
    "crit-header": forge(header={"alg": "HS256", "crit": ["exp"]}),
    "b64-false": forge(header={"alg": "HS256", "b64": False}),
    "aud-wrong": forge(aud="w_other"),
    "aud-list": forge(aud=[WIDGET]),
    "aud-missing": forge({"sub": "42", "iat": 1, "exp": 2}),
    "sub-missing": forge({"aud": WIDGET, "iat": int(time.time()), "exp": int(time.time()) + 9}),
    "sub-empty": forge(sub=""),
    "sub-integer": forge(sub=42),
    "iat-missing": forge({"sub": "42", "aud": WIDGET, "exp": int(time.time()) + 9}),
    "exp-missing": forge({"sub": "42", "aud": WIDGET, "iat": int(time.time())}),
    "exp-boolean": forge(exp=True),
    "exp-string": forge(exp="9999999999"),
    "iat-null": forge(iat=None),
    "nbf-string": forge(nbf="0"),
    "email-not-a-string": forge(email=["a@example.com"]),
    "firstname-object": forge(firstname={"x": 1}),
    "tampered-payload": _swap_payload(),
    "tampered-signature": _flip_last_bits(4),
    "signature-unused-bits-set": _flip_last_bits(1),
    "wrong-secret": forge(secret="someone-else"),
    "oversized": forge(pad="x" * MAX_TOKEN_LENGTH),
    "non-base64url-plus": forge().replace("-", "+").replace("_", "/") + "+",
    "non-base64url-padding": forge() + "=",
    "non-base64url-space": " " + forge(),
    "non-ascii": forge()[:-1] + "é",
    "two-segments": ".".join(forge().split(".")[:2]),
    "four-segments": forge() + ".e30",
    "empty": "",
    "dots": "..",
    "header-duplicate-alg": forge(header=b'{"alg":"none","alg":"HS256"}'),
    "payload-duplicate-sub": forge(
        b'{"sub":"1","sub":"42","aud":"w_tok","iat":%d,"exp":%d}'
        % (int(time.time()), int(time.time()) + 60)
    ),
    "payload-duplicate-nested": forge(
        b'{"sub":"42","aud":"w_tok","iat":%d,"exp":%d,"x":{"a":1,"a":2}}'
        % (int(time.time()), int(time.time()) + 60)
    ),
    "payload-nan": forge(b'{"sub":"42","aud":"w_tok","iat":%d,"exp":NaN}' % int(time.time())),
    "payload-huge-exponent": forge(
        b'{"sub":"42","aud":"w_tok","iat":%d,"exp":1e999999}' % int(time.time())
    ),
    "payload-array": forge(b'["sub","42"]'),
    "payload-not-json": forge(b"sub=42"),
    "payload-invalid-utf8": forge(b'{"sub":"\xff","aud":"w_tok"}'),
    "header-not-object": forge(header=b'"HS256"'),
    "header-bom": forge(header=b'\xef\xbb\xbf{"alg":"HS256"}'),
    "not-a-string-int": 42,
    "not-a-string-dict": {"token": "x"},
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_token_is_invalid(name: str) -> None:
    check = check_token(HOSTILE[name], BUSINESS, WIDGET)
    assert isinstance(check, TokenCheck)
    assert check.status is Status.INVALID_TOKEN, check.reason
    assert check.fields is None


def test_hostile_tokens_are_signed_well_otherwise() -> None:
    # Each hostile token above fails for its one flaw: the same forge() with
    # nothing changed verifies, so no row passes for an unrelated reason.
    assert status_of(forge()) is Status.VERIFIED
    assert status_of(forge(header={"alg": "HS256", "kid": "s2"})) is Status.VERIFIED
    assert status_of(forge(email="a@example.com", firstname="A", nbf=1)) is Status.VERIFIED


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=300)
    | st.from_regex(r"[A-Za-z0-9_-]{2,80}\.[A-Za-z0-9_-]{2,80}\.[A-Za-z0-9_-]{43}", fullmatch=True)
)
def test_no_string_makes_the_check_raise(token: str) -> None:
    assert check_token(token, BUSINESS, WIDGET).status is Status.INVALID_TOKEN


# --- Business.proofs --------------------------------------------------------------------


def test_proofs_default_to_the_hash_and_take_a_single_word() -> None:
    assert Business(id="b", secrets=()).proofs == frozenset({"hash"})
    assert Business(id="b", secrets=(), proofs="token").proofs == frozenset({"token"})
    both = Business(id="b", secrets=(), proofs=("hash", "token"))  # type: ignore[arg-type]
    assert both.proofs == frozenset({"hash", "token"})
    assert "proofs=['hash', 'token']" in repr(both)


@pytest.mark.parametrize("proofs", [frozenset(), frozenset({"jwt"}), 3, None, {"hash": 1}])
def test_bad_proofs_are_a_configuration_error(proofs: object) -> None:
    with pytest.raises(ConfigurationError, match="proofs must name"):
        Business(id="b", secrets=(), proofs=proofs)  # type: ignore[arg-type]


@pytest.mark.parametrize("age", [0, -1, True, 1.5])
def test_bad_max_token_age_is_a_configuration_error(age: object) -> None:
    with pytest.raises(ConfigurationError, match="max_token_age"):
        Business(id="b", secrets=(), max_token_age=age)  # type: ignore[arg-type]


def test_without_pyjwt_every_token_is_invalid_and_the_log_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    from ainisa_middleware import tokens

    tokens._decoder.cache_clear()
    monkeypatch.setitem(sys.modules, "jwt", None)  # import jwt raises ImportError
    try:
        check = check_token(forge(), BUSINESS, WIDGET)
        assert (check.status, check.reason) == (Status.INVALID_TOKEN, "PyJWT is not installed")
        assert "ainisa-middleware[tokens]" in caplog.text
    finally:
        tokens._decoder.cache_clear()
    monkeypatch.undo()
    assert status_of(forge()) is Status.VERIFIED


def test_a_secret_with_a_lone_surrogate_is_no_server_error() -> None:
    business = Business(id="b", secrets=("bad\ud800secret",), proofs="token")
    assert status_of(forge(), business) is Status.INVALID_TOKEN
