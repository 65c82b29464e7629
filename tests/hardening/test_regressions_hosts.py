"""Bugs the property tests found in the WSGI and Django adapters, pinned."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from .hosts import django_middleware, drive_django
from .strategies import Request
from .views import Sent


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    logging.getLogger("ainisa_middleware").disabled = True
    yield
    logging.getLogger("ainisa_middleware").disabled = False


@pytest.mark.parametrize(
    ("charset", "query"),
    [
        ("utf-7", b"user+AF8-id=victim&firstname=Eve"),
        ("utf-7", b"user%2BAF8-id=victim"),
        ("utf-16", b"x=1"),
        ("latin-1", b"user_id=%C3%A9"),
    ],
)
def test_django_reads_the_query_as_utf8_whatever_the_charset(charset: str, query: bytes) -> None:
    # Was: request.GET decoded the query with Content-Type's charset even on a
    # bodiless GET, so UTF-7 made "user+AF8-id=victim" a user_id nobody signed.
    headers = [
        (b"x-ainisa-widget-id", b"w_pro"),
        (b"content-type", f"text/plain; charset={charset}".encode()),
    ]
    req = Request("GET", "/chat", headers, query, b"", [b""], Sent("w_pro"))
    with django_middleware() as (sync_mw, _):
        outcome = drive_django(sync_mw, req)
    assert outcome is not None and outcome.seen is not None
    assert outcome.seen.parsed["query/django-GET"] == {}
