"""Configure Django for the tests in this folder, and a test database on demand."""

from __future__ import annotations

import os
from collections.abc import Iterator

import django
import pytest

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.test_django.settings"
django.setup()

from django.db import connections  # noqa: E402 - needs django.setup()
from django.test.utils import (  # noqa: E402
    setup_test_environment,
    teardown_test_environment,
)


@pytest.fixture(scope="session")
def django_test_database() -> Iterator[None]:
    """The migrated test database (in-memory SQLite, shared between threads)."""
    setup_test_environment()
    connection = connections["default"]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    yield
    connection.creation.destroy_test_db(old_name, verbosity=0)
    teardown_test_environment()


@pytest.fixture
def db(django_test_database: None) -> Iterator[None]:
    """The test database, emptied of this app's rows and users after each test."""
    yield
    from django.contrib.auth.models import User
    from django.contrib.sessions.models import Session

    from ainisa_middleware.django.models import Business

    Business.objects.all().delete()
    User.objects.all().delete()
    Session.objects.all().delete()
