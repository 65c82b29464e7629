"""The shared behavioural table through Django: Client (WSGI) and AsyncClient (ASGI)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import AsyncClient, Client, override_settings

from tests.cases import PATHS, RESOLVER, ROWS, Case, check

URLCONFS = {
    "sync-view": "tests.test_django.table_urls",
    "async-view": "tests.test_django.async_table_urls",
}


def send(client_kind: str, case: Case) -> Any:
    headers = dict(case.headers)
    url = case.path + ("?" + case.query if case.query else "")
    kwargs: dict[str, Any] = {"content_type": case.content_type or "", "headers": headers}
    if client_kind == "client":
        return Client().generic(case.method, url, case.body, **kwargs)
    return asyncio.run(AsyncClient().generic(case.method, url, case.body, **kwargs))


@pytest.mark.parametrize(
    ("client_kind", "view"), [("client", "sync-view"), ("async-client", "async-view")]
)
@pytest.mark.parametrize("case", ROWS)
def test_contract_table(case: Case, client_kind: str, view: str) -> None:
    settings = {"RESOLVER": RESOLVER, "PATHS": PATHS, "MODE": case.mode}
    with override_settings(AINISA=settings, ROOT_URLCONF=URLCONFS[view]):
        response = send(client_kind, case)
    assert response["Content-Type"] == "application/json"
    check(case, response.status_code, response.json())
