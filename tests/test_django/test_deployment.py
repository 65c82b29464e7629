"""``manage.py check --database default``: the app's tables, secrets and bus."""

from __future__ import annotations

import sys
import types

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from ainisa_middleware.deployment import BUS_FACTORY, BUS_MODULE
from ainisa_middleware.django.deployment import check_deployment
from ainisa_middleware.django.models import Business, Secret, Widget


def ids(found: list[object]) -> list[str]:
    return [message.id for message in found]  # type: ignore[attr-defined]


def test_without_database_the_check_does_nothing() -> None:
    assert check_deployment(databases=None) == []


def test_an_identity_business_without_a_secret_is_a_warning(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AINISA_INVALIDATION_URL", raising=False)
    shop = Business.objects.create(id="shop", name="Shop", plan="pro")
    Widget.objects.create(id="w1", business=shop)
    found = check_deployment(databases=["default"])
    assert ids(found) == ["ainisa.W030"] and "shop" in found[0].msg  # type: ignore[attr-defined]
    Secret.objects.create(business=shop, value="sk_django_check_secret_1")
    assert check_deployment(databases=["default"]) == []


def test_a_bus_that_does_not_answer_fails_manage_py_check(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down:
        def ping(self) -> None:
            raise TimeoutError

    module = types.ModuleType(BUS_MODULE)
    setattr(module, BUS_FACTORY, lambda url: Down())
    monkeypatch.setitem(sys.modules, BUS_MODULE, module)
    monkeypatch.setenv("AINISA_INVALIDATION_URL", "redis://127.0.0.1:1/0")
    with pytest.raises(SystemCheckError, match="ainisa.E032"):
        call_command("check", databases=["default"])
    # Without --database, Django skips database checks: a plain check passes.
    call_command("check", tags=["database"])
