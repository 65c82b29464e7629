"""Pytest fixtures for testing your own chat backend behind the middleware.

Installed with the package and loaded by pytest automatically (a ``pytest11``
entry point); it needs nothing beyond pytest and the standard library. Point
the middleware at ``ainisa_resolver`` in your test app, then::

    def test_signed_visitor_is_verified(client, ainisa_signed_payload):
        response = client.post("/chat", json=ainisa_signed_payload(user_id="42"))
        assert response.json()["user_id"] == "42"

Override ``ainisa_widget_id`` or ``ainisa_secret`` in your ``conftest.py`` to
use your own; every other fixture follows them. Disable the plugin with
``-p no:ainisa``.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import pytest

from .models import Business
from .request import WIDGET_ID_FIELD
from .resolvers import StaticResolver
from .signing import user_hash
from .tokens import user_token

__all__ = [
    "DEFAULT_TEST_WIDGET_ID",
    "TAMPERINGS",
    "ChatPayloads",
    "ainisa_business",
    "ainisa_payloads",
    "ainisa_resolver",
    "ainisa_secret",
    "ainisa_signed_payload",
    "ainisa_tampered_payload",
    "ainisa_widget_id",
]

#: The ways :meth:`ChatPayloads.tampered` breaks a signed payload.
TAMPERINGS: Final = ("user_id", "hash", "secret", "no_hash")
Tampering = Literal["user_id", "hash", "secret", "no_hash"]

#: The widget ID the fixtures use unless ``ainisa_widget_id`` is overridden.
DEFAULT_TEST_WIDGET_ID: Final = "test-widget"


@dataclass(frozen=True)
class ChatPayloads:
    """Builds JSON chat request bodies for one widget and secret.

    Each method returns a fresh ``dict`` ready for ``client.post(path, json=...)``:
    ``{"widget_id": ..., "user": {...}, **extra}``. Extra keywords become
    top-level keys (your own ``message`` field, say).
    """

    widget_id: str
    secret: str

    def _body(self, user: Mapping[str, str] | None, extra: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {WIDGET_ID_FIELD: self.widget_id}
        if user is not None:
            body["user"] = dict(user)
        body.update(extra)
        return body

    def user(
        self,
        user_id: str | int = "42",
        *,
        firstname: str | None = None,
        lastname: str | None = None,
        email: str | None = None,
    ) -> dict[str, str]:
        """The signed ``user`` object alone, as the page's ``window.ainisaUser`` holds it."""
        user = {"user_id": str(user_id), "user_hash": user_hash(self.secret, user_id)}
        for name, value in (("firstname", firstname), ("lastname", lastname), ("email", email)):
            if value is not None:
                user[name] = value
        return user

    def signed(
        self,
        user_id: str | int = "42",
        *,
        firstname: str | None = None,
        lastname: str | None = None,
        email: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A body whose user the middleware verifies."""
        user = self.user(user_id, firstname=firstname, lastname=lastname, email=email)
        return self._body(user, extra)

    def tampered(
        self,
        user_id: str | int = "42",
        *,
        how: Tampering = "user_id",
        firstname: str | None = None,
        lastname: str | None = None,
        email: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A body whose user the middleware must not verify.

        :param how: ``"user_id"``: signed for another id (a visitor who edited
            ``window.ainisaUser``); ``"hash"``: one hex digit of the hash changed;
            ``"secret"``: signed with a different secret; ``"no_hash"``: the hash left out.
        """
        user = self.user(user_id, firstname=firstname, lastname=lastname, email=email)
        if how == "user_id":
            user["user_hash"] = user_hash(self.secret, f"{user_id}-other")
        elif how == "hash":
            digest = user["user_hash"]
            user["user_hash"] = ("1" if digest[0] == "0" else "0") + digest[1:]
        elif how == "secret":
            user["user_hash"] = user_hash(f"{self.secret}-other", user_id)
        elif how == "no_hash":
            del user["user_hash"]
        else:
            raise ValueError(f"how must be one of {TAMPERINGS}, not {how!r}")
        return self._body(user, extra)

    def token_signed(
        self,
        user_id: str | int = "42",
        *,
        ttl: int = 3600,
        firstname: str | None = None,
        lastname: str | None = None,
        email: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A body whose ``user`` carries a signed ``user_token`` for this widget.

        The names and email are signed into the token; verifying it needs the
        ``tokens`` extra.
        """
        token = user_token(
            self.secret,
            user_id,
            widget_id=self.widget_id,
            ttl=ttl,
            firstname=firstname,
            lastname=lastname,
            email=email,
        )
        return self._body({"user_token": token}, extra)

    def anonymous(self, **extra: Any) -> dict[str, Any]:
        """A body with no user data."""
        return self._body(None, extra)

    def headers(self) -> dict[str, str]:
        """The widget ID as a header, for requests that send it that way."""
        return {"X-Ainisa-Widget-Id": self.widget_id}


@pytest.fixture
def ainisa_widget_id() -> str:
    """The test widget's ID. Override to use your own."""
    return DEFAULT_TEST_WIDGET_ID


@pytest.fixture
def ainisa_secret() -> str:
    """A fresh random secret per test. Override to use a fixed one."""
    return _secrets.token_urlsafe(32)


@pytest.fixture
def ainisa_business(ainisa_widget_id: str, ainisa_secret: str) -> Business:
    """The business behind the test widget, holding ``ainisa_secret``: hashes and tokens verify."""
    return Business(
        id=f"business-{ainisa_widget_id}",
        secrets=(ainisa_secret,),
        proofs=frozenset({"hash", "token"}),
    )


@pytest.fixture
def ainisa_resolver(ainisa_widget_id: str, ainisa_business: Business) -> StaticResolver:
    """A resolver that knows the test widget and nothing else: give it to the middleware."""
    return StaticResolver({ainisa_widget_id: ainisa_business})


@pytest.fixture
def ainisa_payloads(ainisa_widget_id: str, ainisa_secret: str) -> ChatPayloads:
    """The payload builder for the test widget and secret."""
    return ChatPayloads(widget_id=ainisa_widget_id, secret=ainisa_secret)


@pytest.fixture
def ainisa_signed_payload(ainisa_payloads: ChatPayloads) -> Callable[..., dict[str, Any]]:
    """``ainisa_signed_payload(user_id="42", firstname=..., **extra)`` -> a verified body."""
    return ainisa_payloads.signed


@pytest.fixture
def ainisa_tampered_payload(ainisa_payloads: ChatPayloads) -> Callable[..., dict[str, Any]]:
    """``ainisa_tampered_payload(user_id="42", how="user_id", **extra)`` -> a forged body."""
    return ainisa_payloads.tampered
