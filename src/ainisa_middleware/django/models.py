"""Businesses, their widgets and their secrets, as Django models.

The same logical schema as the SQL store (:mod:`ainisa_middleware.stores.sql`):
a business has a plan (identity is a Pro-plan feature), widgets that name it,
and secrets, several at once while one is being rotated out. Secret values are
encrypted with the SQL store's scheme under ``AINISA["MASTER_KEY"]`` (or
``$AINISA_MASTER_KEY``); without a key they are stored in plaintext and
``manage.py check`` says so (:mod:`ainisa_middleware.django.sealing`).
"""

from __future__ import annotations

import secrets as _secrets
from datetime import datetime

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from ainisa_middleware.django.sealing import SealedCharField

__all__ = ["PLANS", "Business", "Secret", "Widget", "active_secrets", "new_secret_value"]

#: Plans offered in the admin; any string is stored, only eligible plans get identity.
PLANS = (
    ("free", "Free"),
    ("starter", "Starter"),
    ("pro", "Pro"),
    ("business", "Business"),
    ("enterprise", "Enterprise"),
)

_widget_id = RegexValidator(
    r"\A[A-Za-z0-9_.\-]{1,128}\Z",
    "A widget ID is 1 to 128 characters of letters, digits, '_', '-' or '.'.",
)


def new_secret_value() -> str:
    """A fresh secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return _secrets.token_urlsafe(32)


#: The ``proofs`` column: the accepted proofs, sorted, joined by commas.
PROOF_CHOICES = [
    ("hash", "user_hash only"),
    ("token", "user_token only"),
    ("hash,token", "user_hash or user_token"),
]


class Business(models.Model):
    """A business that embeds the Ainisa widget and signs its visitors' user ids."""

    id: models.CharField[str, str] = models.CharField(
        primary_key=True, max_length=64, help_text="The business's own identifier, in logs."
    )
    name: models.CharField[str, str] = models.CharField(max_length=200)
    plan: models.CharField[str, str] = models.CharField(
        max_length=32, choices=PLANS, default="free"
    )
    require_identity: models.BooleanField[bool, bool] = models.BooleanField(
        default=False, help_text="Reject chat visitors whose identity is not verified."
    )
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, editable=False
    )
    proofs: models.CharField[str, str] = models.CharField(
        max_length=16,
        choices=PROOF_CHOICES,
        default="hash",
        help_text="What proves a visitor's identity: the guide's user_hash, a signed "
        "expiring user_token, or either (while a site moves from one to the other).",
    )

    class Meta:
        verbose_name_plural = "businesses"
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def accepted_proofs(self) -> frozenset[str]:
        """``proofs`` as :attr:`ainisa_middleware.Business.proofs` holds it."""
        return frozenset((self.proofs or "hash").split(","))


class Widget(models.Model):
    """A chat widget; its public ID arrives with every chat request."""

    id: models.CharField[str, str] = models.CharField(
        primary_key=True, max_length=128, validators=[_widget_id]
    )
    business: models.ForeignKey[Business, Business] = models.ForeignKey(
        Business, on_delete=models.CASCADE, related_name="widgets"
    )
    business_id: str
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, editable=False
    )
    disabled: models.BooleanField[bool, bool] = models.BooleanField(
        default=False, help_text="A disabled widget is unknown to the middleware (404)."
    )

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.id


class Secret(models.Model):
    """One HMAC secret of a business. Its id may appear in logs; its value never does."""

    business: models.ForeignKey[Business, Business] = models.ForeignKey(
        Business, on_delete=models.CASCADE, related_name="secrets"
    )
    business_id: str
    #: the secret in Python; encrypted in the database (``fernet:...``)
    value: SealedCharField = SealedCharField(max_length=256, editable=False)
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, editable=False
    )
    expires: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, help_text="Stops verifying at this time (end of a rotation)."
    )
    retired: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, help_text="Stopped verifying at once."
    )

    class Meta:
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return f"secret {self.pk} of {self.business_id}"

    def __repr__(self) -> str:
        # Never the value, not even in a traceback or a debugger.
        return f"<Secret id={self.pk} business={self.business_id!r}>"


def active_secrets(business: Business | str, now: datetime | None = None) -> QuerySet[Secret]:
    """The secrets of ``business`` that verify hashes at ``now``, newest first.

    Active means not retired and not expired; a rotation leaves the previous
    secret active until its ``expires``.
    """
    now = now or timezone.now()
    return (
        Secret.objects.filter(business=business, retired__isnull=True)
        .filter(models.Q(expires__isnull=True) | models.Q(expires__gt=now))
        .order_by("-created", "-id")
    )
