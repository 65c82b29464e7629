"""``ainisa-middleware check``: a deployment's store, secrets and bus, before traffic."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from ainisa_middleware.cli import main
from ainisa_middleware.deployment import BUS_FACTORY, BUS_MODULE, bus_findings, render
from ainisa_middleware.stores.sql import SQLStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def db(db_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    monkeypatch.delenv("AINISA_MASTER_KEY", raising=False)
    monkeypatch.delenv("AINISA_INVALIDATION_URL", raising=False)
    yield ["--db", db_url, "--table-prefix", prefix]
    store = SQLStore(db_url, table_prefix=prefix, master_key="")
    store.drop()
    store.close()


def test_a_healthy_store_passes_with_its_counts_and_no_secret_printed(
    db: list[str],
    db_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AINISA_MASTER_KEY", key)
    store = SQLStore(db_url, table_prefix=prefix)
    store.init()
    store.add_business("shop", plan="pro")
    store.add_business("cafe", plan="free")
    store.add_widget("w1", business_id="shop")
    store.add_widget("w2", business_id="shop")
    store.add_widget("w3", business_id="cafe")
    store.disable_widget("w3")
    first = store.rotate_secret("shop").value
    second = store.rotate_secret("shop").value  # the first verifies for the grace period
    retired = store.rotate_secret("cafe")
    store.retire_secret(retired.id)
    store.close()

    code, out = run(capsys, "check", *db)
    assert code == 0, out
    assert "schema version 1 (current)" in out
    assert "all 3 stored secret(s) open under the master key(s)" in out
    assert "2 business(es), 3 widget(s) (1 disabled), 2 active secret(s)" in out
    assert "no problems found" in out
    for secret in (first, second, retired.value, key):
        assert secret not in out


def test_no_schema_is_a_problem_that_names_store_init(
    db: list[str], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).touch()  # an empty database
    code, out = run(capsys, "check", *db)
    assert code == 1
    assert "FAIL  the store has no schema" in out and "ainisa-middleware store init" in out


def test_an_unreachable_store_is_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    # A port nothing listens on: the driver's refusal, with the password hidden.
    url = "postgresql+psycopg://user:hunter2@127.0.0.1:9/none?connect_timeout=2"
    code, out = run(capsys, "check", "--db", url)
    assert code == 1 and "cannot reach the store" in out and "hunter2" not in out


def test_secrets_under_a_lost_key_and_plain_text_under_a_key_are_problems(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/check.db"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    plain = SQLStore(url, master_key="")
    plain.init()
    plain.add_business("shop", plan="pro")
    plain.add_widget("w1", business_id="shop")
    plain.rotate_secret("shop")  # stored in plain text
    plain.close()
    sealed = SQLStore(url, master_key=old)
    sealed.rotate_secret("shop", value="sk_live_sealed_under_old_key_1")
    sealed.close()

    monkeypatch.setenv("AINISA_MASTER_KEY", new)  # the old key was lost
    monkeypatch.delenv("AINISA_INVALIDATION_URL", raising=False)
    code, out = run(capsys, "check", "--db", url)
    assert code == 1
    assert "1 of 2 stored secret(s) cannot be decrypted" in out and "(secret ids 2)" in out
    assert "store reencrypt" in out
    assert "1 secret(s) are stored in plain text though AINISA_MASTER_KEY is set" in out
    assert "sk_live_sealed_under_old_key_1" not in out and old not in out and new not in out

    monkeypatch.delenv("AINISA_MASTER_KEY")  # no key at all: the sealed one cannot open
    code, out = run(capsys, "check", "--db", url)
    assert code == 1 and "WARN  1 secret(s) are stored in plain text" in out


def test_an_identity_business_without_an_active_secret_is_a_warning(
    db: list[str], db_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLStore(db_url, table_prefix=prefix, master_key="")
    store.init()
    store.add_business("shop", plan="pro")
    store.add_widget("w1", business_id="shop")
    store.close()
    code, out = run(capsys, "check", *db)
    assert code == 0  # it works; no visitor of shop can be verified yet
    assert "WARN  1 business(es) with identity" in out and "secret rotate" in out


def test_a_newer_schema_says_to_upgrade_the_package(
    db: list[str], db_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLStore(db_url, table_prefix=prefix, master_key="")
    store.init()
    with store.engine.begin() as conn:
        conn.execute(sa.update(store.tables.version).values(version=99))
    store.close()
    code, out = run(capsys, "check", *db)
    assert code == 1 and "schema version 99 is newer" in out


# --- the invalidation bus step --------------------------------------------------------------


class Bus:
    def __init__(self, url: str, answers: bool) -> None:
        self.url, self.answers, self.closed = url, answers, False

    def ping(self) -> None:
        if not self.answers:
            raise ConnectionRefusedError("no server")

    def close(self) -> None:
        self.closed = True


def test_the_bus_step_pings_the_bus_a_url_names_and_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[Bus] = []

    def from_url(url: str) -> Bus:
        opened.append(Bus(url, answers="good" in url))
        return opened[-1]

    module = types.ModuleType(BUS_MODULE)
    setattr(module, BUS_FACTORY, from_url)
    monkeypatch.setitem(sys.modules, BUS_MODULE, module)
    ok = bus_findings("redis://good:6379/0")
    bad = bus_findings("redis://user:pw@bad:6379/0")
    assert [f.level for f in ok] == ["ok"] and "answers" in ok[0].message
    assert [f.level for f in bad] == ["problem"]
    assert "does not answer (ConnectionRefusedError)" in bad[0].message
    assert "pw" not in bad[0].message and "***" in bad[0].message
    assert all(bus.closed for bus in opened)


def test_the_bus_step_without_a_bus_module_or_without_a_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, BUS_MODULE, None)  # import raises ImportError
    monkeypatch.setenv("AINISA_INVALIDATION_URL", "redis://127.0.0.1:6379/0")
    (finding,) = bus_findings(None)
    assert finding.level == "problem" and "has no invalidation bus" in finding.message
    monkeypatch.delenv("AINISA_INVALIDATION_URL")
    assert [f.level for f in bus_findings(None)] == ["ok"]
    text, problems = render([finding])
    assert problems == 1 and "-> upgrade ainisa-middleware" in text


def test_check_reports_a_bus_given_on_the_command_line(
    db: list[str],
    db_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType(BUS_MODULE)
    setattr(module, BUS_FACTORY, lambda url: Bus(url, answers=False))
    monkeypatch.setitem(sys.modules, BUS_MODULE, module)
    store = SQLStore(db_url, table_prefix=prefix, master_key="")
    store.init()
    store.close()
    code, out = run(capsys, "check", *db, "--invalidation-url", "redis://127.0.0.1:1/0")
    assert code == 1 and "invalidation bus redis://127.0.0.1:1/0 does not answer" in out


def test_a_missing_sqlite_file_is_a_problem_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AINISA_INVALIDATION_URL", raising=False)
    missing = tmp_path / "typo.db"
    code, out = run(capsys, "check", "--db", f"sqlite:///{missing}")
    assert code == 1 and f"no database file at {missing}" in out
    assert not missing.exists()
