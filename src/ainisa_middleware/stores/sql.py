"""Businesses, widgets and secrets in a SQL database: SQLite, PostgreSQL, MariaDB/MySQL.

Install the extra, ``pip install "ainisa-middleware[sql]"`` (``[postgres]`` adds
psycopg 3, ``[mysql]`` adds PyMySQL), create the schema once with
``ainisa-middleware store init``, then put the resolver behind the middleware::

    resolver = SQLResolver("postgresql+psycopg://app@db/app")
    app.add_middleware(AinisaMiddleware, resolver=resolver, paths=["/chat"])

:class:`SQLStore` is the administrative side (add businesses and widgets,
rotate and retire secrets); :class:`SQLResolver` is what the middleware asks,
with a cache and an in-memory index of widget IDs in front of the database so
that a flood of made-up widget IDs never reaches it.

Secrets are encrypted at rest with Fernet when ``AINISA_MASTER_KEY`` holds one
or more keys (the first encrypts, every one decrypts, so the master key can be
rotated). Without it they are stored in plaintext and a warning is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import re
import secrets as _secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

try:
    import sqlalchemy as sa
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet
    from sqlalchemy.dialects import mysql
    from sqlalchemy.engine import URL, Connection, Dialect, Engine
    from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
    from sqlalchemy.pool import StaticPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ainisa_middleware.stores.sql needs SQLAlchemy and cryptography: install them with "
        "'pip install \"ainisa-middleware[sql]\"'."
    ) from exc

from ainisa_middleware.config import DEFAULT_RESOLVER_TIMEOUT
from ainisa_middleware.errors import ConfigurationError
from ainisa_middleware.models import Business
from ainisa_middleware.resolvers import CachedResolver

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_GRACE",
    "DEFAULT_IDENTITY_PLANS",
    "DEFAULT_TABLE_PREFIX",
    "MASTER_KEY_ENV",
    "SCHEMA_VERSION",
    "BusinessInfo",
    "NewSecret",
    "SQLResolver",
    "SQLStore",
    "SecretInfo",
    "StoreError",
    "WidgetInfo",
    "describe_error",
    "generate_master_key",
]

logger = logging.getLogger("ainisa_middleware.stores.sql")
_T = TypeVar("_T")

#: Read when no URL is given.
DATABASE_URL_ENV = "AINISA_DATABASE_URL"
#: The embedded default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///ainisa.db"
#: One Fernet key, or several separated by commas (the first encrypts).
MASTER_KEY_ENV = "AINISA_MASTER_KEY"
#: Table names start with this, so the store can share a database with the app.
DEFAULT_TABLE_PREFIX = "ainisa_"
#: Identity (verified visitors) is a Pro-plan feature.
DEFAULT_IDENTITY_PLANS = frozenset({"pro", "business", "enterprise"})
#: How long the previous secret keeps verifying after a rotation.
DEFAULT_GRACE = timedelta(days=7)
#: The schema this code reads and writes; ``init()`` upgrades older ones.
SCHEMA_VERSION = 1

#: The same alphabet the middleware accepts for widget IDs (CONTRACT section 2).
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_PLAN = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")
_PLAIN = "plain:"
_FERNET = "fernet:"
_NAME_MAX = 200
_INIT_ATTEMPTS = 3


class StoreError(Exception):
    """An operation on the store cannot be done; the message says why (never a secret)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# -- schema ------------------------------------------------------------------------------


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
class _Tables:
    metadata: sa.MetaData
    businesses: sa.Table
    widgets: sa.Table
    secrets: sa.Table
    version: sa.Table


def _tables(prefix: str) -> _Tables:
    """The logical schema (the Django app's models hold the same fields)."""
    metadata = sa.MetaData()
    businesses = sa.Table(
        f"{prefix}businesses",
        metadata,
        sa.Column("id", _id_type(), primary_key=True),
        sa.Column("name", sa.String(_NAME_MAX), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("require_identity", sa.Boolean(), nullable=False, default=False),
        sa.Column("created", _UTCDateTime(), nullable=False),
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
    return _Tables(metadata, businesses, widgets, secrets, version)


#: Upgrade steps: MIGRATIONS[n] turns a version n-1 schema into version n, inside
#: the transaction of ``init()``. Version 1 is the first schema: nothing to do yet.
MIGRATIONS: dict[int, Callable[[Connection, _Tables], None]] = {}


# -- secrets at rest ---------------------------------------------------------------------


def generate_master_key() -> str:
    """A new random Fernet key for ``AINISA_MASTER_KEY``."""
    return Fernet.generate_key().decode("ascii")


class _Cipher:
    """Encrypts secret values with the master key(s); plaintext when there is none."""

    def __init__(self, keys: Sequence[str]) -> None:
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                # Never echo the key: it is as sensitive as every secret it protects.
                raise ConfigurationError(
                    f"{MASTER_KEY_ENV} key #{position} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes); make one with 'ainisa-middleware store genkey'."
                ) from None
        self._first = fernets[0] if fernets else None
        self._fernet = MultiFernet(fernets) if fernets else None

    @property
    def encrypting(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None:
            return _PLAIN + value
        return _FERNET + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, stored: str, secret_id: int) -> str:
        if stored.startswith(_PLAIN):
            return stored[len(_PLAIN) :]
        if not stored.startswith(_FERNET):
            raise StoreError(f"secret {secret_id} has a value in an unknown format")
        if self._fernet is None:
            raise StoreError(
                f"secret {secret_id} is encrypted but {MASTER_KEY_ENV} is not set; set it "
                "to the key that encrypted it"
            )
        try:
            return self._fernet.decrypt(stored[len(_FERNET) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise StoreError(
                f"secret {secret_id} cannot be decrypted with the keys in {MASTER_KEY_ENV}; "
                "keep the old key in the list until 'ainisa-middleware store reencrypt' has run"
            ) from None

    def reseal(self, stored: str, secret_id: int) -> str | None:
        """The value sealed under the first master key, or ``None`` when it already is."""
        assert self._first is not None  # reencrypt() checked
        plain = self.open(stored, secret_id)  # raises when no key given opens it
        if stored.startswith(_FERNET):
            try:
                self._first.decrypt(stored[len(_FERNET) :].encode("ascii"))
            except InvalidToken:
                pass
            else:
                return None
        return self.seal(plain)


def _master_keys(given: str | Sequence[str] | None) -> list[str]:
    master_key: object = os.environ.get(MASTER_KEY_ENV, "") if given is None else given
    if isinstance(master_key, str):
        return [part.strip() for part in master_key.split(",") if part.strip()]
    if not isinstance(master_key, Sequence) or not all(isinstance(k, str) for k in master_key):
        raise ConfigurationError(
            f"master_key must be a Fernet key, a list of them, or None to read {MASTER_KEY_ENV}."
        )
    return [k.strip() for k in master_key if isinstance(k, str) and k.strip()]


# -- what the store returns -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A secret just made by :meth:`SQLStore.rotate_secret`: the only time its value is shown."""

    id: int
    business_id: str
    value: str = field(repr=False)
    created: datetime
    #: until when the secrets it replaces keep verifying
    previous_expire: datetime


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """One secret as ``business show`` lists it; ``value`` is ``None`` unless revealed."""

    id: int
    created: datetime
    expires: datetime | None
    retired: datetime | None
    value: str | None = field(default=None, repr=False)

    def state(self, now: datetime) -> str:
        """``active``, ``expiring`` (still verifies, has an end), ``expired`` or ``retired``."""
        if self.retired is not None:
            return "retired"
        if self.expires is None:
            return "active"
        return "expiring" if self.expires > now else "expired"


@dataclass(frozen=True, slots=True)
class WidgetInfo:
    """One widget of a business."""

    id: str
    created: datetime
    disabled: bool


@dataclass(frozen=True, slots=True)
class BusinessInfo:
    """A business with its widgets and every secret it ever had, newest first."""

    id: str
    name: str
    plan: str
    require_identity: bool
    identity_enabled: bool
    created: datetime
    widgets: tuple[WidgetInfo, ...]
    secrets: tuple[SecretInfo, ...]


# -- engine ------------------------------------------------------------------------------

_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_DRIVER_EXTRAS = {"psycopg": "postgres", "pymysql": "mysql"}


def _safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _connect_args(url: URL, timeout: float) -> dict[str, Any]:
    """The middleware's ``resolver_timeout`` as each driver's own connect and query limits."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        return {"timeout": timeout}  # how long to wait for a lock
    if backend == "postgresql" and driver == "psycopg":
        options = f"-c statement_timeout={max(1, math.ceil(timeout * 1000))}"
        given = url.query.get("options")
        if isinstance(given, str) and given:
            options = f"{given} {options}"  # keep the URL's own options
        return {
            # libpq counts whole seconds and treats 1 as 2.
            "connect_timeout": max(2, math.ceil(timeout)),
            "options": options,
        }
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        return {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    return {}


def _make_engine(url: str | URL, timeout: float | None) -> Engine:
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "the database URL is not one SQLAlchemy understands; write it as "
            "sqlite:///ainisa.db, postgresql+psycopg://user@host/db or "
            "mysql+pymysql://user@host/db."
        ) from None
    backend = parsed.get_backend_name()
    if "+" not in parsed.drivername and backend in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=f"{backend}+{_DEFAULT_DRIVERS[backend]}")
    options: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    if timeout is not None:
        connect_args = _connect_args(parsed, timeout)
        options["pool_timeout"] = timeout
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        # One shared in-memory database for every thread (tests, demos).
        options = {"poolclass": StaticPool}
        connect_args["check_same_thread"] = False
    try:
        return sa.create_engine(parsed, connect_args=connect_args, **options)
    except (ImportError, NoSuchModuleError) as exc:
        driver = parsed.get_driver_name()
        extra = _DRIVER_EXTRAS.get(driver)
        hint = f'pip install "ainisa-middleware[{extra}]"' if extra else f"install {driver}"
        raise ConfigurationError(
            f"the database driver for {_safe_url(parsed)} is not installed ({exc}); {hint}."
        ) from None


def _validate_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise StoreError(
            f"{kind} ID {value!r} must be 1 to 128 characters of letters, digits, '_', '-' or '.'"
        )
    return value


def _validate_plan(plan: object) -> str:
    if not isinstance(plan, str) or not _PLAN.fullmatch(plan.strip().lower()):
        raise StoreError(
            f"plan {plan!r} must be a short name of lowercase letters, digits, '_' or '-', "
            "such as pro"
        )
    return plan.strip().lower()


def _validate_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < math.inf
    ):
        raise ConfigurationError(
            f"timeout must be a positive number of seconds, or None; not {timeout!r}."
        )
    return float(timeout)


def _validate_plans(plans: object) -> frozenset[str]:
    if isinstance(plans, str) or not isinstance(plans, Iterable):
        raise ConfigurationError(
            f"identity_plans must be a set of plan names such as {{'pro'}}, not {plans!r}."
        )
    names = list(plans)
    if not all(isinstance(p, str) and _PLAN.fullmatch(p.strip().lower()) for p in names):
        raise ConfigurationError(
            f"identity_plans must hold plan names such as 'pro', not {names!r}."
        )
    return frozenset(p.strip().lower() for p in names)


# -- the store ---------------------------------------------------------------------------


class SQLStore:
    """The business store: schema, administration, and the lookup resolvers use.

    Every write runs in one transaction: a command either happens whole or not at all.

    :param url: a SQLAlchemy URL or an :class:`~sqlalchemy.engine.Engine`; ``None``
        reads ``AINISA_DATABASE_URL``, else ``sqlite:///ainisa.db``. ``postgresql://``
        means psycopg 3 and ``mysql://`` / ``mariadb://`` mean PyMySQL.
    :param timeout: seconds for connecting and for each query (and for waiting on a
        pooled connection), applied per driver; pass the middleware's
        ``resolver_timeout``. Ignored when you pass your own engine: configure it there.
    :param table_prefix: the tables are ``<prefix>businesses``, ``<prefix>widgets``,
        ``<prefix>secrets`` and ``<prefix>schema_version``.
    :param identity_plans: plans that include identity verification.
    :param master_key: Fernet key(s) for secrets at rest; ``None`` reads ``AINISA_MASTER_KEY``.
    :param clock: returns the current aware UTC time; injectable for tests.
    """

    def __init__(
        self,
        url: str | URL | Engine | None = None,
        *,
        timeout: float | None = DEFAULT_RESOLVER_TIMEOUT,
        table_prefix: str = DEFAULT_TABLE_PREFIX,
        identity_plans: Iterable[str] = DEFAULT_IDENTITY_PLANS,
        master_key: str | Sequence[str] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.timeout = _validate_timeout(timeout)
        prefix: object = table_prefix
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_]{0,30}", prefix):
            raise ConfigurationError(
                f"table_prefix must be up to 30 letters, digits or '_', not {table_prefix!r}."
            )
        self.identity_plans = _validate_plans(identity_plans)
        self._cipher = _Cipher(_master_keys(master_key))
        self.clock = clock
        self._owns_engine = not isinstance(url, Engine)
        if isinstance(url, Engine):
            self.engine = url
        else:
            if url is None:
                url = os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
            self.engine = _make_engine(url, self.timeout)
        self.table_prefix = table_prefix
        self.tables = _tables(table_prefix)

    def __repr__(self) -> str:
        return f"SQLStore({_safe_url(self.engine.url)!r}, table_prefix={self.table_prefix!r})"

    @property
    def encrypting(self) -> bool:
        """Whether new secrets are encrypted (a master key is set)."""
        return self._cipher.encrypting

    def close(self) -> None:
        """Close the pooled connections of an engine this store created."""
        if self._owns_engine:
            self.engine.dispose()

    def now(self) -> datetime:
        """The injected clock's time, checked to be aware."""
        value = self.clock()
        if value.tzinfo is None:
            raise ConfigurationError("clock must return an aware datetime, e.g. datetime.now(UTC).")
        return value

    # -- schema ------------------------------------------------------------------------

    def init(self) -> int:
        """Create the schema, or upgrade an older one; safe to run again. Returns the version.

        Several processes may run it at once (a rolling deploy): the one that
        loses the race for a table or the version row looks again and finds the
        schema in place.
        """
        for attempt in range(1, _INIT_ATTEMPTS + 1):
            try:
                return self._init_once()
            except DBAPIError:
                if attempt == _INIT_ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _init_once(self) -> int:
        with self.engine.begin() as conn, self._init_lock(conn):
            return self._create_or_upgrade(conn)

    @contextmanager
    def _init_lock(self, conn: Connection) -> Iterator[None]:
        """Serialise concurrent ``init()`` runs where the database offers a lock."""
        name = f"ainisa_init_{self.table_prefix}"
        backend = self.engine.url.get_backend_name()
        if backend == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield  # released with the transaction
        elif backend in ("mysql", "mariadb"):
            wait = int(self.timeout or 30)
            conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": wait})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        else:
            yield  # SQLite locks the whole file; a lost race is retried by init()

    def _create_or_upgrade(self, conn: Connection) -> int:
        t = self.tables
        if not sa.inspect(conn).has_table(t.version.name):
            # A fresh database (or one whose first init stopped half-way: MySQL
            # cannot roll DDL back): create what is missing.
            t.metadata.create_all(conn, checkfirst=True)
            conn.execute(sa.insert(t.version).values(name="schema", version=SCHEMA_VERSION))
            return SCHEMA_VERSION
        version = self._read_version(conn)
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
                sa.update(t.version)
                .where(t.version.c.name == "schema")
                .values(version=SCHEMA_VERSION)
            )
            logger.info("ainisa store: schema upgraded from %d to %d", version, SCHEMA_VERSION)
        return SCHEMA_VERSION

    def schema_version(self) -> int | None:
        """The version of the schema in the database; ``None`` before ``init()``."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(self.tables.version.name):
                return None
            return self._read_version(conn)

    def check(self) -> None:
        """Raise :class:`StoreError` unless the schema is there and current (call at start-up)."""
        version = self.schema_version()
        if version != SCHEMA_VERSION:
            found = "no schema" if version is None else f"schema version {version}"
            raise StoreError(
                f"{_safe_url(self.engine.url)} has {found}, this code needs version "
                f"{SCHEMA_VERSION}; run 'ainisa-middleware store init'"
            )

    def _read_version(self, conn: Connection) -> int | None:
        v = self.tables.version
        value = conn.execute(sa.select(v.c.version).where(v.c.name == "schema")).scalar()
        return None if value is None else int(value)

    def drop(self) -> None:
        """Drop the store's tables and everything in them (tests, teardown)."""
        self.tables.metadata.drop_all(self.engine)

    # -- businesses --------------------------------------------------------------------

    def add_business(
        self,
        business_id: str,
        *,
        plan: str,
        name: str | None = None,
        require_identity: bool = False,
    ) -> None:
        """Add a business; it has no secret until the first :meth:`rotate_secret`."""
        _validate_id("business", business_id)
        plan = _validate_plan(plan)
        name = business_id if name is None else self._validate_name(name)
        b = self.tables.businesses
        with self._writing(f"business {business_id!r} already exists") as conn:
            if self._business_exists(conn, business_id):
                raise StoreError(f"business {business_id!r} already exists")
            conn.execute(
                sa.insert(b).values(
                    id=business_id,
                    name=name,
                    plan=plan,
                    require_identity=bool(require_identity),
                    created=self.now(),
                )
            )

    def update_business(
        self,
        business_id: str,
        *,
        name: str | None = None,
        plan: str | None = None,
        require_identity: bool | None = None,
    ) -> None:
        """Change a business's name, plan or ``require_identity``; ``None`` keeps a value."""
        values: dict[str, object] = {}
        if name is not None:
            values["name"] = self._validate_name(name)
        if plan is not None:
            values["plan"] = _validate_plan(plan)
        if require_identity is not None:
            values["require_identity"] = bool(require_identity)
        if not values:
            raise StoreError("nothing to change: give a name, a plan or require_identity")
        b = self.tables.businesses
        with self._writing() as conn:
            changed = conn.execute(sa.update(b).where(b.c.id == business_id).values(**values))
            if changed.rowcount == 0:
                raise StoreError(f"no business {business_id!r}")

    def get_business(self, business_id: str, *, reveal: bool = False) -> BusinessInfo:
        """A business with its widgets and secrets; secret values only with ``reveal=True``."""
        t = self.tables
        with self._reading() as conn:
            row = conn.execute(sa.select(t.businesses).where(t.businesses.c.id == business_id))
            business = row.mappings().first()
            if business is None:
                raise StoreError(f"no business {business_id!r}")
            widgets = conn.execute(
                sa.select(t.widgets)
                .where(t.widgets.c.business_id == business_id)
                .order_by(t.widgets.c.created, t.widgets.c.id)
            ).mappings()
            widget_infos = tuple(
                WidgetInfo(id=w["id"], created=w["created"], disabled=bool(w["disabled"]))
                for w in widgets
            )
            secrets = conn.execute(
                sa.select(t.secrets)
                .where(t.secrets.c.business_id == business_id)
                .order_by(t.secrets.c.created.desc(), t.secrets.c.id.desc())
            ).mappings()
            secret_infos = tuple(
                SecretInfo(
                    id=s["id"],
                    created=s["created"],
                    expires=s["expires"],
                    retired=s["retired"],
                    value=self._cipher.open(s["value"], s["id"]) if reveal else None,
                )
                for s in secrets
            )
        return BusinessInfo(
            id=business["id"],
            name=business["name"],
            plan=business["plan"],
            require_identity=bool(business["require_identity"]),
            identity_enabled=business["plan"] in self.identity_plans,
            created=business["created"],
            widgets=widget_infos,
            secrets=secret_infos,
        )

    # -- widgets -----------------------------------------------------------------------

    def add_widget(self, widget_id: str, *, business_id: str) -> None:
        """Register a widget ID (from the Ainisa dashboard) for a business."""
        _validate_id("widget", widget_id)
        w = self.tables.widgets
        with self._writing(f"widget {widget_id!r} already exists") as conn:
            if not self._business_exists(conn, business_id):
                raise StoreError(
                    f"no business {business_id!r}; add it first with "
                    "'ainisa-middleware business add'"
                )
            taken = conn.execute(sa.select(w.c.business_id).where(w.c.id == widget_id)).first()
            if taken is not None:
                raise StoreError(f"widget {widget_id!r} already exists (business {taken[0]!r})")
            conn.execute(
                sa.insert(w).values(
                    id=widget_id, business_id=business_id, created=self.now(), disabled=False
                )
            )

    def disable_widget(self, widget_id: str) -> None:
        """Stop accepting requests from a widget: it answers ``404 unknown_widget``."""
        self._set_disabled(widget_id, True)

    def enable_widget(self, widget_id: str) -> None:
        """Accept requests from a disabled widget again."""
        self._set_disabled(widget_id, False)

    def _set_disabled(self, widget_id: str, disabled: bool) -> None:
        w = self.tables.widgets
        with self._writing() as conn:
            exists = conn.execute(sa.select(w.c.id).where(w.c.id == widget_id)).first()
            if exists is None:
                raise StoreError(f"no widget {widget_id!r}")
            conn.execute(sa.update(w).where(w.c.id == widget_id).values(disabled=disabled))

    def widget_ids(self) -> frozenset[str]:
        """Every enabled widget ID: the resolver's index of IDs worth a query."""
        w = self.tables.widgets

        def load() -> frozenset[str]:
            with self._reading() as conn:
                rows = conn.execute(sa.select(w.c.id).where(w.c.disabled == sa.false()))
                return frozenset(row[0] for row in rows)

        return _once_more(load)

    # -- secrets -----------------------------------------------------------------------

    def rotate_secret(
        self,
        business_id: str,
        grace: timedelta = DEFAULT_GRACE,
        *,
        value: str | None = None,
    ) -> NewSecret:
        """Make a new current secret; the active ones keep verifying for ``grace``.

        A secret that already expires sooner keeps its earlier end; ``grace=0``
        ends every previous secret now. ``value`` imports an existing secret
        instead of generating one.

        :returns: the new secret, whose ``value`` is never shown again.
        """
        period: object = grace
        if not isinstance(period, timedelta) or period < timedelta(0):
            raise StoreError(f"grace must be a timedelta of zero or more, not {grace!r}")
        imported: object = value
        if imported is None:
            plain = _secrets.token_urlsafe(32)
        elif not isinstance(imported, str) or not imported or imported.strip() != imported:
            raise StoreError("an imported secret must be a non-empty string without spaces around")
        else:
            plain = imported
        if not self._cipher.encrypting:
            _warn_plaintext(self.engine.url)
        s, b = self.tables.secrets, self.tables.businesses
        now = self.now()
        until = now + grace
        with self._writing() as conn:
            # Lock the business row so two rotations cannot interleave.
            locked = conn.execute(
                sa.select(b.c.id).where(b.c.id == business_id).with_for_update()
            ).first()
            if locked is None:
                raise StoreError(f"no business {business_id!r}")
            if not self._cipher.encrypting and self._holds_encrypted(conn):
                # A command run without the key must not slip a plaintext secret
                # into a store whose secrets are encrypted.
                raise StoreError(
                    f"the store's secrets are encrypted but {MASTER_KEY_ENV} is not set; "
                    "set it so the new secret is encrypted too"
                )
            conn.execute(
                sa.update(s)
                .where(
                    s.c.business_id == business_id,
                    s.c.retired.is_(None),
                    sa.or_(s.c.expires.is_(None), s.c.expires > until),
                )
                .values(expires=until)
            )
            result = conn.execute(
                sa.insert(s).values(
                    business_id=business_id,
                    value=self._cipher.seal(plain),
                    created=now,
                    expires=None,
                    retired=None,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            secret_id = int(key[0])
        logger.info(
            "ainisa store: business=%s new secret=%d, previous secrets expire %s",
            business_id,
            secret_id,
            until.isoformat(),
        )
        return NewSecret(
            id=secret_id, business_id=business_id, value=plain, created=now, previous_expire=until
        )

    def retire_secret(self, secret_id: int | str) -> None:
        """End a secret now: hashes made with it stop verifying."""
        number = _secret_number(secret_id)
        s = self.tables.secrets
        with self._writing() as conn:
            row = conn.execute(sa.select(s.c.retired).where(s.c.id == number)).first()
            if row is None:
                raise StoreError(f"no secret {secret_id}")
            if row[0] is None:
                conn.execute(sa.update(s).where(s.c.id == number).values(retired=self.now()))

    def reencrypt(self) -> int:
        """Encrypt every secret under the first master key; returns how many rows changed.

        Run it after putting a new key first in ``AINISA_MASTER_KEY`` (old keys
        after it), or after setting a master key on a store that had none.
        """
        if not self._cipher.encrypting:
            raise StoreError(f"{MASTER_KEY_ENV} is not set: there is no key to encrypt with")
        s = self.tables.secrets
        changed = 0
        with self._writing() as conn:
            rows = conn.execute(sa.select(s.c.id, s.c.value).with_for_update()).all()
            for secret_id, stored in rows:
                sealed = self._cipher.reseal(stored, secret_id)
                if sealed is not None:
                    conn.execute(sa.update(s).where(s.c.id == secret_id).values(value=sealed))
                    changed += 1
        return changed

    # -- the lookup --------------------------------------------------------------------

    def lookup(self, widget_id: str) -> Business | None:
        """The business behind an enabled widget, with its active secrets newest first.

        One query. A connection the database dropped (a restart) is retried once
        on a fresh one; any other failure raises, and the middleware answers 503.
        """
        return _once_more(lambda: self._lookup(widget_id))

    def _lookup(self, widget_id: str) -> Business | None:
        t = self.tables
        b, w, s = t.businesses, t.widgets, t.secrets
        now = self.now()
        query = (
            sa.select(b.c.id, b.c.plan, b.c.require_identity, s.c.id, s.c.value)
            .select_from(
                w.join(b, b.c.id == w.c.business_id).outerjoin(
                    s,
                    sa.and_(
                        s.c.business_id == b.c.id,
                        s.c.retired.is_(None),
                        sa.or_(s.c.expires.is_(None), s.c.expires > now),
                    ),
                )
            )
            .where(w.c.id == widget_id, w.c.disabled == sa.false())
            .order_by(s.c.created.desc(), s.c.id.desc())
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return None
        business_id, plan, require_identity = rows[0][0], rows[0][1], bool(rows[0][2])
        values: list[str] = []
        ids: list[str] = []
        for row in rows:
            if row[3] is not None:
                values.append(self._cipher.open(row[4], row[3]))
                ids.append(str(row[3]))
        return Business(
            id=business_id,
            secrets=tuple(values),
            identity_enabled=plan in self.identity_plans,
            require_identity=require_identity,
            secret_ids=tuple(ids),
        )

    # -- helpers -----------------------------------------------------------------------

    def _holds_encrypted(self, conn: Connection) -> bool:
        s = self.tables.secrets
        query = sa.select(s.c.id).where(s.c.value.startswith(_FERNET, autoescape=True)).limit(1)
        return conn.execute(query).first() is not None

    def _business_exists(self, conn: Connection, business_id: str) -> bool:
        b = self.tables.businesses
        return conn.execute(sa.select(b.c.id).where(b.c.id == business_id)).first() is not None

    @staticmethod
    def _validate_name(name: object) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > _NAME_MAX:
            raise StoreError(f"name must be 1 to {_NAME_MAX} characters")
        return name.strip()

    def _writing(self, duplicate: str = "that already exists") -> _Transaction:
        return _Transaction(self.engine, duplicate)

    def _reading(self) -> _Transaction:
        return _Transaction(self.engine, "")


class _Transaction:
    """``engine.begin()`` that turns a lost race on a unique key into a :class:`StoreError`."""

    def __init__(self, engine: Engine, duplicate: str) -> None:
        self._context = engine.begin()
        self._duplicate = duplicate

    def __enter__(self) -> Connection:
        return self._context.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        self._context.__exit__(kind, error, tb)
        if isinstance(error, IntegrityError) and self._duplicate:
            raise StoreError(self._duplicate) from None


def _once_more(function: Callable[[], _T]) -> _T:
    """Run ``function``; again, once, if the database had dropped the pooled connection.

    SQLAlchemy invalidates the whole pool on such an error, so the second try
    opens a fresh connection: a database restart costs no failed request.
    """
    try:
        return function()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return function()


def _secret_number(secret_id: object) -> int:
    if isinstance(secret_id, int) and not isinstance(secret_id, bool):
        return secret_id
    if isinstance(secret_id, str) and secret_id.isdigit() and secret_id.isascii():
        return int(secret_id)
    raise StoreError(f"a secret ID is a number, such as 3; not {secret_id!r}")


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_plaintext(url: URL) -> None:
    """Warn once per database that secrets are kept in plaintext."""
    where = _safe_url(url)
    with _warned_lock:
        if where in _warned:
            return
        _warned.add(where)
    logger.warning(
        "ainisa store: %s is not set, so secrets in %s are stored in plaintext; "
        "set it (make a key with 'ainisa-middleware store genkey') and run "
        "'ainisa-middleware store reencrypt'",
        MASTER_KEY_ENV,
        where,
    )


# -- the resolver ------------------------------------------------------------------------


def describe_error(error: BaseException) -> str:
    """One line about a failure, safe for logs: never the SQL, its parameters or a URL password.

    SQLAlchemy's own message quotes the statement and its parameters; the
    driver's first line says what went wrong without them.
    """
    if isinstance(error, StoreError):
        return str(error)
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


class _Health:
    """Logs when the database stops answering and when it is back, once each."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        self.failing = False

    def call(self, function: Callable[[], _T]) -> _T:
        try:
            result = function()
        except Exception as error:
            if not self.failing:
                self.failing = True
                logger.warning(
                    "ainisa store: %s cannot answer (%s); chat requests get 503 until it can",
                    _safe_url(self.store.engine.url),
                    describe_error(error),
                )
            raise
        if self.failing:
            self.failing = False
            logger.warning("ainisa store: %s answers again", _safe_url(self.store.engine.url))
        return result


class _Lookup:
    """The database behind the cache: sync, and async in a worker thread."""

    def __init__(self, store: SQLStore, health: _Health) -> None:
        self.store = store
        self.health = health

    def resolve(self, widget_id: str) -> Business | None:
        return self.health.call(lambda: self.store.lookup(widget_id))

    async def aresolve(self, widget_id: str) -> Business | None:
        return await asyncio.to_thread(self.resolve, widget_id)


_UNSET: Any = object()


class SQLResolver:
    """The middleware's resolver over a :class:`SQLStore`.

    Three layers answer a widget ID, cheapest first:

    1. the **index**: the set of enabled widget IDs, loaded in one query and
       reloaded when an ID is missing from it and it is older than
       ``index_max_age`` seconds. An ID that is not in a fresh index is unknown
       without touching the database, so a flood of random IDs costs at most one
       query per ``index_max_age`` seconds, not one per request;
    2. the **cache**: a :class:`~ainisa_middleware.CachedResolver` (``ttl`` for
       businesses, ``negative_ttl`` for misses), on by default;
    3. the **database**: one query per uncached widget.

    ``peek`` answers from the first two without I/O, so the ASGI middleware
    answers cache hits and unknown IDs on the event loop; ``aresolve`` runs every
    query in a worker thread. A database that cannot be reached makes
    ``resolve`` raise, and the middleware answers ``503 resolver_unavailable``.

    Security: a cached business keeps its secrets for ``ttl`` seconds, so a
    retired secret may verify that much longer on each process.

    :param url: a URL, an :class:`~sqlalchemy.engine.Engine`, an :class:`SQLStore`,
        or ``None`` for ``AINISA_DATABASE_URL`` (else ``sqlite:///ainisa.db``).
    :param timeout: the store's connect and query timeout (see :class:`SQLStore`).
    :param cache: put a :class:`~ainisa_middleware.CachedResolver` in front.
    :param index: keep the in-memory index of widget IDs (the flood defence).
    :param index_max_age: seconds before a missing ID may reload the index; a new
        widget is found at most this long after it was added.
    :param monotonic: the clock for the index and the cache; injectable for tests.

    ``table_prefix``, ``identity_plans``, ``master_key`` and ``clock`` are passed
    to the :class:`SQLStore` (give them to the store instead when passing one).

    >>> resolver = SQLResolver("sqlite:///ainisa.db", timeout=5.0)
    """

    def __init__(
        self,
        url: str | URL | Engine | SQLStore | None = None,
        *,
        timeout: float | None = _UNSET,
        cache: bool = True,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        index: bool = True,
        index_max_age: float = 1.0,
        table_prefix: str = _UNSET,
        identity_plans: Iterable[str] = _UNSET,
        master_key: str | Sequence[str] | None = _UNSET,
        clock: Callable[[], datetime] = _UNSET,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        store_options = {
            "timeout": timeout,
            "table_prefix": table_prefix,
            "identity_plans": identity_plans,
            "master_key": master_key,
            "clock": clock,
        }
        given: dict[str, Any] = {k: v for k, v in store_options.items() if v is not _UNSET}
        if isinstance(url, SQLStore):
            if given:
                raise ConfigurationError(
                    f"SQLResolver got an SQLStore and {', '.join(sorted(given))}: pass those "
                    "to the SQLStore instead."
                )
            self.store = url
        else:
            self.store = SQLStore(url, **given)
        max_age: object = index_max_age
        if (
            isinstance(max_age, bool)
            or not isinstance(max_age, int | float)
            or not 0 <= max_age < math.inf
        ):
            raise ConfigurationError(
                f"index_max_age must be a number of seconds >= 0, not {index_max_age!r}."
            )
        self.index_max_age = float(index_max_age)
        self._monotonic = monotonic
        self._health = _Health(self.store)
        self._lookup = _Lookup(self.store, self._health)
        self.cache: CachedResolver | None = (
            CachedResolver(self._lookup, ttl=ttl, negative_ttl=negative_ttl, clock=monotonic)
            if cache
            else None
        )
        self.index = index
        self._ids: frozenset[str] | None = None
        self._loaded_at = -math.inf
        self._index_lock = threading.Lock()
        if not self.store.encrypting:
            _warn_plaintext(self.store.engine.url)

    def __repr__(self) -> str:
        return f"SQLResolver({self.store!r}, cache={self.cache is not None}, index={self.index})"

    # -- the index ---------------------------------------------------------------------

    def _index_says_unknown(self, widget_id: str) -> bool | None:
        """``True``: unknown for sure; ``False``: worth a lookup; ``None``: reload first."""
        ids = self._ids
        if ids is not None and widget_id in ids:
            return False
        if ids is not None and self._monotonic() - self._loaded_at < self.index_max_age:
            return True
        return None

    def refresh(self, *, force: bool = True) -> None:
        """Reload the index of widget IDs now (``force=False``: only when it is stale)."""
        with self._index_lock:
            # Threads that queued behind a reload use its result.
            if not force and self._monotonic() - self._loaded_at < self.index_max_age:
                return
            ids = self._health.call(self.store.widget_ids)
            self._ids, self._loaded_at = ids, self._monotonic()

    def _known(self, widget_id: str) -> bool:
        verdict = self._index_says_unknown(widget_id)
        if verdict is None:
            self.refresh(force=False)
            verdict = self._index_says_unknown(widget_id)
        return verdict is False

    async def _aknown(self, widget_id: str) -> bool:
        verdict = self._index_says_unknown(widget_id)
        if verdict is None:
            await asyncio.to_thread(self.refresh, force=False)
            verdict = self._index_says_unknown(widget_id)
        return verdict is False

    # -- the resolver protocol ---------------------------------------------------------

    def peek(self, widget_id: str) -> tuple[bool, Business | None]:
        """Answer from memory only: ``(True, business_or_None)``, or ``(False, None)``."""
        if self.index and self._index_says_unknown(widget_id) is True:
            return True, None
        if self.cache is not None:
            return self.cache.peek(widget_id)
        return False, None

    def resolve(self, widget_id: str) -> Business | None:
        """The business behind ``widget_id``; raises when the database cannot answer."""
        if self.index and not self._known(widget_id):
            return None
        if self.cache is not None:
            return self.cache.resolve(widget_id)
        return self._lookup.resolve(widget_id)

    async def aresolve(self, widget_id: str) -> Business | None:
        """:meth:`resolve` for the event loop: database work runs in a worker thread."""
        if self.index and not await self._aknown(widget_id):
            return None
        if self.cache is not None:
            return await self.cache.aresolve(widget_id)
        return await self._lookup.aresolve(widget_id)

    def invalidate(self, widget_id: str | None = None) -> None:
        """Forget cached answers (one widget or all) and reload the index on next use."""
        if self.cache is not None:
            self.cache.invalidate(widget_id)
        self._loaded_at = -math.inf

    def close(self) -> None:
        """Close the store's pooled connections."""
        self.store.close()
