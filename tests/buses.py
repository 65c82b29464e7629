"""The real servers the invalidation tests run against, as the store tests find theirs.

``AINISA_TEST_REDIS_URL`` and ``AINISA_TEST_POSTGRES_URL`` (``make test`` sets
both). Without them a test skips, loudly; under ``CI`` it fails instead.
"""

from __future__ import annotations

import os

import pytest

_ENV = {"redis": "AINISA_TEST_REDIS_URL", "postgres": "AINISA_TEST_POSTGRES_URL"}


def bus_url(kind: str) -> str:
    """The server for ``kind`` (``redis`` or ``postgres``), or skip (fail under CI)."""
    url = os.environ.get(_ENV[kind])
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{_ENV[kind]} is not set, and CI must run the {kind} bus tests")
        pytest.skip(f"{_ENV[kind]} is not set: no {kind} server to test against")
    return url
