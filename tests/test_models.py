"""Business, AinisaUser and Status."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ainisa_middleware import AinisaUser, Business, ConfigurationError, Status


def test_status_values_are_the_contract_words() -> None:
    assert {s.value for s in Status} == {
        "verified",
        "anonymous",
        "missing_user_id",
        "missing_hash",
        "invalid_hash",
        "malformed_user",
        "identity_disabled",
    }
    assert Status.VERIFIED == "verified"
    assert isinstance(Status.ANONYMOUS, str)


def test_business_defaults_and_frozen() -> None:
    business = Business(id="shop", secrets=("a", "b"))
    assert business.identity_enabled is True
    assert business.require_identity is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        business.id = "other"  # type: ignore[misc]


def test_business_accepts_a_list_and_keeps_a_tuple() -> None:
    business = Business(id="shop", secrets=["a", "b"])  # type: ignore[arg-type]
    assert business.secrets == ("a", "b")
    assert hash(business)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "", "secrets": ("a",)}, "id must be a non-empty string"),
        ({"id": 3, "secrets": ("a",)}, "id must be a non-empty string"),
        ({"id": "b", "secrets": "single"}, "secrets=(secret,)"),
        ({"id": "b", "secrets": ("a", "")}, "secret #1"),
        ({"id": "b", "secrets": ("a", None)}, "secret #1"),
        ({"id": "b", "secrets": ("a",), "secret_ids": ("x", "y")}, "one id per secret"),
    ],
)
def test_business_rejects_bad_values_with_a_clear_message(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Business(**kwargs)
    assert message in str(info.value)


def test_business_repr_hides_secrets() -> None:
    business = Business(id="shop", secrets=("topsecret-value",))
    assert "topsecret-value" not in repr(business)
    assert "topsecret-value" not in str(business)
    assert "1 hidden" in repr(business)


def test_secret_label_uses_ids_or_positions() -> None:
    assert Business(id="b", secrets=("x", "y")).secret_label(1) == "1"
    assert Business(id="b", secrets=("x", "y"), secret_ids=("s1", "s2")).secret_label(1) == "s2"


def test_verified_user_has_signed_fields() -> None:
    user = AinisaUser(
        widget_id="w", business_id="b", status=Status.VERIFIED, user_id="42", email="e"
    )
    assert user.verified is True
    assert user.signed_fields == frozenset({"user_id"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.user_id = "1"  # type: ignore[misc]


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.VERIFIED])
def test_unverified_user_has_no_identity(status: Status) -> None:
    user = AinisaUser(widget_id="w", business_id="b", status=status)
    assert user.verified is False
    assert user.signed_fields == frozenset()
    assert (user.user_id, user.firstname, user.lastname, user.email) == (None, None, None, None)
    with pytest.raises(ValueError):
        AinisaUser(widget_id="w", business_id="b", status=status, user_id="42")


@pytest.mark.parametrize(
    "fields",
    [
        {"user_id": "42"},
        {"user_id": "42", "firstname": "Ada", "lastname": "Lovelace", "email": "ada@ex.org"},
    ],
)
def test_the_engines_verified_user_equals_the_public_constructors(fields: dict[str, str]) -> None:
    from ainisa_middleware.models import verified_user

    built = verified_user("w1", "b1", fields)
    public = AinisaUser("w1", "b1", Status.VERIFIED, **fields)  # type: ignore[arg-type]
    assert built == public
    assert built.verified and built.signed_fields == public.signed_fields
    assert repr(built) == repr(public)
