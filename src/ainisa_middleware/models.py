"""The values the middleware works with: a business, a visitor, a status."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import ConfigurationError

__all__ = ["SIGNED_FIELDS", "AinisaUser", "Business", "Status", "verified_user"]

#: Under this scheme only the user id is covered by the hash.
SIGNED_FIELDS: frozenset[str] = frozenset({"user_id"})


class Status(enum.StrEnum):
    """What the middleware concluded about the identity a request carried."""

    VERIFIED = "verified"
    ANONYMOUS = "anonymous"
    MISSING_USER_ID = "missing_user_id"
    MISSING_HASH = "missing_hash"
    INVALID_HASH = "invalid_hash"
    MALFORMED_USER = "malformed_user"
    IDENTITY_DISABLED = "identity_disabled"


def _secrets_tuple(value: object, business_id: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigurationError(
            f"Business {business_id!r}: secrets must be a tuple of strings, not "
            f"{type(value).__name__}; write secrets=(secret,) for a single secret."
        )
    for position, secret in enumerate(value):
        if not isinstance(secret, str) or not secret:
            raise ConfigurationError(
                f"Business {business_id!r}: secret #{position} must be a non-empty string, "
                f"not {type(secret).__name__}{' (empty)' if secret == '' else ''}."
            )
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Business:
    """A business as a resolver returns it.

    :param id: the business's own identifier, for the app and the logs.
    :param secrets: every secret that currently verifies hashes, newest first;
        the first is the one to sign with. An empty tuple verifies nothing.
    :param identity_enabled: the business's plan includes identity (Pro and up);
        when false every request is ``identity_disabled`` and stays anonymous.
    :param require_identity: reject visitors who are not verified.
    :param secret_ids: optional ids of the secrets, in the same order, so the log
        can say which one matched without naming its value.
    """

    id: str
    secrets: tuple[str, ...]
    identity_enabled: bool = True
    require_identity: bool = False
    secret_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        given: object = self.id  # checked at run time: callers may not be typed
        if not isinstance(given, str) or not given:
            shown = "an empty string" if given == "" else type(given).__name__
            raise ConfigurationError(f"Business id must be a non-empty string, not {shown}.")
        object.__setattr__(self, "secrets", _secrets_tuple(self.secrets, self.id))
        object.__setattr__(self, "secret_ids", tuple(self.secret_ids))
        if self.secret_ids and len(self.secret_ids) != len(self.secrets):
            raise ConfigurationError(
                f"Business {self.id!r}: secret_ids has {len(self.secret_ids)} entries "
                f"for {len(self.secrets)} secrets; give one id per secret or none."
            )

    def __repr__(self) -> str:
        # Never print secret values, not even in a traceback or a debugger.
        return (
            f"Business(id={self.id!r}, secrets=<{len(self.secrets)} hidden>, "
            f"identity_enabled={self.identity_enabled!r}, "
            f"require_identity={self.require_identity!r})"
        )

    def secret_label(self, index: int) -> str:
        """Name a secret for logs: its id when known, else its position."""
        if self.secret_ids:
            return self.secret_ids[index]
        return str(index)


@dataclass(frozen=True, slots=True)
class AinisaUser:
    """The visitor as the middleware vouches for it.

    Only ``user_id`` is covered by the hash. ``firstname``, ``lastname`` and
    ``email`` arrive beside a verified id but unsigned: the visitor could have
    typed anything there. ``signed_fields`` tells which is which. Every field is
    ``None`` unless ``status`` is ``verified``.
    """

    widget_id: str
    business_id: str
    status: Status
    user_id: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    verified: bool = field(init=False)
    signed_fields: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        verified = self.status is Status.VERIFIED
        object.__setattr__(self, "verified", verified)
        object.__setattr__(self, "signed_fields", SIGNED_FIELDS if verified else frozenset())
        if not verified and (self.user_id, self.firstname, self.lastname, self.email) != (
            None,
            None,
            None,
            None,
        ):
            raise ValueError("an unverified AinisaUser carries no identity fields")


# The slots' own setters: a frozen dataclass refuses __setattr__, and calling
# each slot's descriptor skips the attribute lookup object.__setattr__ makes.
(
    _set_widget_id,
    _set_business_id,
    _set_status,
    _set_user_id,
    _set_firstname,
    _set_lastname,
    _set_email,
    _set_verified,
    _set_signed_fields,
) = (
    AinisaUser.__dict__[name].__set__
    for name in (
        "widget_id",
        "business_id",
        "status",
        "user_id",
        "firstname",
        "lastname",
        "email",
        "verified",
        "signed_fields",
    )
)
_new = object.__new__
_VERIFIED = Status.VERIFIED


def verified_user(widget_id: str, business_id: str, fields: dict[str, str]) -> AinisaUser:
    """The verified visitor the middleware builds on every verified request.

    The same object ``AinisaUser(..., status=Status.VERIFIED, ...)`` makes, without
    re-checking what the engine has just established (one call instead of two).
    """
    user = _new(AinisaUser)
    _set_widget_id(user, widget_id)
    _set_business_id(user, business_id)
    _set_status(user, _VERIFIED)
    _set_user_id(user, fields["user_id"])
    _set_firstname(user, fields.get("firstname"))
    _set_lastname(user, fields.get("lastname"))
    _set_email(user, fields.get("email"))
    _set_verified(user, True)
    _set_signed_fields(user, SIGNED_FIELDS)
    return user
