"""The SQL store and its resolver, the same suite on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
import logging
import random
import string
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from ainisa_middleware import Business, user_hash, verify_user_hash
from ainisa_middleware.errors import ConfigurationError
from ainisa_middleware.stores.sql import (
    DEFAULT_IDENTITY_PLANS,
    SCHEMA_VERSION,
    SQLResolver,
    SQLStore,
    StoreError,
    crypto,
    schema,
)
from ainisa_middleware.stores.sql import engine as sql_engine

from .conftest import FakeClock, FakeMonotonic, StoreFactory


class QueryCounter:
    """Counts the statements an engine sends, and the threads that send them."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.threads: set[int] = set()
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.statements.append(statement)
        self.threads.add(threading.get_ident())

    @property
    def count(self) -> int:
        return len(self.statements)

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.fixture
def queries(store: SQLStore) -> Iterator[QueryCounter]:
    counter = QueryCounter(store.engine)
    yield counter
    counter.close()


@pytest.fixture
def shop(store: SQLStore) -> SQLStore:
    store.add_business("shop", name="Demo Shop", plan="pro")
    store.add_widget("wid_demo", business_id="shop")
    return store


def _resolver(store: SQLStore, monotonic: FakeMonotonic, **options: object) -> SQLResolver:
    return SQLResolver(store, monotonic=monotonic, **options)  # type: ignore[arg-type]


# -- schema ----------------------------------------------------------------------------


def test_init_is_idempotent_and_check_reports_a_missing_schema(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.schema_version() is None
    with pytest.raises(StoreError, match="no schema.*store init"):
        store.check()
    assert store.init() == SCHEMA_VERSION
    assert store.init() == SCHEMA_VERSION
    store.check()
    assert store.schema_version() == SCHEMA_VERSION
    tables = set(sa.inspect(store.engine).get_table_names())
    names = {"businesses", "widgets", "secrets", "schema_version"}
    assert {store.table_prefix + name for name in names} <= tables


def test_init_runs_each_missing_migration_once(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.init()
    ran: list[int] = []
    current = schema.SCHEMA_VERSION
    nxt = current + 1

    def add_note_column(conn: sa.Connection, tables: schema.Tables) -> None:
        ran.append(nxt)
        conn.execute(sa.text(f"ALTER TABLE {tables.businesses.name} ADD COLUMN note VARCHAR(20)"))

    monkeypatch.setattr(schema, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(schema.MIGRATIONS, nxt, add_note_column)
    assert store.init() == nxt
    assert store.init() == nxt
    assert ran == [nxt]
    columns = {
        c["name"] for c in sa.inspect(store.engine).get_columns(store.tables.businesses.name)
    }
    assert "note" in columns
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current)
    with pytest.raises(StoreError, match=f"version {nxt}, newer"):
        store.init()
    with pytest.raises(StoreError, match=f"schema version {nxt}"):
        store.check()


def test_init_finishes_a_store_whose_version_row_is_missing(make_store: StoreFactory) -> None:
    store = make_store()
    store.init()
    with store.engine.begin() as conn:
        conn.execute(sa.delete(store.tables.version))
    assert store.schema_version() is None
    assert store.init() == SCHEMA_VERSION
    assert store.schema_version() == SCHEMA_VERSION


# -- businesses and widgets ------------------------------------------------------------


def test_a_widget_resolves_to_its_business(shop: SQLStore) -> None:
    business = shop.lookup("wid_demo")
    assert business == Business(id="shop", secrets=(), identity_enabled=True)
    assert shop.lookup("wid_other") is None
    info = shop.get_business("shop")
    assert (info.name, info.plan, info.require_identity) == ("Demo Shop", "pro", False)
    assert [w.id for w in info.widgets] == ["wid_demo"]


def test_widget_ids_are_case_sensitive_on_every_database(shop: SQLStore) -> None:
    assert shop.lookup("WID_DEMO") is None
    shop.add_widget("WID_DEMO", business_id="shop")
    assert shop.widget_ids() == {"wid_demo", "WID_DEMO"}


def test_disabled_widgets_resolve_to_nothing_until_enabled(shop: SQLStore) -> None:
    shop.disable_widget("wid_demo")
    assert shop.lookup("wid_demo") is None
    assert shop.widget_ids() == frozenset()
    assert shop.get_business("shop").widgets[0].disabled
    shop.enable_widget("wid_demo")
    assert shop.lookup("wid_demo") is not None
    with pytest.raises(StoreError, match="no widget 'nope'"):
        shop.disable_widget("nope")


def test_names_keep_unicode(store: SQLStore) -> None:
    store.add_business("cafe", name="Café Ünïcode ☕", plan="free")
    assert store.get_business("cafe").name == "Café Ünïcode ☕"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.add_business("shop", plan="pro"), "business 'shop' already exists"),
        (lambda s: s.add_business("bad id", plan="pro"), "business ID 'bad id' must be"),
        (lambda s: s.add_business("x", plan="Pro Plus"), "plan 'Pro Plus' must be"),
        (lambda s: s.add_business("x", plan="pro", name=" "), "name must be 1 to 200"),
        (lambda s: s.add_widget("wid_demo", business_id="shop"), "already exists"),
        (lambda s: s.add_widget("w/1", business_id="shop"), "widget ID 'w/1' must be"),
        (lambda s: s.add_widget("w2", business_id="nope"), "no business 'nope'"),
        (lambda s: s.update_business("nope", plan="pro"), "no business 'nope'"),
        (lambda s: s.update_business("shop"), "nothing to change"),
        (lambda s: s.get_business("nope"), "no business 'nope'"),
        (lambda s: s.rotate_secret("nope"), "no business 'nope'"),
        (lambda s: s.rotate_secret("shop", timedelta(-1)), "grace must be"),
        (lambda s: s.rotate_secret("shop", value=" x"), "imported secret"),
        (lambda s: s.retire_secret(999), "no secret 999"),
        (lambda s: s.retire_secret("first"), "a secret ID is a number"),
    ],
)
def test_mistakes_are_one_clear_error_and_write_nothing(
    shop: SQLStore, call: object, message: str
) -> None:
    before = shop.get_business("shop")
    with pytest.raises(StoreError, match=message):
        call(shop)  # type: ignore[operator]
    assert shop.get_business("shop") == before
    assert shop.widget_ids() == {"wid_demo"}


def test_a_lost_race_on_a_unique_key_is_a_store_error(
    shop: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes adding the same business: the check passes in both, the
    # database's unique key stops the second.
    monkeypatch.setattr(SQLStore, "_business_exists", lambda self, conn, business_id: False)
    with pytest.raises(StoreError, match="business 'shop' already exists"):
        shop.add_business("shop", plan="pro")


# -- plans -----------------------------------------------------------------------------


def test_identity_comes_from_the_plan(shop: SQLStore) -> None:
    assert {"pro", "business", "enterprise"} == DEFAULT_IDENTITY_PLANS
    shop.add_business("small", plan="free", require_identity=True)
    shop.add_widget("wid_small", business_id="small")
    small = shop.lookup("wid_small")
    assert small is not None
    assert (small.identity_enabled, small.require_identity) == (False, True)
    shop.update_business("small", plan="Business")
    upgraded = shop.lookup("wid_small")
    assert upgraded is not None and upgraded.identity_enabled
    assert shop.get_business("small").plan == "business"
    shop.update_business("small", name="Small Co", require_identity=False)
    info = shop.get_business("small")
    assert (info.name, info.require_identity) == ("Small Co", False)


def test_the_set_of_identity_plans_is_configurable(
    shop: SQLStore, make_store: StoreFactory
) -> None:
    custom = make_store(identity_plans={"gold"})
    found = custom.lookup("wid_demo")
    assert found is not None and not found.identity_enabled
    custom.update_business("shop", plan="gold")  # a plan this store knows
    found = custom.lookup("wid_demo")
    assert found is not None and found.identity_enabled
    with pytest.raises(ConfigurationError, match="identity_plans must be a set"):
        make_store(identity_plans="pro")
    with pytest.raises(ConfigurationError, match="plan names"):
        make_store(identity_plans=["pro plus"])


# -- rotation over time ----------------------------------------------------------------


def _secrets(store: SQLStore) -> tuple[tuple[str, ...], tuple[str, ...]]:
    business = store.lookup("wid_demo")
    assert business is not None
    return business.secrets, business.secret_ids


def test_rotation_keeps_the_previous_secret_for_the_grace_period(
    shop: SQLStore, clock: FakeClock
) -> None:
    first = shop.rotate_secret("shop")
    assert _secrets(shop) == ((first.value,), (str(first.id),))
    clock.advance(seconds=1)
    second = shop.rotate_secret("shop", grace=timedelta(days=7))
    assert second.previous_expire == clock.now + timedelta(days=7)
    assert _secrets(shop) == ((second.value, first.value), (str(second.id), str(first.id)))
    hash_from_old_page = user_hash(first.value, "42")
    business = shop.lookup("wid_demo")
    assert business is not None and verify_user_hash(business.secrets, "42", hash_from_old_page)

    clock.advance(days=7)  # the grace period ends exactly now: expired
    assert _secrets(shop) == ((second.value,), (str(second.id),))
    business = shop.lookup("wid_demo")
    assert business is not None
    assert not verify_user_hash(business.secrets, "42", hash_from_old_page)
    states = [s.state(clock.now) for s in shop.get_business("shop").secrets]
    assert states == ["active", "expired"]


def test_secrets_rotated_in_the_same_instant_stay_newest_first(shop: SQLStore) -> None:
    made = [shop.rotate_secret("shop") for _ in range(3)]
    values, ids = _secrets(shop)
    assert values == tuple(m.value for m in reversed(made))
    assert ids == tuple(str(m.id) for m in reversed(made))
    assert len(set(values)) == 3


def test_a_second_rotation_never_extends_an_earlier_end(shop: SQLStore, clock: FakeClock) -> None:
    first = shop.rotate_secret("shop")
    shop.rotate_secret("shop", grace=timedelta(hours=1))
    shop.rotate_secret("shop", grace=timedelta(days=30))
    info = {s.id: s for s in shop.get_business("shop").secrets}
    assert info[first.id].expires == clock.now + timedelta(hours=1)
    clock.advance(hours=2)
    assert first.value not in _secrets(shop)[0]
    assert len(_secrets(shop)[0]) == 2


def test_grace_zero_ends_the_previous_secret_now(shop: SQLStore) -> None:
    shop.rotate_secret("shop")
    second = shop.rotate_secret("shop", timedelta(0))
    assert _secrets(shop)[0] == (second.value,)


def test_retiring_ends_a_secret_at_once(shop: SQLStore, clock: FakeClock) -> None:
    first = shop.rotate_secret("shop")
    second = shop.rotate_secret("shop")
    shop.retire_secret(str(first.id))
    assert _secrets(shop)[0] == (second.value,)
    retired_at = clock.now
    clock.advance(minutes=5)
    shop.retire_secret(first.id)  # again: keeps the first retirement time
    shop.retire_secret(second.id)
    assert _secrets(shop) == ((), ())
    info = {s.id: s for s in shop.get_business("shop").secrets}
    assert info[first.id].retired == retired_at
    assert info[first.id].state(clock.now) == "retired"


def test_an_imported_secret_verifies_hashes_made_elsewhere(shop: SQLStore) -> None:
    new = shop.rotate_secret("shop", value="the-key-from-the-dashboard")
    assert new.value == "the-key-from-the-dashboard"
    business = shop.lookup("wid_demo")
    assert business is not None
    assert verify_user_hash(business.secrets, "7", user_hash("the-key-from-the-dashboard", "7"))


def test_secret_values_stay_out_of_reprs(shop: SQLStore) -> None:
    new = shop.rotate_secret("shop")
    shown = shop.get_business("shop", reveal=True)
    assert shown.secrets[0].value == new.value
    assert new.value not in repr(new)
    assert new.value not in repr(shown)
    assert shop.get_business("shop").secrets[0].value is None


def test_clock_must_be_aware(make_store: StoreFactory) -> None:
    from datetime import datetime

    store = make_store(clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ConfigurationError, match="aware"):
        store.now()


# -- secrets at rest -------------------------------------------------------------------


def _raw_values(store: SQLStore) -> list[str]:
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.select(store.tables.secrets.c.value))]


def test_secrets_are_encrypted_with_the_master_key(
    shop: SQLStore, make_store: StoreFactory
) -> None:
    key = Fernet.generate_key().decode()
    sealed = make_store(master_key=key)
    assert sealed.encrypting and not shop.encrypting
    new = sealed.rotate_secret("shop")
    (raw,) = _raw_values(sealed)
    assert raw.startswith("fernet:") and new.value not in raw
    assert _secrets(sealed)[0] == (new.value,)
    with pytest.raises(StoreError, match="encrypted but AINISA_MASTER_KEY is not set") as error:
        shop.lookup("wid_demo")
    assert new.value not in str(error.value)
    other = make_store(master_key=Fernet.generate_key().decode())
    with pytest.raises(StoreError, match="cannot be decrypted") as error:
        other.lookup("wid_demo")
    assert new.value not in str(error.value)


def test_no_plaintext_secret_joins_encrypted_ones(shop: SQLStore, make_store: StoreFactory) -> None:
    sealed = make_store(master_key=Fernet.generate_key().decode())
    first = sealed.rotate_secret("shop")
    with pytest.raises(StoreError, match="secrets are encrypted but AINISA_MASTER_KEY is not set"):
        shop.rotate_secret("shop")
    assert _secrets(sealed) == ((first.value,), (str(first.id),))
    assert all(value.startswith("fernet:") for value in _raw_values(sealed))


def test_the_master_key_comes_from_the_environment(
    shop: SQLStore, make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AINISA_MASTER_KEY", f" {key} ")
    from_env = make_store(master_key=None)
    assert from_env.encrypting
    new = from_env.rotate_secret("shop")
    assert make_store(master_key=[key]).lookup("wid_demo") == from_env.lookup("wid_demo")
    assert _secrets(from_env)[0] == (new.value,)


def test_rotating_the_master_key(shop: SQLStore, make_store: StoreFactory) -> None:
    plain = shop.rotate_secret("shop")  # written before any master key
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = make_store(master_key=old)
    assert first.reencrypt() == 1  # the plaintext row
    assert first.reencrypt() == 0
    sealed = first.rotate_secret("shop")
    both = make_store(master_key=f"{new},{old}")
    assert _secrets(both)[0] == (sealed.value, plain.value)
    assert both.reencrypt() == 2
    assert both.reencrypt() == 0
    only_new = make_store(master_key=new)
    assert _secrets(only_new)[0] == (sealed.value, plain.value)
    with pytest.raises(StoreError, match="cannot be decrypted"):
        make_store(master_key=old).lookup("wid_demo")
    with pytest.raises(StoreError, match="no key to encrypt with"):
        shop.reencrypt()


def test_a_bad_master_key_is_refused_without_echoing_it(make_store: StoreFactory) -> None:
    good = Fernet.generate_key().decode()
    with pytest.raises(ConfigurationError, match="key #2 is not a Fernet key") as error:
        make_store(master_key=f"{good},not-a-key-at-all")
    assert "not-a-key-at-all" not in str(error.value) and good not in str(error.value)
    with pytest.raises(ConfigurationError, match="master_key must be"):
        make_store(master_key=42)


def test_a_value_in_an_unknown_format_is_refused(shop: SQLStore) -> None:
    new = shop.rotate_secret("shop")
    with shop.engine.begin() as conn:
        conn.execute(sa.update(shop.tables.secrets).values(value="rot13:abc"))
    with pytest.raises(StoreError, match=f"secret {new.id} has a value in an unknown format"):
        shop.lookup("wid_demo")


def test_plaintext_storage_is_warned_about_once(
    shop: SQLStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="ainisa_middleware.stores.sql"):
        new = shop.rotate_secret("shop")
        shop.rotate_secret("shop")
        SQLResolver(shop)
    warnings = [r for r in caplog.records if "plaintext" in r.getMessage()]
    assert len(warnings) == 1
    assert "AINISA_MASTER_KEY" in warnings[0].getMessage()
    assert new.value not in caplog.text


# -- the resolver ----------------------------------------------------------------------


def test_resolver_answers_from_the_cache_without_queries(
    shop: SQLStore, queries: QueryCounter, monotonic: FakeMonotonic
) -> None:
    resolver = _resolver(shop, monotonic, ttl=60)
    assert resolver.peek("wid_demo") == (False, None)
    business = resolver.resolve("wid_demo")
    assert business is not None and business.id == "shop"
    after_first = queries.count
    assert after_first == 2  # the index, then the business
    for _ in range(100):
        assert resolver.resolve("wid_demo") == business
    assert resolver.peek("wid_demo") == (True, business)
    assert queries.count == after_first
    monotonic.advance(61)
    assert resolver.peek("wid_demo") == (False, None)
    assert resolver.resolve("wid_demo") == business
    assert queries.count == after_first + 1


def test_flood_of_unknown_widget_ids_costs_one_query(
    shop: SQLStore, queries: QueryCounter, monotonic: FakeMonotonic
) -> None:
    """The measurement: 10,000 random unknown widget IDs, sync and async."""
    resolver = _resolver(shop, monotonic)
    rng = random.Random(4)
    alphabet = string.ascii_letters + string.digits
    flood = ["".join(rng.choices(alphabet, k=24)) for _ in range(10_000)]
    assert all(resolver.resolve(widget_id) is None for widget_id in flood)
    assert queries.count == 1  # the index of widget IDs, loaded once

    async def aflood() -> list[Business | None]:
        return [await resolver.aresolve(widget_id) for widget_id in flood]

    assert asyncio.run(aflood()) == [None] * len(flood)
    assert all(resolver.peek(widget_id) == (True, None) for widget_id in flood)
    assert queries.count == 1
    # An unknown ID after the index has aged reloads it once, not once per ID.
    monotonic.advance(1.5)
    assert all(resolver.resolve(widget_id) is None for widget_id in flood[:1000])
    assert queries.count == 2


def test_without_the_index_each_unknown_id_is_a_query(
    shop: SQLStore, queries: QueryCounter, monotonic: FakeMonotonic
) -> None:
    resolver = _resolver(shop, monotonic, index=False)
    flood = [f"unknown_{n}" for n in range(300)]
    assert all(resolver.resolve(widget_id) is None for widget_id in flood)
    assert queries.count == 300
    assert all(resolver.resolve(widget_id) is None for widget_id in flood)  # negative cache
    assert queries.count == 300


def test_a_new_widget_is_found_once_the_index_has_aged(
    shop: SQLStore, monotonic: FakeMonotonic
) -> None:
    resolver = _resolver(shop, monotonic, index_max_age=2.0)
    assert resolver.resolve("wid_new") is None
    shop.add_widget("wid_new", business_id="shop")
    assert resolver.resolve("wid_new") is None  # the index is younger than 2 s
    monotonic.advance(2.0)
    found = resolver.resolve("wid_new")
    assert found is not None and found.id == "shop"
    shop.add_widget("wid_newer", business_id="shop")
    resolver.invalidate()
    assert resolver.resolve("wid_newer") is not None


def test_a_disabled_widget_stops_resolving_after_the_cache_expires(
    shop: SQLStore, monotonic: FakeMonotonic
) -> None:
    resolver = _resolver(shop, monotonic, ttl=10)
    assert resolver.resolve("wid_demo") is not None
    shop.disable_widget("wid_demo")
    assert resolver.resolve("wid_demo") is not None  # cached for ttl
    monotonic.advance(10)
    assert resolver.resolve("wid_demo") is None
    assert resolver.peek("wid_demo") == (True, None)  # remembered as unknown
    resolver.invalidate()
    assert resolver.peek("wid_demo") == (False, None)
    monotonic.advance(1)
    assert resolver.resolve("wid_nope") is None  # reloads the aged index
    assert resolver.peek("wid_demo") == (True, None)  # no longer in it


def test_rotation_reaches_the_resolver_when_the_cache_expires(
    shop: SQLStore, monotonic: FakeMonotonic, clock: FakeClock
) -> None:
    first = shop.rotate_secret("shop")
    resolver = _resolver(shop, monotonic, ttl=30)
    business = resolver.resolve("wid_demo")
    assert business is not None and business.secrets == (first.value,)
    second = shop.rotate_secret("shop", timedelta(hours=1))
    monotonic.advance(30)
    business = resolver.resolve("wid_demo")
    assert business is not None and business.secrets == (second.value, first.value)
    clock.advance(hours=1)
    resolver.invalidate("wid_demo")
    business = resolver.resolve("wid_demo")
    assert business is not None and business.secrets == (second.value,)


def test_uncached_resolver_queries_every_time(
    shop: SQLStore, queries: QueryCounter, monotonic: FakeMonotonic
) -> None:
    resolver = _resolver(shop, monotonic, cache=False, index=False)
    assert resolver.cache is None
    for _ in range(3):
        assert resolver.resolve("wid_demo") is not None
    assert queries.count == 3
    assert resolver.peek("wid_demo") == (False, None)
    assert asyncio.run(resolver.aresolve("wid_demo")) is not None
    assert queries.count == 4


def test_aresolve_keeps_database_work_off_the_event_loop(
    shop: SQLStore, queries: QueryCounter, monotonic: FakeMonotonic
) -> None:
    resolver = _resolver(shop, monotonic)

    async def main() -> tuple[Business | None, Business | None, int]:
        found = await resolver.aresolve("wid_demo")
        unknown = await resolver.aresolve("wid_nope")
        return found, unknown, threading.get_ident()

    found, unknown, loop_thread = asyncio.run(main())
    assert found is not None and found.id == "shop" and unknown is None
    assert queries.count == 2
    assert loop_thread not in queries.threads


def test_concurrent_resolves_agree(shop: SQLStore, monotonic: FakeMonotonic) -> None:
    secret = shop.rotate_secret("shop")
    for n in range(8):
        shop.add_widget(f"wid_{n}", business_id="shop")
    resolver = _resolver(shop, monotonic, cache=False)
    ids = [f"wid_{n % 10}" for n in range(400)]  # wid_8, wid_9 are unknown
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(resolver.resolve, ids))
    for widget_id, business in zip(ids, results, strict=True):
        if widget_id in ("wid_8", "wid_9"):
            assert business is None
        else:
            assert business is not None and business.secrets == (secret.value,)

    async def many() -> list[Business | None]:
        return await asyncio.gather(*(resolver.aresolve(w) for w in ids[:100]))

    assert [b is None for b in asyncio.run(many())] == [w in ("wid_8", "wid_9") for w in ids[:100]]


def test_resolver_builds_its_own_store(db_url: str, prefix: str, clock: FakeClock) -> None:
    resolver = SQLResolver(db_url, table_prefix=prefix, master_key="", clock=clock, timeout=3)
    try:
        resolver.store.init()
        resolver.store.add_business("shop", plan="pro")
        resolver.store.add_widget("wid_demo", business_id="shop")
        assert resolver.resolve("wid_demo") is not None
        assert "SQLResolver(SQLStore(" in repr(resolver)
        assert resolver.store.timeout == 3.0
    finally:
        resolver.store.drop()
        resolver.close()


def test_resolver_refuses_store_options_beside_a_store(shop: SQLStore) -> None:
    with pytest.raises(ConfigurationError, match="got an SQLStore and table_prefix, timeout"):
        SQLResolver(shop, timeout=1, table_prefix="x_")
    with pytest.raises(ConfigurationError, match="index_max_age"):
        SQLResolver(shop, index_max_age=-1)


# -- engines, URLs and timeouts --------------------------------------------------------


def test_url_defaults_to_the_environment_then_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AINISA_DATABASE_URL", raising=False)
    store = SQLStore(master_key="")
    assert str(store.engine.url) == "sqlite:///ainisa.db"
    store.close()
    monkeypatch.setenv("AINISA_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    store = SQLStore(master_key="")
    assert store.engine.url.database == str(tmp_path / "env.db")
    store.close()


def test_short_urls_pick_the_supported_drivers() -> None:
    for url, driver in [
        ("postgresql://u:pw@h/db", "postgresql+psycopg"),
        ("mysql://u@h/db", "mysql+pymysql"),
        ("mariadb://u@h/db", "mariadb+pymysql"),
    ]:
        store = SQLStore(url, master_key="")
        assert store.engine.url.drivername == driver
        assert "pw" not in repr(store)
        store.close()


def test_bad_urls_and_missing_drivers_say_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="not one SQLAlchemy understands"):
        SQLStore("not a url", master_key="")
    with pytest.raises(ConfigurationError, match="driver .* is not installed"):
        SQLStore("postgresql+pg8000://u:secretpw@h/db", master_key="")
    with pytest.raises(ConfigurationError, match="timeout must be"):
        SQLStore("sqlite://", timeout=0, master_key="")
    with pytest.raises(ConfigurationError, match="table_prefix"):
        SQLStore("sqlite://", table_prefix="bad-prefix", master_key="")


def test_an_in_memory_database_is_shared_by_every_thread() -> None:
    store = SQLStore("sqlite://", master_key="")
    try:
        store.init()
        store.add_business("shop", plan="pro")
        store.add_widget("wid_demo", business_id="shop")
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert pool.submit(store.lookup, "wid_demo").result() is not None
    finally:
        store.close()


def test_timeouts_reach_each_driver() -> None:
    connect_args = sql_engine.connect_args
    assert connect_args(sa.make_url("sqlite:///x.db"), 2.5) == {"timeout": 2.5}
    assert connect_args(sa.make_url("postgresql+psycopg://h/db"), 2.5) == {
        "connect_timeout": 3,
        "options": "-c statement_timeout=2500",
    }
    assert connect_args(sa.make_url("postgresql+psycopg://h/db"), 0.2)["connect_timeout"] == 2
    assert connect_args(sa.make_url("mysql+pymysql://h/db"), 2.5) == {
        "connect_timeout": 2.5,
        "read_timeout": 2.5,
        "write_timeout": 2.5,
    }
    assert connect_args(sa.make_url("postgresql+asyncpg://h/db"), 2.5) == {}
    with_options = sa.make_url("postgresql+psycopg://h/db?options=-c%20search_path%3Dapp")
    assert connect_args(with_options, 1)["options"] == (
        "-c search_path=app -c statement_timeout=1000"
    )


def test_the_timeout_is_in_force_on_the_connection(db_url: str, prefix: str) -> None:
    store = SQLStore(db_url, timeout=1.5, table_prefix=prefix, master_key="")
    try:
        with store.engine.connect() as conn:
            backend = store.engine.url.get_backend_name()
            if backend == "postgresql":
                setting = conn.execute(sa.text("SHOW statement_timeout")).scalar()
                assert setting == "1500ms"
            elif backend == "mysql":
                raw = conn.connection.dbapi_connection
                assert raw is not None
                assert (raw._read_timeout, raw.connect_timeout) == (1.5, 1.5)  # type: ignore[attr-defined]
            else:
                assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 1500
        assert store.engine.pool.timeout() == 1.5  # type: ignore[attr-defined]
    finally:
        store.close()


def test_init_from_several_processes_at_once(make_store: StoreFactory) -> None:
    stores = [make_store() for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def init(store: SQLStore) -> int:
        barrier.wait()
        return store.init()

    with ThreadPoolExecutor(max_workers=len(stores)) as pool:
        assert list(pool.map(init, stores)) == [SCHEMA_VERSION] * len(stores)
    stores[0].check()


def test_init_gives_up_after_three_failures(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    calls: list[int] = []

    def broken() -> int:
        calls.append(1)
        raise sa.exc.OperationalError("CREATE TABLE", {}, Exception("disk full"))

    monkeypatch.setattr(store, "_init_once", broken)
    with pytest.raises(sa.exc.OperationalError):
        store.init()
    assert len(calls) == 3


def test_a_dropped_connection_is_retried_once(shop: SQLStore) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            error = sa.exc.OperationalError("SELECT", {}, Exception("server closed"))
            error.connection_invalidated = True
            raise error
        return "answer"

    assert sql_engine.once_more(flaky) == "answer"
    assert len(calls) == 2
    calls.clear()

    def down() -> str:
        calls.append(1)
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    with pytest.raises(sa.exc.OperationalError):
        sql_engine.once_more(down)
    assert len(calls) == 1


# -- proofs (signed identity tokens) ----------------------------------------------------


def test_proofs_are_stored_changed_and_resolved(shop: SQLStore) -> None:
    assert shop.lookup("wid_demo").proofs == frozenset({"hash"})  # type: ignore[union-attr]
    shop.add_business("tokens_only", plan="pro", proofs="token")
    shop.add_widget("wid_tok", business_id="tokens_only")
    assert shop.lookup("wid_tok").proofs == frozenset({"token"})  # type: ignore[union-attr]
    shop.update_business("tokens_only", proofs=("token", "hash"))
    assert shop.get_business("tokens_only").proofs == frozenset({"hash", "token"})
    assert shop.lookup("wid_tok").proofs == frozenset({"hash", "token"})  # type: ignore[union-attr]
    for bad in ("jwt", (), ("hash", "sig")):
        with pytest.raises(StoreError, match="proofs must be"):
            shop.update_business("tokens_only", proofs=bad)
    with pytest.raises(StoreError, match="proofs must be"):
        shop.add_business("nope", plan="pro", proofs=["none"])


def test_a_version_1_store_upgrades_and_keeps_the_hash(make_store: StoreFactory) -> None:
    store = make_store()
    store.init()
    store.add_business("old", plan="pro")
    store.add_widget("wid_old", business_id="old")
    t = store.tables
    quote = store.engine.dialect.identifier_preparer.quote
    with store.engine.begin() as conn:  # the schema as version 1 left it
        conn.execute(sa.text(f"ALTER TABLE {quote(t.businesses.name)} DROP COLUMN proofs"))
        conn.execute(sa.update(t.version).values(version=1))
    assert store.schema_version() == 1
    assert store.init() == SCHEMA_VERSION == 2
    assert store.lookup("wid_old").proofs == frozenset({"hash"})  # type: ignore[union-attr]
    store.update_business("old", proofs="token")
    assert store.lookup("wid_old").proofs == frozenset({"token"})  # type: ignore[union-attr]
