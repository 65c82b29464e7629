"""The ``token`` command: a user_token from a secret in the environment or on stdin."""

from __future__ import annotations

import io
import sys

import pytest

from ainisa_middleware import Business, Status
from ainisa_middleware.cli import main
from ainisa_middleware.tokens import check_token

BUSINESS = Business(id="b", secrets=("s3cret",), secret_ids=("7",), proofs="token")


def test_token_from_the_environment_verifies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOP_SECRET", "s3cret")
    argv = ["token", "--secret-env", "SHOP_SECRET", "42", "--widget-id", "w1", "--kid", "7"]
    assert main([*argv, "--email", "a@example.com", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    check = check_token(token, BUSINESS, "w1")
    assert check.status is Status.VERIFIED
    assert check.fields == {"user_id": "42", "email": "a@example.com"}


def test_token_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    assert main(["token", "Zoë", "--widget-id", "w1"]) == 0
    check = check_token(capsys.readouterr().out.strip(), BUSINESS, "w1")
    assert check.fields == {"user_id": "Zoë"}


def test_token_refuses_a_secret_on_argv(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["token", "--secret", "s3cret", "42", "--widget-id", "w1"])
    assert "never passed on the command line" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--ttl", "0"], "ttl must be"), (["--widget-id", "bad id"], "widget_id must be")],
)
def test_token_bad_arguments_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("SHOP_SECRET", "s3cret")
    code = main(["token", "--secret-env", "SHOP_SECRET", "42", "--widget-id", "w1", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
