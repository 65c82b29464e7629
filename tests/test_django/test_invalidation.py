"""The admin and the ORM publish on the bus: another process's cache drops the change at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from ainisa_middleware import Business as Found
from ainisa_middleware import CachedResolver
from ainisa_middleware.django import ModelResolver
from ainisa_middleware.django import invalidation as django_bus
from ainisa_middleware.django.models import Business, Secret, Widget
from ainisa_middleware.invalidation import ThreadedBus, connect
from tests.buses import bus_url
from tests.conftest import CountingResolver

pytestmark = pytest.mark.usefixtures("db")

SHOP = Found(id="shop", secrets=("old",))


@pytest.fixture
def other_process() -> Iterator[CachedResolver]:
    """The settings name a Redis bus; a cache on its own connection, as another worker's."""
    url = f"{bus_url('redis')}?channel=t{uuid.uuid4().hex[:12]}"
    django_bus.reset()
    bus = connect(url)
    assert isinstance(bus, ThreadedBus)
    cache = CachedResolver(CountingResolver({"wid_shop": SHOP, "wid_new": SHOP}), invalidation=bus)
    try:
        with override_settings(AINISA={**settings.AINISA, "INVALIDATION_URL": url}):
            deadline = time.monotonic() + 5
            while not bus.connected:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            yield cache
    finally:
        bus.close()
        django_bus.reset()


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def dropped(cache: CachedResolver, widget_id: str = "wid_shop") -> bool:
    deadline = time.monotonic() + 1.0
    while cache.peek(widget_id)[0]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_admin_rotate_and_retire_reach_another_process_within_a_second(
    other_process: CachedResolver, staff: Client
) -> None:
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    Widget.objects.create(id="wid_shop", business=business)
    secret = Secret.objects.create(business=business, value="old")
    other_process.resolve("wid_shop")
    response = staff.post(
        "/admin/ainisa/business/", {"action": "rotate_secret", "_selected_action": ["shop"]}
    )
    assert response.status_code == 200
    assert dropped(other_process)
    other_process.resolve("wid_shop")
    response = staff.post(
        "/admin/ainisa/secret/",
        {"action": "retire", "_selected_action": [str(secret.pk)]},
        follow=True,
    )
    assert b"They stop verifying at once in every process on the invalidation bus" in (
        response.content
    )
    assert dropped(other_process)


def test_a_widget_saved_through_the_orm_clears_a_cached_miss_elsewhere(
    other_process: CachedResolver,
) -> None:
    other_process.inner.mapping.pop("wid_new")  # type: ignore[union-attr]
    assert other_process.resolve("wid_new") is None  # cached as unknown
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    Widget.objects.create(id="wid_new", business=business)
    assert dropped(other_process, "wid_new")


def test_model_resolver_listens_on_the_settings_bus(other_process: CachedResolver) -> None:
    resolver = ModelResolver()
    assert resolver.cache.bus is django_bus.get_bus()
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    Widget.objects.create(id="wid_shop", business=business)
    assert resolver.resolve("wid_shop") is not None
    other = connect(settings.AINISA["INVALIDATION_URL"])
    try:
        other.publish(businesses=["shop"])  # from another process
    finally:
        other.close()
    assert dropped(resolver.cache)
