"""The invalidation bus: messages, the caches it drops, and its subscriber's lifecycle.

The Redis and PostgreSQL tests run against the real servers (``AINISA_TEST_REDIS_URL``,
``AINISA_TEST_POSTGRES_URL``); each test has its own channel, so runs sharing a server
do not meet. The many-process tests are in tests/stores/test_fleet.py.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from ainisa_middleware import Business, CachedResolver, ConfigurationError
from ainisa_middleware.invalidation import (
    BusError,
    LocalBus,
    ThreadedBus,
    connect,
    decode,
    encode,
    from_setting,
)
from tests.buses import bus_url

from .conftest import CountingResolver

SHOP = Business(id="shop", secrets=("s1",))
OTHER = Business(id="other", secrets=("s2",))
MAPPING = {"wid_a": SHOP, "wid_b": SHOP, "wid_c": OTHER}
LOGGER = "ainisa_middleware.invalidation"


def wait_until(condition: Callable[[], bool], limit: float = 5.0) -> float:
    """Seconds until ``condition()`` holds; fails past ``limit``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > limit:
            raise AssertionError(f"not within {limit} s")
        time.sleep(0.005)
    return time.monotonic() - start


def bus_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ainisa-invalidation")]


# -- messages -----------------------------------------------------------------------------


def test_a_message_carries_widget_and_business_ids() -> None:
    payload = encode(["wid_b", "wid_a", "wid_a"], ["shop"])
    assert json.loads(payload) == {"w": ["wid_a", "wid_b"], "b": ["shop"]}
    assert decode(payload) == (frozenset({"wid_a", "wid_b"}), frozenset({"shop"}))
    assert decode(payload.encode()) == decode(payload)


def test_a_message_too_large_for_notify_says_drop_everything() -> None:
    assert decode(encode([f"wid_{n:0120d}" for n in range(100)], [])) is None


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[]",
        '"wid_a"',
        '{"all": true}',
        '{"w": "wid_a"}',
        '{"w": [1]}',
        '{"b": [null]}',
        json.dumps({"w": ["x" * 129]}),
        json.dumps({"w": [f"w{n}" for n in range(1001)]}),
        '{"w": ["a"], "w": ["b"], "b": {"x": 1}}',
    ],
)
def test_anything_but_a_well_formed_message_drops_everything(payload: str) -> None:
    # Whoever can publish on the channel may send anything: forgetting too much costs
    # queries, forgetting too little keeps a retired secret.
    assert decode(payload) is None


# -- URLs ---------------------------------------------------------------------------------


def test_a_url_names_the_engine_and_may_name_the_channel() -> None:
    redis_bus = connect("redis://127.0.0.1:6379/0?channel=shop_eu")
    postgres_bus = connect("postgres://app@127.0.0.1/app?channel=shop_eu&sslmode=disable")
    try:
        assert type(redis_bus).__name__ == "RedisBus"
        assert type(postgres_bus).__name__ == "PostgresBus"
        assert redis_bus.channel == postgres_bus.channel == "shop_eu"  # type: ignore[attr-defined]
        assert postgres_bus.url == "postgres://app@127.0.0.1/app?sslmode=disable"  # type: ignore[attr-defined]
        assert "secret" not in repr(connect("redis://:secret@127.0.0.1:6379/0"))
    finally:
        redis_bus.close()
        postgres_bus.close()
    assert isinstance(connect("local://"), LocalBus)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://db/app", "must start with redis://"),
        ("redis://127.0.0.1/0?channel=a;drop", "channel must be letters"),
        (42, "must be a bus URL"),
    ],
)
def test_a_bad_bus_is_refused_with_what_to_write(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        from_setting(value)


def test_no_bus_unless_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AINISA_INVALIDATION_URL", raising=False)
    assert from_setting(None) == (None, False)
    monkeypatch.setenv("AINISA_INVALIDATION_URL", "local://")
    bus, owned = from_setting(None)
    assert isinstance(bus, LocalBus) and owned
    assert from_setting(False) == (None, False)
    assert from_setting(None, env=False) == (None, False)
    given = LocalBus()
    assert from_setting(given) == (given, False)


# -- what a message drops ------------------------------------------------------------------


def test_a_message_drops_its_widgets_and_its_businesses_widgets_only() -> None:
    bus = LocalBus()
    inner = CountingResolver(MAPPING)
    cache = CachedResolver(inner, invalidation=bus)
    for widget in ("wid_a", "wid_b", "wid_c", "wid_unknown"):
        cache.resolve(widget)
    bus.publish(businesses=["shop"])
    assert cache.peek("wid_a") == (False, None)
    assert cache.peek("wid_b") == (False, None)
    assert cache.peek("wid_c") == (True, OTHER)
    assert cache.peek("wid_unknown") == (True, None)
    bus.publish(widgets=["wid_unknown"])  # a widget just added: its cached miss goes
    assert cache.peek("wid_unknown") == (False, None)
    cache.close()
    bus.publish(widgets=["wid_c"])  # no longer listening
    assert cache.peek("wid_c") == (True, OTHER)


def test_an_answer_read_before_an_invalidation_is_not_cached_after_it() -> None:
    bus = LocalBus()
    reading, release = threading.Event(), threading.Event()

    class Slow(CountingResolver):
        def resolve(self, widget_id: str) -> Business | None:
            reading.set()
            release.wait(5)
            return super().resolve(widget_id)

    cache = CachedResolver(Slow(MAPPING), invalidation=bus)
    answers: list[Business | None] = []
    worker = threading.Thread(target=lambda: answers.append(cache.resolve("wid_a")))
    worker.start()
    assert reading.wait(5)
    bus.publish(businesses=["shop"])  # the secret changed while the old row was being read
    release.set()
    worker.join(5)
    assert answers == [SHOP]  # the request in flight still gets its answer...
    assert cache.peek("wid_a") == (False, None)  # ...but the next one reads again


# -- the real buses -----------------------------------------------------------------------


@pytest.fixture(params=["redis", "postgres"])
def make_bus(request: pytest.FixtureRequest) -> Iterator[Callable[..., ThreadedBus]]:
    """Buses on the real server, all on one channel of this test's own; closed after."""
    url = bus_url(request.param)
    channel = f"t{uuid.uuid4().hex[:12]}"
    made: list[ThreadedBus] = []

    def make(**options: object) -> ThreadedBus:
        options.setdefault("channel", channel)
        options.setdefault("backoff", (0.05, 0.2))
        bus = connect(url, **options)
        assert isinstance(bus, ThreadedBus)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()
    assert bus_threads() == []


def test_a_message_reaches_a_cache_in_another_process_s_bus_within_a_second(
    make_bus: Callable[..., ThreadedBus],
) -> None:
    listening, sending = make_bus(), make_bus()
    inner = CountingResolver(MAPPING)
    cache = CachedResolver(inner, invalidation=listening)
    wait_until(lambda: listening.connected)
    cache.resolve("wid_a")
    cache.resolve("wid_c")
    sending.ping()
    sending.publish(businesses=["shop"])
    took = wait_until(lambda: cache.peek("wid_a") == (False, None), limit=1.0)
    assert took < 1.0
    assert cache.peek("wid_c") == (True, OTHER)
    assert listening.subscriptions == 1


def test_close_ends_the_thread_and_a_closed_bus_stays_closed(
    make_bus: Callable[..., ThreadedBus],
) -> None:
    bus = make_bus()
    cache = CachedResolver(CountingResolver(MAPPING), invalidation=bus)
    wait_until(lambda: bus.connected)
    assert len(bus_threads()) == 1
    started = time.monotonic()
    bus.close()
    assert time.monotonic() - started < 2.0
    assert bus_threads() == []
    bus.subscribe(cache)  # subscribing to a closed bus starts nothing
    assert bus_threads() == []


def kill_subscriber(bus: ThreadedBus) -> None:
    """Cut the subscriber's connection from the server's side, as a failover would."""
    name = f"ainisa_invalidation:{bus.channel}"
    if type(bus).__name__ == "RedisBus":
        import redis

        admin = redis.Redis.from_url(bus.url)  # type: ignore[attr-defined]
        try:
            ids = [c["id"] for c in admin.client_list() if c.get("name") == name]
            for client_id in ids:
                admin.client_kill_filter(_id=client_id)
        finally:
            admin.close()
    else:
        import psycopg

        with psycopg.connect(bus.url, autocommit=True) as admin:  # type: ignore[attr-defined]
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchall()
            ids = [row[0] for row in rows]
    assert ids, "no subscriber connection to kill"


def test_a_killed_connection_costs_one_warning_then_a_reconnect_that_clears_the_cache(
    make_bus: Callable[..., ThreadedBus], caplog: pytest.LogCaptureFixture
) -> None:
    bus = make_bus()
    inner = CountingResolver(MAPPING)
    cache = CachedResolver(inner, invalidation=bus)
    wait_until(lambda: bus.connected)
    cache.resolve("wid_a")
    with caplog.at_level(logging.WARNING, LOGGER):
        kill_subscriber(bus)
        # Requests keep flowing from the cache (TTL behaviour) and never wait on the bus.
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert cache.resolve("wid_a") is SHOP
            assert time.monotonic() - started < 0.05
        wait_until(lambda: bus.subscriptions == 2 and bus.connected, limit=10)
    # Cleared once, on reconnecting: the store was asked again once (during the loop
    # above, when the reconnect came first), or will be on the next request.
    asked_again = len(inner.calls) - 1
    assert asked_again + (cache.peek("wid_a") == (False, None)) == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 2, warnings
    assert "is unreachable" in warnings[0] and "ttl" in warnings[0]
    assert "answers again; caches cleared once" in warnings[1]
    # And it listens again.
    cache.resolve("wid_a")
    make_bus().publish(widgets=["wid_a"])
    wait_until(lambda: cache.peek("wid_a") == (False, None), limit=1.0)


def _dead_url(kind: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return (
        f"redis://127.0.0.1:{port}/0" if kind == "redis" else f"postgresql://x@127.0.0.1:{port}/x"
    )


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_a_bus_that_never_answers_logs_once_and_never_holds_a_request(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = connect(_dead_url(kind), backoff=(0.01, 0.05), timeout=0.5)
    assert isinstance(bus, ThreadedBus)
    inner = CountingResolver(MAPPING)
    with caplog.at_level(logging.WARNING, LOGGER):
        started = time.monotonic()
        cache = CachedResolver(inner, invalidation=bus)
        assert cache.resolve("wid_a") is SHOP
        assert cache.resolve("wid_a") is SHOP
        assert time.monotonic() - started < 0.2
        time.sleep(0.6)  # many reconnection attempts
        assert inner.calls == ["wid_a"]  # the cache kept its entry: TTL behaviour
        with pytest.raises(BusError, match="127.0.0.1"):
            bus.ping()
        with pytest.raises(BusError, match="did not take the message"):
            bus.publish(widgets=["wid_a"])
        assert cache.peek("wid_a") == (False, None)  # this process still dropped it
        bus.close()
    assert bus_threads() == []
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "is unreachable" in warnings[0], warnings


_FORKED = """
import os, sys, time
from ainisa_middleware import Business, CachedResolver, StaticResolver
from ainisa_middleware.invalidation import connect

url = sys.argv[1]
bus = connect(url)
cache = CachedResolver(StaticResolver({"wid_a": Business(id="shop", secrets=("s",))}),
                       invalidation=bus)
def wait(condition):
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
wait(lambda: bus.connected)
pid = os.fork()
if pid == 0:  # a gunicorn worker forked from a --preload master
    wait(lambda: bus.connected and bus.subscriptions == 2)
    cache.resolve("wid_a")
    other = connect(url)
    other.publish(widgets=["wid_a"])
    wait(lambda: cache.peek("wid_a") == (False, None))
    other.close()
    bus.close()
    os._exit(0)
_, status = os.waitpid(pid, 0)
bus.close()
print("child", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_a_forked_worker_listens_on_its_own_connection(kind: str) -> None:
    import subprocess
    import sys

    url = f"{bus_url(kind)}?channel=t{uuid.uuid4().hex[:12]}"
    done = subprocess.run(
        [sys.executable, "-c", _FORKED, url], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "child 0", done.stdout + done.stderr
