"""Secret values encrypted at rest: existing rows are sealed under the master key.

Rows written before this migration hold the bare secret; each becomes
``fernet:<token>`` under ``AINISA["MASTER_KEY"]`` (or ``$AINISA_MASTER_KEY``),
or ``plain:<value>`` when no key is set (run ``manage.py ainisa_reencrypt``
once one is). Reversing writes the bare secrets back.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

import ainisa_middleware.django.sealing


def _rows(apps: Any, schema_editor: Any) -> tuple[Any, str, list[tuple[Any, str]]]:
    secret = apps.get_model("ainisa", "Secret")
    connection = schema_editor.connection
    table = schema_editor.quote_name(secret._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, value FROM {table}")
        rows = list(cursor.fetchall())
    return connection, table, rows


def _write(connection: Any, table: str, changes: list[tuple[str, Any]]) -> None:
    # Raw SQL: the field would seal (or not) whatever it is given.
    with connection.cursor() as cursor:
        for value, pk in changes:
            cursor.execute(f"UPDATE {table} SET value = %s WHERE id = %s", [value, pk])


def seal_existing(apps: Any, schema_editor: Any) -> None:
    from ainisa_middleware.django.sealing import is_sealed, seal

    connection, table, rows = _rows(apps, schema_editor)
    _write(connection, table, [(seal(value), pk) for pk, value in rows if not is_sealed(value)])


def open_existing(apps: Any, schema_editor: Any) -> None:
    from ainisa_middleware.django.sealing import open_stored

    connection, table, rows = _rows(apps, schema_editor)
    _write(connection, table, [(open_stored(value, pk), pk) for pk, value in rows])


class Migration(migrations.Migration):
    dependencies = [("ainisa", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="secret",
            name="value",
            field=ainisa_middleware.django.sealing.SealedCharField(editable=False, max_length=256),
        ),
        migrations.RunPython(seal_existing, open_existing),
    ]
