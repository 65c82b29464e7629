"""ModelResolver over the app's models, the migrations, and the lazy package."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone

from ainisa_middleware import Business as CoreBusiness
from ainisa_middleware import ConfigurationError, user_hash
from ainisa_middleware.django import ModelResolver
from ainisa_middleware.django.models import Business, Secret, Widget, active_secrets

pytestmark = pytest.mark.usefixtures("db")


def make_business(plan: str = "pro", **fields: object) -> Business:
    business = Business.objects.create(id="shop", name="Shop", plan=plan, **fields)
    Widget.objects.create(id="wid_shop", business=business)
    return business


def test_resolve_builds_business_with_active_secrets_newest_first() -> None:
    business = make_business(require_identity=True)
    now = timezone.now()
    old = Secret.objects.create(business=business, value="old", created=now - timedelta(days=2))
    new = Secret.objects.create(business=business, value="new", created=now)
    Secret.objects.create(business=business, value="gone", expires=now - timedelta(seconds=1))
    Secret.objects.create(business=business, value="retired", retired=now)
    found = ModelResolver().resolve("wid_shop")
    assert found == CoreBusiness(
        id="shop",
        secrets=("new", "old"),
        identity_enabled=True,
        require_identity=True,
        secret_ids=(str(new.pk), str(old.pk)),
    )


def test_aresolve_matches_resolve() -> None:
    business = make_business()
    Secret.objects.create(business=business, value="s1")
    sync = ModelResolver().resolve("wid_shop")
    asynchronous = asyncio.run(ModelResolver().aresolve("wid_shop"))
    assert sync == asynchronous
    assert asyncio.run(ModelResolver().aresolve("nope")) is None


@pytest.mark.parametrize(("plan", "enabled"), [("pro", True), ("free", False), ("starter", False)])
def test_identity_follows_the_plan(plan: str, enabled: bool) -> None:
    make_business(plan=plan)
    found = ModelResolver().resolve("wid_shop")
    assert found is not None and found.identity_enabled is enabled


@pytest.mark.parametrize(
    ("proofs", "accepted"),
    [("hash", {"hash"}), ("token", {"token"}), ("hash,token", {"hash", "token"})],
)
def test_proofs_reach_the_resolved_business(proofs: str, accepted: set[str]) -> None:
    make_business(proofs=proofs)
    found = ModelResolver().resolve("wid_shop")
    assert found is not None and found.proofs == frozenset(accepted)


def test_proofs_default_to_the_hash() -> None:
    make_business()
    found = ModelResolver().resolve("wid_shop")
    assert found is not None and found.proofs == frozenset({"hash"})


def test_eligible_plans_are_configurable() -> None:
    make_business(plan="starter")
    found = ModelResolver(eligible_plans={"starter"}).resolve("wid_shop")
    assert found is not None and found.identity_enabled


def test_eligible_plans_must_be_a_collection() -> None:
    with pytest.raises(ConfigurationError, match="collection of plan names"):
        ModelResolver(eligible_plans="pro")


def test_disabled_and_unknown_widgets_are_none() -> None:
    make_business()
    Widget.objects.filter(pk="wid_shop").update(disabled=True)
    resolver = ModelResolver()
    assert resolver.resolve("wid_shop") is None
    assert resolver.resolve("nope") is None


def test_cache_is_emptied_when_a_secret_is_saved() -> None:
    business = make_business()
    resolver = ModelResolver(ttl=3600)
    first = resolver.resolve("wid_shop")
    assert first is not None and first.secrets == ()
    assert resolver.peek("wid_shop") == (True, first)
    Secret.objects.create(business=business, value="fresh")
    assert resolver.peek("wid_shop") == (False, None)
    second = resolver.resolve("wid_shop")
    assert second is not None and second.secrets == ("fresh",)


def test_active_secrets_respects_a_given_time() -> None:
    business = make_business()
    now = timezone.now()
    Secret.objects.create(business=business, value="s", expires=now + timedelta(hours=1))
    assert active_secrets(business, now).count() == 1
    assert active_secrets(business, now + timedelta(hours=2)).count() == 0


def test_secret_repr_and_str_never_show_the_value() -> None:
    business = make_business()
    secret = Secret.objects.create(business=business, value="top-secret-value")
    assert "top-secret-value" not in repr(secret)
    assert "top-secret-value" not in str(secret)
    assert str(business) == "Shop (shop)"
    assert str(Widget.objects.get()) == "wid_shop"


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_model_resolver_by_dotted_path_end_to_end(client_kind: str) -> None:
    business = make_business()
    Secret.objects.create(business=business, value="model-secret")
    settings = {"RESOLVER": "ainisa_middleware.django.ModelResolver", "PATHS": ["/chat"]}
    body = json.dumps({"user": {"user_id": "7", "user_hash": user_hash("model-secret", "7")}})
    kwargs = {"content_type": "application/json", "headers": {"X-Ainisa-Widget-Id": "wid_shop"}}
    with override_settings(AINISA=settings):
        if client_kind == "sync":
            response = Client().post("/chat", body, **kwargs)
        else:
            response = asyncio.run(AsyncClient().post("/chat/async", body, **kwargs))
    data = response.json()
    assert data["user"]["status"] == "verified"
    assert data["user"]["business_id"] == "shop"


def test_migrations_match_the_models() -> None:
    out = StringIO()
    call_command("makemigrations", "ainisa", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_package_import_loads_no_models_and_no_django_settings() -> None:
    code = (
        "import sys, ainisa_middleware.django as d;"
        "assert 'ainisa_middleware.django.models' not in sys.modules;"
        "assert 'ainisa_middleware.django.middleware' not in sys.modules;"
        "print(sorted(d.__all__))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "['AinisaMiddleware', 'ModelResolver', 'get_ainisa_user']"


def test_unknown_package_attribute_is_an_attribute_error() -> None:
    import ainisa_middleware.django as package

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        package.Nope  # noqa: B018


def test_resolver_repr_names_plans_only() -> None:
    assert repr(ModelResolver(eligible_plans=["pro", "business"])) == (
        "ModelResolver(eligible_plans=['business', 'pro'])"
    )
