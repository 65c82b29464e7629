"""What an app's own parsers make of a request, and the five properties checked on it.

Every property test ends here: a request went in, the app behind the middleware
recorded what it saw, and :func:`check_passed` / :func:`check_answer` /
:func:`check_untouched` decide whether the middleware kept its promises.

Two families of flat parsers exist in the wild: those that split only on ``&``
(``urllib.parse.parse_qsl`` since 3.10, werkzeug, Django, python-multipart since
0.0.13) and those that also split on ``;`` (older python-multipart, many other
stacks). Both views are checked: the app may use either.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from ainisa_middleware import Business, user_hash
from ainisa_middleware.errors import ERRORS
from ainisa_middleware.request import IDENTITY_FIELDS

KEPT = ("user_id", "firstname", "lastname", "email")
CONTRACT_STATUSES = frozenset({400, 401, 404, 413, 415, 503})

Pairs = list[tuple[str, str]]


def amp_view(data: bytes) -> Pairs:
    """``parse_qsl`` as Starlette reads a query string (latin-1 bytes, UTF-8 escapes)."""
    return parse_qsl(data.decode("latin-1"), keep_blank_values=True)


def utf8_amp_view(data: bytes) -> Pairs:
    """``parse_qsl`` over UTF-8 text, as werkzeug and Django read a query or form."""
    return parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True)


def semicolon_view(data: bytes) -> Pairs:
    """A parser that splits on ``;`` as well as ``&`` (older python-multipart)."""
    out: Pairs = []
    for part in re.split(rb"[&;]", data):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        out.append(
            (
                unquote_plus(name.decode("latin-1")),
                unquote_plus(value.decode("latin-1")),
            )
        )
    return out


def flat_views(data: bytes) -> dict[str, Pairs]:
    return {
        "amp-latin1": amp_view(data),
        "amp-utf8": utf8_amp_view(data),
        "semicolon": semicolon_view(data),
    }


def lenient_json(body: bytes) -> Any:
    """``json.loads(body)`` as an app calls it: encoding sniffed, duplicates last-wins."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


Fields = dict[str, list[str]]


def flat_identity(pairs: Iterable[tuple[str, str]]) -> Fields:
    """The identity fields among ``name=value`` pairs, every value kept."""
    out: Fields = {}
    for name, value in pairs:
        if name in IDENTITY_FIELDS:
            out.setdefault(name, []).append(value)
    return out


def multipart_parts(data: bytes, boundary: bytes) -> list[tuple[str, str | None, bytes]]:
    """``(name, file name, value)`` of each part of a multipart body, as python-multipart
    (Starlette's parser) reads it; names and file names as latin-1, as it decodes headers."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    found: list[tuple[str, str | None, bytes]] = []
    state: dict[str, Any] = {"field": b"", "value": b""}

    def header_field(d: bytes, s: int, e: int) -> None:
        state["field"] += d[s:e]

    def header_value(d: bytes, s: int, e: int) -> None:
        state["value"] += d[s:e]

    def header_end() -> None:
        if state["field"].strip().lower() == b"content-disposition":
            _, options = parse_options_header(state["value"])
            state["name"] = options.get(b"name", b"").decode("latin-1")
            file = options.get(b"filename")
            state["filename"] = None if file is None else file.decode("latin-1")
        state["field"] = state["value"] = b""

    def part_begin() -> None:
        state.update(data=b"", name="", filename=None)

    def part_data(d: bytes, s: int, e: int) -> None:
        state["data"] += d[s:e]

    def part_end() -> None:
        found.append((state["name"], state["filename"], state["data"]))

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_part_begin": part_begin,
            "on_part_data": part_data,
            "on_part_end": part_end,
        },
    )
    parser.write(data)
    return found


def multipart_identity(data: bytes, content_type: bytes) -> Fields:
    """The identity parts (text or file) of a multipart body, every value kept."""
    from python_multipart.multipart import parse_options_header

    _, options = parse_options_header(content_type)
    parts = multipart_parts(data, options[b"boundary"])
    return flat_identity((n, v.decode("utf-8", "replace")) for n, _, v in parts)


def json_identity(doc: object) -> Fields:
    """The identity a JSON document carries: the ``user`` object and a top-level hash."""
    out: Fields = {}
    if not isinstance(doc, dict):
        return out
    if "user_hash" in doc:
        out["user_hash"] = [_as_text(doc["user_hash"])]
    user = doc.get("user")
    if isinstance(user, dict):
        for key, value in user.items():
            out.setdefault(key, []).append(_as_text(value))
    elif "user" in doc:
        out["user"] = [_as_text(user)]
    return out


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return repr(value)


@dataclass
class Seen:
    """What the downstream app saw (recorded by the echo app of each adapter)."""

    body: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    user: object
    #: whether the app's own reading of Content-Type makes the body a form
    form_body: bool = False
    #: "query/<parser>" or "body/<parser>" -> identity fields the app's own parsers found
    parsed: dict[str, Fields] = field(default_factory=dict)


@dataclass
class Sent:
    """What a generated request carried, as the generator knows it."""

    widget_id: str | None = None
    #: every user_hash candidate put anywhere in the request
    hashes: list[str] = field(default_factory=list)
    #: sent the way a browser would (the widget ID is where the generator put it)
    honest: bool = False


def identity_views(seen: Seen) -> dict[str, Fields]:
    """Every identity field each parser finds in what the app got, by location/parser."""
    views: dict[str, Fields] = {}
    for name, pairs in flat_views(seen.query).items():
        views[f"query/{name}"] = flat_identity(pairs)
    if seen.form_body:
        for name, pairs in flat_views(seen.body).items():
            views[f"body/{name}"] = flat_identity(pairs)
    # Starlette's request.json() and Django apps' json.loads(request.body) ignore
    # Content-Type: whatever the body is, if it reads as a JSON object an app may take it.
    doc = lenient_json(seen.body)
    if isinstance(doc, dict):
        views["body/json"] = json_identity(doc)
    # ASGI header names, or the CGI names of a WSGI environ and Django's META.
    types = [v for n, v in seen.headers if n.lower() in (b"content-type", b"content_type")]
    if len(types) == 1 and types[0].lower().startswith(b"multipart/form-data") and seen.body:
        # What the middleware hands on is well-formed multipart with the same boundary.
        views["body/multipart"] = multipart_identity(seen.body, types[0])
    views.update(seen.parsed)
    return views


def expected_identity(user: object) -> dict[str, str]:
    """The identity fields the app may see: the verified, non-empty ones."""
    if getattr(user, "verified", False) is not True:
        return {}
    return {k: getattr(user, k) for k in KEPT if getattr(user, k) is not None}


def check_passed(seen: Seen, sent: Sent, businesses: Mapping[str, Business]) -> None:
    """Properties 1, 2 and 4 for a request the app received."""
    user = seen.user
    assert user is not None, "intercepted request reached the app without ainisa_user"
    widget = getattr(user, "widget_id", None)
    assert widget in businesses, f"app saw widget {widget!r}, not a known widget"
    business = businesses[widget]
    assert getattr(user, "business_id", None) == business.id
    if sent.honest:
        assert widget == sent.widget_id, (widget, sent.widget_id)
    expected = expected_identity(user)
    if expected:
        # Property 2: verified only with a hash valid for this user id under an
        # active secret of the resolved business, and only when identity is on.
        assert business.identity_enabled
        good = {user_hash(secret, expected["user_id"]) for secret in business.secrets}
        assert any(h.lower() in good for h in sent.hashes), ("verified without a valid hash",)
    views = identity_views(seen)
    holders: set[str] = set()
    for where, fields in views.items():
        # Property 1: no user_hash in any source, under any parser.
        assert "user_hash" not in fields, (where, fields)
        if fields:
            holders.add(where.split("/", 1)[0])
    if not expected:
        # Property 2: an unverified request leaves no identity field anywhere.
        assert not holders, {k: v for k, v in views.items() if v}
        return
    # Property 4: the verified source reads, under every parser, as exactly the
    # verified identity; every other place holds none.
    assert len(holders) == 1, {k: v for k, v in views.items() if v}
    (holder,) = holders
    for where, fields in views.items():
        if not where.startswith(holder + "/"):
            continue
        assert set(fields) <= set(KEPT), (where, fields)
        for key, values in fields.items():
            assert len(values) == 1, (where, key, values)
        got = {k: v[0] for k, v in fields.items() if v[0] != ""}
        assert got == expected, (where, got, expected)


def check_answer(status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> str:
    """Property 3 for an answer the middleware gave itself; returns the error code."""
    assert status in CONTRACT_STATUSES, status
    types = [v for n, v in headers if n.lower() == b"content-type"]
    assert types == [b"application/json"], types
    doc = json.loads(body)
    assert set(doc) == {"error", "detail"}, doc
    spec = ERRORS[doc["error"]]
    assert spec.status == status, (spec, status)
    assert doc["detail"] == spec.detail
    return str(doc["error"])


def check_untouched(
    seen: Seen, body: bytes, query: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    """Property 5: a request the middleware does not intercept reaches the app as sent."""
    assert seen.body == body
    assert seen.query == query
    assert list(seen.headers) == list(headers)
    assert seen.user is None


class LogLeakCheck(logging.Handler):
    """Collects the middleware's log lines so a test can assert no secret or hash is in them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + " " + repr(record.__dict__))

    def check(self, secrets: Iterable[str], hashes: Iterable[str]) -> None:
        """No secret and no well-formed hash candidate appears in any line."""
        needles = [s for s in secrets if s] + [h for h in hashes if len(h) >= 16]
        for line in self.lines:
            for needle in needles:
                assert needle not in line, "a secret or hash reached the log"
        self.lines.clear()


@contextmanager
def log_leak_check() -> Iterator[LogLeakCheck]:
    """Route the ``ainisa_middleware`` logger to a :class:`LogLeakCheck` only."""
    logger = logging.getLogger("ainisa_middleware")
    handler = LogLeakCheck()
    old = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]
