"""The admin: add a business and a widget, rotate a secret (shown once), retire one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from ainisa_middleware.django.models import Business, Secret, Widget

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def staff() -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _inline_management(prefix: str, total: int = 0, initial: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_staff_adds_a_business_with_a_widget(staff: Client) -> None:
    data = {
        "id": "shop",
        "name": "Shop",
        "plan": "pro",
        "proofs": "hash,token",
        **_inline_management("widgets", total=1),
        "widgets-0-id": "wid_shop",
        **_inline_management("secrets"),
    }
    response = staff.post("/admin/ainisa/business/add/", data)
    assert response.status_code == 302, response.content[:2000]
    business = Business.objects.get()
    assert (business.id, business.plan, business.proofs) == ("shop", "pro", "hash,token")
    assert Widget.objects.get().business_id == "shop"


def test_admin_refuses_a_proof_that_is_not_offered(staff: Client) -> None:
    data = {"id": "shop", "name": "Shop", "plan": "pro", "proofs": "none"}
    data |= _inline_management("widgets") | _inline_management("secrets")
    response = staff.post("/admin/ainisa/business/add/", data)
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not Business.objects.exists()


def test_widget_admin_rejects_an_invalid_widget_id(staff: Client) -> None:
    Business.objects.create(id="shop", name="Shop")
    response = staff.post("/admin/ainisa/widget/add/", {"id": "bad id!", "business": "shop"})
    assert response.status_code == 200
    assert b"A widget ID is 1 to 128 characters" in response.content
    assert not Widget.objects.exists()


def _rotate(staff: Client) -> tuple[str, bytes]:
    response = staff.post(
        "/admin/ainisa/business/",
        {"action": "rotate_secret", "_selected_action": ["shop"]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = re.search(rb'<code class="ainisa-secret">([^<]+)</code>', response.content)
    assert match is not None
    return match.group(1).decode(), response.content


def test_rotation_shows_the_new_secret_once_and_never_again(staff: Client) -> None:
    Business.objects.create(id="shop", name="Shop", plan="pro")
    value, page = _rotate(staff)
    assert Secret.objects.get().value == value
    assert len(value) >= 40
    # It is on no page afterwards: lists, forms, the secret's own page.
    secret = Secret.objects.get()
    for url in (
        "/admin/ainisa/business/",
        "/admin/ainisa/business/shop/change/",
        "/admin/ainisa/secret/",
        f"/admin/ainisa/secret/{secret.pk}/change/",
    ):
        response = staff.get(url)
        assert response.status_code == 200, url
        assert value.encode() not in response.content, url


def test_rotation_keeps_the_previous_secret_for_the_grace_period(staff: Client) -> None:
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    first = Secret.objects.create(business=business, value="first")
    before = timezone.now()
    with override_settings(
        AINISA={
            "RESOLVER": "tests.test_django.resolvers.resolver",
            "PATHS": ["/chat"],
            "ROTATION_GRACE": timedelta(days=2),
        }
    ):
        value, page = _rotate(staff)
    first.refresh_from_db()
    assert first.expires is not None
    assert timedelta(days=2) <= first.expires - before < timedelta(days=2, minutes=1)
    assert b"keep verifying until" in page
    assert [s.value for s in Secret.objects.order_by("-created")] == [value, "first"]


def test_secrets_cannot_be_added_by_hand(staff: Client) -> None:
    assert staff.get("/admin/ainisa/secret/add/").status_code == 403


def test_retire_action_stops_a_secret_at_once(staff: Client) -> None:
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    secret = Secret.objects.create(business=business, value="old")
    response = staff.post(
        "/admin/ainisa/secret/",
        {"action": "retire", "_selected_action": [str(secret.pk)]},
        follow=True,
    )
    assert b"Retired 1 secret(s)." in response.content
    secret.refresh_from_db()
    assert secret.retired is not None
