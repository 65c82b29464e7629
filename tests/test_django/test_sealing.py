"""Secrets encrypted at rest in the Django models, with the SQL store's scheme and key."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from ainisa_middleware.django import ModelResolver
from ainisa_middleware.django.checks import check_master_key
from ainisa_middleware.django.models import Business, Secret, Widget
from ainisa_middleware.sealing import Cipher, generate_master_key

pytestmark = pytest.mark.usefixtures("db")

KEY, NEW_KEY = generate_master_key(), generate_master_key()
migration = importlib.import_module("ainisa_middleware.django.migrations.0002_secret_value_sealed")


def keyed(key: str | list[str] | None) -> override_settings:
    ainisa = {k: v for k, v in settings.AINISA.items() if k != "MASTER_KEY"}
    if key is not None:
        ainisa["MASTER_KEY"] = key
    return override_settings(AINISA=ainisa)


@pytest.fixture(autouse=True)
def no_env_key(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AINISA_MASTER_KEY", raising=False)
    yield
    # Rows under a key the next test does not set: gone before the ORM would open them.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Secret._meta.db_table}")


def stored() -> dict[int, str]:
    """The value column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, value FROM {Secret._meta.db_table}")
        return dict(cursor.fetchall())


def test_a_secret_is_encrypted_in_the_row_and_plain_in_python() -> None:
    with keyed(KEY):
        business = Business.objects.create(id="shop", name="Shop", plan="pro")
        Widget.objects.create(id="wid_shop", business=business)
        secret = Secret.objects.create(business=business, value="s3cret-value")
        raw = stored()[secret.pk]
        assert raw.startswith("fernet:") and "s3cret-value" not in raw
        # The SQL store's scheme: the same key opens it there too.
        assert Cipher([KEY]).open(raw, secret.pk) == "s3cret-value"
        assert Secret.objects.get().value == "s3cret-value"
        found = ModelResolver().resolve("wid_shop")
        assert found is not None and found.secrets == ("s3cret-value",)
        assert check_master_key() == []
    with keyed(NEW_KEY), pytest.raises(Exception, match="cannot be decrypted"):
        Secret.objects.get()  # the wrong key never yields a value: a 503, not a pass


def test_without_a_key_values_are_marked_plain_and_check_warns() -> None:
    with keyed(None):
        business = Business.objects.create(id="shop", name="Shop", plan="pro")
        secret = Secret.objects.create(business=business, value="s3cret")
        assert stored()[secret.pk] == "plain:s3cret"
        assert [m.id for m in check_master_key()] == ["ainisa.W010"]
    with keyed("not a key"):
        (error,) = check_master_key()
        assert error.id == "ainisa.E012"
        assert "not a Fernet key" in error.msg and "not a key" not in error.msg


def test_the_migration_seals_rows_written_before_it_and_reverses() -> None:
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    secret = Secret.objects.create(business=business, value="x")
    with connection.cursor() as cursor:  # a row as version 0001 wrote it
        cursor.execute(
            f"UPDATE {Secret._meta.db_table} SET value = %s WHERE id = %s", ["legacy", secret.pk]
        )
    assert Secret.objects.get().value == "legacy"  # readable before the migration ran
    with keyed(KEY), connection.schema_editor() as editor:
        migration.seal_existing(apps, editor)
        raw = stored()[secret.pk]
        assert raw.startswith("fernet:")
        assert Secret.objects.get().value == "legacy"
        migration.seal_existing(apps, editor)  # again: nothing changes
        assert stored()[secret.pk] == raw
        migration.open_existing(apps, editor)
        assert stored()[secret.pk] == "legacy"


def test_reencrypt_moves_every_secret_to_the_first_key() -> None:
    business = Business.objects.create(id="shop", name="Shop", plan="pro")
    with keyed(None):
        plain = Secret.objects.create(business=business, value="from-before-the-key")
    with keyed(KEY):
        old = Secret.objects.create(business=business, value="under-the-old-key")
    with keyed([NEW_KEY, KEY]):
        out = StringIO()
        call_command("ainisa_reencrypt", stdout=out)
        assert out.getvalue().strip() == "re-encrypted 2 secret(s) under the first master key"
        out = StringIO()
        call_command("ainisa_reencrypt", stdout=out)
        assert out.getvalue().startswith("re-encrypted 0 secret(s)")
    with keyed(NEW_KEY):  # the old key can go
        values = dict(Secret.objects.values_list("pk", "value"))
    assert values == {plain.pk: "from-before-the-key", old.pk: "under-the-old-key"}
    with keyed(None), pytest.raises(CommandError, match="no master key"):
        call_command("ainisa_reencrypt")
