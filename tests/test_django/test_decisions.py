"""``AINISA["ON_DECISION"]``: an object or a dotted path, checked like every other key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings

from ainisa_middleware.decisions import DecisionRecord
from ainisa_middleware.django.conf import problems
from ainisa_middleware.models import Status
from tests.test_django.test_middleware import BASE, verified

RECORDS: list[DecisionRecord] = []


def remember(record: DecisionRecord) -> None:
    """What the dotted path below names."""
    RECORDS.append(record)


@pytest.fixture(autouse=True)
def _empty() -> None:
    RECORDS.clear()


@pytest.mark.parametrize("hook", ["tests.test_django.test_decisions.remember", remember])
def test_on_decision_by_dotted_path_or_object_sees_sync_and_async_requests(hook: Any) -> None:
    with override_settings(AINISA={**BASE, "ON_DECISION": hook}):
        assert Client().post("/chat", verified(widget_id="wid_pro"), "application/json")
        response = asyncio.run(
            AsyncClient().post("/chat/async", {"widget_id": "wid_nobody"}, "application/json")
        )
        assert response.status_code == 404
    assert [(r.business_id, r.status, r.outcome, r.code) for r in RECORDS] == [
        ("biz_pro", Status.VERIFIED, "passed", None),
        (None, None, "rejected", "unknown_widget"),
    ]


@pytest.mark.parametrize(
    ("value", "check_id", "text"),
    [
        ("tests.test_django.nowhere.hook", "ainisa.E022", "cannot be imported"),
        (42, "ainisa.E021", "must be a callable"),
    ],
)
def test_a_bad_on_decision_is_a_check_error_and_a_startup_error(
    value: object, check_id: str, text: str
) -> None:
    with override_settings(AINISA={**BASE, "ON_DECISION": value}):
        found = problems()
        assert [(p.id, text in p.message) for p in found] == [(check_id, True)]
        with pytest.raises(ImproperlyConfigured, match=text):
            Client().post("/chat", verified(widget_id="wid_pro"), "application/json")
