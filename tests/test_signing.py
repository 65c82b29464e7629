"""The scheme: HMAC-SHA256 of the UTF-8 user id, hex, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from unittest import mock

import pytest

from ainisa_middleware import user_hash, verify_user_hash
from ainisa_middleware.signing import match_secret


def reference(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("secret", "user_id"),
    [
        ("s3cret", "1"),
        ("sk_live_x", "user-42"),
        ("ключ", "Zoë"),
        ("k" * 200, "9" * 500),
        ("🔑", "用户"),
    ],
)
def test_user_hash_matches_python_hmac(secret: str, user_id: str) -> None:
    assert user_hash(secret, user_id) == reference(secret, user_id)


def test_known_vector() -> None:
    # RFC 4231-style check computed independently with hashlib: HMAC-SHA256("key", "The quick
    # brown fox jumps over the lazy dog").
    assert user_hash("key", "The quick brown fox jumps over the lazy dog") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_integer_user_id_is_hashed_as_its_decimal_string() -> None:
    assert user_hash("s", 42) == user_hash("s", "42") == reference("s", "42")
    assert user_hash("s", -7) == reference("s", "-7")


@pytest.mark.parametrize("bad", [True, 4.2, None, b"42", ["42"]])
def test_user_hash_rejects_other_user_id_types(bad: Any) -> None:
    with pytest.raises(TypeError):
        user_hash("s", bad)


@pytest.mark.parametrize("bad", ["", None, b"secret"])
def test_user_hash_needs_a_real_secret(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        user_hash(bad, "1")


def test_verify_accepts_upper_and_lower_case_hex() -> None:
    good = user_hash("s", "1")
    assert verify_user_hash("s", "1", good)
    assert verify_user_hash("s", "1", good.upper())
    assert verify_user_hash(["s"], 1, good)


def test_verify_accepts_any_active_secret() -> None:
    old = user_hash("old", "1")
    assert verify_user_hash(("new", "old"), "1", old)
    assert not verify_user_hash(("new",), "1", old)
    assert not verify_user_hash((), "1", old)


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "abc",
        "0" * 63,
        "0" * 65,
        "z" * 64,
        "é" * 64,
        "\u0660" * 64,
        " " + "0" * 63,
        None,
        42,
        b"0" * 64,
    ],
)
def test_malformed_hashes_are_invalid_never_an_error(candidate: Any) -> None:
    assert verify_user_hash("s", "1", candidate) is False


def test_wrong_user_id_or_secret_is_invalid() -> None:
    good = user_hash("s", "1")
    assert not verify_user_hash("s", "2", good)
    assert not verify_user_hash("t", "1", good)
    assert not verify_user_hash("s", "1", good[:-1] + ("0" if good[-1] != "0" else "1"))


def test_user_id_without_utf8_form_is_invalid() -> None:
    assert not verify_user_hash("s", "\ud800", "0" * 64)


def test_every_secret_is_tried_even_after_a_match() -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return real(a, b)

    with mock.patch("ainisa_middleware.signing.compare_digest", side_effect=spy):
        assert match_secret(("a", "b", "c"), "1", user_hash("a", "1")) == 0
    assert len(calls) == 3


def test_match_secret_reports_the_position_that_matched() -> None:
    assert match_secret(("a", "b"), "1", user_hash("b", "1")) == 1
    assert match_secret(("a", "b"), "1", user_hash("c", "1")) is None
