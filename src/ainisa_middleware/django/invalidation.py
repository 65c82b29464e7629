"""The Django app on the invalidation bus: what the admin and the ORM change reaches every process.

``AINISA = {"INVALIDATION_URL": "redis://cache:6379/0", ...}`` (or
``$AINISA_INVALIDATION_URL``; ``postgresql://...`` uses the database itself).
Saving or deleting a business, widget or secret publishes its IDs when the
transaction commits; every :class:`~ainisa_middleware.django.ModelResolver` of
every process on the bus drops them. One bus per process, built on first use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from ainisa_middleware.invalidation import BusError, InvalidationBus, connect

__all__ = ["get_bus", "on_change", "publish", "reset"]

logger = logging.getLogger("ainisa_middleware.invalidation")

_lock = threading.Lock()
_bus: InvalidationBus | None = None
_read = False


def get_bus() -> InvalidationBus | None:
    """This process's bus, from the settings (``None`` when no URL is set)."""
    global _bus, _read
    with _lock:
        if not _read:
            from ainisa_middleware.django.conf import invalidation_url

            url = invalidation_url()
            _bus = connect(url) if url else None
            _read = True
        return _bus


def reset() -> None:
    """Close the bus and read the settings again on next use (tests, settings changes)."""
    global _bus, _read
    with _lock:
        if _bus is not None:
            _bus.close()
        _bus, _read = None, False


def publish(widgets: Iterable[str] = (), businesses: Iterable[str] = ()) -> None:
    """Publish these IDs once the current transaction commits (at once outside one)."""
    bus = get_bus()
    if bus is None:
        return
    widget_ids, business_ids = list(widgets), list(businesses)

    def send() -> None:
        try:
            bus.publish(widget_ids, business_ids)
        except BusError as error:
            logger.warning(
                "ainisa invalidation: the change is saved, but %s; other processes see it "
                "when their cache expires (ttl)",
                error,
            )

    transaction.on_commit(send)


def on_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Signal receiver for ``post_save``/``post_delete`` of Business, Widget and Secret."""
    from ainisa_middleware.django.models import Business, Widget

    if isinstance(instance, Business):
        publish(businesses=[instance.pk])
    elif isinstance(instance, Widget):
        publish(widgets=[instance.pk], businesses=[instance.business_id])
    else:  # a Secret
        publish(businesses=[instance.business_id])
