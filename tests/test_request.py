"""Sans-IO parsing: flat data, strict JSON, media types, precedence."""

from __future__ import annotations

import contextlib
import gc
import json
from urllib.parse import parse_qsl

import pytest

from ainisa_middleware.errors import RequestError
from ainisa_middleware.request import (
    QUICK_JSON_QUOTES,
    QUICK_JSON_SIZE,
    QUICK_JSON_STRUCTURE,
    BodyKind,
    Source,
    body_kind,
    parse_flat,
    parse_json_object,
    parse_request,
    parses_quickly,
)


def codes(**kwargs: object) -> str:
    defaults: dict[str, object] = {
        "content_type": None,
        "widget_header": None,
        "query_string": b"",
        "body": b"",
        "max_body_size": 1000,
    }
    defaults.update(kwargs)
    try:
        parse_request(**defaults)  # type: ignore[arg-type]
    except RequestError as error:
        return error.code
    return "ok"


@pytest.mark.parametrize(
    "data",
    [b"a=1&b=2", b"a=1&&b=", b"x=%41%42&y=a+b", b"k", b"=v", b"a=%FF", b"a=1;b=2", b"a=b=c"],
)
def test_flat_names_and_values_agree_with_parse_qsl(data: bytes) -> None:
    parsed = parse_flat(data)
    ours = [(f.name, f.value) for f in parsed.fields]
    theirs = []
    for piece in data.replace(b";", b"&").split(b"&"):
        if piece:
            theirs += parse_qsl(piece.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
    # parse_qsl on latin-1 text decodes %XX as UTF-8, as we do
    assert ours == theirs


def test_flat_tracks_identity_and_repeats() -> None:
    parsed = parse_flat(b"user_id=1&email=&user%5Fid=2&widget_id=w&widget_id=w")
    assert parsed.identity == {"user_id": "2", "email": ""}
    assert parsed.repeated == {"user_id", "widget_id"}
    assert parsed.widget_ids == ["w", "w"]
    assert parsed.carries_user_data


def test_flat_empty_values_carry_no_user_data() -> None:
    parsed = parse_flat(b"user_id=&user_hash=")
    assert parsed.has_identity_fields and not parsed.carries_user_data


def test_strict_json_accepts_a_plain_object() -> None:
    assert parse_json_object(b' {"a": [1, 2.5, null, true, "\\u00e9"]} ') == {
        "a": [1, 2.5, None, True, "é"]
    }


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"a": 1, "a": 1}',
        b'{"a": {"b": [{"c": 1, "c": 2}]}}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": -1e400}',
        b'{"a": ' + b"1" * 4301 + b"}",
        b'{"a": "\xff"}',
        b'\xef\xbb\xbf{"a": 1}',
        b'{"a": "line\nbreak"}',
        b"{'a': 1}",
        b'{"a": 1,}',
        b'{"a": 01}',
        b'{"a": 1} x',
        b'{"a": "\xed\xa0\x80"}',
    ],
)
def test_strict_json_rejects(body: bytes) -> None:
    with pytest.raises(RequestError) as info:
        parse_json_object(body)
    assert info.value.code == "malformed_body"


def test_json_depth_limit_counts_the_top_level_object_as_one() -> None:
    def nested(depth: int) -> bytes:
        return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)

    assert parse_json_object(nested(32))
    with pytest.raises(RequestError):
        parse_json_object(nested(33))


def test_json_brackets_inside_strings_do_not_count_as_depth() -> None:
    body = json.dumps({"a": "[" * 100 + "{" * 100}).encode()
    assert parse_json_object(body) == {"a": "[" * 100 + "{" * 100}


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", BodyKind.JSON),
        ("APPLICATION/JSON; charset=utf-8", BodyKind.JSON),
        ("application/ld+json", BodyKind.JSON),
        ("application/x-www-form-urlencoded", BodyKind.FORM),
        (" application/x-www-form-urlencoded ; charset=utf-8", BodyKind.FORM),
        ("text/json", None),
        ("application/jsonp", None),
        ("multipart/form-data; boundary=x", None),
        ("text/plain", None),
        ("+json", None),
        ("", None),
        (None, None),
    ],
)
def test_body_kind(content_type: str | None, kind: BodyKind | None) -> None:
    assert body_kind(content_type) is kind


def test_sources_are_reported() -> None:
    parsed = parse_request(
        content_type="application/json",
        widget_header="w",
        query_string=b"x=1",
        body=b'{"user": {"user_id": "1"}}',
        max_body_size=100,
    )
    assert parsed.source is Source.JSON
    assert parsed.raw_user == {"user_id": "1"}
    parsed = parse_request(
        content_type=None, widget_header="w", query_string=b"email=a", body=b"", max_body_size=100
    )
    assert parsed.source is Source.QUERY and parsed.raw_user == {"email": "a"}
    parsed = parse_request(
        content_type="application/x-www-form-urlencoded",
        widget_header="w",
        query_string=b"",
        body=b"email=a",
        max_body_size=100,
    )
    assert parsed.source is Source.FORM and parsed.raw_user == {"email": "a"}


def test_json_null_user_is_no_user_data() -> None:
    parsed = parse_request(
        content_type="application/json",
        widget_header="w",
        query_string=b"user_id=1",
        body=b'{"user": null}',
        max_body_size=100,
    )
    assert parsed.source is Source.QUERY


def test_size_limit_is_checked_first() -> None:
    assert codes(body=b"x" * 1001, content_type="text/plain", widget_header="") == "body_too_large"
    assert codes(body=b"x" * 1000, content_type="text/plain") == "unsupported_media_type"


def test_form_repeated_widget_id_is_malformed_request() -> None:
    assert (
        codes(content_type="application/x-www-form-urlencoded", body=b"widget_id=a&widget_id=a")
        == "malformed_request"
    )


def test_repeated_widget_header_joined_by_a_server_is_malformed() -> None:
    assert codes(widget_header="w, w") == "malformed_widget_id"


def test_widget_id_with_trailing_newline_is_malformed() -> None:
    assert codes(widget_header="w\n") == "malformed_widget_id"
    assert codes(query_string=b"widget_id=w%0A") == "malformed_widget_id"


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize(
    "body", [b'{"a": [' + b"[]," * 20_000 + b"[]]}", b'{"a": [' + b"[]," * 20_000 + b"[]"]
)
def test_a_large_body_is_scanned_without_the_collector_which_is_left_as_it_was(
    enabled: bool, body: bytes
) -> None:
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    was = gc.isenabled()
    gc.callbacks.append(count)
    (gc.enable if enabled else gc.disable)()
    try:
        with contextlib.suppress(RequestError):
            parse_json_object(body)
        assert gc.isenabled() is enabled
    finally:
        gc.callbacks.remove(count)
        (gc.enable if was else gc.disable)()
    # 20,000 lists: the collector would start every 700 allocations while scanning.
    assert len(collections) <= 3


@pytest.mark.parametrize(
    "number",
    [b"1e400", b"-1E400", b"[1e999999]", b"1" * 400 + b".5", b"[" + b"9" * 309 + b".0]"],
    ids=["exponent", "upper-exponent", "in-array", "long-digits", "long-digits-in-array"],
)
def test_large_body_with_an_overflowing_number_is_malformed(number: bytes) -> None:
    body = b'{"pad": "' + b"x" * 4096 + b'", "n": ' + number + b"}"
    with pytest.raises(RequestError) as caught:
        parse_json_object(body)
    assert caught.value.code == "malformed_body"


@pytest.mark.parametrize(
    "number", [b"1e300", b"1" * 308 + b".5", b"true", b"false", b"1E-400"], ids=str
)
def test_large_body_with_a_finite_number_parses(number: bytes) -> None:
    body = b'{"pad": "' + b"x" * 4096 + b'", "n": ' + number + b', "e": "1e999"}'
    assert parse_json_object(body)["e"] == "1e999"


# -- where a large body is parsed ---------------------------------------------------


def _quick(body: bytes, kind: BodyKind | None = BodyKind.JSON) -> bool:
    return parses_quickly(kind, body)


def test_one_long_string_parses_quickly_and_many_values_do_not() -> None:
    message = json.dumps({"message": "x" * 60_000, "user": {"user_id": "1"}}).encode()
    assert _quick(message)
    packed = json.dumps({"message": "x", "values": [0] * 2_000}).encode()
    assert len(packed) < 10_000 and not _quick(packed)
    assert not _quick(message, BodyKind.FORM)  # only JSON is estimated
    assert not _quick(message, None)
    assert not _quick(json.dumps({"message": "x" * QUICK_JSON_SIZE}).encode())


def test_escaped_quotes_keep_the_estimate_inside_the_string() -> None:
    # A value list hidden behind an escaped quote is still inside the string...
    inside = json.dumps({"m": 'a\\"' + "[0," * 3_000}).encode()
    assert _quick(inside)
    # ...while after an escaped backslash the quote really closes it.
    closed = b'{"m":"a\\\\","v":[' + b"0," * 3_000 + b"0]}"
    assert json.loads(closed)["m"] == "a\\"
    assert not _quick(closed)


def test_too_many_quotes_leave_the_loop() -> None:
    body = json.dumps({"m": ["a"] * (QUICK_JSON_QUOTES // 2 + 1)}, separators=(",", ":"))
    assert len(body.encode()) - body.count('"') * 2 < QUICK_JSON_STRUCTURE
    assert not _quick(body.encode())
