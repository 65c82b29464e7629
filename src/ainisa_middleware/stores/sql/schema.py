"""The store's tables, the column types every database must agree on, and the schema version.

The tables are built per prefix (a store can share a database with its app),
and creating or upgrading them reads :data:`SCHEMA_VERSION` and
:data:`MIGRATIONS` from this module alone, so an upgrade step is added in one place.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect

from .errors import StoreError

__all__ = [
    "DEFAULT_TABLE_PREFIX",
    "MIGRATIONS",
    "NAME_MAX",
    "SCHEMA_VERSION",
    "Tables",
    "create_or_upgrade",
    "init_lock",
    "make_tables",
    "read_version",
    "require_current",
]

# The package's logger: one name for the whole store, the one the docs give.
logger = logging.getLogger(__package__)

#: Table names start with this, so the store can share a database with the app.
DEFAULT_TABLE_PREFIX = "ainisa_"
#: The schema this code reads and writes; ``init()`` upgrades older ones.
SCHEMA_VERSION = 2
#: The longest business name.
NAME_MAX = 200


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in every database.

    MySQL's DATETIME drops fractions of a second unless asked (``fsp=6``); two
    secrets rotated within one second must still sort newest first.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store keeps aware datetimes only (use datetime.now(UTC))")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _id_type() -> sa.types.TypeEngine[str]:
    # MariaDB/MySQL compare strings case-insensitively by default: widget IDs are
    # case-sensitive, so compare them byte for byte.
    return sa.String(128).with_variant(
        mysql.VARCHAR(128, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
    )


@dataclass(frozen=True, slots=True)
class Tables:
    """The store's tables under one prefix, and the metadata that creates them."""

    metadata: sa.MetaData
    businesses: sa.Table
    widgets: sa.Table
    secrets: sa.Table
    version: sa.Table


def make_tables(prefix: str) -> Tables:
    """The logical schema (the Django app's models hold the same fields)."""
    metadata = sa.MetaData()
    businesses = sa.Table(
        f"{prefix}businesses",
        metadata,
        sa.Column("id", _id_type(), primary_key=True),
        sa.Column("name", sa.String(NAME_MAX), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("require_identity", sa.Boolean(), nullable=False, default=False),
        sa.Column("created", _UTCDateTime(), nullable=False),
        # What proves an identity: "hash", "token" or "hash,token" (schema version 2).
        sa.Column("proofs", sa.String(32), nullable=False, default="hash", server_default="hash"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    widgets = sa.Table(
        f"{prefix}widgets",
        metadata,
        sa.Column("id", _id_type(), primary_key=True),
        sa.Column(
            "business_id",
            _id_type(),
            sa.ForeignKey(businesses.c.id, ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("created", _UTCDateTime(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, default=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    secrets = sa.Table(
        f"{prefix}secrets",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "business_id",
            _id_type(),
            sa.ForeignKey(businesses.c.id, ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        # "fernet:<token>" when encrypted with the master key, "plain:<secret>" otherwise.
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created", _UTCDateTime(), nullable=False),
        sa.Column("expires", _UTCDateTime(), nullable=True),
        sa.Column("retired", _UTCDateTime(), nullable=True),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    version = sa.Table(
        f"{prefix}schema_version",
        metadata,
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    return Tables(metadata, businesses, widgets, secrets, version)


def _add_proofs(conn: Connection, tables: Tables) -> None:
    """Version 2: businesses say which proofs they accept; existing ones keep the hash."""
    quote = conn.dialect.identifier_preparer.quote
    conn.execute(
        sa.text(
            f"ALTER TABLE {quote(tables.businesses.name)} "
            "ADD COLUMN proofs VARCHAR(32) DEFAULT 'hash' NOT NULL"
        )
    )


#: Upgrade steps: MIGRATIONS[n] turns a version n-1 schema into version n, inside
#: the transaction of ``init()``. Version 1 is the first schema.
MIGRATIONS: dict[int, Callable[[Connection, Tables], None]] = {2: _add_proofs}


@contextmanager
def init_lock(conn: Connection, prefix: str, timeout: float | None) -> Iterator[None]:
    """Serialise concurrent ``init()`` runs where the database offers a lock."""
    name = f"ainisa_init_{prefix}"
    backend = conn.engine.url.get_backend_name()
    if backend == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        yield  # released with the transaction
    elif backend in ("mysql", "mariadb"):
        wait = int(timeout or 30)
        conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": wait})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
    else:
        yield  # SQLite locks the whole file; a lost race is retried by init()


def read_version(conn: Connection, tables: Tables) -> int | None:
    """The version row's value; ``None`` when the table holds no row."""
    v = tables.version
    value = conn.execute(sa.select(v.c.version).where(v.c.name == "schema")).scalar()
    return None if value is None else int(value)


def create_or_upgrade(conn: Connection, tables: Tables) -> int:
    """Create what is missing, or run the missing :data:`MIGRATIONS`; returns the version."""
    t = tables
    if not sa.inspect(conn).has_table(t.version.name):
        # A fresh database (or one whose first init stopped half-way: MySQL
        # cannot roll DDL back): create what is missing.
        t.metadata.create_all(conn, checkfirst=True)
        conn.execute(sa.insert(t.version).values(name="schema", version=SCHEMA_VERSION))
        return SCHEMA_VERSION
    version = read_version(conn, t)
    if version is None:
        conn.execute(sa.insert(t.version).values(name="schema", version=SCHEMA_VERSION))
        t.metadata.create_all(conn, checkfirst=True)
        return SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database schema is version {version}, newer than this "
            f"ainisa-middleware understands ({SCHEMA_VERSION}); upgrade the package"
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[step](conn, t)
    if version != SCHEMA_VERSION:
        conn.execute(
            sa.update(t.version).where(t.version.c.name == "schema").values(version=SCHEMA_VERSION)
        )
        logger.info("ainisa store: schema upgraded from %d to %d", version, SCHEMA_VERSION)
    return SCHEMA_VERSION


def require_current(version: int | None, where: str) -> None:
    """Raise :class:`StoreError` unless ``version`` (found at ``where``) is this code's."""
    if version != SCHEMA_VERSION:
        found = "no schema" if version is None else f"schema version {version}"
        raise StoreError(
            f"{where} has {found}, this code needs version "
            f"{SCHEMA_VERSION}; run 'ainisa-middleware store init'"
        )
