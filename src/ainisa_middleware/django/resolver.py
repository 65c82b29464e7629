"""``ModelResolver``: the middleware's resolver over the app's Django models.

In settings: ``AINISA = {"RESOLVER": "ainisa_middleware.django.ModelResolver", ...}``
(built with its defaults), or an instance with your own plans and cache times.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable
from typing import Any, Final

from ainisa_middleware.errors import ConfigurationError
from ainisa_middleware.models import Business
from ainisa_middleware.resolvers import CachedResolver

__all__ = ["DEFAULT_ELIGIBLE_PLANS", "ModelResolver", "invalidate_all"]

#: Identity is a Pro-plan feature: the plans that include it unless told otherwise.
DEFAULT_ELIGIBLE_PLANS: Final = frozenset({"pro", "business", "enterprise"})

_instances: weakref.WeakSet[ModelResolver] = weakref.WeakSet()


class _ModelLookup:
    """One uncached lookup: the widget, its business and the business's active secrets."""

    def __init__(self, eligible_plans: frozenset[str]) -> None:
        self.eligible_plans = eligible_plans

    def _business(self, business: Any, secrets: Iterable[tuple[int, str]]) -> Business:
        rows = list(secrets)
        return Business(
            id=business.pk,
            secrets=tuple(value for _, value in rows),
            identity_enabled=business.plan in self.eligible_plans,
            require_identity=business.require_identity,
            secret_ids=tuple(str(pk) for pk, _ in rows),
            proofs=business.accepted_proofs,
        )

    def resolve(self, widget_id: str) -> Business | None:
        from ainisa_middleware.django.models import Widget, active_secrets

        widget = (
            Widget.objects.select_related("business").filter(pk=widget_id, disabled=False).first()
        )
        if widget is None:
            return None
        secrets = active_secrets(widget.business)
        return self._business(widget.business, secrets.values_list("pk", "value"))

    async def aresolve(self, widget_id: str) -> Business | None:
        from ainisa_middleware.django.models import Widget, active_secrets

        widget = (
            await Widget.objects.select_related("business")
            .filter(pk=widget_id, disabled=False)
            .afirst()
        )
        if widget is None:
            return None
        secrets = active_secrets(widget.business)
        rows = [row async for row in secrets.values_list("pk", "value")]
        return self._business(widget.business, rows)


class ModelResolver:
    """Find a widget's business in the app's models, with a cache in front.

    ``Business.secrets`` are the business's active secrets (not retired, not
    expired), newest first, with their primary keys as ``secret_ids`` so logs
    can say which one matched. A disabled widget is unknown (404).

    Saving or deleting a business, widget or secret through the ORM empties the
    cache of every ``ModelResolver`` in that process. Other processes drop it at
    once when ``AINISA["INVALIDATION_URL"]`` names a bus; without one they see
    the change within ``ttl`` seconds (``negative_ttl`` for a new widget).

    :param eligible_plans: plans whose businesses get identity verification;
        any other plan gives ``identity_disabled``.
    :param ttl: seconds a found business is reused.
    :param negative_ttl: seconds an unknown widget ID is remembered as unknown.
    :param maxsize: most cached entries, for hits and misses each.
    :param invalidation: a bus URL or object; by default the app's bus
        (``AINISA["INVALIDATION_URL"]``), read when the settings are ready.
    """

    def __init__(
        self,
        *,
        eligible_plans: Iterable[str] = DEFAULT_ELIGIBLE_PLANS,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        maxsize: int = 100_000,
        invalidation: object = None,
    ) -> None:
        plans: object = eligible_plans
        if isinstance(plans, str) or not isinstance(plans, Iterable):
            raise ConfigurationError(
                f"ModelResolver eligible_plans must be a collection of plan names such as "
                f"{{'pro', 'business'}}, not {type(plans).__name__}."
            )
        self.eligible_plans = frozenset(eligible_plans)
        _instances.add(self)
        bus = invalidation
        if bus is None:
            from django.conf import settings

            if settings.configured:  # not while settings.py itself builds the resolver
                from ainisa_middleware.django.invalidation import get_bus

                bus = get_bus()
        self.cache = CachedResolver(
            _ModelLookup(self.eligible_plans),
            ttl=ttl,
            negative_ttl=negative_ttl,
            maxsize=maxsize,
            invalidation=bus,
        )

    def resolve(self, widget_id: str) -> Business | None:
        return self.cache.resolve(widget_id)

    async def aresolve(self, widget_id: str) -> Business | None:
        return await self.cache.aresolve(widget_id)

    def peek(self, widget_id: str) -> tuple[bool, Business | None]:
        return self.cache.peek(widget_id)

    def invalidate(self, widget_id: str | None = None) -> None:
        """Forget one widget ID, or everything."""
        self.cache.invalidate(widget_id)

    def invalidate_ids(self, widgets: Collection[str], businesses: Collection[str]) -> None:
        """Forget these widgets and these businesses' widgets (the bus calls the cache)."""
        self.cache.invalidate_ids(widgets, businesses)

    def __repr__(self) -> str:
        return f"ModelResolver(eligible_plans={sorted(self.eligible_plans)!r})"


def invalidate_all(**kwargs: object) -> None:
    """Signal receiver: empty the cache of every ``ModelResolver`` in this process."""
    for resolver in list(_instances):
        resolver.invalidate()
