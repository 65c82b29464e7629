"""The error table: every code's status and sentence, rendered once, the same for every host."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from ainisa_middleware.errors import (
    ERRORS,
    RENDERED,
    AinisaIdentityError,
    ConfigurationError,
    ErrorSpec,
    RequestError,
    error_body,
)

from .cases import ALL_HASHES, OLD_SECRET, OTHER_SECRET, SECRET

#: CONTRACT sections 2 and 3: every code a client can get, with its status.
CONTRACT = {
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "malformed_body": 400,
    "missing_widget_id": 400,
    "malformed_widget_id": 400,
    "conflicting_widget_id": 400,
    "malformed_request": 400,
    "conflicting_user_data": 400,
    "unknown_widget": 404,
    "resolver_unavailable": 503,
    "identity_verification_failed": 401,
    "identity_required": 401,
}
CODES = list(CONTRACT)


def test_the_table_holds_the_contracts_codes_in_its_order_of_precedence() -> None:
    # The first error in this order wins (CONTRACT section 3, last paragraph).
    assert list(ERRORS) == CODES


@pytest.mark.parametrize("code", CODES)
def test_each_code_has_its_status_and_one_sentence(code: str) -> None:
    spec = ERRORS[code]
    assert spec == ErrorSpec(code, CONTRACT[code], spec.detail)
    assert spec.detail[0].isupper()
    assert spec.detail.endswith(".")
    assert spec.detail.count(". ") == 0  # one sentence


def test_the_details_word_for_word() -> None:
    assert {code: spec.detail for code, spec in ERRORS.items()} == {
        "body_too_large": "The request body is larger than this endpoint accepts.",
        "unsupported_media_type": "Chat requests must be sent as application/json or "
        "application/x-www-form-urlencoded.",
        "malformed_body": "The request body could not be read as strict JSON or form data.",
        "missing_widget_id": "The request does not name a widget.",
        "malformed_widget_id": "The widget ID must be 1 to 128 characters of letters, digits, "
        "'_', '-' or '.'.",
        "conflicting_widget_id": "The request names more than one widget ID.",
        "malformed_request": "A parameter that may appear once appears more than once.",
        "conflicting_user_data": "User data was sent in more than one place; send it in the "
        "body or the query string, not both.",
        "unknown_widget": "No business is registered for this widget.",
        "resolver_unavailable": "The widget's business could not be looked up right now; "
        "try again shortly.",
        "identity_verification_failed": "The user data sent with this request could not be "
        "verified.",
        "identity_required": "This chat is only available to signed-in users.",
    }


@pytest.mark.parametrize("code", CODES)
def test_no_detail_reveals_a_secret_a_hash_or_which_check_failed(code: str) -> None:
    detail = ERRORS[code].detail.lower()
    for word in ("secret", "hash", "hmac", "sha", "expected", "signature", "key"):
        assert word not in detail
    for value in (SECRET, OLD_SECRET, OTHER_SECRET, *ALL_HASHES):
        assert value.lower() not in detail


@pytest.mark.parametrize("code", CODES)
def test_rendered_body_is_error_body_and_the_contracts_json(code: str) -> None:
    spec = ERRORS[code]
    rendered = RENDERED[code]
    assert rendered.body == error_body(code)
    assert rendered.body is error_body(code)  # built once
    assert json.loads(rendered.body) == {"error": code, "detail": spec.detail}
    assert rendered.body == json.dumps({"error": code, "detail": spec.detail}).encode()
    assert rendered.body == (
        b'{"error": "' + code.encode() + b'", "detail": "' + spec.detail.encode() + b'"}'
    )


@pytest.mark.parametrize("code", CODES)
def test_rendered_status_and_headers(code: str) -> None:
    rendered = RENDERED[code]
    status = CONTRACT[code]
    assert rendered.status == status
    assert rendered.status_line == f"{status} {HTTPStatus(status).phrase}"
    assert rendered.headers == (
        ("content-type", "application/json"),
        ("content-length", str(len(rendered.body))),
    )
    assert rendered.raw_headers == tuple(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in rendered.headers
    )


def test_status_lines_a_wsgi_server_sends() -> None:
    assert RENDERED["unknown_widget"].status_line == "404 Not Found"
    assert RENDERED["resolver_unavailable"].status_line == "503 Service Unavailable"
    assert RENDERED["identity_required"].status_line == "401 Unauthorized"
    assert RENDERED["malformed_body"].status_line == "400 Bad Request"


@pytest.mark.parametrize("code", CODES)
def test_request_error_carries_its_row(code: str) -> None:
    error = RequestError(code)
    assert error.code == code
    assert error.status == CONTRACT[code]
    assert error.detail == ERRORS[code].detail
    assert error.body == error_body(code)
    assert error.widget_id is None
    assert str(error) == f"{CONTRACT[code]} {code}"


def test_request_error_keeps_the_widget_id_for_the_log() -> None:
    assert RequestError("malformed_request", "w_pro").widget_id == "w_pro"


def test_request_error_for_a_code_outside_the_table_is_a_bug_not_a_response() -> None:
    with pytest.raises(KeyError):
        RequestError("teapot")


def test_identity_error_defaults_to_identity_required() -> None:
    assert AinisaIdentityError().code == "identity_required"
    assert AinisaIdentityError("identity_verification_failed").code == (
        "identity_verification_failed"
    )
    assert str(AinisaIdentityError()) == "identity_required"


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError)
