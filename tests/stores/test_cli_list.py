"""Operators can list and trust the store: lists without secrets, URLs as written, no
empty files, typos refused, and wording that says what happens when."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ainisa_middleware.cli import main
from ainisa_middleware.stores.sql import SQLStore

from .test_cli import run


@pytest.fixture
def db(db_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    monkeypatch.delenv("AINISA_MASTER_KEY", raising=False)
    monkeypatch.delenv("AINISA_INVALIDATION_URL", raising=False)
    yield ["--db", db_url, "--table-prefix", prefix]
    store = SQLStore(db_url, table_prefix=prefix, master_key="")
    store.drop()
    store.close()


@pytest.fixture
def filled(db: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[list[str], str]:
    for argv in (
        ["store", "init"],
        ["business", "add", "shop", "--plan", "pro", "--name", "Demo Shop"],
        ["business", "add", "cafe", "--plan", "free"],
        ["widget", "add", "wid_shop", "--business", "shop"],
        ["widget", "add", "wid_cafe", "--business", "cafe"],
        ["widget", "disable", "wid_cafe"],
        ["secret", "rotate", "shop"],
    ):
        assert main([*argv, *db]) == 0, argv
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["secret", "rotate", "shop", *db]) == 0
    second = capsys.readouterr().out.strip()
    assert main(["secret", "retire", "1", *db]) == 0
    capsys.readouterr()
    return db, first + second


def test_lists_give_ids_states_and_dates_and_never_a_secret(
    filled: tuple[list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, values = filled
    code, out, _ = run(capsys, "business", "list", *db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "PLAN",
        "IDENTITY",
        "WIDGETS",
        "ACTIVE",
        "SECRETS",
        "CREATED",
        "NAME",
    ]
    assert lines[1].split()[:5] == ["cafe", "free", "not", "in", "plan"]
    assert lines[2].split()[:5] == ["shop", "pro", "on", "1", "1"]
    code, out, _ = run(capsys, "widget", "list", "--json", *db)
    widgets = json.loads(out)
    assert [(w["id"], w["business"], w["state"]) for w in widgets] == [
        ("wid_cafe", "cafe", "disabled"),
        ("wid_shop", "shop", "enabled"),
    ]
    code, out, _ = run(capsys, "secret", "list", "--json", "--business", "shop", *db)
    secrets = json.loads(out)
    assert [(s["id"], s["state"]) for s in secrets] == [(2, "active"), (1, "retired")]
    assert secrets[1]["retired"] is not None and secrets[1]["created"].endswith("+00:00")
    for command in (["business", "list"], ["widget", "list"], ["secret", "list"]):
        for extra in ([], ["--json"]):
            code, out, _ = run(capsys, *command, *extra, *db)
            assert code == 0
            for value in (values[:43], values[43:]):
                assert value not in out
    code, out, err = run(capsys, "secret", "list", "--business", "nobody", *db)
    assert (code, err.strip()) == (2, "ainisa-middleware: error: no business 'nobody'")


def test_an_unknown_plan_is_refused_with_the_known_ones(
    db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "init", *db]) == 0
    code, _, err = run(capsys, "business", "add", "shop", "--plan", "prof", *db)
    assert code == 2
    assert err.strip() == (
        "ainisa-middleware: error: unknown plan 'prof'; the known plans are business, "
        "enterprise, free, pro, starter (identity in business, enterprise, pro)"
    )


def test_a_command_that_only_reads_never_creates_an_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.db"
    for argv in (["business", "list"], ["secret", "list"], ["business", "show", "x"]):
        code, _, err = run(capsys, *argv, "--db", f"sqlite:///{path}")
        assert code == 2
        assert "there is no store at" in err and "store init" in err
    assert not path.exists()


def test_postgres_urls_are_accepted_like_postgresql(
    capsys: pytest.CaptureFixture[str], prefix: str
) -> None:
    from tests.buses import bus_url

    url = bus_url("postgres").replace("postgresql+psycopg://", "postgres://", 1)
    assert url.startswith("postgres://")
    code, out, _ = run(capsys, "store", "init", "--db", url, "--table-prefix", prefix)
    try:
        assert code == 0 and "created the store schema" in out
    finally:
        store = SQLStore(url, table_prefix=prefix, master_key="")
        assert store.engine.url.drivername == "postgresql+psycopg"
        store.drop()
        store.close()


def test_rotate_and_retire_say_what_happens_and_when(
    db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["store", "init"], ["business", "add", "shop", "--plan", "pro"]):
        assert main([*argv, *db]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "secret", "rotate", "shop", "--grace", "12h", *db)
    assert code == 0
    assert "secret 1 is now the current secret of business 'shop' and verifies at once" in err
    assert "earlier secrets still active keep verifying until 20" in err
    code, _, err = run(capsys, "secret", "rotate", "shop", "--grace", "0", *db)
    assert "earlier secrets stopped verifying now (--grace 0)" in err
    assert "see it when their cache expires (no invalidation bus)" in err
    code, out, _ = run(capsys, "secret", "retire", "1", *db, "--invalidation-url", "local://")
    assert (code, out.strip()) == (
        0,
        "retired secret 1: it no longer verifies in the store; every process on the "
        "invalidation bus has dropped it from its cache",
    )
