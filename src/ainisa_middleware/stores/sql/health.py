"""What ``ainisa-middleware check`` asks the SQL store before traffic arrives.

Reads only: the schema version, every stored secret opened under the configured
master keys (the values are dropped at once, never shown), and counts. Each
answer is a :class:`~ainisa_middleware.deployment.Finding` saying what to do.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ainisa_middleware.deployment import Finding

from .crypto import FERNET_PREFIX, MASTER_KEY_ENV
from .engine import DATABASE_URL_ENV, safe_url
from .errors import StoreError, describe_error
from .schema import SCHEMA_VERSION
from .store import SQLStore

__all__ = ["store_findings"]

#: Secret ids listed in one finding before the rest are counted.
_LIST_AT_MOST = 10


def store_findings(store: SQLStore) -> list[Finding]:
    """The store's health: reachable, schema current, secrets readable, and what it holds."""
    url = store.engine.url
    where = safe_url(url)
    if (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not url.database.startswith("file:")
        and not Path(url.database).exists()
    ):
        # Connecting would create an empty file: a typo in --db must not look like a store.
        return [
            Finding(
                "problem",
                f"no database file at {url.database}",
                f"check --db (or {DATABASE_URL_ENV}); create the store with "
                "'ainisa-middleware store init' (same --db)",
            )
        ]
    try:
        version = store.schema_version()
    except SQLAlchemyError as error:
        return [
            Finding(
                "problem",
                f"cannot reach the store at {where}: {describe_error(error)}",
                f"check --db (or {DATABASE_URL_ENV}), the credentials, and that the database "
                "is up and reachable from here",
            )
        ]
    found = [Finding("ok", f"store reachable at {where}")]
    if version is None:
        found.append(
            Finding(
                "problem",
                "the store has no schema",
                "create it with 'ainisa-middleware store init' (same --db)",
            )
        )
        return found
    if version < SCHEMA_VERSION:
        found.append(
            Finding(
                "problem",
                f"schema version {version} is older than this code's {SCHEMA_VERSION}",
                "upgrade it with 'ainisa-middleware store init' (safe to repeat)",
            )
        )
        return found
    if version > SCHEMA_VERSION:
        found.append(
            Finding(
                "problem",
                f"schema version {version} is newer than this code's {SCHEMA_VERSION}",
                "upgrade ainisa-middleware here to the version that wrote the store",
            )
        )
        return found
    found.append(Finding("ok", f"schema version {version} (current)"))
    try:
        found.extend(_contents(store))
    except SQLAlchemyError as error:
        found.append(
            Finding(
                "problem",
                f"cannot read the store's tables: {describe_error(error)}",
                "check the database user's rights on the store's tables (SELECT)",
            )
        )
    return found


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:_LIST_AT_MOST])
    return shown if len(ids) <= _LIST_AT_MOST else f"{shown} and {len(ids) - _LIST_AT_MOST} more"


def _contents(store: SQLStore) -> list[Finding]:
    t = store.tables
    b, w, s = t.businesses, t.widgets, t.secrets
    now = store.now()
    cipher = store._cipher  # the package's own: the store's keys, as lookups use them
    with store.engine.connect() as conn:
        businesses = conn.execute(sa.select(b.c.id, b.c.plan)).all()
        widgets = conn.execute(sa.select(w.c.business_id, w.c.disabled)).all()
        secrets = conn.execute(
            sa.select(s.c.id, s.c.business_id, s.c.value, s.c.expires, s.c.retired)
        ).all()
    found: list[Finding] = []

    unreadable: list[int] = []
    plain: list[int] = []
    active_by_business: dict[str, int] = {}
    for secret_id, business_id, stored, expires, retired in secrets:
        try:
            cipher.open(stored, secret_id)  # the value is dropped at once
        except StoreError:
            unreadable.append(secret_id)
        if not stored.startswith(FERNET_PREFIX):
            plain.append(secret_id)
        if retired is None and (expires is None or expires > now):
            active_by_business[business_id] = active_by_business.get(business_id, 0) + 1
    if unreadable:
        found.append(
            Finding(
                "problem",
                f"{len(unreadable)} of {len(secrets)} stored secret(s) cannot be decrypted "
                f"with the keys in {MASTER_KEY_ENV} (secret ids {_ids(unreadable)})",
                f"add the key that encrypted them to {MASTER_KEY_ENV} (new key first, old "
                "keys after it), then run 'ainisa-middleware store reencrypt'",
            )
        )
    else:
        keys = "the master key(s)" if store.encrypting else "no master key (plain text)"
        found.append(Finding("ok", f"all {len(secrets)} stored secret(s) open under {keys}"))
    if plain and store.encrypting:
        found.append(
            Finding(
                "problem",
                f"{len(plain)} secret(s) are stored in plain text though {MASTER_KEY_ENV} is "
                f"set (secret ids {_ids(plain)})",
                "encrypt them with 'ainisa-middleware store reencrypt'",
            )
        )
    elif plain:
        found.append(
            Finding(
                "warning",
                f"{len(plain)} secret(s) are stored in plain text: {MASTER_KEY_ENV} is not set",
                f"make a key with 'ainisa-middleware store genkey', set {MASTER_KEY_ENV}, "
                "then run 'ainisa-middleware store reencrypt'",
            )
        )

    disabled = sum(1 for _, off in widgets if off)
    active = sum(active_by_business.values())
    found.append(
        Finding(
            "ok",
            f"{len(businesses)} business(es), {len(widgets)} widget(s) ({disabled} disabled), "
            f"{active} active secret(s)",
        )
    )
    enabled_widgets = {business_id for business_id, off in widgets if not off}
    bare = sorted(
        business_id
        for business_id, plan in businesses
        if plan in store.identity_plans
        and business_id in enabled_widgets
        and business_id not in active_by_business
    )
    if bare:
        shown = ", ".join(bare[:_LIST_AT_MOST]) + (" ..." if len(bare) > _LIST_AT_MOST else "")
        found.append(
            Finding(
                "warning",
                f"{len(bare)} business(es) with identity and an enabled widget have no active "
                f"secret, so no visitor of theirs can be verified: {shown}",
                "give each one with 'ainisa-middleware secret rotate BUSINESS'",
            )
        )
    return found
