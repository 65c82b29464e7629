"""``manage.py ainisa_reencrypt``: seal every secret under the first master key.

Put the new key first in ``AINISA["MASTER_KEY"]`` (or ``$AINISA_MASTER_KEY``),
keep the old ones after it, run this, then drop the old ones. Also encrypts
secrets stored in plaintext before a key was set. One transaction.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from ainisa_middleware.django.models import Secret
from ainisa_middleware.django.sealing import cipher, is_sealed
from ainisa_middleware.sealing import MASTER_KEY_ENV, PLAIN_PREFIX


class Command(BaseCommand):
    help = "Encrypt every Ainisa secret under the first key of AINISA['MASTER_KEY']."

    def handle(self, *args: Any, **options: Any) -> None:
        sealer = cipher()
        if not sealer.encrypting:
            raise CommandError(
                f"no master key: set AINISA['MASTER_KEY'] or {MASTER_KEY_ENV} (make one with "
                "'ainisa-middleware store genkey')"
            )
        table = connection.ops.quote_name(Secret._meta.db_table)
        changed = 0
        with transaction.atomic():
            list(Secret.objects.select_for_update().values_list("pk"))  # lock the rows
            with connection.cursor() as cursor:
                # The column as stored, not the field's plain value.
                cursor.execute(f"SELECT id, value FROM {table}")
                rows = cursor.fetchall()
            for pk, stored in rows:
                sealed = sealer.reseal(stored if is_sealed(stored) else PLAIN_PREFIX + stored, pk)
                if sealed is not None:
                    # Already sealed: the field writes it as it is.
                    Secret.objects.filter(pk=pk).update(value=sealed)
                    changed += 1
        self.stdout.write(f"re-encrypted {changed} secret(s) under the first master key")
