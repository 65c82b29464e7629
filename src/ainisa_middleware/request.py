"""Sans-IO inspection of a chat request: body, query string, widget ID, user data.

Nothing here reads a socket or knows a framework. Adapters hand over the
content type, the widget ID header, the raw query string and the body bytes;
:func:`parse_request` returns what the request says or raises
:class:`~ainisa_middleware.errors.RequestError` with the first error in the
contract's order.
"""

from __future__ import annotations

import enum
import gc
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from .errors import RequestError

__all__ = [
    "IDENTITY_FIELDS",
    "KEPT_FIELDS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "OFF_LOOP_BODY_SIZE",
    "PROOF_FIELDS",
    "QUICK_JSON_QUOTES",
    "QUICK_JSON_SIZE",
    "QUICK_JSON_STRUCTURE",
    "TOKEN_FIELD",
    "USER_DATA_FIELDS",
    "WIDGET_ID_FIELD",
    "WIDGET_ID_HEADER",
    "BodyKind",
    "BodyReader",
    "FlatData",
    "FlatField",
    "ParsedRequest",
    "Source",
    "declared_length",
    "parse_flat",
    "parse_json_object",
    "parses_quickly",
    "parse_request",
]

#: The five fields of ``window.ainisaUser``.
IDENTITY_FIELDS: Final = ("user_id", "user_hash", "firstname", "lastname", "email")
#: The signed, expiring alternative to ``user_hash`` (see :mod:`ainisa_middleware.tokens`);
#: it travels wherever the identity fields do and is user data like them.
TOKEN_FIELD: Final = "user_token"
#: The fields that prove an identity: never passed on to the app.
PROOF_FIELDS: Final = ("user_hash", TOKEN_FIELD)
#: Every field that is user data in a flat source (form, query, multipart, frames).
USER_DATA_FIELDS: Final = (*IDENTITY_FIELDS, TOKEN_FIELD)
_IDENTITY = frozenset(USER_DATA_FIELDS)
#: What a verified ``user`` object keeps: everything but the hash.
KEPT_FIELDS: Final = ("user_id", "firstname", "lastname", "email")
#: The header that names the widget (ASGI spells header names in lower case).
WIDGET_ID_HEADER: Final = "x-ainisa-widget-id"
#: The query and body field that names the widget.
WIDGET_ID_FIELD: Final = "widget_id"
#: The top-level object is depth 1.
MAX_JSON_DEPTH: Final = 32
#: Bodies larger than this are parsed and re-serialised off the event loop. The
#: costliest hostile JSON takes about 0.07 ms per KiB to inspect and re-serialise
#: (``python -m bench.parse``), so past 16 KiB it would hold the loop for more
#: than a millisecond; a chat request of 16 KiB takes about 0.1 ms, less than the
#: two thread hops (about 0.05 ms each) it would cost to leave the loop.
OFF_LOOP_BODY_SIZE: Final = 16 * 1024
#: Up to this size a JSON body with little outside its strings stays on the loop
#: all the same (see :func:`parses_quickly`).
QUICK_JSON_SIZE: Final = 64 * 1024
#: Bytes outside the strings (brackets, separators, numbers, literals) and
#: quotes that :func:`parses_quickly` allows.
QUICK_JSON_STRUCTURE: Final = 2048
QUICK_JSON_QUOTES: Final = 256
#: Python's own limit for int <-> str conversion; beyond it a number cannot round-trip.
MAX_JSON_INT_DIGITS: Final = 4300
_JSON_USER_KEY: Final = "user"

_WIDGET_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
# Parsers disagree on ';': urllib.parse.parse_qsl (Starlette's query_params),
# werkzeug, Django and python-multipart >= 0.0.13 split on '&' only; older
# python-multipart and other stacks split on ';' too. Splitting on both finds
# every field either family could see; a field whose '&' segment holds a ';' reads
# differently in the two families, so it is marked ambiguous (see FlatData).
_SEPARATORS = re.compile(rb"([&;])")
# RFC 9110 token characters, for the type and subtype of a media type.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
_UTF8_NAMES = frozenset({"utf-8", "utf8"})


def declared_length(value: str | bytes | None, limit: int) -> int | None:
    """The body length a ``Content-Length`` value announces; ``body_too_large`` past ``limit``.

    Checked before a byte is read, so an oversized body is refused unread. A
    value that is not a number announces nothing: the body is then bounded while
    it is read (:class:`BodyReader`).
    """
    if not value:
        return None
    try:
        declared = int(value)
    except ValueError:
        return None
    if declared > limit:
        raise RequestError("body_too_large")
    return declared


class BodyReader:
    """A body collected chunk by chunk, refused the moment it passes the limit."""

    __slots__ = ("_chunks", "limit", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._chunks: list[bytes] = []

    def add(self, chunk: bytes) -> None:
        """Keep ``chunk``; ``body_too_large`` once the body is over the limit."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise RequestError("body_too_large")
        self._chunks.append(chunk)

    @property
    def wanted(self) -> int:
        """How much more to read, at most: one byte past the limit proves it oversized."""
        return self.limit + 1 - self.size

    def body(self) -> bytes:
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyKind(enum.Enum):
    NONE = "none"
    JSON = "json"
    FORM = "form"


class Source(enum.Enum):
    """Where the user data of a request came from."""

    JSON = "json"
    FORM = "form"
    QUERY = "query"


# Enum members as module names: read once per request each, a global is cheaper
# than the class attribute lookup.
_NO_BODY, _JSON_BODY, _FORM_BODY = BodyKind.NONE, BodyKind.JSON, BodyKind.FORM
_JSON_SOURCE, _FORM_SOURCE, _QUERY_SOURCE = Source.JSON, Source.FORM, Source.QUERY


@dataclass(slots=True)
class FlatField:
    """One ``name=value`` segment of a query string or form body, kept raw for rewriting."""

    separator: bytes
    raw: bytes
    name: str
    value: str
    #: index of the '&'-separated segment that holds the field
    group: int = 0


@dataclass(slots=True)
class FlatData:
    """A parsed query string or form body."""

    fields: list[FlatField]
    #: identity field name -> decoded value (each name at most once when valid)
    identity: dict[str, str]
    #: names that appear more than once among identity fields and widget_id
    repeated: set[str]
    widget_ids: list[str]
    #: identity and widget_id fields that two common parsers would read differently:
    #: in an '&' segment that also holds a ';' (``user_id=7;x`` is "7" to one family,
    #: "7;x" to the other), with raw non-ASCII bytes (Starlette decodes those as
    #: latin-1, werkzeug and Django as UTF-8) or with an escape that is not UTF-8
    #: (``%FF``: U+FFFD to most, "%FF" to werkzeug). Browsers send none of these.
    ambiguous: set[str] = field(default_factory=set)

    @property
    def carries_user_data(self) -> bool:
        return any(self.identity.values())

    @property
    def has_identity_fields(self) -> bool:
        return bool(self.identity)


def _decode(raw: bytes) -> str:
    if b"%" in raw or b"+" in raw:
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    return raw.decode("utf-8", "replace")


def _plain(raw: bytes) -> bool:
    """Whether every parser decodes ``raw`` alike: ASCII whose escapes are valid UTF-8.

    Raw non-ASCII bytes are latin-1 to Starlette and UTF-8 to werkzeug and
    Django; an escape that is not UTF-8 (``%FF``) is U+FFFD to most parsers but
    stays ``%FF`` in werkzeug.
    """
    if not raw.isascii():
        return False
    if b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_flat(data: bytes) -> FlatData:
    """Split ``a=1&b=2`` data as ``urllib.parse.parse_qsl`` and python-multipart would."""
    fields: list[FlatField] = []
    identity: dict[str, str] = {}
    repeated: set[str] = set()
    widget_ids: list[str] = []
    if not data:
        return FlatData(fields, identity, repeated, widget_ids)
    parts = _SEPARATORS.split(data)
    separator = b""
    group = 0
    # groups (by index) whose '&' segment holds a ';'
    mixed: set[int] = set()
    # identity and widget_id fields, checked for ambiguity once the groups are known
    watched: list[FlatField] = []
    for index, part in enumerate(parts):
        if index % 2:
            separator = part
            if part == b"&":
                group += 1
            else:
                mixed.add(group)
            continue
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _decode(raw_name)
        value = _decode(raw_value)
        flat = FlatField(separator, part, name, value, group)
        fields.append(flat)
        if name in _IDENTITY:
            if name in identity:
                repeated.add(name)
            identity[name] = value
            watched.append(flat)
        elif name == WIDGET_ID_FIELD:
            if widget_ids:
                repeated.add(name)
            widget_ids.append(value)
            watched.append(flat)
    ambiguous: set[str] = set()
    for flat in watched:
        if flat.group in mixed or not _plain(flat.raw):
            ambiguous.add(flat.name)
    return FlatData(fields, identity, repeated, widget_ids, ambiguous)


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number overflows")
    return value


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_JSON_INT_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def _too_deep(obj: dict[str, Any]) -> bool:
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if type(node) is dict else node
        for child in children:
            if type(child) is dict or type(child) is list:
                if depth + 1 > MAX_JSON_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


# Built once: json.loads with keyword arguments builds a decoder and its C
# scanner on every call. Like json's own default decoder it keeps nothing
# between calls, so one serves every request and every thread.
_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
    parse_int=_bounded_int,
)


# The decoder's own scanner (the C one when available), as JSONDecoder.decode calls it.
_scan: Callable[[str, int], tuple[Any, int]] = _STRICT_DECODER.scan_once  # type: ignore[attr-defined]
#: JSON's whitespace (RFC 8259 section 2), as json.decoder skips it.
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse strict RFC 8259 JSON whose top level is an object, or raise ``malformed_body``.

    Duplicate keys, ``NaN``/``Infinity``, numbers that cannot be re-serialised
    faithfully and nesting deeper than :data:`MAX_JSON_DEPTH` are refused: each
    is a place where two parsers could disagree about what the body says.

    Small bodies check these with hooks the decoder calls per object and number;
    larger ones are decoded by the C scanner alone and checked with a few
    passes over the text, so a body of a million tiny values costs about what
    ``json.loads`` costs, not a Python call per value.
    """
    try:
        text = body.decode("utf-8")
        if text.startswith("\ufeff"):  # as json.loads does: a BOM is not JSON
            raise ValueError("byte order mark")
        hooks = len(body) <= _HOOKS_UP_TO or _hooks_needed()
        if not hooks:
            obj = _parse_large(body, text)
        else:
            # JSONDecoder.decode, without its two Python frames: skip whitespace,
            # scan one value, and allow nothing but whitespace after it.
            obj, end = _scan(text, _WHITESPACE.match(text).end())  # type: ignore[union-attr]
            if end != len(text) and _WHITESPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
                raise ValueError("extra data")
    except StopIteration:  # the scanner's "no value here"
        raise RequestError("malformed_body") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise RequestError("malformed_body") from None
    if type(obj) is not dict:
        raise RequestError("malformed_body")
    # Fewer brackets than the limit cannot nest past it (brackets inside strings
    # only over-count), so small bodies skip the walk.
    if hooks and body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and _too_deep(obj):
        raise RequestError("malformed_body")
    return obj


#: Bodies up to this size are checked by hooks; larger ones by passes over the
#: text. Hooks cost a Python call per object and number, passes a few C passes
#: per byte and a re-encoding, so no one size is where the two cost the same
#: (``python -m bench.parse``, in time and in instructions): a chat request is
#: 2 to 2.8 times cheaper with hooks at every size up to 8 KiB, a body packed
#: with tiny values 1.3 to 2 times cheaper with passes from 130 to 350 bytes on.
#: At 2 KiB every ordinary chat request takes the cheaper hooks, and a packed
#: body costs at most about 0.2 ms there, twice what the passes would.
_HOOKS_UP_TO: Final = 2048
# Without hooks: dicts and numbers are built in C (NaN and Infinity still call
# parse_constant, which refuses them).
_PLAIN_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_plain_scan: Callable[[str, int], tuple[Any, int]] = _PLAIN_DECODER.scan_once  # type: ignore[attr-defined]
# allow_nan=False: a float that overflowed to infinity while decoding raises here.
_C_ENCODE = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode
_NOT_BRACKETS: Final = bytes(c for c in range(256) if c not in b"[]{}")


def _outside_strings(text: bytes) -> bytes:
    """Valid JSON with its string literals removed.

    Backslashes occur only inside strings, so once escaped backslashes and
    escaped quotes are gone every remaining quote opens or closes a string.
    (UTF-8 never puts an ASCII byte inside a multi-byte character.)
    """
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(text.split(b'"')[::2])


def parses_quickly(kind: BodyKind | None, body: bytes) -> bool:
    """Whether a body past :data:`OFF_LOOP_BODY_SIZE` is cheap to inspect all the same.

    What costs the scanner is values, and values lie outside the strings: a
    64 KiB chat message, one long string, takes about 0.2 ms to inspect and
    re-serialise and no worse than 0.5 ms however it is escaped, while 64 KiB of
    tiny values takes about 3.5 ms (``python -m bench.parse``). So a JSON body of
    at most :data:`QUICK_JSON_SIZE` bytes, with at most
    :data:`QUICK_JSON_STRUCTURE` bytes outside its strings and at most
    :data:`QUICK_JSON_QUOTES` quotes, skips the worker thread, whose hop costs
    more than such a parse. The quotes are found with ``memchr`` (a pass over
    every byte would cost a tenth of the hop). A body that is not valid JSON
    only makes the estimate wrong past the point where the scanner stops.
    """
    if kind is not BodyKind.JSON or len(body) > QUICK_JSON_SIZE:
        return False
    find = body.find
    outside = 0
    pos = 0  # just past the last quote
    in_string = False
    for _ in range(QUICK_JSON_QUOTES):
        quote = find(b'"', pos)
        if quote < 0:
            return (outside if in_string else outside + len(body) - pos) <= QUICK_JSON_STRUCTURE
        if in_string:
            if body[quote - 1] == 0x5C:  # a backslash: escaped if an odd run of them ends here
                run = body[pos:quote]
                if (len(run) - len(run.rstrip(b"\\"))) % 2:
                    pos = quote + 1
                    continue
        else:
            outside += quote - pos
            if outside > QUICK_JSON_STRUCTURE:
                return False
        in_string = not in_string
        pos = quote + 1
    return False


def _too_deep_text(outside: bytes) -> bool:
    brackets = outside.translate(None, _NOT_BRACKETS)
    # Each round replaces the innermost containers by a mark and then drops the
    # marks, one level a round: a body still standing after MAX_JSON_DEPTH rounds
    # is nested deeper than that.
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"x").replace(b"{}", b"x").replace(b"x", b"")
    return bool(brackets)


def _scan_uncollected(text: str, start: int) -> tuple[Any, int]:
    """The C scanner with the cyclic garbage collector paused while it runs.

    A body of many small containers makes the scanner allocate hundreds of
    thousands of them, and the collector, started every few hundred allocations,
    would traverse them (and the rest of the heap) again and again: two thirds
    of the scan or more, the more the larger the heap (``python -m bench.parse``).
    A parsed document holds no cycle, so the collector could free nothing here.
    The scanner holds the GIL until it returns, so no other thread runs Python
    code while the collector is paused.
    """
    if not gc.isenabled():
        return _plain_scan(text, start)
    gc.disable()
    try:
        return _plain_scan(text, start)
    finally:
        gc.enable()


_DIGITS_AS_ZERO: Final = bytes(
    ord("0") if chr(c).isdigit() and c < 128 else ord(" ") for c in range(256)
)
#: 10**309 is past the largest float: a shorter number without an exponent is finite.
_FLOAT_DIGITS: Final = b"0" * 309


def _may_overflow(outside: bytes) -> bool:
    """Whether a number outside the strings could overflow a float.

    Only an exponent or a run of 309 digits can; outside strings the only other
    'e's are those of ``true`` and ``false``.
    """
    if b"E" in outside or outside.count(b"e") != outside.count(b"true") + outside.count(b"false"):
        return True
    return _FLOAT_DIGITS in outside.translate(_DIGITS_AS_ZERO)


#: Up to this many containers the parsed keys are counted by a walk, past it by re-encoding.
_WALK_UP_TO: Final = 64


def _parsed_keys(obj: dict[str, Any]) -> int:
    """How many keys the parsed objects hold, all depths together."""
    count = 0
    stack: list[Any] = [obj]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            count += len(node)
            children = node.values()
        else:
            children = node
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append(child)
    return count


def _parse_large(body: bytes, text: str) -> Any:
    obj, end = _scan_uncollected(text, _WHITESPACE.match(text).end())  # type: ignore[union-attr]
    if end != len(text) and _WHITESPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
        raise ValueError("extra data")
    if type(obj) is not dict:
        return obj
    outside = _outside_strings(body)
    if _too_deep_text(outside):
        raise ValueError("too deep")
    # The body parsed, so outside its strings every ':' separates a key from its
    # value. A duplicate key collapses in the dict, which then holds fewer keys
    # than the body names: count them again in the C encoder's output.
    keys = outside.count(b":")
    containers = outside.count(b"{") + outside.count(b"[")
    if containers <= _WALK_UP_TO and not _may_overflow(outside):
        # A few containers (a chat message and its user object), and no number
        # that could be infinite: counting the parsed keys costs a step per
        # container, where encoding the body again costs a step per byte.
        if _parsed_keys(obj) != keys:
            raise ValueError("duplicate key")
    # The C encoder raises on an infinite float (allow_nan=False).
    elif _outside_strings(_C_ENCODE(obj).encode("utf-8", "surrogatepass")).count(b":") != keys:
        raise ValueError("duplicate key")
    return obj


def _hooks_needed() -> bool:
    """Whether a large body must still take the hooks.

    Integers of more than MAX_JSON_INT_DIGITS digits are refused by the C
    scanner itself only while the interpreter's own limit is at most that.
    """
    limit = sys.get_int_max_str_digits()
    return limit == 0 or limit > MAX_JSON_INT_DIGITS


@lru_cache(maxsize=64)
def body_kind(content_type: str | None) -> BodyKind | None:
    """The kind of body a content type announces; ``None`` for one we cannot inspect.

    Only a well-formed media type counts, and only UTF-8: Django decodes a form
    body *and the query string* with the ``charset`` parameter (``utf-7`` or
    ``utf-16`` would let it read fields the middleware never saw), and two
    content types joined by a comma are two frameworks' different answers.

    Cached: a site sends the same few content types, and a hit costs no Python
    call. The cache is small and bounded, so odd values cannot grow it.
    """
    if not content_type:
        return None
    media, *params = content_type.split(";")
    media = media.strip(" \t").lower()
    if _MEDIA_TYPE.fullmatch(media) is None:
        return None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip(" \t").lower().startswith("charset") and (
            value.strip(" \t").strip('"').lower() not in _UTF8_NAMES
        ):
            return None
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return BodyKind.JSON
    if media == "application/x-www-form-urlencoded":
        return BodyKind.FORM
    return None


#: The query string of most chat requests: empty. Shared, and never changed.
_NO_QUERY: Final = FlatData([], {}, set(), [])


@dataclass(slots=True)
class ParsedRequest:
    """What an intercepted request says, before its business is known."""

    widget_id: str
    kind: BodyKind
    json_body: dict[str, Any] | None
    form: FlatData | None
    query: FlatData
    #: the one source that carries user data, if any
    source: Source | None

    @property
    def raw_user(self) -> object:
        """The user data as sent: a JSON value for JSON, a dict of strings otherwise."""
        if self.source is Source.JSON:
            assert self.json_body is not None  # source JSON implies a JSON body
            return self.json_body.get(_JSON_USER_KEY)
        if self.source is Source.FORM:
            assert self.form is not None
            return self.form.identity
        if self.source is Source.QUERY:
            return self.query.identity
        return None

    @property
    def user_ambiguous(self) -> bool:
        """Whether the flat source holds an identity field two common parsers read differently."""
        if self.source is Source.FORM:
            assert self.form is not None
            return not _IDENTITY.isdisjoint(self.form.ambiguous)
        if self.source is Source.QUERY:
            return not _IDENTITY.isdisjoint(self.query.ambiguous)
        return False


def _widget_id(header: str | None, query: FlatData, body: list[object]) -> str:
    if WIDGET_ID_FIELD in query.repeated:
        raise RequestError("malformed_request")
    if WIDGET_ID_FIELD in query.ambiguous:
        raise RequestError("malformed_widget_id")
    if not body and not query.widget_ids and header is not None:
        # The common case, the header alone: nothing to compare it with.
        if _WIDGET_ID.fullmatch(header) is None:
            raise RequestError("malformed_widget_id")
        return header
    candidates: list[object] = []
    if header is not None:
        candidates.append(header)
    candidates.extend(query.widget_ids)
    candidates.extend(body)
    if not candidates:
        raise RequestError("missing_widget_id")
    for candidate in candidates:
        if not isinstance(candidate, str) or _WIDGET_ID.fullmatch(candidate) is None:
            raise RequestError("malformed_widget_id")
    first = candidates[0]
    if any(candidate != first for candidate in candidates):
        raise RequestError("conflicting_widget_id")
    assert isinstance(first, str)  # every candidate was checked above
    return first


def _field_count(data: bytes) -> int:
    """An upper bound on the fields of flat data, counted in C: its segments."""
    return data.count(b"&") + data.count(b";") + 1


def _reads_as_json(body: bytes) -> bool:
    """Whether an app's ``json.loads(body)`` reads a form body as a JSON object or array.

    Starlette's ``request.json()`` and ``json.loads(request.body)`` ignore
    Content-Type: JSON sent as a form would reach them uninspected.
    """
    if body.lstrip(b" \t\r\n")[:1] not in (b"{", b"["):
        return False  # cheaper than json.loads failing at the first byte of a large form
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError included
        return False
    return isinstance(doc, dict | list)


def parse_request(
    content_type: str | None,
    widget_header: str | None,
    query_string: bytes,
    body: bytes,
    *,
    max_body_size: int,
    max_form_fields: int = 1000,
) -> ParsedRequest:
    """Inspect a request; raise the first error in the contract's order.

    ``max_form_fields`` caps the ``&``/``;``-separated fields of a form body
    (``malformed_body``) and of the query string (``malformed_request``): the
    split is a Python loop per field, so the cap bounds the work a body can cause.
    """
    if len(body) > max_body_size:
        raise RequestError("body_too_large")
    kind = _NO_BODY
    if body:
        found = body_kind(content_type)
        if found is None:
            raise RequestError("unsupported_media_type")
        kind = found
    json_body: dict[str, Any] | None = None
    form: FlatData | None = None
    body_widget_ids: list[object] = []
    if kind is _JSON_BODY:
        json_body = parse_json_object(body)
        if WIDGET_ID_FIELD in json_body:
            body_widget_ids.append(json_body[WIDGET_ID_FIELD])
    elif kind is _FORM_BODY:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("malformed_body") from None
        if _field_count(body) > max_form_fields or _reads_as_json(body):
            raise RequestError("malformed_body")
        form = parse_flat(body)
        body_widget_ids.extend(form.widget_ids)
    # Most chat requests carry no query string: skip the parser's call.
    if not query_string:
        query = _NO_QUERY
    elif _field_count(query_string) > max_form_fields:
        raise RequestError("malformed_request")
    else:
        query = parse_flat(query_string)

    if form is not None and WIDGET_ID_FIELD in form.repeated:
        raise RequestError("malformed_request")
    if form is not None and WIDGET_ID_FIELD in form.ambiguous:
        raise RequestError("malformed_widget_id")
    if (
        query is _NO_QUERY
        and not body_widget_ids
        and widget_header is not None
        and _WIDGET_ID.fullmatch(widget_header) is not None
    ):
        widget_id = widget_header  # the common case, the header alone: nothing to compare
    else:
        widget_id = _widget_id(widget_header, query, body_widget_ids)

    if query.repeated or (form is not None and form.repeated):
        raise RequestError("malformed_request", widget_id)
    source: Source | None = None
    sources = 0
    if json_body is not None:
        user = json_body.get(_JSON_USER_KEY, "")
        if type(user) is dict:
            # A loop, not any() or a helper: no extra frame on every request.
            for key, value in user.items():
                if key in _IDENTITY and value != "":
                    source = _JSON_SOURCE
                    sources += 1
                    break
        elif user != "" and user is not None:
            # A user that is not an object is malformed data, not absent data.
            source = _JSON_SOURCE
            sources += 1
    if form is not None and form.carries_user_data:
        source = _FORM_SOURCE
        sources += 1
    if query.identity and query.carries_user_data:
        source = _QUERY_SOURCE
        sources += 1
    if sources > 1:
        raise RequestError("conflicting_user_data", widget_id)
    return ParsedRequest(widget_id, kind, json_body, form, query, source)
