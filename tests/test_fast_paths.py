"""The hot path's shortcuts give exactly what the plain standard-library calls give.

Each speed-up in the core (a decoder or encoder built once, a cheaper format
check) is compared here with the straightforward code it replaced, on inputs
chosen to reach every branch of the JSON grammar that matters to us.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ainisa_middleware._types import Message, Receive, Scope, Send
from ainisa_middleware._wsgi_frameworks import clean_environ as _clean_environ
from ainisa_middleware.asgi import AinisaMiddleware
from ainisa_middleware.errors import RequestError
from ainisa_middleware.request import (
    _bounded_int,
    _finite_float,
    _reject_constant,
    _unique_object,
    parse_json_object,
)
from ainisa_middleware.rewrite import _compact_encoder, dump_json
from ainisa_middleware.signing import HASH_LENGTH, _hash_bytes, _mac, match_secret, user_hash
from ainisa_middleware.wsgi import (
    CACHED_ENVIRON_KEYS,
    CACHED_ENVIRON_PREFIXES,
    AinisaWSGIMiddleware,
)

from .cases import RESOLVER

DOCUMENTS: list[Any] = [
    {},
    {"a": []},
    {"message": "hi", "user": {"user_id": 42, "firstname": "Zoë"}},
    {"n": [0, -1, 1.5, -0.0, 1e300, 5e-324, 10**40, True, False, None]},
    {"s": 'quote " backslash \\ slash / controls \x00\x1f\x7f \u2028 \u2029 é 𝄞'},
    {"nested": {"a": {"b": {"c": [[[{"d": "e"}]]]}}}},
    {"keys": {"": 1, " ": 2, "é": 3, "\u0000": 4}},
    {"big": "x" * 10_000, "list": list(range(100))},
]


def _reference_dumps(obj: Any, *, ensure_ascii: bool) -> str:
    return json.dumps(obj, ensure_ascii=ensure_ascii, separators=(",", ":"), allow_nan=False)


@pytest.mark.parametrize("use_c", [True, False], ids=["c-encoder", "python-encoder"])
@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["utf8", "ascii"])
@pytest.mark.parametrize("document", DOCUMENTS)
def test_compact_encoder_matches_json_dumps(document: Any, ensure_ascii: bool, use_c: bool) -> None:
    encode = _compact_encoder(ensure_ascii, use_c=use_c)
    assert encode(document) == _reference_dumps(document, ensure_ascii=ensure_ascii)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_compact_encoder_refuses_what_json_dumps_refuses(value: float) -> None:
    with pytest.raises(ValueError):
        _reference_dumps({"a": value}, ensure_ascii=False)
    for use_c in (True, False):
        with pytest.raises(ValueError):
            _compact_encoder(False, use_c=use_c)({"a": value})


def test_dump_json_falls_back_to_escapes_for_a_lone_surrogate() -> None:
    document = {"a": "\ud800", "b": "é"}
    assert dump_json(document) == _reference_dumps(document, ensure_ascii=True).encode()
    assert dump_json({"b": "é"}) == '{"b":"é"}'.encode()


def _reference_loads(body: bytes) -> object:
    return json.loads(
        body.decode("utf-8"),
        object_pairs_hook=_unique_object,
        parse_constant=_reject_constant,
        parse_float=_finite_float,
        parse_int=_bounded_int,
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1}',
        b' \n\t{"a": [1, 2.5, -0, 1E3, null, true, false, "\\u00e9\\ud834\\udd1e"]} \r\n',
        b'{"a": {"b": {}}, "c": [{}, []]}',
        b'\xef\xbb\xbf{"a": 1}',
        b'{"a": 1} {"b": 2}',
        b'{"a": 1}\xc2\xa0',  # a no-break space is not JSON whitespace
        b'\x0c{"a": 1}',  # nor is a form feed
        b'{"a": 1}\n\n\t ',
        b'{"a": 1, "a": 2}',
        b'{"a": NaN}',
        b'{"a": 1e400}',
        b'{"a": ' + b"9" * 4301 + b"}",
        b'{"a": ' + b"9" * 4300 + b"}",
        b'{"a": "\\ud800"}',
        b"",
        b" ",
        b'{"a": 1',
        b'"just a string"',
    ],
)
def test_strict_parse_agrees_with_json_loads_and_the_same_hooks(body: bytes) -> None:
    try:
        expected: object = _reference_loads(body)
    except ValueError:
        expected = RequestError
    if isinstance(expected, dict):
        assert parse_json_object(body) == expected
    else:
        with pytest.raises(RequestError):
            parse_json_object(body)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_GOOD = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "candidate",
    [
        _GOOD,
        _GOOD.upper(),
        "aB" * 32,
        _GOOD[:-1],
        _GOOD + "0",
        " " + _GOOD[1:],
        _GOOD[:30] + "  " + _GOOD[32:],
        _GOOD[:62] + "\t\n",
        "0x" + _GOOD[2:],
        "g" + _GOOD[1:],
        "٠" + _GOOD[1:],  # an Arabic-Indic zero: a digit, but not a hex digit
        "０" + _GOOD[1:],  # a fullwidth zero
        "é" * 64,
        "",
        None,
        64,
        _GOOD.encode(),
    ],
)
def test_hash_format_check_agrees_with_the_plain_definition(candidate: object) -> None:
    plain = (
        isinstance(candidate, str)
        and len(candidate) == HASH_LENGTH
        and _HEX_DIGITS.issuperset(candidate)
    )
    raw = _hash_bytes(candidate)
    assert (raw is not None) == plain
    if plain:
        assert isinstance(candidate, str) and raw == bytes.fromhex(candidate.lower())


@pytest.mark.parametrize("case", [str.lower, str.upper], ids=["lower", "upper"])
def test_match_secret_accepts_either_case_and_rejects_one_changed_digit(case: Any) -> None:
    digest = user_hash("s3cret", "42")
    assert match_secret(("other", "s3cret"), "42", case(digest)) == 1
    changed = digest[:-1] + ("1" if digest[-1] == "0" else "0")
    assert match_secret(("other", "s3cret"), "42", case(changed)) is None


@pytest.mark.parametrize(
    "secret",
    [
        "s",
        "s3cret",
        "k" * 63,
        "k" * 64,
        "k" * 65,  # longer than a block: hashed first
        "k" * 200,
        "é" * 32,  # 64 bytes of UTF-8
        "é" * 33,  # 66 bytes of UTF-8
        "🔑 secret with spaces",
        "\x00 nul inside",
    ],
)
@pytest.mark.parametrize("message", [b"", b"42", b"user-4242", "Zoë".encode(), b"x" * 1000])
def test_cached_keyed_hmac_equals_the_standard_hmac(secret: str, message: bytes) -> None:
    expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    assert _mac(secret, message) == expected
    assert _mac(secret, message) == expected  # the cached keyed object is copied, never consumed
    given = expected.hex()
    assert match_secret(("other", secret), message.decode(), given) == 1
    assert match_secret(("other", secret), message.decode(), given.upper()) == 1
    assert match_secret(("other",), message.decode(), given) is None


@given(st.binary(max_size=300), st.binary(max_size=200))
def test_keyed_hmac_equals_the_standard_hmac_for_any_key(key: bytes, message: bytes) -> None:
    secret = key.decode("latin-1")  # any byte string a secret's UTF-8 could be
    expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    assert _mac(secret, message) == expected


# --- the ASGI adapter's inline paths: one-message bodies, odd first messages ------------


def _run_asgi(incoming: list[Message], *, max_body_size: int = 1_048_576) -> tuple[int, bytes]:
    """``(status, body the app read)`` for a request whose body arrives as ``incoming``."""
    seen: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((await receive()).get("body", b""))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = AinisaMiddleware(
        app, resolver=RESOLVER, paths=["/chat"], max_body_size=max_body_size
    )
    queue = list(incoming)
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/chat",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], b"".join(seen)


def _widget_body(size: int = 0) -> bytes:
    return json.dumps({"widget_id": "w_pro", "message": "x" * size}).encode()


def test_a_single_message_over_the_limit_is_413_without_content_length() -> None:
    body = _widget_body(100)
    message = {"type": "http.request", "body": body, "more_body": False}
    assert _run_asgi([message], max_body_size=len(body) - 1) == (413, b"")
    assert _run_asgi([message], max_body_size=len(body))[0] == 204


def test_messages_of_other_types_and_empty_chunks_are_skipped_while_reading() -> None:
    body = _widget_body()
    incoming: list[Message] = [
        {"type": "http.unknown"},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
    ]
    status, seen = _run_asgi(incoming)
    assert status == 204
    assert json.loads(seen) == json.loads(body)


# --- the WSGI adapter: cleaning the environ ---------------------------------------------


def _plain_clean(environ: dict[str, Any]) -> dict[str, Any]:
    new = {
        key: value
        for key, value in environ.items()
        if key not in CACHED_ENVIRON_KEYS and not key.startswith(CACHED_ENVIRON_PREFIXES)
    }
    new.pop("HTTP_TRANSFER_ENCODING", None)
    new.pop("wsgi.input_terminated", None)
    return new


_SERVER_ENVIRON = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/chat",
    "QUERY_STRING": "",
    "CONTENT_TYPE": "application/json",
    "HTTP_HOST": "example.com",
    "HTTP_TRANSFER_ENCODING": "chunked",
    "wsgi.input": None,
    "wsgi.input_terminated": True,
    "wsgi.url_scheme": "https",
}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {key: object() for key in CACHED_ENVIRON_KEYS},
        {"bottle.request.json": {}, "bottle.request": object(), "webob._parsed_post_vars": 1},
        {"werkzeug.request.x": 1, "xwebob._body_file": 2, "werkzeug.requestx": 3},
        {"paste.parsed_querystring": 1, "PASTE.PARSED_QUERYSTRING": 2},
        {"a\\nwerkzeug.request": 1, "b\\nbottle.request.body": 2},  # newlines inside keys
    ],
    ids=["none", "every-cached-key", "prefixes", "near-misses", "case", "newlines"],
)
def test_clean_environ_drops_exactly_what_the_plain_filter_drops(extra: dict[str, Any]) -> None:
    environ = {**_SERVER_ENVIRON, **extra}
    cleaned = _clean_environ(environ)
    assert cleaned == _plain_clean(environ)
    assert list(cleaned) == list(_plain_clean(environ))  # order kept too
    assert environ == {**_SERVER_ENVIRON, **extra}  # the original is not touched


# --- the WSGI adapter: reading a body of known length -----------------------------------


class _TrickleStream:
    """A ``wsgi.input`` that hands out a few bytes per read, then stops or fails."""

    def __init__(self, data: bytes, *, step: int = 3, fail: bool = False) -> None:
        self.data = data
        self.step = step
        self.fail = fail

    def read(self, size: int = -1) -> bytes:
        if not self.data and self.fail:
            raise OSError("connection reset")
        chunk, self.data = self.data[: min(size, self.step)], self.data[min(size, self.step) :]
        return chunk


def _wsgi_call(stream: Any, length: int) -> tuple[str, bytes]:
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read())
        start_response("204 No Content", [])
        return []

    middleware = AinisaWSGIMiddleware(app, resolver=RESOLVER, paths=["/chat"])
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/chat",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(length),
        "wsgi.input": stream,
    }
    b"".join(middleware(environ, lambda line, headers, exc=None: status.append(line)))
    return status[0], b"".join(seen)


def test_a_body_read_in_small_pieces_is_reassembled() -> None:
    body = _widget_body(50)
    status, seen = _wsgi_call(_TrickleStream(body), len(body))
    assert status.startswith("204")
    assert json.loads(seen) == json.loads(body)


@pytest.mark.parametrize("fail", [False, True], ids=["ends-early", "raises"])
def test_a_body_shorter_than_its_content_length_is_malformed(fail: bool) -> None:
    body = _widget_body(50)
    status, seen = _wsgi_call(_TrickleStream(body, fail=fail), len(body) + 10)
    assert status.startswith("400") and seen == b""


@pytest.mark.parametrize("padding", [0, 5000], ids=["small-body", "large-body"])
@pytest.mark.parametrize("depth", [31, 32, 33])
def test_the_depth_limit_holds_for_small_and_large_bodies(padding: int, depth: int) -> None:
    # Large bodies skip the bracket count and always walk: the verdict is the same.
    body = b'{"pad": "' + b"x" * padding + b'", "a":' + b"[" * (depth - 1) + b"]" * (depth - 1)
    body += b"}"
    if depth <= 32:
        assert parse_json_object(body)["pad"] == "x" * padding
    else:
        with pytest.raises(RequestError):
            parse_json_object(body)
