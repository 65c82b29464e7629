"""The administrative side of the store: businesses, widgets and secrets, one transaction each.

:class:`SQLStore` adds businesses and widgets, rotates and retires secrets, and
answers the one-query lookup the resolver (:mod:`.resolver`) puts its index and
cache in front of. The tables, the cipher and the engine come from the modules
below it; nothing here imports the resolver.
"""

from __future__ import annotations

import logging
import re
import secrets as _secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from ainisa_middleware.config import DEFAULT_RESOLVER_TIMEOUT
from ainisa_middleware.errors import ConfigurationError
from ainisa_middleware.invalidation import BusError, from_setting
from ainisa_middleware.models import PROOFS, Business

from .crypto import FERNET_PREFIX, MASTER_KEY_ENV, Cipher, master_keys, warn_plaintext
from .engine import make_engine, once_more, safe_url, validate_timeout
from .errors import StoreError
from .schema import (
    DEFAULT_TABLE_PREFIX,
    NAME_MAX,
    create_or_upgrade,
    init_lock,
    make_tables,
    read_version,
    require_current,
)

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_IDENTITY_PLANS",
    "DEFAULT_PLANS",
    "BusinessInfo",
    "NewSecret",
    "SQLStore",
    "SecretInfo",
    "WidgetInfo",
]

# The package's logger: one name for the whole store, the one the docs give.
logger = logging.getLogger(__package__)

#: Identity (verified visitors) is a Pro-plan feature.
DEFAULT_IDENTITY_PLANS = frozenset({"pro", "business", "enterprise"})
#: The plans a business may have (with the store's ``identity_plans``): a typo is refused.
DEFAULT_PLANS = frozenset({"free", "starter"}) | DEFAULT_IDENTITY_PLANS
#: How long the previous secret keeps verifying after a rotation.
DEFAULT_GRACE = timedelta(days=7)

#: The same alphabet the middleware accepts for widget IDs (CONTRACT section 2).
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_PLAN = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")
_INIT_ATTEMPTS = 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
    business_id: str = ""

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
    business_id: str = ""


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
    #: what proves an identity: ``"hash"``, ``"token"`` or both
    proofs: frozenset[str] = frozenset({"hash"})


def _validate_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise StoreError(
            f"{kind} ID {value!r} must be 1 to 128 characters of letters, digits, '_', '-' or '.'"
        )
    return value


def _proofs_text(proofs: object) -> str:
    """The ``proofs`` column's value: the accepted proofs, sorted, joined by commas."""
    given = (proofs,) if isinstance(proofs, str) else proofs
    if not isinstance(given, Iterable) or not (chosen := set(given)) or not chosen <= PROOFS:
        raise StoreError(f"proofs must be 'hash', 'token' or both, not {proofs!r}")
    return ",".join(sorted(chosen))


def _proofs_set(text: str | None) -> frozenset[str]:
    return frozenset((text or "hash").split(","))


def _validate_plan(plan: object) -> str:
    if not isinstance(plan, str) or not _PLAN.fullmatch(plan.strip().lower()):
        raise StoreError(
            f"plan {plan!r} must be a short name of lowercase letters, digits, '_' or '-', "
            "such as pro"
        )
    return plan.strip().lower()


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
    :param plans: the plans a business may have besides ``identity_plans``; any
        other is refused, naming the known ones (a typo must not silently turn
        identity off).
    :param master_key: Fernet key(s) for secrets at rest; ``None`` reads ``AINISA_MASTER_KEY``.
    :param clock: returns the current aware UTC time; injectable for tests.
    :param invalidation: the bus each change is published on after it commits: a
        URL (``redis://...``, ``postgresql://...``) or a bus object; ``None`` reads
        ``AINISA_INVALIDATION_URL``; ``False``: publish nothing.
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
        invalidation: object = None,
        plans: Iterable[str] = DEFAULT_PLANS,
    ) -> None:
        self.timeout = validate_timeout(timeout)
        prefix: object = table_prefix
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_]{0,30}", prefix):
            raise ConfigurationError(
                f"table_prefix must be up to 30 letters, digits or '_', not {table_prefix!r}."
            )
        self.identity_plans = _validate_plans(identity_plans)
        self.plans = _validate_plans(plans) | self.identity_plans
        self._cipher = Cipher(master_keys(master_key))
        self.clock = clock
        self._owns_engine = not isinstance(url, Engine)
        self.engine = url if isinstance(url, Engine) else make_engine(url, self.timeout)
        self.table_prefix = table_prefix
        self.tables = make_tables(table_prefix)
        self.bus, self._owns_bus = from_setting(invalidation)
        #: why the last change could not be published (``None``: it was, or there is no bus)
        self.publish_error: str | None = None

    def __repr__(self) -> str:
        return f"SQLStore({safe_url(self.engine.url)!r}, table_prefix={self.table_prefix!r})"

    @property
    def encrypting(self) -> bool:
        """Whether new secrets are encrypted (a master key is set)."""
        return self._cipher.encrypting

    def close(self) -> None:
        """Close the pooled connections of an engine this store created, and its own bus."""
        if self._owns_engine:
            self.engine.dispose()
        if self.bus is not None and self._owns_bus:
            self.bus.close()

    def _publish(self, widgets: Iterable[str] = (), businesses: Iterable[str] = ()) -> None:
        """Tell every process on the bus, after the commit; a bus that is down is logged."""
        self.publish_error = None
        if self.bus is None:
            return
        try:
            self.bus.publish(widgets, businesses)
        except BusError as error:
            self.publish_error = str(error)
            logger.warning(
                "ainisa store: the change is saved, but %s; other processes see it when "
                "their cache expires (ttl)",
                error,
            )

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
        with self.engine.begin() as conn, init_lock(conn, self.table_prefix, self.timeout):
            return create_or_upgrade(conn, self.tables)

    def schema_version(self) -> int | None:
        """The version of the schema in the database; ``None`` before ``init()``."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(self.tables.version.name):
                return None
            return read_version(conn, self.tables)

    def check(self) -> None:
        """Raise :class:`StoreError` unless the schema is there and current (call at start-up)."""
        require_current(self.schema_version(), safe_url(self.engine.url))

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
        proofs: Iterable[str] | str = "hash",
    ) -> None:
        """Add a business; it has no secret until the first :meth:`rotate_secret`."""
        _validate_id("business", business_id)
        proofs_text = _proofs_text(proofs)
        plan = self._known_plan(plan)
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
                    proofs=proofs_text,
                    created=self.now(),
                )
            )
        self._publish(businesses=[business_id])

    def update_business(
        self,
        business_id: str,
        *,
        name: str | None = None,
        plan: str | None = None,
        require_identity: bool | None = None,
        proofs: Iterable[str] | str | None = None,
    ) -> None:
        """Change a business's name, plan, ``require_identity`` or ``proofs`` (``None``: kept)."""
        values: dict[str, object] = {}
        if name is not None:
            values["name"] = self._validate_name(name)
        if plan is not None:
            values["plan"] = self._known_plan(plan)
        if require_identity is not None:
            values["require_identity"] = bool(require_identity)
        if proofs is not None:
            values["proofs"] = _proofs_text(proofs)
        if not values:
            raise StoreError("nothing to change: give a name, a plan or require_identity")
        b = self.tables.businesses
        with self._writing() as conn:
            changed = conn.execute(sa.update(b).where(b.c.id == business_id).values(**values))
            if changed.rowcount == 0:
                raise StoreError(f"no business {business_id!r}")
        self._publish(businesses=[business_id])

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
            widget_infos = tuple(_widget(w) for w in widgets)
            secrets = conn.execute(
                sa.select(t.secrets)
                .where(t.secrets.c.business_id == business_id)
                .order_by(t.secrets.c.created.desc(), t.secrets.c.id.desc())
            ).mappings()
            secret_infos = tuple(
                _secret(s, self._cipher.open(s["value"], s["id"]) if reveal else None)
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
            proofs=_proofs_set(business["proofs"]),
        )

    def list_businesses(self) -> list[BusinessInfo]:
        """Every business with its widgets and secrets (never a secret's value), by ID.

        Three queries, whatever the number of businesses.
        """
        t = self.tables
        with self._reading() as conn:
            businesses = conn.execute(
                sa.select(t.businesses).order_by(t.businesses.c.id)
            ).mappings()
            rows = list(businesses)
            widgets: dict[str, list[WidgetInfo]] = {}
            for w in conn.execute(
                sa.select(t.widgets).order_by(t.widgets.c.created, t.widgets.c.id)
            ).mappings():
                widgets.setdefault(w["business_id"], []).append(_widget(w))
            secrets: dict[str, list[SecretInfo]] = {}
            for s in conn.execute(
                sa.select(
                    t.secrets.c.id,
                    t.secrets.c.business_id,
                    t.secrets.c.created,
                    t.secrets.c.expires,
                    t.secrets.c.retired,
                ).order_by(t.secrets.c.created.desc(), t.secrets.c.id.desc())
            ).mappings():
                secrets.setdefault(s["business_id"], []).append(_secret(s))
        return [
            BusinessInfo(
                id=b["id"],
                name=b["name"],
                plan=b["plan"],
                require_identity=bool(b["require_identity"]),
                identity_enabled=b["plan"] in self.identity_plans,
                created=b["created"],
                widgets=tuple(widgets.get(b["id"], ())),
                secrets=tuple(secrets.get(b["id"], ())),
                proofs=_proofs_set(b["proofs"]),
            )
            for b in rows
        ]

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
        # A process that cached the ID as unknown serves it as soon as this arrives.
        self._publish(widgets=[widget_id], businesses=[business_id])

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
        self._publish(widgets=[widget_id])

    def widget_ids(self) -> frozenset[str]:
        """Every enabled widget ID: the resolver's index of IDs worth a query."""
        w = self.tables.widgets

        def load() -> frozenset[str]:
            with self._reading() as conn:
                rows = conn.execute(sa.select(w.c.id).where(w.c.disabled == sa.false()))
                return frozenset(row[0] for row in rows)

        return once_more(load)

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
            warn_plaintext(safe_url(self.engine.url))
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
        self._publish(businesses=[business_id])
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
        """End a secret now: hashes made with it stop verifying.

        Resolvers on the store's bus drop the business at once; a resolver with no
        bus keeps it until its cache expires (``ttl``).
        """
        number = _secret_number(secret_id)
        s = self.tables.secrets
        with self._writing() as conn:
            row = conn.execute(
                sa.select(s.c.retired, s.c.business_id).where(s.c.id == number)
            ).first()
            if row is None:
                raise StoreError(f"no secret {secret_id}")
            if row[0] is None:
                conn.execute(sa.update(s).where(s.c.id == number).values(retired=self.now()))
        # Published even when it was already retired: a process that missed it hears it again.
        self._publish(businesses=[row[1]])

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
        return once_more(lambda: self._lookup(widget_id))

    def _lookup(self, widget_id: str) -> Business | None:
        t = self.tables
        b, w, s = t.businesses, t.widgets, t.secrets
        now = self.now()
        query = (
            sa.select(b.c.id, b.c.plan, b.c.require_identity, s.c.id, s.c.value, b.c.proofs)
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
            proofs=_proofs_set(rows[0][5]),
        )

    # -- helpers -----------------------------------------------------------------------

    def _holds_encrypted(self, conn: Connection) -> bool:
        s = self.tables.secrets
        query = (
            sa.select(s.c.id).where(s.c.value.startswith(FERNET_PREFIX, autoescape=True)).limit(1)
        )
        return conn.execute(query).first() is not None

    def _business_exists(self, conn: Connection, business_id: str) -> bool:
        b = self.tables.businesses
        return conn.execute(sa.select(b.c.id).where(b.c.id == business_id)).first() is not None

    def _known_plan(self, plan: object) -> str:
        name = _validate_plan(plan)
        if name not in self.plans:
            raise StoreError(
                f"unknown plan {name!r}; the known plans are {', '.join(sorted(self.plans))} "
                f"(identity in {', '.join(sorted(self.identity_plans))})"
            )
        return name

    @staticmethod
    def _validate_name(name: object) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
            raise StoreError(f"name must be 1 to {NAME_MAX} characters")
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


def _widget(row: Any) -> WidgetInfo:
    return WidgetInfo(
        id=row["id"],
        created=row["created"],
        disabled=bool(row["disabled"]),
        business_id=row["business_id"],
    )


def _secret(row: Any, value: str | None = None) -> SecretInfo:
    return SecretInfo(
        id=row["id"],
        created=row["created"],
        expires=row["expires"],
        retired=row["retired"],
        value=value,
        business_id=row["business_id"],
    )


def _secret_number(secret_id: object) -> int:
    if isinstance(secret_id, int) and not isinstance(secret_id, bool):
        return secret_id
    if isinstance(secret_id, str) and secret_id.isdigit() and secret_id.isascii():
        return int(secret_id)
    raise StoreError(f"a secret ID is a number, such as 3; not {secret_id!r}")
