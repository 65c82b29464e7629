"""The store's command line: from nothing to a verified chat request."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from starlette.testclient import TestClient

from ainisa_middleware import user_hash
from ainisa_middleware.cli import main
from ainisa_middleware.cli.store import parse_duration
from ainisa_middleware.stores.sql import SCHEMA_VERSION, SQLResolver, SQLStore

from .test_sql_asgi import client_for, message


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(db_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``--db`` and ``--table-prefix`` for this test; the tables are dropped after."""
    monkeypatch.delenv("AINISA_MASTER_KEY", raising=False)
    yield ["--db", db_url, "--table-prefix", prefix]
    store = SQLStore(db_url, table_prefix=prefix, master_key="")
    store.drop()
    store.close()


def test_from_nothing_to_a_verified_chat_request(
    db: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, "store", "init", *db)
    assert code == 0 and f"created the store schema (version {SCHEMA_VERSION})" in out
    code, out, _ = run(capsys, "store", "init", *db)
    assert code == 0 and "up to date" in out
    code, out, _ = run(
        capsys, "business", "add", "shop", "--name", "Demo Shop", "--plan", "pro", *db
    )
    assert (code, out.strip()) == (0, "added business 'shop' (plan pro: identity enabled)")
    code, out, _ = run(capsys, "widget", "add", "wid_demo", "--business", "shop", *db)
    assert code == 0
    code, out, err = run(capsys, "secret", "rotate", "shop", "--grace", "7d", *db)
    secret = out.strip()
    assert code == 0 and len(secret) >= 40 and "\n" not in secret
    assert "shown only this once" in err and secret not in err

    code, out, _ = run(capsys, "business", "show", "shop", *db)
    assert code == 0 and secret not in out
    assert "plan:             pro (identity enabled)" in out
    assert "wid_demo  enabled" in out and "1  active" in out
    code, out, _ = run(capsys, "business", "show", "shop", "--reveal", *db)
    assert f"value {secret}" in out

    monkeypatch.setenv("SHOP_SECRET", secret)
    code, out, _ = run(capsys, "hash", "--secret-env", "SHOP_SECRET", "42")
    assert out.strip() == user_hash(secret, "42")

    resolver = SQLResolver(db[1], table_prefix=db[3], master_key="")
    try:
        client: TestClient
        with client_for(resolver) as client:
            answer = client.post("/chat", json=message("42", out.strip()))
            assert (answer.status_code, answer.json()["status"]) == (200, "verified")
    finally:
        resolver.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_managing_a_store(
    db: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "store", "init", *db)[0] == 0
    assert (
        run(capsys, "business", "add", "small", "--plan", "free", "--require-identity", *db)[2]
        == ""
    )
    code, out, _ = run(capsys, "business", "show", "small", *db)
    assert "free (identity not in this plan)" in out and "require identity: yes" in out
    err = run(capsys, "secret", "rotate", "small", "--grace", "0", *db)[2]
    assert "note: plan 'free' does not include identity" in err
    assert "(none: add one" in out and "(none: make one" in out
    code, out, _ = run(
        capsys, "business", "update", "small", "--plan", "pro", "--no-require-identity", *db
    )
    assert (code, out.strip()) == (
        0,
        "updated business 'small'; other running processes see it when their cache expires "
        "(no invalidation bus)",
    )
    assert "require identity: no" in run(capsys, "business", "show", "small", *db)[1]

    assert run(capsys, "widget", "add", "wid_small", "--business", "small", *db)[0] == 0
    code, out, _ = run(capsys, "widget", "disable", "wid_small", *db)
    assert code == 0 and "404 unknown_widget" in out
    assert "wid_small  disabled" in run(capsys, "business", "show", "small", *db)[1]
    assert run(capsys, "widget", "enable", "wid_small", *db)[0] == 0

    monkeypatch.setenv("OLD_KEY", "the-secret-the-site-already-uses")
    code, out, err = run(capsys, "secret", "rotate", "small", "--import-env", "OLD_KEY", *db)
    assert out.strip() == "the-secret-the-site-already-uses"
    assert "note:" not in err  # the plan is pro by now
    run(capsys, "secret", "rotate", "small", "--grace", "0", *db)
    code, out, _ = run(capsys, "business", "show", "small", *db)
    assert "2  expired" in out and "3  active" in out
    code, out, _ = run(capsys, "secret", "retire", "3", *db)
    assert (code, out.strip()) == (
        0,
        "retired secret 3: it no longer verifies in the store; other running processes see "
        "it when their cache expires (no invalidation bus)",
    )
    assert "3  retired" in run(capsys, "business", "show", "small", *db)[1]

    code, key, _ = run(capsys, "store", "genkey")
    Fernet(key.strip().encode())  # a usable key
    monkeypatch.setenv("AINISA_MASTER_KEY", key.strip())
    code, out, _ = run(capsys, "store", "reencrypt", *db)
    assert (code, out.split()[:2]) == (0, ["re-encrypted", "3"])
    code, out, _ = run(capsys, "business", "show", "small", "--reveal", *db)
    assert "value the-secret-the-site-already-uses" in out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["business", "add", "shop", "--plan", "pro"], "business 'shop' already exists"),
        (["business", "add", "x y", "--plan", "pro"], "business ID 'x y' must be"),
        (["business", "show", "nope"], "no business 'nope'"),
        (["business", "update", "shop"], "nothing to change"),
        (["widget", "add", "w1", "--business", "nope"], "no business 'nope'; add it first"),
        (["widget", "disable", "nope"], "no widget 'nope'"),
        (["secret", "rotate", "nope"], "no business 'nope'"),
        (["secret", "rotate", "shop", "--import-env", "UNSET_VAR"], "UNSET_VAR is not set"),
        (["secret", "retire", "77"], "no secret 77"),
        (["store", "reencrypt"], "AINISA_MASTER_KEY is not set"),
    ],
)
def test_failures_are_one_line_and_change_nothing(
    db: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    run(capsys, "store", "init", *db)
    run(capsys, "business", "add", "shop", "--plan", "pro", *db)
    before = run(capsys, "business", "show", "shop", *db)[1]
    code, out, err = run(capsys, *argv, *db)
    assert code == 2 and out == ""
    assert err.startswith("ainisa-middleware: error: ") and error in err
    assert err.count("\n") == 1
    assert run(capsys, "business", "show", "shop", *db)[1] == before


def test_a_store_without_schema_says_to_run_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "business", "show", "shop", "--db", f"sqlite:///{tmp_path}/x.db")
    assert code == 2 and "run 'ainisa-middleware store init'" in err


def test_an_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://app:hunter2@127.0.0.1:1/app"
    code, _, err = run(capsys, "store", "init", "--db", url)
    assert code == 2 and err.count("\n") == 1
    assert "database error on postgresql+psycopg://app:***@127.0.0.1:1/app" in err
    assert "hunter2" not in err
    code, _, err = run(capsys, "store", "init", "--db", "nonsense")
    assert code == 2 and "not one SQLAlchemy understands" in err


def test_the_db_option_defaults_to_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AINISA_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    assert run(capsys, "store", "init")[0] == 0
    assert (tmp_path / "env.db").exists()
    monkeypatch.delenv("AINISA_DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    assert "sqlite:///ainisa.db" in run(capsys, "store", "init")[1]
    assert (tmp_path / "ainisa.db").exists()


def test_without_sqlalchemy_the_commands_name_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.startswith(("sqlalchemy", "cryptography"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "ainisa_middleware.stores.sql")
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    code, _, err = run(capsys, "store", "init")
    assert code == 2 and 'pip install "ainisa-middleware[sql]"' in err
    code, _, err = run(capsys, "store", "genkey")
    assert code == 2 and 'pip install "ainisa-middleware[sql]"' in err
    assert run(capsys, "hash", "--secret-env", "PATH", "1")[0] == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 604800),
        ("12h", 43200),
        ("30m", 1800),
        ("45s", 45),
        ("2w", 1209600),
        ("0", 0),
        ("1.5h", 5400),
        (" 3D ", 259200),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["7", "d", "-1d", "7 days", "1y"])
def test_bad_durations_are_refused(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["secret", "rotate", "shop", f"--grace={text}"])
    assert exit_.value.code == 2
    assert "is not a duration" in capsys.readouterr().err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_token_business_from_the_command_line(
    db: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "store", "init", *db)[0] == 0
    code, _, _ = run(capsys, "business", "add", "shop", "--plan", "pro", "--proofs", "token", *db)
    assert code == 0
    assert "proofs:           token" in run(capsys, "business", "show", "shop", *db)[1]
    assert run(capsys, "widget", "add", "wid_demo", "--business", "shop", *db)[0] == 0
    secret = run(capsys, "secret", "rotate", "shop", *db)[1].strip()
    store = SQLStore(db[1], table_prefix=db[3], master_key="")
    secret_id = store.get_business("shop").secrets[0].id
    store.close()
    monkeypatch.setenv("SHOP_SECRET", secret)
    code, token, _ = run(
        capsys, "token", "--secret-env", "SHOP_SECRET", "42", "--widget-id", "wid_demo",
        "--kid", str(secret_id), "--firstname", "Ada",
    )  # fmt: skip
    assert code == 0 and secret not in token
    resolver = SQLResolver(db[1], table_prefix=db[3], master_key="")
    try:
        client: TestClient
        with client_for(resolver) as client:
            body = {"widget_id": "wid_demo", "user": {"user_token": token.strip()}}
            answer = client.post("/chat", json=body).json()
            assert (answer["status"], answer["user_id"]) == ("verified", "42")
            hashed = message("42", user_hash(secret, "42"))
            assert client.post("/chat", json=hashed).json()["status"] == "invalid_hash"
        code, out, _ = run(capsys, "business", "update", "shop", "--proofs", "hash,token", *db)
        assert "proofs:           hash, token" in run(capsys, "business", "show", "shop", *db)[1]
    finally:
        resolver.close()
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        run(capsys, "business", "update", "shop", "--proofs", "jwt", *db)
    assert "invalid choice: 'jwt'" in capsys.readouterr().err
