"""Mismatch diagnostics: each usual mistake recognised, and nothing secret in the report."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ainisa_middleware import user_hash, user_token
from ainisa_middleware.cli import main
from ainisa_middleware.diagnose import (
    GUIDE_EXAMPLE_HASH,
    GUIDE_PLACEHOLDER_SECRET,
    Diagnosis,
    KnownSecret,
    diagnose,
)

SECRET = "sk_live_current_8c1e"
OLD = "sk_live_old_22af"
NEXT = "sk_live_other_business_91"
HISTORY = [
    KnownSecret("12", SECRET, "active"),
    KnownSecret("11", OLD, "retired"),
    KnownSecret("10", "sk_live_expired_77", "expired"),
    KnownSecret("40", NEXT, "active", business_id="other_shop"),
]
EMAIL = "ada@example.com"


def run(user_id: str | None, proof: str, secret: str = SECRET, **kw: object) -> Diagnosis:
    report = diagnose(secret, user_id, proof, email=EMAIL, history=HISTORY, **kw)  # type: ignore[arg-type]
    text = report.text()
    # The report never holds a secret or the hash the site should have sent.
    for known in (SECRET, OLD, NEXT, "sk_live_expired_77"):
        assert known not in text
    if user_id:
        assert user_hash(SECRET, user_id) not in text.lower()
    return report


@pytest.mark.parametrize(
    ("user_id", "signed", "code"),
    [
        ("42", "42.0", "user_id_float"),
        ("42.0", "42", "user_id_float"),
        ("42", "0042", "user_id_padded"),
        ("0042", "42", "user_id_padded"),
        ("Ada42", "ada42", "user_id_case"),
        ("42", "42\n", "user_id_whitespace"),
        (" 42", "42", "user_id_whitespace"),
        ("42", EMAIL, "email_hashed"),
        ("42", "", "user_id_empty"),
        ("42", '"42"', "user_id_quoted"),
    ],
)
def test_the_id_signed_differently_is_named(user_id: str, signed: str, code: str) -> None:
    report = run(user_id, user_hash(SECRET, signed) if signed else _mac(SECRET, ""))
    assert not report.verified and report.codes == [code]


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("proof", "code"),
    [
        (user_hash(OLD, "42"), "retired_secret"),
        (user_hash("sk_live_expired_77", "42"), "expired_secret"),
        (user_hash(NEXT, "42"), "wrong_business"),
        (GUIDE_EXAMPLE_HASH, "guide_example_hash"),
        (user_hash(GUIDE_PLACEHOLDER_SECRET, "42"), "guide_placeholder_secret"),
        (_mac("42", SECRET), "arguments_swapped"),
        (hashlib.sha256(b"42").hexdigest(), "plain_sha256"),
        (hashlib.sha256(SECRET.encode() + b"42").hexdigest(), "plain_sha256"),
        (hashlib.sha1(b"42").hexdigest(), "wrong_algorithm"),
        (hashlib.md5(b"42").hexdigest(), "wrong_algorithm"),
        (base64.b64encode(hmac.digest(SECRET.encode(), b"42", "sha256")).decode(), "base64_digest"),
        ("xyz", "malformed_hash"),
        ("0" * 64, "no_match"),
        (user_token(SECRET, "42", widget_id="w1")[:-1] + ".x", "malformed_token"),
    ],
)
def test_the_key_or_the_format_is_named(proof: str, code: str) -> None:
    report = run("42", proof)
    assert not report.verified and code in report.codes


def test_a_good_hash_verifies_and_upper_case_is_fine() -> None:
    assert run("42", user_hash(SECRET, "42")).codes == ["verified"]
    upper = run("42", user_hash(SECRET, "42").upper())
    assert upper.verified and upper.codes == ["hash_upper_case", "verified"]


def test_whitespace_around_the_hash_or_the_secret() -> None:
    report = run("42", user_hash(SECRET, "42") + "\n")
    assert not report.verified and report.codes[0] == "hash_whitespace"
    report = diagnose(SECRET + "\n", "42", user_hash(SECRET, "42"))
    assert report.codes == ["secret_whitespace"] and SECRET not in report.text()


def test_a_secret_the_store_retired_does_not_verify_even_when_it_matches() -> None:
    report = run("42", user_hash(OLD, "42"), secret=OLD)
    assert not report.verified and report.codes == ["verified", "given_secret_not_active"]
    unknown = run("42", user_hash("sk_unknown", "42"), secret="sk_unknown")
    assert not unknown.verified and "given_secret_unknown" in unknown.codes


# --- tokens -----------------------------------------------------------------------------


def test_a_good_token_verifies() -> None:
    token = user_token(SECRET, "42", widget_id="w1", kid="12")
    report = run("42", token, widget_id="w1")
    assert report.verified and report.proof == "token" and report.codes == ["verified"]
    assert run(None, token, widget_id="w1").verified  # the user id read from sub


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: user_token(SECRET, "42", widget_id="w1", now=time.time() - 7200), "token_expired"),
        (lambda: user_token(SECRET, "42", widget_id="w2"), "token_wrong_audience"),
        (lambda: user_token(SECRET, "42", widget_id="w1", now=time.time() + 600), "clock_skew"),
        (
            lambda: user_token(SECRET, "42", widget_id="w1", now=time.time() + 30),
            "clock_skew_within_leeway",
        ),
        (lambda: user_token(SECRET, "7", widget_id="w1"), "token_other_user"),
        (lambda: user_token(OLD, "42", widget_id="w1", kid="11"), "retired_secret"),
        (lambda: user_token(NEXT, "42", widget_id="w1"), "wrong_business"),
        (lambda: user_token(SECRET, "42", widget_id="w1", kid="99"), "unknown_kid"),
        (lambda: user_token(SECRET, "42", widget_id="w1", kid="11"), "kid_names_another_secret"),
        (lambda: user_token("nobody-knows", "42", widget_id="w1"), "token_signature"),
    ],
)
def test_token_problems_are_named(make: Callable[[], str], code: str) -> None:
    # Made when the test runs, not when it is collected: the clock matters here.
    report = run("42", make(), widget_id="w1")
    assert code in report.codes and (report.verified is (code == "clock_skew_within_leeway"))


def test_a_long_lived_or_non_hs256_token_is_explained() -> None:
    now = time.time()
    long_lived = user_token(SECRET, "42", widget_id="w1", now=now)
    report = run("42", long_lived, widget_id="w1", max_token_age=60)
    assert "token_lifetime" in report.codes and not report.verified
    head, body, _ = long_lived.split(".")
    other_alg = base64.urlsafe_b64encode(b'{"alg":"HS512"}').rstrip(b"=").decode()
    signing = f"{other_alg}.{body}"
    mac = hmac.digest(SECRET.encode(), signing.encode(), "sha512")
    forged = f"{signing}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert "token_algorithm" in run("42", forged, widget_id="w1").codes


# --- the command line -------------------------------------------------------------------


def test_cli_reads_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOP_SECRET", SECRET)
    code = main(["diagnose", "--secret-env", "SHOP_SECRET", "42", user_hash(SECRET, "42.0")])
    out = capsys.readouterr().out
    assert code == 1 and "as a float" in out and SECRET not in out
    assert user_hash(SECRET, "42") not in out
    good = user_hash(SECRET, "42")
    assert main(["diagnose", "--secret-env", "SHOP_SECRET", "42", good]) == 0
    assert capsys.readouterr().out.startswith("hash: VERIFIES")


def test_cli_reads_secret_and_proof_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = user_token(SECRET, "42", widget_id="w1", now=time.time() - 7200)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{SECRET}\n{token}\n"))
    assert main(["diagnose", "", "-", "--widget-id", "w1"]) == 1
    out = capsys.readouterr().out
    assert "expired" in out and SECRET not in out


def test_cli_with_the_store_finds_a_retired_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sqlalchemy")
    from ainisa_middleware.stores.sql import SQLStore

    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.delenv("AINISA_MASTER_KEY", raising=False)
    store = SQLStore(url, master_key="")
    store.init()
    store.add_business("shop", plan="pro")
    store.add_widget("wid_shop", business_id="shop")
    store.add_business("other", plan="pro")
    store.add_widget("wid_other", business_id="other")
    old = store.rotate_secret("shop", value="sk_shop_old_value").id
    store.rotate_secret("shop", value="sk_shop_new_value")
    store.retire_secret(old)
    store.rotate_secret("other", value="sk_other_value")
    store.close()
    monkeypatch.setenv("SHOP_SECRET", "sk_shop_new_value")
    argv = ["diagnose", "--secret-env", "SHOP_SECRET", "--db", url, "--widget-id", "wid_shop"]
    assert main([*argv, "42", user_hash("sk_shop_old_value", "42")]) == 1
    out = capsys.readouterr().out
    assert f"secret {old}, which is retired" in out
    assert main([*argv, "42", user_hash("sk_other_value", "42")]) == 1
    out = capsys.readouterr().out
    assert "another business ('other'" in out
    for value in ("sk_shop_old_value", "sk_shop_new_value", "sk_other_value"):
        assert value not in out
    assert main([*argv, "42", user_hash("sk_shop_new_value", "42")]) == 0
    capsys.readouterr()
    assert main(["diagnose", "--secret-env", "SHOP_SECRET", "--db", url, "42", "0" * 64]) == 2
    assert "--db needs --widget-id" in capsys.readouterr().err


def test_a_secret_just_made_or_about_to_end_is_noted() -> None:
    now = 2_000_000_000.0
    fresh = [KnownSecret("5", SECRET, "active", created=now - 30)]
    report = diagnose(SECRET, "42", user_hash(SECRET, "42"), history=fresh, now=now)
    assert report.verified and report.codes == ["verified", "secret_not_yet_everywhere"]
    ending = [KnownSecret("4", OLD, "expiring", created=now - 9000, expires=now + 3600)]
    report = diagnose(OLD, "42", user_hash(OLD, "42"), history=ending, now=now)
    assert report.verified and report.codes == ["verified", "secret_expiring"]
    assert "60 min" in report.text() and OLD not in report.text()
    token = user_token(SECRET, "42", widget_id="w1", now=now)
    report = diagnose(SECRET, "42", token, widget_id="w1", history=fresh, now=now)
    assert report.verified and "secret_not_yet_everywhere" in report.codes
