"""The SQL store on a bus: each change is published after it commits, and the resolver's
cache and index of widget IDs drop what it names."""

from __future__ import annotations

import logging
import socket

import pytest

from ainisa_middleware.cli import main
from ainisa_middleware.invalidation import LocalBus
from ainisa_middleware.stores.sql import SQLResolver, SQLStore

from .conftest import FakeMonotonic, StoreFactory


class Recorder(LocalBus):
    """A bus that also records what was published."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[list[str], list[str]]] = []

    def publish(self, widgets: object = (), businesses: object = ()) -> None:
        self.sent.append((sorted(widgets), sorted(businesses)))  # type: ignore[call-overload]
        super().publish(widgets, businesses)  # type: ignore[arg-type]


def test_every_change_publishes_its_ids_after_it_commits(make_store: StoreFactory) -> None:
    bus = Recorder()
    store = make_store(invalidation=bus)
    store.init()
    store.add_business("shop", plan="pro")
    store.add_widget("wid_a", business_id="shop")
    secret = store.rotate_secret("shop")
    store.update_business("shop", plan="free")
    store.disable_widget("wid_a")
    store.enable_widget("wid_a")
    store.retire_secret(secret.id)
    assert bus.sent == [
        ([], ["shop"]),
        (["wid_a"], ["shop"]),
        ([], ["shop"]),
        ([], ["shop"]),
        (["wid_a"], []),
        (["wid_a"], []),
        ([], ["shop"]),
    ]
    with pytest.raises(Exception, match="no business"):
        store.rotate_secret("nobody")  # a change that did not happen publishes nothing
    assert len(bus.sent) == 7


def test_the_resolver_serves_a_new_widget_and_drops_a_retired_secret_at_once(
    make_store: StoreFactory, monotonic: FakeMonotonic
) -> None:
    bus = LocalBus()
    store = make_store(invalidation=bus)
    store.init()
    store.add_business("shop", plan="pro")
    store.add_widget("wid_a", business_id="shop")
    secret = store.rotate_secret("shop")
    # Long index and cache times on a clock that does not move: only the bus can help.
    resolver = SQLResolver(store, monotonic=monotonic, index_max_age=300, negative_ttl=300)
    assert resolver.bus is bus
    assert resolver.resolve("wid_b") is None
    assert resolver.peek("wid_b") == (True, None)  # the index says unknown
    store.add_widget("wid_b", business_id="shop")
    business = resolver.resolve("wid_b")
    assert business is not None and business.secrets == (secret.value,)
    store.retire_secret(secret.id)
    business = resolver.resolve("wid_a")
    assert business is not None and business.secrets == ()
    resolver.close()


def _dead_redis() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_a_bus_that_is_down_keeps_the_change_and_says_so(
    db_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AINISA_MASTER_KEY", raising=False)
    monkeypatch.delenv("AINISA_INVALIDATION_URL", raising=False)
    db = ["--db", db_url, "--table-prefix", prefix]
    dead = ["--invalidation-url", _dead_redis()]
    try:
        assert main(["store", "init", *db]) == 0
        assert main(["business", "add", "shop", "--plan", "pro", *db]) == 0
        assert main(["secret", "rotate", "shop", *db]) == 0
        capsys.readouterr()
        with caplog.at_level(logging.WARNING, "ainisa_middleware.stores.sql"):
            code = main(["secret", "retire", "1", *db, *dead])
        out, _ = capsys.readouterr()
        # Exit 1: a secret retired because it leaked still verifies somewhere.
        assert code == 1
        assert "retired secret 1: it no longer verifies in the store; but the invalidation " in out
        assert "see it when their cache expires" in out
        assert "the change is saved, but redis 127.0.0.1" in caplog.text
    finally:
        store = SQLStore(db_url, table_prefix=prefix, master_key="", invalidation=False)
        try:
            retired = store.get_business("shop").secrets[0].retired
            assert retired is not None  # the change itself was made
        finally:
            store.drop()
            store.close()


def test_the_bus_url_comes_from_the_environment_by_default(
    db_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AINISA_INVALIDATION_URL", "local://")
    resolver = SQLResolver(db_url, table_prefix=prefix, master_key="")
    try:
        assert isinstance(resolver.bus, LocalBus)
        assert resolver.store.bus is resolver.bus  # the store publishes where it listens
    finally:
        resolver.close()
    quiet = SQLResolver(db_url, table_prefix=prefix, master_key="", invalidation=False)
    try:
        assert quiet.bus is None and quiet.store.bus is None
    finally:
        quiet.close()
