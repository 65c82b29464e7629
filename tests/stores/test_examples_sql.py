"""examples/sql: the command line fills the store, the app verifies a visitor."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from starlette.testclient import TestClient

from ainisa_middleware import user_hash
from ainisa_middleware.cli import main
from ainisa_middleware.stores.sql import StoreError

APP = Path(__file__).resolve().parents[2] / "examples" / "sql" / "app.py"


def load_app(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AINISA_DATABASE_URL", f"sqlite:///{tmp_path / 'ainisa.db'}")
    monkeypatch.delenv("AINISA_MASTER_KEY", raising=False)
    monkeypatch.setenv("AINISA_RESOLVER_TIMEOUT", "2")
    return tmp_path


def test_the_example_verifies_a_visitor(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "genkey"]) == 0
    key = capsys.readouterr().out.strip()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AINISA_MASTER_KEY", key)
        for argv in (
            ["store", "init"],
            ["business", "add", "shop", "--name", "Demo Shop", "--plan", "pro"],
            ["widget", "add", "wid_demo", "--business", "shop"],
            ["secret", "rotate", "shop"],
        ):
            assert main(argv) == 0
        secret = capsys.readouterr().out.strip().splitlines()[-1]
        module = load_app("example_sql_app")
        try:
            assert module.resolver.store.timeout == 2.0
            with TestClient(module.app) as client:
                visitor = {
                    "user_id": "42",
                    "user_hash": user_hash(secret, "42"),
                    "firstname": "Ada",
                }
                answer = client.post("/chat", json={"widget_id": "wid_demo", "user": visitor})
                assert answer.json() == {
                    "business": "shop",
                    "status": "verified",
                    "user_id": "42",
                    "firstname": "Ada",
                }
                unknown = client.post("/chat", json={"widget_id": "wid_nope"})
                assert unknown.status_code == 404
        finally:
            module.resolver.close()
            sys.modules.pop("example_sql_app", None)


def test_the_example_refuses_to_start_without_the_schema(env: Path) -> None:
    module = load_app("example_sql_app_empty")
    try:
        with pytest.raises(StoreError, match="store init"), TestClient(module.app):
            pass
    finally:
        module.resolver.close()


def test_the_flood_measurement_runs(db_url: str) -> None:
    spec = importlib.util.spec_from_file_location("measure_flood", APP.parent / "measure_flood.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = module.measure(db_url, ids=200, widgets=20)
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == [
        "1 queries",
        "1 queries",
        "200 queries",
        "200 queries",
    ]
