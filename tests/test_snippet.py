"""The sender side: ``window.ainisaUser`` and the widget tag, parsed back as a browser would."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest

from ainisa_middleware import ConfigurationError, verify_user_hash
from ainisa_middleware.snippet import (
    DEFAULT_WIDGET_SRC,
    USER_FIELDS,
    HTMLString,
    Snippets,
    check_user_fields,
    fields_from_user,
    script_json,
    user_object,
    user_script,
    widget_script,
)

from .html_tools import (
    node_or_skip,
    parse_html5,
    parse_stdlib,
    run_in_node,
    user_object_from,
)

SECRET = "sk_test_4f1c2e"
GUEST = dict.fromkeys(USER_FIELDS, "")

HOSTILE = [
    pytest.param("</script>", id="end-tag"),
    pytest.param("</SCRIPT >", id="end-tag-upper"),
    pytest.param("</script\t\n/x>", id="end-tag-whitespace"),
    pytest.param("<!--", id="comment-open"),
    pytest.param("<!-- <script>", id="double-escape"),
    pytest.param("<!-- <script></script> -->", id="double-escape-closed"),
    pytest.param("-->", id="comment-close"),
    pytest.param("<script>alert(1)</script>", id="script"),
    pytest.param("<![CDATA[x]]>", id="cdata"),
    pytest.param("<img src=x onerror=alert(1)>", id="img"),
    pytest.param("'", id="single-quote"),
    pytest.param('"', id="double-quote"),
    pytest.param("\\", id="backslash"),
    pytest.param('\\"};alert(1);//', id="break-out"),
    pytest.param("`${alert(1)}`", id="template-literal"),
    pytest.param("&amp;&lt;&#60;&#x3c;", id="entities"),
    pytest.param("&", id="ampersand"),
    pytest.param("<>", id="angles"),
    pytest.param("\u2028", id="line-separator"),
    pytest.param("\u2029", id="paragraph-separator"),
    pytest.param("a\u2028b\u2029c", id="separators-inside"),
    pytest.param("\ud800", id="lone-high-surrogate"),
    pytest.param("x\udfffy", id="lone-low-surrogate"),
    pytest.param("Zoë Ångström", id="latin"),
    pytest.param("日本語テキスト", id="cjk"),
    pytest.param("😀👩‍👩‍👧", id="emoji"),
    pytest.param("\u202eevil", id="bidi-override"),
    pytest.param("\x00\x01\x1f\x7f", id="control"),
    pytest.param("\r\n\t", id="whitespace"),
    pytest.param("\ufeff", id="bom"),
    pytest.param("</" + "x" * 5000, id="long"),
]


def _hmac(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["firstname", "lastname", "email"])
def test_hostile_name_round_trips_inside_one_script_element(field: str, value: str) -> None:
    rendered = user_script("42", secret=SECRET, **{field: value})
    user = user_object_from(rendered)
    assert user[field] == value
    assert user["user_id"] == "42"
    assert user["user_hash"] == _hmac(SECRET, "42")
    assert set(user) == set(USER_FIELDS)
    assert rendered.isascii()


def _encodable(value: str) -> bool:
    return not any(0xD800 <= ord(char) <= 0xDFFF for char in value)


# A lone surrogate has no UTF-8 form to sign: test_lone_surrogate_user_id_cannot_be_signed.
@pytest.mark.parametrize("value", [p for p in HOSTILE if _encodable(p.values[0])])
def test_hostile_user_id_round_trips_and_is_signed(value: str) -> None:
    user = user_object_from(user_script(value, secret=SECRET))
    assert user["user_id"] == value
    assert verify_user_hash(SECRET, value, user["user_hash"])


@pytest.mark.parametrize("value", HOSTILE)
def test_nonce_outside_the_csp_alphabet_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="nonce must be the base64 value"):
        user_script("42", secret=SECRET, nonce=value)
    with pytest.raises(ValueError, match="nonce must be the base64 value"):
        widget_script(nonce=value)


@pytest.mark.parametrize("nonce", ["abc", "rAnd0m+/x-_==", "A", "dGVzdA="])
def test_csp_nonce_is_written_on_both_tags(nonce: str) -> None:
    for rendered in (user_script("42", secret=SECRET, nonce=nonce), widget_script(nonce=nonce)):
        for elements in (parse_stdlib(rendered), parse_html5(rendered)):
            assert [element.tag for element in elements] == ["script"]
            assert elements[0].attrs["nonce"] == nonce


def test_every_hostile_value_runs_back_in_javascript() -> None:
    values = [param.values[0] for param in HOSTILE]
    scripts = []
    for value in values:
        rendered = user_script(
            "7", secret=SECRET, firstname=value, lastname=value[::-1], email=value
        )
        scripts.append(parse_html5(rendered)[0].text)
    results = run_in_node(scripts)
    assert results == [
        {
            "user_id": "7",
            "user_hash": _hmac(SECRET, "7"),
            "firstname": value,
            "lastname": value[::-1],
            "email": value,
        }
        for value in values
    ]


def test_script_json_leaves_no_markup_characters() -> None:
    text = script_json({"a": "<>&\u2028\u2029'\"é\ud800"})
    assert not set(text) & set("<>&\u2028\u2029")
    assert text.isascii()
    assert json.loads(text) == {"a": "<>&\u2028\u2029'\"é\ud800"}


NODE_IDS = [
    pytest.param("1", id="guide-id"),
    pytest.param("42", id="ascii"),
    pytest.param("user-1234@example.com", id="ascii-email"),
    pytest.param("Zoë", id="latin"),
    pytest.param("ユーザー", id="cjk"),
    pytest.param("😀", id="astral"),
    pytest.param("x" * 10_000, id="long"),
    pytest.param("ü" * 3000 + "😀" * 100, id="long-unicode"),
]
NODE_SECRETS = ["your_secret_key_here", "clé-secrète-🔑", "k" * 200]

_NODE_HMAC = r"""
const crypto = require('crypto');
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(([secretKey, userId]) =>
    crypto.createHmac('sha256', secretKey).update(userId).digest('hex'));
  process.stdout.write(JSON.stringify(out));
});
"""


def test_rendered_hashes_agree_with_node_crypto() -> None:
    """The guide's Node.js snippet and user_script sign every id the same way."""
    node = node_or_skip()
    pairs = [(secret, param.values[0]) for secret in NODE_SECRETS for param in NODE_IDS]
    result = subprocess.run(
        [node, "-e", _NODE_HMAC],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = json.loads(result.stdout)
    rendered = [user_object_from(user_script(uid, secret=secret)) for secret, uid in pairs]
    assert [user["user_hash"] for user in rendered] == expected
    assert [user["user_id"] for user in rendered] == [uid for _, uid in pairs]


def test_integer_user_id_is_sent_and_signed_as_its_decimal_string() -> None:
    user = user_object_from(user_script(1234, secret=SECRET))
    assert user["user_id"] == "1234"
    assert user["user_hash"] == _hmac(SECRET, "1234")


def test_stored_hash_is_used_as_given_in_lower_case() -> None:
    stored = _hmac(SECRET, "42").upper()
    user = user_object(42, user_hash=stored, email="a@example.com")
    assert user == {
        "user_id": "42",
        "user_hash": stored.lower(),
        "firstname": "",
        "lastname": "",
        "email": "a@example.com",
    }


@pytest.mark.parametrize("bad", ["abc", "g" * 64, _hmac(SECRET, "1") + "0", "é" * 64])
def test_malformed_stored_hash_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="64 hex characters") as caught:
        user_script("1", user_hash=bad)
    assert bad not in str(caught.value)


def test_stored_hash_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="user_hash must be a str"):
        user_script("1", user_hash=b"00" * 32)  # type: ignore[arg-type]


def test_lone_surrogate_user_id_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        user_script("a\ud800", secret=SECRET)


@pytest.mark.parametrize("user_id", [None, ""])
def test_guest_gets_the_guides_empty_object(user_id: str | None) -> None:
    assert user_object_from(user_script(user_id)) == GUEST


def test_guest_can_be_omitted_entirely() -> None:
    assert user_script(None, guest="omit") == ""
    assert isinstance(user_script(None, guest="omit"), HTMLString)
    assert user_script("1", secret=SECRET, guest="omit").startswith("<script>")


def test_unknown_guest_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="guest must be one of"):
        user_script(None, guest="nothing")  # type: ignore[arg-type]


@pytest.mark.parametrize("guest", ["empty", "omit"])
def test_without_consent_nothing_personal_is_rendered(guest: Any) -> None:
    rendered = user_script(
        "42", secret=SECRET, firstname="Ada", lastname="L", email="a@x", consent=False, guest=guest
    )
    for personal in ("42", "Ada", "a@x", _hmac(SECRET, "42")):
        assert personal not in rendered
    if guest == "empty":
        assert user_object_from(rendered) == GUEST
    else:
        assert rendered == ""


def test_without_consent_no_secret_is_needed() -> None:
    assert user_object("42", consent=False) == GUEST


@pytest.mark.parametrize("key", ["password", "token", "api_key", "user"])
def test_keys_outside_the_five_fields_are_refused(key: str) -> None:
    with pytest.raises(TypeError, match=f"refused: {key}.*Never send passwords"):
        user_script("1", secret=SECRET, **{key: "x"})
    with pytest.raises(TypeError, match=f"refused: {key}"):
        user_object("1", secret=SECRET, **{key: "x"})


def test_names_without_a_user_id_are_refused() -> None:
    with pytest.raises(ValueError, match="firstname, email given without a user_id"):
        user_script(None, firstname="Ada", email="a@x")


def test_user_id_without_a_hash_source_is_refused() -> None:
    with pytest.raises(ValueError, match="missing_hash"):
        user_script("1")


def test_secret_and_stored_hash_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        user_script("1", secret=SECRET, user_hash=_hmac(SECRET, "1"))


@pytest.mark.parametrize("secret", ["", b"bytes"])
def test_unusable_secret_is_refused(secret: Any) -> None:
    with pytest.raises(ValueError, match="non-empty secret key"):
        user_script("1", secret=secret)


@pytest.mark.parametrize("user_id", [True, 1.5, b"1", ["1"]])
def test_user_id_of_wrong_type_is_refused(user_id: Any) -> None:
    with pytest.raises(TypeError, match="user_id must be"):
        user_script(user_id, secret=SECRET)


def test_name_of_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="email must be a str or None, not int"):
        user_script("1", secret=SECRET, email=5)  # type: ignore[arg-type]


def test_nonce_is_written_and_empty_nonce_is_omitted() -> None:
    assert user_script(None, nonce="r4nd0m").startswith('<script nonce="r4nd0m">')
    assert user_script(None, nonce="").startswith("<script>")
    with pytest.raises(TypeError, match="nonce must be a str"):
        user_script(None, nonce=5)  # type: ignore[arg-type]


def test_html_string_is_not_escaped_again_by_engines_that_honour_html() -> None:
    rendered = user_script(None)
    assert isinstance(rendered, str)
    assert rendered.__html__() == rendered
    assert type(rendered.__html__()) is str
    assert not hasattr(rendered + "", "__html__")


def test_widget_script_defaults_to_the_guides_url() -> None:
    assert widget_script() == f'<script src="{DEFAULT_WIDGET_SRC}"></script>'


@pytest.mark.parametrize("value", HOSTILE)
def test_widget_src_attribute_is_escaped(value: str) -> None:
    src = "https://cdn.example.com/widget.js?v=" + value
    rendered = widget_script(src, nonce="n0nce", defer=True)
    for elements in (parse_stdlib(rendered), parse_html5(rendered)):
        assert [element.tag for element in elements] == ["script"]
        assert set(elements[0].attrs) == {"src", "nonce", "defer"}
        assert elements[0].text == ""
    # html5lib normalises CR and NUL in attributes as browsers do; html.parser keeps them.
    assert parse_stdlib(rendered)[0].attrs["src"] == src


def test_widget_id_is_written_as_a_data_attribute() -> None:
    rendered = widget_script("/static/widget.js", widget_id="shop.main-1")
    assert parse_html5(rendered)[0].attrs == {
        "src": "/static/widget.js",
        "data-widget-id": "shop.main-1",
    }


@pytest.mark.parametrize("widget_id", ["", "a b", '"><x', "x" * 129, 5])
def test_invalid_widget_id_is_refused(widget_id: Any) -> None:
    with pytest.raises(ValueError, match="widget_id must be 1 to 128"):
        widget_script(widget_id=widget_id)


@pytest.mark.parametrize(
    "src", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/javascript,1", "", "  ", 5]
)
def test_unsafe_or_empty_widget_src_is_refused(src: Any) -> None:
    with pytest.raises(ValueError, match="src must be"):
        widget_script(src)


def test_snippets_sign_with_a_secret_read_at_each_render() -> None:
    current = {"secret": "first"}
    snippets = Snippets(secret=lambda: current["secret"], user_fields={"user_id": "id"})
    first = user_object_from(snippets.user_script("9"))
    current["secret"] = "second"
    second = user_object_from(snippets.user_script("9"))
    assert first["user_hash"] == _hmac("first", "9")
    assert second["user_hash"] == _hmac("second", "9")
    assert "first" not in repr(snippets) and "second" not in repr(snippets)


def test_snippets_read_a_user_object_through_the_mapping() -> None:
    user = SimpleNamespace(
        is_authenticated=True,
        pk=17,
        profile=SimpleNamespace(given="Ada"),
        surname="Lovelace",
        mail="ada@example.com",
    )
    snippets = Snippets(
        secret=SECRET,
        user_fields={
            "user_id": "pk",
            "firstname": "profile.given",
            "lastname": lambda u: u.surname.upper(),
            "email": "mail",
        },
        nonce=lambda: "n0nce",
    )
    rendered = snippets.user_script(user=user)
    assert parse_html5(rendered)[0].attrs == {"nonce": "n0nce"}
    assert user_object_from(rendered) == {
        "user_id": "17",
        "user_hash": _hmac(SECRET, "17"),
        "firstname": "Ada",
        "lastname": "LOVELACE",
        "email": "ada@example.com",
    }
    assert parse_html5(snippets.user_script(user=user, nonce="call"))[0].attrs == {"nonce": "call"}


def test_snippets_use_a_mapped_stored_hash_instead_of_the_secret() -> None:
    stored = _hmac("old-secret", "5")
    snippets = Snippets(user_fields={"user_id": "id", "user_hash": "ainisa_hash"})
    user = SimpleNamespace(id=5, ainisa_hash=stored)
    assert user_object_from(snippets.user_script(user=user))["user_hash"] == stored


@pytest.mark.parametrize(
    "user",
    [
        None,
        SimpleNamespace(is_authenticated=False, id=None),
        SimpleNamespace(is_authenticated=True, id=None),
        SimpleNamespace(is_authenticated=True, id=""),
        SimpleNamespace(is_authenticated=False),
    ],
    ids=["none", "anonymous", "no-id", "empty-id", "anonymous-without-id"],
)
def test_snippets_render_a_guest_for_anonymous_users(user: object) -> None:
    snippets = Snippets(user_fields={"user_id": "id", "email": "email"})
    assert fields_from_user(user, snippets.user_fields) == {}
    assert user_object_from(snippets.user_script(user=user)) == GUEST
    assert Snippets(user_fields={"user_id": "id"}, guest="omit").user_script(user=user) == ""


def test_missing_user_id_attribute_of_a_signed_in_user_is_a_configuration_error() -> None:
    user = SimpleNamespace(is_authenticated=True, pk=3)
    with pytest.raises(ConfigurationError, match="maps user_id to 'id'.*SimpleNamespace"):
        fields_from_user(user, {"user_id": "id"})
    with pytest.raises(ConfigurationError, match="maps user_id to 'profile.no'"):
        fields_from_user(user, {"user_id": "profile.no"})


def test_missing_optional_attribute_reads_as_absent() -> None:
    user = SimpleNamespace(id=3)
    assert fields_from_user(user, {"user_id": "id", "lastname": "last_name"}) == {
        "user_id": "3",
        "lastname": None,
    }


def test_snippets_without_a_secret_fail_with_a_configuration_error() -> None:
    snippets = Snippets(user_fields={"user_id": "id"}, setting="AINISA")
    with pytest.raises(ConfigurationError, match="AINISA: no secret to sign"):
        snippets.user_script("1")
    with pytest.raises(ConfigurationError, match="no secret to sign"):
        Snippets(secret=lambda: "", user_fields={"user_id": "id"}).user_script("1")
    assert user_object_from(snippets.user_script(None)) == GUEST
    assert user_object_from(snippets.user_script("1", consent=False)) == GUEST


def test_snippets_refuse_user_and_fields_together() -> None:
    snippets = Snippets(secret=SECRET, user_fields={"user_id": "id"})
    with pytest.raises(TypeError, match="either user= or user_id"):
        snippets.user_script("1", user=SimpleNamespace(id=1))
    with pytest.raises(TypeError, match="refused: password"):
        snippets.user_script("1", password="x")  # type: ignore[call-arg]


def test_snippets_widget_script_uses_the_configured_defaults() -> None:
    snippets = Snippets(
        user_fields={"user_id": "id"}, widget_src="/w.js", widget_id="main", nonce="n"
    )
    assert (
        snippets.widget_script() == '<script src="/w.js" data-widget-id="main" nonce="n"></script>'
    )
    assert snippets.widget_script("/x.js", widget_id="other", nonce="m", defer=True) == (
        '<script src="/x.js" data-widget-id="other" nonce="m" defer></script>'
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": 5}, "secret must be the business's secret"),
        ({"secret": ""}, "secret must be the business's secret"),
        ({"guest": "hidden"}, "guest must be one of"),
        ({"widget_src": "javascript:x"}, "scheme 'javascript' is refused"),
        ({"widget_id": "bad id"}, "widget_id must be 1 to 128"),
    ],
)
def test_snippets_configuration_errors_say_what_to_change(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape("AINISA: ") + ".*" + message):
        Snippets(user_fields={"user_id": "id"}, setting="AINISA", **kwargs)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"user_id": "id", "password": "password"}, "keys password are not fields"),
        ({"user_id": "id", "token": "t", "api": "a"}, "keys api, token are not fields"),
        ({"email": "email"}, "'user_id' is required"),
        ({"user_id": ""}, "'user_id' must map to an attribute name"),
        ({"user_id": 5}, "'user_id' must map to an attribute name or a function"),
        (["user_id"], "must be a mapping"),
    ],
)
def test_user_field_mapping_is_checked(mapping: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_user_fields(mapping, setting="AINISA['USER_FIELDS']")
