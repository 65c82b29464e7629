"""``ainisa-middleware snippet``: the same safe HTML as the library, from a shell."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import subprocess
import sys

import pytest

from ainisa_middleware.cli import main
from ainisa_middleware.snippet import USER_FIELDS

from .html_tools import parse_html5, user_object_from

SECRET = "cli-secret"


def _hmac(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_prints_the_user_script_then_the_widget_tag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AINISA_SECRET", SECRET)
    code = main(
        [
            "snippet",
            "--secret-env",
            "AINISA_SECRET",
            "--user-id",
            "42",
            "--firstname",
            "Ada</script>",
            "--email",
            "ada@example.com",
            "--widget-id",
            "shop-1",
            "--nonce",
            "abc",
        ]
    )
    assert code == 0
    user_line, widget_line = _lines(capsys)
    assert user_object_from(user_line) == {
        "user_id": "42",
        "user_hash": _hmac(SECRET, "42"),
        "firstname": "Ada</script>",
        "lastname": "",
        "email": "ada@example.com",
    }
    assert parse_html5(widget_line)[0].attrs == {
        "src": "https://chatbot.ainisa.com/widget.js",
        "data-widget-id": "shop-1",
        "nonce": "abc",
    }


def test_reads_the_secret_from_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    assert main(["snippet", "--user-id", "7", "--no-widget"]) == 0
    (line,) = _lines(capsys)
    assert user_object_from(line)["user_hash"] == _hmac(SECRET, "7")


@pytest.mark.parametrize(
    "extra", [[], ["--no-consent", "--user-id", "42", "--firstname", "Ada"]], ids=["guest", "nc"]
)
def test_guest_and_no_consent_need_no_secret(
    extra: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["snippet", "--no-widget", *extra]) == 0
    (line,) = _lines(capsys)
    assert user_object_from(line) == dict.fromkeys(USER_FIELDS, "")


def test_guest_can_be_omitted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snippet", "--guest", "omit", "--widget-src", "/w.js"]) == 0
    assert _lines(capsys) == ['<script src="/w.js"></script>']


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--widget-id", "bad id"], "widget_id must be 1 to 128"),
        (["--widget-src", "javascript:alert(1)"], "scheme 'javascript' is refused"),
        (["--nonce", "a b"], "nonce must be the base64 value"),
        (["--firstname", "Ada"], "firstname given without a user_id"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snippet", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ainisa-middleware: error: ")
    assert message in captured.err


def test_missing_secret_variable_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NO_SUCH_AINISA_VAR", raising=False)
    assert main(["snippet", "--secret-env", "NO_SUCH_AINISA_VAR", "--user-id", "1"]) == 2
    assert "NO_SUCH_AINISA_VAR is not set" in capsys.readouterr().err


def test_secret_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["snippet", "--secret", SECRET, "--user-id", "1"])
    assert caught.value.code == 2
    assert "never passed on the command line" in capsys.readouterr().err


def test_runs_as_a_module() -> None:
    env = {**os.environ, "S": SECRET}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ainisa_middleware",
            "snippet",
            "--secret-env",
            "S",
            "--user-id",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=True,
    )
    assert user_object_from(result.stdout.splitlines()[0])["user_hash"] == _hmac(SECRET, "1")
