"""The command line: secrets from the environment or stdin, never argv."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from ainisa_middleware import user_hash
from ainisa_middleware.cli import main


def test_hash_from_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOP_SECRET", "s3cret")
    assert main(["hash", "--secret-env", "SHOP_SECRET", "42"]) == 0
    assert capsys.readouterr().out == user_hash("s3cret", "42") + "\n"


def test_hash_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    assert main(["hash", "Zoë"]) == 0
    assert capsys.readouterr().out.strip() == user_hash("s3cret", "Zoë")


@pytest.mark.parametrize(
    ("env", "stdin", "message"),
    [
        ({}, "", "no secret"),
        ({"EMPTY": ""}, "", "EMPTY is empty"),
    ],
)
def test_missing_secret_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    stdin: str,
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    args = ["hash", "--secret-env", "EMPTY", "1"] if env else ["hash", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unset_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    assert main(["hash", "--secret-env", "NOPE_SECRET", "1"]) == 2
    assert "NOPE_SECRET is not set" in capsys.readouterr().err


def test_secret_on_argv_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["hash", "--secret", "s3cret", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "never passed on the command line" in err
    assert "s3cret" not in err


def test_module_entry_point_runs() -> None:
    env = {**os.environ, "SHOP_SECRET": "k"}
    result = subprocess.run(
        [sys.executable, "-m", "ainisa_middleware", "hash", "--secret-env", "SHOP_SECRET", "7"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == user_hash("k", "7")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
