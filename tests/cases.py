"""The behavioural table every adapter suite runs (CONTRACT.md sections 2 and 3).

Each row is a request and what must come of it. An adapter suite builds an
echo app in its host that returns :func:`echo_payload` of what the app itself
read (raw body bytes, raw query string, the trusted user), sends each row
through the middleware with the host's own test client, and calls
:func:`check`. Anything unverified that slips through fails a row.

The world is fixed: :data:`RESOLVER` knows the widgets below, the middleware
protects ``PATHS`` and runs in the row's ``mode``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest

from ainisa_middleware import AinisaUser, Business, StaticResolver, user_hash, user_token
from ainisa_middleware.errors import ERRORS

SECRET = "sk_live_current_6f1d0c2a"
OLD_SECRET = "sk_live_previous_93be41"
OTHER_SECRET = "sk_live_someone_else_77"
PATHS = ["/chat"]

#: widget ID -> business
BUSINESSES = {
    "w_pro": Business(id="shop", secrets=(SECRET, OLD_SECRET), secret_ids=("sec_new", "sec_old")),
    "w_free": Business(id="free_shop", secrets=(SECRET,), identity_enabled=False),
    "w_req": Business(id="members", secrets=(SECRET,), require_identity=True),
    "w_free_req": Business(
        id="free_members", secrets=(SECRET,), identity_enabled=False, require_identity=True
    ),
    "w_nosecret": Business(id="unsigned", secrets=()),
    "w_tok": Business(
        id="tok_shop",
        secrets=(SECRET, OLD_SECRET),
        secret_ids=("sec_new", "sec_old"),
        proofs=frozenset({"token"}),
    ),
    "w_both": Business(id="both_shop", secrets=(SECRET,), proofs=frozenset({"hash", "token"})),
}
RESOLVER = StaticResolver(BUSINESSES)

GOOD = user_hash(SECRET, "42")
OLD = user_hash(OLD_SECRET, "42")
FOREIGN = user_hash(OTHER_SECRET, "42")
ALL_HASHES = (GOOD, OLD, FOREIGN, user_hash(SECRET, "43"))

# Signed identity tokens (CONTRACT section 7), made when the table is loaded.
_NOW = time.time()
TOK = user_token(SECRET, "42", widget_id="w_tok")
TOK_ADA = user_token(
    SECRET, 42, widget_id="w_tok", firstname="Ada", lastname="Lovelace", email="ada@example.com"
)
TOK_OLD_KID = user_token(OLD_SECRET, "42", widget_id="w_tok", kid="sec_old")
TOK_BAD_KID = user_token(SECRET, "42", widget_id="w_tok", kid="sec_old")
TOK_UNKNOWN_KID = user_token(SECRET, "42", widget_id="w_tok", kid="sec_gone")
TOK_EXPIRED = user_token(SECRET, "42", widget_id="w_tok", now=_NOW - 7200)
TOK_OTHER_WIDGET = user_token(SECRET, "42", widget_id="w_pro")
TOK_FOREIGN = user_token(OTHER_SECRET, "42", widget_id="w_tok")
TOK_BOTH = user_token(SECRET, "42", widget_id="w_both", firstname="Ann")
ALL_TOKENS = (TOK, TOK_ADA, TOK_OLD_KID, TOK_BAD_KID, TOK_UNKNOWN_KID, TOK_EXPIRED,
              TOK_OTHER_WIDGET, TOK_FOREIGN, TOK_BOTH)  # fmt: skip
TW = (("X-Ainisa-Widget-Id", "w_tok"),)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Case:
    """One request through the middleware and what the app must see."""

    method: str = "POST"
    path: str = "/chat"
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body: bytes = b""
    mode: str = "strip"
    # expectations
    status: int = 200
    error: str | None = None
    #: expected ``AinisaUser.status``; ``None``: the app saw no user at all
    user_status: str | None = None
    user: dict[str, str | None] = field(default_factory=dict)
    #: exact bytes the app must read (``None``: not checked byte for byte)
    app_body: bytes | None = None
    #: the JSON object the app must parse from its body
    app_json: dict[str, Any] | None = None
    #: exact query string the app must read
    app_query: str | None = None
    #: pairs the app's form parser must find (``parse_qsl`` of the body)
    app_form: list[tuple[str, str]] | None = None
    #: ``signed_fields`` of a verified user (``None``: the hash's ``user_id`` alone)
    signed: tuple[str, ...] | None = None


def post_json(obj: Any, **kw: Any) -> Case:
    return Case(content_type=JSON, body=json.dumps(obj).encode(), **kw)


def post_form(pairs: list[tuple[str, str]], **kw: Any) -> Case:
    return Case(content_type=FORM, body=urlencode(pairs).encode(), **kw)


def raw(content_type: str | None, body: bytes, **kw: Any) -> Case:
    return Case(content_type=content_type, body=body, **kw)


def verified_user(uid: str = "42", **names: str | None) -> dict[str, str | None]:
    return {"user_id": uid, "firstname": None, "lastname": None, "email": None, **names}


ADA = {
    "user_id": "42",
    "user_hash": GOOD,
    "firstname": "Ada",
    "lastname": "Lovelace",
    "email": "ada@example.com",
}
ADA_SEEN = {"user_id": "42", "firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com"}
WH = (("X-Ainisa-Widget-Id", "w_pro"),)


def _deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    top = node
    for _ in range(levels - 1):
        child: dict[str, Any] = {}
        node["k"] = child
        node = child
    return top


def _depth_body(levels: int) -> bytes:
    # {"widget_id": "w_pro", "k": {"k": ...}} with the top-level object as depth 1
    body = _deep(levels)
    body["widget_id"] = "w_pro"
    return json.dumps(body).encode()


P = pytest.param

# fmt: off
ROWS = [
    # --- widget ID: sources and conflicts (section 2) ---------------------------------
    P(post_json({"msg": "hi"}, headers=WH, user_status="anonymous",
                app_json={"msg": "hi"}), id="widget-from-header"),
    P(post_json({"msg": "hi"}, query="widget_id=w_pro", user_status="anonymous",
                app_query="widget_id=w_pro"), id="widget-from-query"),
    P(post_json({"widget_id": "w_pro", "msg": "hi"}, user_status="anonymous",
                app_json={"widget_id": "w_pro", "msg": "hi"}), id="widget-from-json-body"),
    P(post_form([("widget_id", "w_pro"), ("msg", "hi")], user_status="anonymous",
                app_body=b"widget_id=w_pro&msg=hi"), id="widget-from-form-body"),
    P(post_json({"widget_id": "w_pro"}, query="widget_id=w_pro", headers=WH,
                user_status="anonymous"), id="widget-same-in-three-sources"),
    P(post_json({"widget_id": "w_free"}, headers=WH, status=400,
                error="conflicting_widget_id"), id="widget-header-vs-body"),
    P(post_json({"widget_id": "w_free"}, query="widget_id=w_pro", status=400,
                error="conflicting_widget_id"), id="widget-query-vs-body"),
    P(post_form([("widget_id", "w_free")], headers=WH, status=400,
                error="conflicting_widget_id"), id="widget-header-vs-form"),
    P(Case(query="widget_id=w_pro&widget_id=w_free", status=400, error="malformed_request"),
      id="widget-query-repeated"),
    P(Case(query="widget_id=w_pro&widget_id=w_pro", status=400, error="malformed_request"),
      id="widget-query-repeated-same-value"),
    P(post_json({"msg": "hi"}, status=400, error="missing_widget_id"), id="widget-missing"),
    P(Case(status=400, error="missing_widget_id"), id="widget-missing-no-body"),
    P(Case(headers=(("X-Ainisa-Widget-Id", ""),), status=400, error="malformed_widget_id"),
      id="widget-empty-header"),
    # WSGI servers and Django join repeated headers with ", ": no valid widget ID has a comma.
    P(Case(method="GET", headers=(("X-Ainisa-Widget-Id", "w_pro, w_pro"),), status=400,
           error="malformed_widget_id"), id="widget-header-joined-by-a-server"),
    P(Case(query="widget_id=", status=400, error="malformed_widget_id"), id="widget-empty-query"),
    P(post_json({"widget_id": ""}, status=400, error="malformed_widget_id"),
      id="widget-empty-body"),
    P(post_json({"widget_id": 7}, status=400, error="malformed_widget_id"),
      id="widget-body-not-a-string"),
    P(Case(query="widget_id=w%20pro", status=400, error="malformed_widget_id"),
      id="widget-bad-character"),
    P(Case(query="widget_id=" + "w" * 129, status=400, error="malformed_widget_id"),
      id="widget-129-characters"),
    P(Case(query="widget_id=" + "w" * 128, status=404, error="unknown_widget"),
      id="widget-128-characters-valid-but-unknown"),
    P(Case(query="widget_id=A-z_0.9", status=404, error="unknown_widget"),
      id="widget-all-allowed-characters"),
    P(Case(query="widget_id=w_nope", status=404, error="unknown_widget"), id="widget-unknown"),
    # --- JSON user data (section 2, 3.3) ----------------------------------------------
    P(post_json({"widget_id": "w_pro", "user": ADA, "msg": "hi"}, user_status="verified",
                user=verified_user(firstname="Ada", lastname="Lovelace", email="ada@example.com"),
                app_json={"widget_id": "w_pro", "user": ADA_SEEN, "msg": "hi"}),
      id="json-verified"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": OLD}},
                user_status="verified", user=verified_user(),
                app_json={"widget_id": "w_pro", "user": {"user_id": "42"}}),
      id="json-verified-with-previous-secret"),
    P(post_json({"message": "hi", "user": {"user_id": "42", "user_hash": GOOD,
                                            "email": "ada@example.com"}},
                headers=WH, user_status="verified", user=verified_user(email="ada@example.com"),
                app_json={"message": "hi", "user": {"user_id": "42", "email": "ada@example.com"}}),
      id="json-verified-widget-from-header"),
    P(post_json({"widget_id": "w_pro", "message": "hi", "user_hash": GOOD,
                 "user": {"user_id": "42", "user_hash": GOOD, "firstname": "Ann"}},
                user_status="verified", user=verified_user(firstname="Ann"),
                app_json={"widget_id": "w_pro", "message": "hi",
                          "user": {"user_id": "42", "firstname": "Ann"}}),
      id="json-verified-top-level-hash-removed"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD.upper()}},
                user_status="verified", user=verified_user()), id="json-uppercase-hash"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": 42, "user_hash": GOOD}},
                user_status="verified", user=verified_user(),
                app_json={"widget_id": "w_pro", "user": {"user_id": 42}}),
      id="json-integer-user-id"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD,
                                                 "role": "admin", "firstname": ""}},
                user_status="verified", user=verified_user(),
                app_json={"widget_id": "w_pro", "user": {"user_id": "42", "firstname": ""}}),
      id="json-verified-keeps-only-known-fields"),
    P(post_json({"widget_id": "w_pro", "user": {**ADA, "user_hash": FOREIGN}},
                user_status="invalid_hash", app_json={"widget_id": "w_pro"}),
      id="json-hash-from-another-secret"),
    P(post_json({"widget_id": "w_pro", "user": {**ADA, "user_id": "43"}},
                user_status="invalid_hash", app_json={"widget_id": "w_pro"}),
      id="json-tampered-user-id"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD[:-1]}},
                user_status="invalid_hash"), id="json-hash-too-short"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD + "0"}},
                user_status="invalid_hash"), id="json-hash-too-long"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": "g" * 64}},
                user_status="invalid_hash"), id="json-hash-not-hex"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": "é" * 64}},
                user_status="invalid_hash"), id="json-hash-non-ascii"),
    P(post_json({"widget_id": "w_pro",
                 "user": {"user_id": "42", "user_hash": GOOD[:63] + "\u0660"}},
                user_status="invalid_hash"), id="json-hash-arabic-digit"),
    P(post_json({"widget_id": "w_nosecret", "user": {"user_id": "42", "user_hash": GOOD}},
                user_status="invalid_hash"), id="json-business-without-secrets"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "firstname": "Ada"}},
                user_status="missing_hash", app_json={"widget_id": "w_pro"}),
      id="json-missing-hash"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": ""}},
                user_status="missing_hash"), id="json-empty-hash-is-missing"),
    P(post_json({"widget_id": "w_pro", "user": {"firstname": "Ada", "email": "a@b.c"}},
                user_status="missing_user_id", app_json={"widget_id": "w_pro"}),
      id="json-names-without-user-id"),
    P(post_json({"widget_id": "w_pro", "user": {"user_hash": GOOD}},
                user_status="missing_user_id"), id="json-hash-without-user-id"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": True, "user_hash": GOOD}},
                user_status="malformed_user", app_json={"widget_id": "w_pro"}),
      id="json-user-id-boolean"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": 42.0, "user_hash": GOOD}},
                user_status="malformed_user"), id="json-user-id-float"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": {"id": "42"}, "user_hash": GOOD}},
                user_status="malformed_user"), id="json-user-id-object"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": GOOD,
                                                 "firstname": 7}},
                user_status="malformed_user"), id="json-firstname-not-a-string"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42", "user_hash": [GOOD]}},
                user_status="malformed_user"), id="json-hash-not-a-string"),
    P(post_json({"widget_id": "w_pro", "user": "42"}, user_status="malformed_user",
                app_json={"widget_id": "w_pro"}), id="json-user-not-an-object"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "", "user_hash": "", "firstname": "",
                                                 "lastname": "", "email": ""}},
                user_status="anonymous", app_json={"widget_id": "w_pro"}),
      id="json-guest-empty-strings"),
    P(post_json({"widget_id": "w_pro", "user": {}}, user_status="anonymous",
                app_json={"widget_id": "w_pro"}), id="json-empty-user-object"),
    P(post_json({"widget_id": "w_pro", "user_id": "7", "email": "x@y.z", "user_hash": GOOD,
                 "msg": "hi"},
                user_status="anonymous",
                app_json={"widget_id": "w_pro", "user_id": "7", "email": "x@y.z", "msg": "hi"}),
      id="json-top-level-fields-pass-but-hash-is-removed"),
    P(post_json({"widget_id": "w_pro", "user_id": "42", "user_hash": GOOD},
                user_status="anonymous", app_json={"widget_id": "w_pro", "user_id": "42"}),
      id="json-top-level-identity-is-not-identity"),
    P(post_json({"widget_id": "w_pro", "user": ADA, "meta": {"user": {"user_hash": "h"}}},
                user_status="verified", user=verified_user(firstname="Ada", lastname="Lovelace",
                                                           email="ada@example.com"),
                app_json={"widget_id": "w_pro", "user": ADA_SEEN,
                          "meta": {"user": {"user_hash": "h"}}}),
      id="json-nested-keys-are-not-identity"),
    P(post_json({"message": "hi", "user": {"user_id": "42", "user_hash": "0" * 64,
                                            "email": "a@b.c"}},
                query="widget_id=w_pro", user_status="invalid_hash", app_json={"message": "hi"},
                app_query="widget_id=w_pro"), id="json-invalid-widget-from-query"),
    # --- plans and require_identity (3.4) ---------------------------------------------
    P(post_json({"widget_id": "w_free", "user": ADA}, user_status="identity_disabled",
                app_json={"widget_id": "w_free"}), id="plan-without-identity-strips-valid-user"),
    P(post_json({"widget_id": "w_free", "user": ADA}, mode="enforce",
                user_status="identity_disabled"), id="plan-without-identity-enforce-passes"),
    P(post_json({"widget_id": "w_free_req"}, user_status="identity_disabled"),
      id="plan-without-identity-ignores-require-identity"),
    P(post_json({"widget_id": "w_free", "user": {"user_id": True}},
                user_status="identity_disabled"), id="plan-without-identity-even-malformed"),
    P(post_json({"widget_id": "w_req"}, status=401, error="identity_required"),
      id="require-identity-rejects-anonymous"),
    P(post_json({"widget_id": "w_req", "user": {**ADA, "user_id": "43"}}, status=401,
                error="identity_required"), id="require-identity-rejects-stripped-visitor"),
    P(post_json({"widget_id": "w_req"}, mode="enforce", status=401, error="identity_required"),
      id="require-identity-enforce-anonymous"),
    P(post_json({"widget_id": "w_req", "user": ADA}, user_status="verified",
                user=verified_user(firstname="Ada", lastname="Lovelace",
                                   email="ada@example.com")),
      id="require-identity-accepts-verified"),
    # --- enforce mode (3.4) -----------------------------------------------------------
    P(post_json({"widget_id": "w_pro", "user": ADA}, mode="enforce", user_status="verified",
                user=verified_user(firstname="Ada", lastname="Lovelace",
                                   email="ada@example.com")), id="enforce-verified"),
    P(post_json({"widget_id": "w_pro"}, mode="enforce", user_status="anonymous"),
      id="enforce-anonymous-passes"),
    P(post_json({"widget_id": "w_pro", "user": {**ADA, "user_id": "43"}}, mode="enforce",
                status=401, error="identity_verification_failed"), id="enforce-invalid-hash"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": "42"}}, mode="enforce", status=401,
                error="identity_verification_failed"), id="enforce-missing-hash"),
    P(post_json({"widget_id": "w_pro", "user": {"email": "a@b.c"}}, mode="enforce", status=401,
                error="identity_verification_failed"), id="enforce-missing-user-id"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": False}}, mode="enforce", status=401,
                error="identity_verification_failed"), id="enforce-malformed-user"),
    P(post_json({"widget_id": "w_req", "user": {"user_id": "42"}}, mode="enforce", status=401,
                error="identity_verification_failed"),
      id="enforce-failure-wins-over-require-identity"),
    # --- form bodies ------------------------------------------------------------------
    P(post_form([("widget_id", "w_pro"), ("user_id", "42"), ("user_hash", GOOD),
                 ("firstname", "Ada"), ("msg", "hi there")],
                user_status="verified", user=verified_user(firstname="Ada"),
                app_body=b"widget_id=w_pro&user_id=42&firstname=Ada&msg=hi+there"),
      id="form-verified-drops-only-the-hash"),
    P(post_form([("widget_id", "w_pro"), ("user_id", "43"), ("user_hash", GOOD),
                 ("email", "a@b.c"), ("msg", "hi")],
                user_status="invalid_hash", app_body=b"widget_id=w_pro&msg=hi"),
      id="form-invalid-drops-every-identity-field"),
    P(post_form([("widget_id", "w_pro"), ("user_id", "42"), ("user_hash", "zz"),
                 ("message", "hi")],
                user_status="invalid_hash", app_body=b"widget_id=w_pro&message=hi"),
      id="form-malformed-hash-drops-every-identity-field"),
    P(post_form([("user_id", "42"), ("user_hash", GOOD), ("firstname", "Ann"), ("message", "hi")],
                query="widget_id=w_pro&page=2", user_status="verified",
                user=verified_user(firstname="Ann"), app_query="widget_id=w_pro&page=2",
                app_body=b"user_id=42&firstname=Ann&message=hi"),
      id="form-verified-widget-from-query"),
    P(post_form([("widget_id", "w_pro"), ("user_id", "42"), ("user_id", "43")], status=400,
                error="malformed_request"), id="form-repeated-identity-field"),
    P(post_form([("widget_id", "w_pro"), ("user_id", ""), ("user_id", "")], status=400,
                error="malformed_request"), id="form-repeated-empty-identity-field"),
    # "msg=a;user_id=42" is one field to parse_qsl, werkzeug and Django and two to
    # parsers that split on ';': identity there is not vouched for, and removed.
    P(raw(FORM, b"widget_id=w_pro&msg=a;user_id=42;user_hash=" + GOOD.encode(),
          user_status="malformed_user", app_body=b"widget_id=w_pro&msg=a"),
      id="form-semicolon-separated-fields"),
    P(raw(FORM, b"widget_id=w_pro;msg=a&user_id=42&user_hash=" + GOOD.encode(),
          status=400, error="malformed_widget_id"), id="form-semicolon-glued-widget-id"),
    P(raw(FORM, b"widget_id=w_pro&user%5Fid=43&user%5fhash=" + GOOD.encode() + b"&msg=x",
          user_status="invalid_hash", app_body=b"widget_id=w_pro&msg=x"),
      id="form-percent-encoded-names"),
    P(raw(FORM, b"widget_id=w_pro&user_id&msg=x", user_status="anonymous",
          app_body=b"widget_id=w_pro&msg=x"), id="form-bare-identity-name-removed"),
    P(raw(FORM + "; charset=UTF-8", b"widget_id=w_pro&first+name=x", user_status="anonymous",
          app_body=b"widget_id=w_pro&first+name=x"), id="form-with-charset-untouched"),
    # "%FF" is U+FFFD to most parsers and the text "%FF" to werkzeug: not vouched for.
    P(raw(FORM, b"widget_id=w_pro&email=%FF", user_status="malformed_user",
          app_body=b"widget_id=w_pro"), id="form-undecodable-percent-escape"),
    # --- query string -----------------------------------------------------------------
    P(Case(query=f"widget_id=w_pro&user_id=42&user_hash={GOOD}&firstname=Ada&x=1",
           user_status="verified", user=verified_user(firstname="Ada"),
           app_query="widget_id=w_pro&user_id=42&firstname=Ada&x=1"), id="query-verified"),
    P(post_json({"msg": "hi"}, query=f"widget_id=w_pro&user_id=42&user_hash={GOOD}",
                user_status="verified", user=verified_user(),
                app_query="widget_id=w_pro&user_id=42", app_json={"msg": "hi"}),
      id="query-verified-with-json-body"),
    P(Case(query=f"widget_id=w_pro&user_id=43&user_hash={GOOD}&email=e%40x&x=1",
           user_status="invalid_hash", app_query="widget_id=w_pro&x=1"), id="query-invalid"),
    P(Case(query="widget_id=w_pro&user_id=42&user_id=43", status=400, error="malformed_request"),
      id="query-repeated-identity-field"),
    P(Case(query="widget_id=w_pro&user%5Fid=43&user_hash%3D=zzz&x=1",
           user_status="missing_hash", app_query="widget_id=w_pro&user_hash%3D=zzz&x=1"),
      id="query-encoded-names-decoded-once"),
    P(Case(query=f"widget_id=w_pro&user%5Fid=42&user%5Fhash={GOOD}",
           user_status="verified", user=verified_user(), app_query="widget_id=w_pro&user%5Fid=42"),
      id="query-percent-encoded-identity-names"),
    P(Case(query=f"widget_id=w_pro&x=1;user_id=43;user_hash={GOOD}",
           user_status="malformed_user", app_query="widget_id=w_pro&x=1"),
      id="query-semicolon-separated-fields"),
    P(Case(query="widget_id=w_pro&firstname=&x=%20", user_status="anonymous",
           app_query="widget_id=w_pro&x=%20"), id="query-empty-identity-field-removed"),
    # Percent-escapes of UTF-8 (and, in WSGI, the latin-1 environ string) kept byte for byte.
    P(Case(method="GET", query="widget_id=w_pro&q=%C3%A9t%C3%A9&user_id=7",
           user_status="missing_hash", app_query="widget_id=w_pro&q=%C3%A9t%C3%A9"),
      id="query-percent-encoded-utf8-value-kept"),
    # --- several sources (section 2) --------------------------------------------------
    P(post_json({"widget_id": "w_pro", "user": ADA}, query="user_id=42", status=400,
                error="conflicting_user_data"), id="user-data-in-query-and-json"),
    P(post_form([("widget_id", "w_pro"), ("user_id", "42")], query="email=a%40b.c", status=400,
                error="conflicting_user_data"), id="user-data-in-query-and-form"),
    P(post_json({"widget_id": "w_pro", "user": ADA}, query="user_id=&user_hash=",
                user_status="verified", user=verified_user(firstname="Ada", lastname="Lovelace",
                                                           email="ada@example.com"),
                app_query=""), id="empty-query-fields-are-no-user-data"),
    P(post_json({"widget_id": "w_pro", "user": {"user_id": ""}},
                query=f"user_id=42&user_hash={GOOD}", user_status="verified", user=verified_user(),
                app_query="user_id=42", app_json={"widget_id": "w_pro"}),
      id="empty-json-user-beside-query-user"),
    # --- body rules (3.1) and media types (section 2) ---------------------------------
    P(raw(JSON, b'{"widget_id": "w_pro",', status=400, error="malformed_body"),
      id="json-invalid"),
    P(raw(JSON, b'["w_pro"]', headers=WH, status=400, error="malformed_body"),
      id="json-array-top-level"),
    P(raw(JSON, b'"w_pro"', headers=WH, status=400, error="malformed_body"),
      id="json-string-top-level"),
    P(raw(JSON, b'{"widget_id": "w_pro", "widget_id": "w_pro"}', status=400,
          error="malformed_body"), id="json-duplicate-top-level-key"),
    P(raw(JSON, b'{"widget_id": "w_pro", "user": {"user_id": "42", "user_id": "43"}}',
          status=400, error="malformed_body"), id="json-duplicate-key-in-user"),
    P(raw(JSON, b'{"widget_id": "w_pro", "a": [{"b": {"c": 1, "c": 2}}]}', status=400,
          error="malformed_body"), id="json-duplicate-key-deep-in-array"),
    P(raw(JSON, _depth_body(32), user_status="anonymous"), id="json-depth-32-accepted"),
    P(raw(JSON, _depth_body(33), status=400, error="malformed_body"), id="json-depth-33-rejected"),
    P(raw(JSON, b'{"widget_id":"w_pro","a":' + b"[" * 31 + b"]" * 31 + b"}",
          user_status="anonymous"), id="json-array-depth-32-accepted"),
    P(raw(JSON, b'{"widget_id":"w_pro","a":' + b"[" * 32 + b"]" * 32 + b"}", status=400,
          error="malformed_body"), id="json-array-depth-33-rejected"),
    P(raw(JSON, b'{"widget_id":"w_pro","a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
          status=400, error="malformed_body"), id="json-nesting-bomb"),
    P(raw(JSON, b'{"widget_id": "w_pro", "n": NaN}', status=400, error="malformed_body"),
      id="json-nan"),
    P(raw(JSON, b'{"widget_id": "w_pro", "n": -Infinity}', status=400, error="malformed_body"),
      id="json-infinity"),
    P(raw(JSON, b'{"widget_id": "w_pro", "n": 1e999999}', status=400, error="malformed_body"),
      id="json-float-overflow"),
    P(raw(JSON, b'{"widget_id": "w_pro", "n": ' + b"9" * 4301 + b"}", status=400,
          error="malformed_body"), id="json-integer-over-4300-digits"),
    P(raw(JSON, b'{"widget_id": "w_pro", "n": -' + b"9" * 4300 + b"}", user_status="anonymous",
          app_json={"widget_id": "w_pro", "n": -int("9" * 4300)}),
      id="json-integer-of-4300-digits-kept"),
    P(raw(JSON, b'{"widget_id": "w_pro", "t": "\xff"}', status=400, error="malformed_body"),
      id="json-invalid-utf8"),
    P(raw(JSON, b'\xef\xbb\xbf{"widget_id": "w_pro"}', status=400, error="malformed_body"),
      id="json-byte-order-mark"),
    P(raw(JSON, b"\xff\xfe", status=400, error="malformed_body"), id="json-utf16-byte-order-mark"),
    P(raw(FORM, b"widget_id=w_pro&t=\xff", status=400, error="malformed_body"),
      id="form-invalid-utf8"),
    P(raw(JSON, b'{"widget_id": "w_pro", "t": "\\ud800", "e": "\xc3\xa9\\u2028"}',
          user_status="anonymous", app_json={"widget_id": "w_pro", "t": "\ud800", "e": "é\u2028"}),
      id="json-lone-surrogate-round-trips"),
    P(raw(JSON, b'{"widget_id":"w_pro","user":{"user_id":"\\udc00","user_hash":"' + GOOD.encode()
          + b'"}}', user_status="invalid_hash"), id="json-user-id-lone-surrogate"),
    P(raw("application/vnd.ainisa+json", b'{"widget_id": "w_pro"}', user_status="anonymous"),
      id="json-suffix-media-type"),
    P(raw("Application/JSON; charset=UTF-8", b'{"widget_id": "w_pro"}', user_status="anonymous"),
      id="json-media-type-case-and-charset"),
    P(raw("text/plain", b"widget_id=w_pro", headers=WH, status=415,
          error="unsupported_media_type"), id="text-plain-body"),
    P(raw(None, b'{"widget_id": "w_pro"}', headers=WH, status=415,
          error="unsupported_media_type"), id="body-without-content-type"),
    # Attachments have a table of their own (tests/multipart_cases.py).
    P(raw("multipart/form-data; boundary=x", b"--x--\r\n", headers=WH, user_status="anonymous",
          app_body=b"--x--\r\n"), id="multipart-body-without-parts"),
    P(raw("multipart/mixed; boundary=x", b"--x--\r\n", headers=WH, status=415,
          error="unsupported_media_type"), id="multipart-other-than-form-data"),
    P(raw("text/plain", b"", headers=WH, user_status="anonymous", app_body=b""),
      id="empty-body-any-content-type"),
    P(raw(JSON, b"", query="widget_id=w_pro", user_status="anonymous", app_body=b""),
      id="empty-json-body-is-no-body"),
    P(raw("text/plain", b"x" * (1_048_576 + 1), status=413, error="body_too_large"),
      id="body-over-1mib"),
    P(raw(JSON, b'{"widget_id": "w_pro", "pad": "' + b"x" * (1_048_576 - 40) + b'"}',
          user_status="anonymous"), id="body-just-under-1mib"),
    # --- precedence (3, last paragraph) -----------------------------------------------
    P(raw("text/plain", b"x" * (1_048_576 + 1), headers=(("X-Ainisa-Widget-Id", ""),),
          status=413, error="body_too_large"), id="order-413-before-everything"),
    P(raw("text/plain", b"x", status=415, error="unsupported_media_type"),
      id="order-415-before-widget-errors"),
    P(raw(JSON, b"[", headers=(("X-Ainisa-Widget-Id", "bad id"),), status=400,
          error="malformed_body"), id="order-malformed-body-before-widget-errors"),
    P(Case(query="user_id=1&user_id=2", status=400, error="missing_widget_id"),
      id="order-widget-errors-before-malformed-request"),
    P(Case(query="widget_id=w_nope&user_id=1&user_id=2", status=400, error="malformed_request"),
      id="order-malformed-request-before-resolver"),
    P(post_json({"widget_id": "w_nope", "user": ADA}, query="email=a%40b.c", status=400,
                error="conflicting_user_data"), id="order-conflicting-user-data-before-resolver"),
    P(post_json({"widget_id": "w_nope", "user": {"user_id": "42"}}, mode="enforce", status=404,
                error="unknown_widget"), id="order-resolver-before-identity"),
    # --- interception (section 3) -----------------------------------------------------
    P(raw("text/plain", b"user_hash=" + GOOD.encode(), path="/chatter",
          query=f"user_hash={GOOD}", app_body=b"user_hash=" + GOOD.encode(),
          app_query=f"user_hash={GOOD}"), id="not-intercepted-prefix-is-segment-aware"),
    P(raw(JSON, b"{not json", path="/other", app_body=b"{not json"), id="not-intercepted-path"),
    P(Case(method="OPTIONS", query=f"user_id=42&user_hash={GOOD}",
           headers=(("Access-Control-Request-Method", "POST"),),
           app_query=f"user_id=42&user_hash={GOOD}"),
      id="options-preflight-passes-untouched"),
    P(raw(JSON, b"{not json", method="OPTIONS", status=400, error="malformed_body",
          headers=(("Access-Control-Request-Method", "POST"),)),
      id="options-with-a-body-is-inspected"),
    P(raw(FORM, b"widget_id=w_pro&user_id=42&user_hash=" + b"0" * 64, method="OPTIONS",
          headers=(("Access-Control-Request-Method", "POST"),), user_status="invalid_hash",
          app_body=b"widget_id=w_pro"), id="options-with-a-form-body-is-inspected"),
    P(Case(method="OPTIONS", query=f"widget_id=w_pro&user_id=42&user_hash={GOOD}",
           user_status="verified", user=verified_user(), app_query="widget_id=w_pro&user_id=42"),
      id="options-without-request-method-header-is-inspected"),
    P(Case(method="OPTIONS", query=f"widget_id=w_pro&user_id=42&user_hash={FOREIGN}",
           mode="enforce", status=401, error="identity_verification_failed"),
      id="options-without-request-method-header-is-enforced"),
    P(post_json({"widget_id": "w_pro", "user": ADA}, path="/chat/thread/1",
                user_status="verified", user=verified_user(firstname="Ada", lastname="Lovelace",
                                                           email="ada@example.com")),
      id="intercepted-sub-path"),
    P(Case(method="GET", query=f"widget_id=w_pro&user_id=42&user_hash={GOOD}",
           user_status="verified", user=verified_user(), app_query="widget_id=w_pro&user_id=42"),
      id="intercepted-get-request"),
    P(Case(method="PUT", query="widget_id=w_pro&user_id=42", user_status="missing_hash",
           app_query="widget_id=w_pro"), id="intercepted-put-request"),
    # --- hostile shapes (3.7) ---------------------------------------------------------
    P(raw(FORM, b"widget_id=w_pro&" + b"a=1&" * 1000, status=400, error="malformed_body"),
      id="form-over-field-cap"),
    P(raw(FORM, b";" * 100_000, headers=WH, status=400, error="malformed_body"),
      id="form-of-separators-over-field-cap"),
    P(raw(FORM, b"widget_id=w_pro" + b"&a=1" * 998, user_status="anonymous"),
      id="form-at-field-cap"),
    P(Case(method="GET", query="widget_id=w_pro" + "&a=1" * 1000, status=400,
           error="malformed_request"), id="query-over-field-cap"),
    P(raw(JSON, b'{"widget_id": "w_pro", "a": [' + b"[]," * 20_000 + b'[]], "user": '
          + json.dumps({"user_id": "42", "user_hash": GOOD}).encode() + b"}",
          user_status="verified", user=verified_user()),
      id="large-json-of-many-values-verifies"),
    P(raw(JSON, b'{"widget_id": "w_pro", "pad": "' + b"x" * 4000 + b'", "pad": 1}',
          status=400, error="malformed_body"), id="large-json-duplicate-key"),
    P(raw(JSON, b'{"widget_id": "w_pro", "pad": "' + b"x" * 4000 + b'", "n": 1e999999}',
          status=400, error="malformed_body"), id="large-json-overflowing-number"),
    P(raw(JSON, b'{"widget_id": "w_pro", "pad": "' + b"[" * 4000 + b'", "d": '
          + b"[" * 32 + b"]" * 32 + b"}", status=400, error="malformed_body"),
      id="large-json-too-deep"),
    P(raw(JSON, b'{"widget_id": "w_pro", "pad": "' + b"[" * 4000 + b'", "d": '
          + b"[" * 31 + b"]" * 31 + b"}", user_status="anonymous"),
      id="large-json-at-depth-limit"),
    # --- signed identity tokens (section 7) -------------------------------------------
    P(post_json({"msg": "hi", "user": {"user_token": TOK_ADA}}, headers=TW,
                user_status="verified",
                user=verified_user(firstname="Ada", lastname="Lovelace", email="ada@example.com"),
                signed=("email", "firstname", "lastname", "user_id"),
                app_json={"msg": "hi", "user": ADA_SEEN}), id="token-json-verified-claims"),
    P(post_json({"user": {"user_id": 42, "user_token": TOK, "firstname": "Eve",
                          "email": "eve@example.com"}}, headers=TW,
                user_status="verified", user=verified_user(), signed=("user_id",),
                app_json={"user": {"user_id": "42"}}),
      id="token-json-unsigned-names-dropped"),
    P(post_json({"user": {"user_id": "43", "user_token": TOK}}, headers=TW,
                user_status="invalid_token", app_json={}), id="token-user-id-differs-from-sub"),
    P(post_json({"user_token": TOK, "user": {"user_token": TOK}, "msg": "hi"}, headers=TW,
                user_status="verified", signed=("user_id",), user=verified_user(),
                app_json={"user": {"user_id": "42"}, "msg": "hi"}),
      id="token-json-top-level-removed"),
    P(post_json({"user": {"user_token": TOK_OLD_KID}}, headers=TW, user_status="verified",
                signed=("user_id",), user=verified_user()),
      id="token-kid-names-the-previous-secret"),
    P(post_json({"user": {"user_token": TOK_BAD_KID}}, headers=TW, user_status="invalid_token"),
      id="token-kid-names-another-secret"),
    P(post_json({"user": {"user_token": TOK_UNKNOWN_KID}}, headers=TW,
                user_status="invalid_token"), id="token-kid-unknown"),
    P(post_json({"user": {"user_token": TOK_EXPIRED}}, headers=TW, user_status="expired_token",
                app_json={}), id="token-expired"),
    P(post_json({"user": {"user_token": TOK_EXPIRED}}, headers=TW, mode="enforce", status=401,
                error="identity_verification_failed"), id="token-expired-enforce-401"),
    P(post_json({"user": {"user_token": "x.y.z"}}, headers=TW, mode="enforce", status=401,
                error="identity_verification_failed"), id="token-garbage-enforce-401"),
    P(post_json({"user": {"user_token": TOK_OTHER_WIDGET}}, headers=TW,
                user_status="invalid_token"), id="token-for-another-widget"),
    P(post_json({"user": {"user_token": TOK_FOREIGN}}, headers=TW, user_status="invalid_token"),
      id="token-foreign-secret"),
    P(post_json({"user": {"user_token": 7}}, headers=TW, user_status="malformed_user"),
      id="token-not-a-string"),
    P(post_json({"user": {"user_id": "42", "user_hash": GOOD}}, headers=TW,
                user_status="invalid_hash"), id="token-business-refuses-hash"),
    P(post_json({"widget_id": "w_pro", "user": {"user_token": TOK_OTHER_WIDGET}},
                user_status="invalid_token"), id="hash-business-refuses-token"),
    P(post_json({"widget_id": "w_both", "user": {"user_id": "42", "user_hash": GOOD}},
                user_status="verified", user=verified_user()), id="both-business-takes-hash"),
    P(post_json({"widget_id": "w_both", "user": {"user_token": TOK_BOTH}},
                user_status="verified", user=verified_user(firstname="Ann"),
                signed=("firstname", "user_id")), id="both-business-takes-token"),
    P(post_json({"widget_id": "w_both", "user": {"user_id": "42", "user_hash": GOOD,
                                                  "user_token": TOK_BOTH}},
                user_status="malformed_user"), id="token-and-hash-together"),
    P(post_form([("widget_id", "w_tok"), ("user_token", TOK_ADA), ("firstname", "Eve"),
                 ("msg", "hi")], user_status="verified",
                user=verified_user(firstname="Ada", lastname="Lovelace", email="ada@example.com"),
                signed=("email", "firstname", "lastname", "user_id"),
                app_form=[("widget_id", "w_tok"), ("msg", "hi"), ("user_id", "42"),
                          ("firstname", "Ada"), ("lastname", "Lovelace"),
                          ("email", "ada@example.com")]), id="token-form-verified"),
    P(post_form([("widget_id", "w_tok"), ("user_token", TOK_EXPIRED), ("msg", "hi")],
                user_status="expired_token", app_form=[("widget_id", "w_tok"), ("msg", "hi")]),
      id="token-form-expired"),
    P(post_form([("widget_id", "w_tok"), ("user_token", TOK), ("user_token", TOK)],
                status=400, error="malformed_request"), id="token-form-repeated"),
    P(Case(method="GET", query=f"widget_id=w_tok&user_token={TOK}", user_status="verified",
           signed=("user_id",), user=verified_user(), app_query="widget_id=w_tok&user_id=42"),
      id="token-query-verified"),
    P(Case(method="GET", query=f"widget_id=w_tok&user_token={TOK_FOREIGN}&firstname=Eve",
           user_status="invalid_token", app_query="widget_id=w_tok"), id="token-query-invalid"),
    P(post_json({"msg": "hi"}, query=f"widget_id=w_tok&user_token={TOK}",
                user_status="verified", signed=("user_id",), user=verified_user(),
                app_query="widget_id=w_tok&user_id=42", app_json={"msg": "hi"}),
      id="token-query-beside-json-body"),
    P(post_json({"user": {"user_token": TOK}}, query=f"widget_id=w_tok&user_token={TOK}",
                status=400, error="conflicting_user_data"), id="token-in-two-sources"),
]
# fmt: on


def quoted(value: str) -> str:
    return quote(value, safe="")


def user_dict(user: AinisaUser | None) -> dict[str, Any] | None:
    """The trusted user as an echo app reports it."""
    if user is None:
        return None
    return {
        "widget_id": user.widget_id,
        "business_id": user.business_id,
        "status": str(user.status),
        "verified": user.verified,
        "user_id": user.user_id,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "email": user.email,
        "signed_fields": sorted(user.signed_fields),
    }


def echo_payload(
    body: bytes, query: str, user: AinisaUser | None, content_length: str | None
) -> dict[str, Any]:
    """What an echo app returns: what the app itself read from the request."""
    return {
        "body": body.decode("latin-1"),
        "query": query,
        "content_length": content_length,
        "user": user_dict(user),
    }


def check(case: Case, status: int, payload: Any) -> None:
    """Assert that a response to ``case`` is what the contract says."""
    assert status == case.status, payload
    if case.error is not None:
        spec = ERRORS[case.error]
        assert payload == {"error": case.error, "detail": spec.detail}
        return
    body = payload["body"].encode("latin-1")
    query: str = payload["query"]
    user = payload["user"]
    if case.app_body is not None:
        assert body == case.app_body
    if case.app_query is not None:
        assert query == case.app_query
    if case.app_json is not None:
        assert json.loads(body) == case.app_json
    if case.app_form is not None:
        assert parse_qsl(body.decode(), keep_blank_values=True) == case.app_form
    if case.user_status is None:
        assert user is None
        return
    # Intercepted: whatever the app parses, no hash and nothing unverified.
    assert user["status"] == case.user_status
    assert user["widget_id"] and user["business_id"]
    assert user["verified"] is (case.user_status == "verified")
    expected = case.user or {"user_id": None, "firstname": None, "lastname": None, "email": None}
    assert {k: user[k] for k in expected} == expected
    signed = ["user_id"] if case.signed is None else sorted(case.signed)
    assert user["signed_fields"] == (signed if user["verified"] else [])
    if payload["content_length"] is not None:
        assert int(payload["content_length"]) == len(body)
    for secret_hash in ALL_HASHES:
        assert secret_hash not in body.decode("utf-8", "replace")
        assert secret_hash not in query
        assert secret_hash.upper() not in body.decode("utf-8", "replace")
    for token in ALL_TOKENS:
        assert token not in body.decode("utf-8", "replace")
        assert token not in query
    seen = [name for name, _ in parse_qsl(query.replace(";", "&"), keep_blank_values=True)]
    if case.content_type and "json" in case.content_type.lower() and body:
        obj = json.loads(body)
        seen += list(obj.get("user", {}) or {})
        assert "user_hash" not in obj and "user_token" not in obj
    elif body:
        seen += [n for n, _ in parse_qsl(body.decode().replace(";", "&"), keep_blank_values=True)]
    assert "user_hash" not in seen and "user_token" not in seen
    if not user["verified"]:
        assert not {"user_id", "firstname", "lastname", "email"} & set(seen)
        if case.content_type and "json" in case.content_type.lower() and body:
            assert "user" not in json.loads(body)


def row_ids() -> list[str]:
    return [str(p.id) for p in ROWS]


def rows_for_mode(mode: str) -> list[Any]:
    return [p for p in ROWS if p.values[0].mode == mode]


assert len(set(row_ids())) == len(ROWS), "row ids must be unique"
