"""Admin for businesses, widgets and secrets.

Staff add a business, add its widgets, and rotate its secret with the
"Rotate secret" action: the new value is shown on the page that answers the
action, once, and never again (it is not in any list or form). The previous
secrets keep verifying for ``AINISA["ROTATION_GRACE"]`` (7 days by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from ainisa_middleware.django.conf import rotation_grace
from ainisa_middleware.django.invalidation import get_bus, publish
from ainisa_middleware.django.models import (
    Business,
    Secret,
    Widget,
    active_secrets,
    new_secret_value,
)
from ainisa_middleware.django.resolver import invalidate_all

__all__ = ["BusinessAdmin", "SecretAdmin", "WidgetAdmin", "rotate_secrets"]


@dataclass(frozen=True, slots=True)
class Rotated:
    """One rotation, for the page that shows the new value once."""

    business: Business
    secret_id: int
    value: str
    previous_expire: datetime | None


def rotate_secrets(businesses: QuerySet[Business]) -> list[Rotated]:
    """Give each business a new current secret; the old ones expire after the grace period."""
    now = timezone.now()
    ends = now + rotation_grace()
    done: list[Rotated] = []
    with transaction.atomic():
        for business in businesses.select_for_update():
            older = active_secrets(business, now)
            changed = older.filter(Q(expires__isnull=True) | Q(expires__gt=ends)).update(
                expires=ends
            )
            secret = Secret.objects.create(business=business, value=new_secret_value())
            done.append(Rotated(business, secret.pk, secret.value, ends if changed else None))
    invalidate_all()  # update() sends no signals
    publish(businesses=[r.business.pk for r in done])
    return done


class WidgetInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Widget
    fields = ("id", "disabled", "created")
    readonly_fields = ("created",)
    extra = 0


class SecretInline(admin.TabularInline):  # type: ignore[type-arg]
    """Secrets by id and dates only: values are never shown after rotation."""

    model = Secret
    fields = ("id", "created", "expires", "retired")
    readonly_fields = ("id", "created")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # new secrets come from the "Rotate secret" action only


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "name", "plan", "require_identity", "proofs", "created")
    list_filter = ("plan", "require_identity", "proofs")
    search_fields = ("id", "name")
    inlines = (WidgetInline, SecretInline)
    actions = ("rotate_secret",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("id", "created") if obj is not None else ("created",)

    @admin.action(description="Rotate secret (shows the new one once)", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Business]) -> TemplateResponse:
        rotated = rotate_secrets(queryset)
        self.message_user(
            request,
            f"Rotated {len(rotated)} secret(s). Copy the new values now: they are not shown again.",
            messages.WARNING,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "New secrets",
            "opts": self.model._meta,
            "rotated": rotated,
        }
        response = TemplateResponse(request, "ainisa/admin/rotated.html", context)
        # The page holds secrets: no cache may keep it.
        response["Cache-Control"] = "no-store"
        return response


@admin.register(Widget)
class WidgetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "business", "disabled", "created")
    list_filter = ("disabled",)
    search_fields = ("id", "business__id", "business__name")
    autocomplete_fields = ("business",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("id", "created") if obj is not None else ("created",)


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Secrets by id and dates: enough to see which one matched in the logs and retire it."""

    list_display = ("id", "business", "created", "expires", "retired")
    list_filter = ("business",)
    fields = ("business", "created", "expires", "retired")
    readonly_fields = ("business", "created")
    actions = ("retire",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # new secrets come from the businesses' "Rotate secret" action

    @admin.action(description="Retire now (stops verifying)", permissions=["change"])
    def retire(self, request: HttpRequest, queryset: QuerySet[Secret]) -> None:
        businesses = set(queryset.values_list("business_id", flat=True))
        count = queryset.filter(retired__isnull=True).update(retired=timezone.now())
        invalidate_all()  # update() sends no signals
        publish(businesses=businesses)
        reach = (
            "in every process on the invalidation bus"
            if get_bus() is not None
            else "here, and in other processes when their cache expires (set "
            "AINISA['INVALIDATION_URL'] to reach them at once)"
        )
        self.message_user(
            request,
            f"Retired {count} secret(s). They stop verifying at once {reach}.",
            messages.SUCCESS,
        )
