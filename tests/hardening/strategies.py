"""Chat requests, honest and hostile, for every property test and fuzz seed.

One generator, :func:`build_request`, written against a small :class:`Chooser`:
under Hypothesis (:func:`requests`) every choice is a draw, so failures shrink
to a small request; in the long profile (:func:`fast_requests`) the choices
come from a seeded :class:`random.Random`, a hundred times cheaper per example,
and a failure is replayed from the seed Hypothesis prints.

A generated :class:`Request` is raw material for every adapter: method, path
(and the mount point it sits under), header list, query bytes and body bytes
(with a chunking for ASGI), plus a :class:`~.views.Sent` record of what it
carried (the widget it named and every hash candidate in it) so the checks need
no second parser of their own.

The same :class:`Chooser` writes the raw material of the core properties too:
JSON-ish text for the two JSON parsing paths (:func:`json_text`), flat data
thick with separators (:func:`separator_heavy`) and paths built from segments
(:func:`route_path`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from hypothesis import strategies as st

from ainisa_middleware import Business, user_hash

from .views import Sent

T = TypeVar("T")

SECRET_NEW = "sk_live_9c1f0e2b7a4d4e53a1b6c8d2f0e9a7b3"
SECRET_OLD = "sk_live_old_5b2e7c9d1f3a4b6c8e0d2f4a6b8c0e1d"
SECRET_OTHER = "sk_live_other_0a1b2c3d4e5f60718293a4b5c6d7e8f9"

BUSINESSES: dict[str, Business] = {
    # identity on, rotating secrets (new first, old still accepted)
    "w_pro": Business(id="biz_pro", secrets=(SECRET_NEW, SECRET_OLD)),
    # plan without identity: always identity_disabled
    "w_basic": Business(id="biz_basic", secrets=(SECRET_NEW,), identity_enabled=False),
    # rejects anonymous visitors
    "w_strict": Business(id="biz_strict", secrets=(SECRET_OTHER,), require_identity=True),
    # no secrets at all: verifies nothing
    "w_empty": Business(id="biz_empty", secrets=()),
}
WIDGETS = (*BUSINESSES, "w_unknown")
SECRETS = (SECRET_NEW, SECRET_OLD, SECRET_OTHER)
PATH = "/chat"
#: Paths a host routes to ``PATH`` or below, read as routers read them (contract
#: 3.7): each must be intercepted like ``PATH`` itself.
PATH_VARIANTS = [
    "//chat",
    "/chat//x",
    "///chat/x",
    "/x/../chat",
    "/./chat",
    "/a/b/../../chat/x",
    "/..//chat",
    "/%2Fchat",
    "/%2fchat/x",
    "/%252Fchat",
    "\\chat",
]
#: Mount points (ASGI ``root_path``, WSGI ``SCRIPT_NAME``) an app may sit under.
MOUNT = "/api"
IDENTITY = ("user_id", "user_hash", "firstname", "lastname", "email")


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    query: bytes
    body: bytes
    chunks: list[bytes]
    sent: Sent = field(default_factory=Sent)
    #: the mount point: ASGI ``root_path``, WSGI ``SCRIPT_NAME``
    root: str = ""

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


# -- the chooser ---------------------------------------------------------------

SPECIAL_TEXT = [
    "",
    " ",
    "42",
    "0",
    "-0",
    "user 1",
    "a&b",
    "a;b",
    "a=b",
    "a+b",
    "a%26b",
    "é",
    "Ã©",
    "\ufeff",
    "\x00",
    "\u2028",
    "𝒳",
    "__proto__",
    "constructor",
    "user_id",
    "1e999999",
    "9" * 40,
]
SURROGATES = ["\ud800", "a\udfffb", "\udbff\udc00"]
_ALPHABET = "abcxyz019 _-.&;=+%#?/\\\"'<>{}[]\x00\x7f\xa0é€𝒳\u200b\ufeff"

_text = st.one_of(st.text(max_size=12), st.sampled_from(SPECIAL_TEXT))
_json_text = st.one_of(_text, st.sampled_from(SURROGATES))
_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    _json_text,
)
_json_values = st.recursive(
    _json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(_json_text, kids, max_size=3)
    ),
    max_leaves=8,
)
_binary = st.binary(max_size=40)


class Chooser:
    """Where the generator's choices come from."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def text(self, *, surrogates: bool = False) -> str:
        raise NotImplementedError

    def json_value(self) -> object:
        raise NotImplementedError

    def binary(self) -> bytes:
        raise NotImplementedError

    def choice(self, items: Sequence[T]) -> T:
        return items[self.integer(0, len(items) - 1)]

    def chance(self, one_in: int) -> bool:
        return self.integer(0, one_in - 1) == 0

    def permutation(self, items: Sequence[T]) -> list[T]:
        pool = list(items)
        out = []
        while pool:
            out.append(pool.pop(self.integer(0, len(pool) - 1)))
        return out


class DrawChooser(Chooser):
    """Choices drawn from Hypothesis (shrinkable); strategies are built once."""

    _ints: dict[tuple[int, int], st.SearchStrategy[int]] = {}

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        strategy = self._ints.get((lo, hi))
        if strategy is None:
            strategy = self._ints[(lo, hi)] = st.integers(lo, hi)
        return self.draw(strategy)

    def text(self, *, surrogates: bool = False) -> str:
        return self.draw(_json_text if surrogates else _text)

    def json_value(self) -> object:
        return self.draw(_json_values)

    def binary(self) -> bytes:
        return self.draw(_binary)


class RandomChooser(Chooser):
    """Choices from a seeded ``random.Random``: fast, replayable from the seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def text(self, *, surrogates: bool = False) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            return rng.choice(SPECIAL_TEXT)
        if surrogates and roll < 0.35:
            return rng.choice(SURROGATES)
        if roll < 0.8:
            return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 10)))
        chars = "".join(chr(rng.randint(1, 0x10FFFF)) for _ in range(rng.randint(0, 4)))
        return chars if surrogates else _utf8_safe(chars)

    def json_value(self, depth: int = 0) -> object:
        rng = self.rng
        roll = rng.randint(0, 9 if depth < 3 else 6)
        if roll == 0:
            return None
        if roll == 1:
            return rng.random() < 0.5
        if roll == 2:
            return rng.randint(-(2**70), 2**70)
        if roll == 3:
            return rng.uniform(-1e300, 1e300)
        if roll <= 6:
            return self.text(surrogates=True)
        if roll <= 8:
            return [self.json_value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {
            self.text(surrogates=True): self.json_value(depth + 1) for _ in range(rng.randint(0, 3))
        }

    def binary(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, 40))


# -- values --------------------------------------------------------------------


def _utf8_safe(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def flat_text(c: Chooser) -> str:
    return _utf8_safe(c.text())


def user_id_for_flat(c: Chooser, honest: bool) -> str:
    if c.chance(3):
        return str(c.integer(-(10**20), 10**20))
    value = flat_text(c)
    return (value or "u1") if honest else value


def user_id_for_json(c: Chooser, honest: bool) -> object:
    roll = c.integer(0, 9)
    if roll < 5:
        value = c.text(surrogates=True)
        return (value or "u1") if honest else value
    if roll < 8 or honest:
        return c.integer(-(2**64), 2**64)
    if roll == 8:
        return c.integer(10**40, 10**60)
    return c.choice([True, False, None, 1.5, 1e300, [], {}, ["1"]])


HASH_KINDS = (
    ["new"] * 5
    + ["old"] * 2
    + ["other", "upper", "prefix", "short", "long", "nonhex", "unicode", "wrong_user", "empty"]
    + ["random"]
)


def hash_for(c: Chooser, user_id: object, honest: bool = False) -> str:
    """A hash candidate for ``user_id``: valid, rotated, foreign, wrong or malformed."""
    uid = user_id if isinstance(user_id, str) else str(user_id)
    try:
        uid.encode("utf-8")
        valid = {
            "new": user_hash(SECRET_NEW, uid),
            "old": user_hash(SECRET_OLD, uid),
            "other": user_hash(SECRET_OTHER, uid),
        }
    except UnicodeEncodeError:  # a lone surrogate: no site could have signed it
        valid = {"new": "0" * 64, "old": "1" * 64, "other": "2" * 64}
    kind = c.choice(["new", "old", "upper"] if honest else HASH_KINDS)
    if kind in valid:
        return valid[kind]
    good = valid["new"]
    if kind == "upper":
        return good.upper()
    if kind == "prefix":  # right for n characters, then wrong: for timing too
        n = c.integer(0, 63)
        return good[:n] + ("0" if good[n] != "0" else "1") + good[n + 1 :]
    if kind == "short":
        return good[: c.integer(0, 63)]
    if kind == "long":
        return good + "0"
    if kind == "nonhex":
        return "g" + good[1:]
    if kind == "unicode":
        return "é" + good[2:]
    if kind == "wrong_user":
        return user_hash(SECRET_NEW, _utf8_safe(uid) + "x")
    if kind == "empty":
        return ""
    return f"{c.integer(0, 2**256 - 1):064x}"


def flat_user(c: Chooser, honest: bool) -> dict[str, str]:
    """User data as the flat fields of a query or form (all strings)."""
    user: dict[str, str] = {}
    uid = user_id_for_flat(c, honest)
    if honest or not c.chance(4):
        user["user_id"] = uid
    if honest or not c.chance(4):
        user["user_hash"] = hash_for(c, uid, honest)
    for name in ("firstname", "lastname", "email"):
        if c.chance(2):
            user[name] = flat_text(c)
    return user


def json_user(c: Chooser, honest: bool) -> object:
    """The ``user`` object of a JSON body, including values of the wrong type."""
    if not honest and c.chance(16):
        return c.choice([None, "", "x", 1, [], True])
    user: dict[str, object] = {}
    uid = user_id_for_json(c, honest)
    if honest or not c.chance(5):
        user["user_id"] = uid
    if honest or not c.chance(4):
        user["user_hash"] = hash_for(c, uid, honest)
    for name in ("firstname", "lastname", "email"):
        if c.chance(2):
            wrong = not honest and c.chance(10)
            user[name] = c.choice([None, 1, []]) if wrong else c.text(surrogates=True)
    if not honest and c.chance(6):
        user[c.choice(["role", "user_hash ", "USER_ID", "extra"])] = "admin"
    return user


# -- flat encodings ------------------------------------------------------------


def encode_name(name: str, how: int) -> str:
    if how == 1 and name.startswith("u"):
        return "%75" + name[1:]
    if how == 2 and "_" in name:
        return name.replace("_", "%5F")
    if how == 3 and "_" in name:
        return name.replace("_", "%5f")
    if how == 4:
        return "".join(f"%{b:02X}" for b in name.encode())
    return quote(name, safe="")


def encode_value(value: str, how: int) -> bytes:
    if how == 1:
        return quote(value, safe="").encode()
    if how == 2:
        return value.encode("utf-8")  # raw, as a careless client sends it
    if how == 3:
        return quote(value, safe=";&=+").encode()  # separators left raw
    return quote_plus(value).encode()


NOISE_NAMES = ("message", "lang", "x", "", "user")
SEPARATORS = [b"&"] * 18 + [b";", b"&&", b"&;"]


def flat_data(c: Chooser, user: dict[str, str], widget: str | None, honest: bool) -> bytes:
    """A query string or form body with ``user``, the widget ID and noise."""
    fields: list[tuple[str, bytes]] = []
    for name, value in user.items():
        how = c.choice([0, 1] if honest else [0, 0, 0, 1, 1, 2, 3])
        fields.append((encode_name(name, c.integer(0, 8)), encode_value(value, how)))
    if widget is not None:
        fields.append(("widget_id", encode_value(widget, 0)))
    for _ in range(c.integer(0, 3)):
        names = IDENTITY if not honest and c.chance(10) else NOISE_NAMES
        how = c.choice([0, 1] if honest else [0, 1, 2, 3])
        fields.append((quote(c.choice(names)), encode_value(flat_text(c), how)))
    out = b""
    for index, (name, value) in enumerate(c.permutation(fields)):
        if index:
            out += b"&" if honest else c.choice(SEPARATORS)
        if not honest and c.chance(13):
            out += name.encode()  # no '=' at all
        else:
            out += name.encode() + b"=" + value
    if not honest and c.chance(11):
        out = c.choice([b"&", b";", b"\xef\xbb\xbf"]) + out
    return out


# -- multipart bodies ----------------------------------------------------------

#: part headers that make an identity part something two parsers read two ways
_PART_TRICKS = [
    b"Content-Transfer-Encoding: base64",
    b"Content-Type: text/plain; charset=utf-7",
    b"Content-Type: application/octet-stream",
    b'Content-Disposition: form-data; name="user_id"',
]


def multipart_data(
    c: Chooser, user: dict[str, str], widget: str | None, honest: bool
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``user`` as text parts, noise and a file."""
    boundary = "----ainisa" + str(c.integer(0, 10**9))
    parts: list[tuple[str, bytes, str | None, list[bytes]]] = []  # name, value, file, headers
    for name, value in user.items():
        parts.append((name, value.encode("utf-8", "surrogatepass"), None, []))
    if widget is not None:
        parts.append(("widget_id", widget.encode(), None, []))
    parts.append(("message", flat_text(c).encode(), None, []))
    if c.chance(2):
        parts.append(("file", c.binary(), c.choice(["a.png", "b c.txt", ""]), []))
    if not honest:
        for _ in range(c.integer(0, 2)):
            trick = c.integer(0, 5)
            name = c.choice([*IDENTITY, "widget_id"])
            if trick == 0:  # identity as a file
                parts.append((name, b"42", "x.txt", []))
            elif trick == 1:  # a padded name
                parts.append((name + c.choice([" ", "\t", "\x00"]), b"42", None, []))
            elif trick == 2:
                parts.append((name, b"42", None, [c.choice(_PART_TRICKS)]))
            elif trick == 3:  # repeated
                parts.append((name, flat_text(c).encode(), None, []))
            elif trick == 4:  # not UTF-8
                parts.append((name, b"4\xff2", None, []))
            else:  # a name*= parameter only some parsers read
                parts.append(("x", b"1", None, [b"X: y"]))
    out = b""
    for name, value, filename, extra in c.permutation(parts):
        disposition = b'form-data; name="' + name.encode("utf-8", "surrogatepass") + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename.encode() + b'"'
        head = [b"--" + boundary.encode(), b"Content-Disposition: " + disposition, *extra]
        out += b"\r\n".join(head) + b"\r\n\r\n" + value + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    content_type = f"multipart/form-data; boundary={boundary}"
    if not honest and c.chance(6):
        out = out[: c.integer(0, len(out))]  # cut short
    if not honest and c.chance(8):
        content_type = c.choice(
            [content_type + "; charset=utf-7", "multipart/form-data", content_type.upper()]
        )
    return out, content_type


# -- whole requests ------------------------------------------------------------

JSON_TYPES = [
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "application/json;charset=utf-16",
    "application/vnd.ainisa+json",
    "application/json, text/plain",
    " application/json ",
]
FORM_TYPES = [
    "application/x-www-form-urlencoded",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/x-www-form-urlencoded ; charset=UTF-8",
    "application/x-www-form-urlencoded; charset=utf-7",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded+json",
]
OTHER_TYPES = ["multipart/form-data; boundary=x", "text/plain", "application/xml", ""]
HOSTILE_BODIES = [
    b'{"user":{"user_id":"1","user_id":"2"}}',
    b'{"a":{"b":1,"b":2}}',
    b'{"widget_id":"w_pro","widget_id":"w_basic"}',
    b"[" * 40 + b"]" * 40,
    b'{"a":' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":1e999999}',
    b'{"a":' + b"9" * 5000 + b"}",
    b"\xef\xbb\xbf{}",
    b'{"a":"\xc0\xaf"}',
    b'{"a":"\xed\xa0\x80"}',
    b"\xff\xfe{\x00}\x00",
    b'{"a":"\x00"}',
    b'{"__proto__":{"user_id":"1"}}',
    b'"just a string"',
    b"null",
    b"{",
    b'{"user":{"user_id":"1"}} trailing',
    b"widget_id=w_pro&user_id=1",
    b'{"x&user_id=victim&y":1}',
    '{"user":{"user_id":"é"}}'.encode("utf-16"),
    '{"user":{"user_id":"é"}}'.encode("utf-16-le"),
]
HOSTILE_QUERIES = [
    b"user+AF8-id=victim&firstname=Eve",  # UTF-7, for a host that honours charset
    b"user%2BAF8-id=victim",
    b"user_id=%C3%A9&email=%FF",
    b"user_id=7;x",
    b"x=1;user_id=evil",
    b"%75%73%65%72%5F%69%64=victim",
    b"user_id=victim%00",
    b"user_id[]=victim",
    b"user_id=1&user_id=2",
]
BODYLESS_TYPES = [
    "text/plain; charset=utf-7",
    "application/json; charset=utf-16",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=x",
]
_WIDGET_CHOICES = ["w_pro"] * 8 + ["w_basic", "w_empty"] * 2 + [*WIDGETS, "bad id", "x" * 129, ""]
_PLACES = ["header"] * 6 + ["query", "body", "two"] * 2 + ["none", "twice"]
_USER_PLACES = ["json"] * 4 + ["form"] * 4 + ["multipart"] * 2 + ["query"] * 2 + ["none", "both"]
_KINDS = ["json"] * 6 + ["form"] * 6 + ["multipart"] * 2 + ["none"] * 3 + ["other", "hostile"]
_ALL_TYPES = OTHER_TYPES + JSON_TYPES + FORM_TYPES


def _chunks(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    out, last = [], 0
    for point in points:
        out.append(body[last:point])
        last = point
    out.append(body[last:])
    return out


def _json_body(c: Chooser, doc: dict[str, object]) -> bytes:
    style = c.integer(0, 3)
    if style == 0:
        text = json.dumps(doc)
    elif style == 1:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    elif style == 2:
        text = json.dumps(doc, indent=1)
    else:
        text = " \n" + json.dumps(doc) + "\t"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: only the escaped form is UTF-8
        return json.dumps(doc).encode("ascii")


def build_request(c: Chooser, intercepted: bool = True) -> Request:
    """A chat request: JSON, form or query user data, honest or hostile.

    A third of the requests are honest (a signed visitor of a known widget, sent
    the way a browser would, with only the encodings a browser may choose), so
    that verified visitors, the case where a leak would matter, are common.
    """
    honest = c.chance(3)
    if not honest and c.chance(12):
        return _charset_attack(c, intercepted)
    widget = "w_pro" if honest else c.choice(_WIDGET_CHOICES)
    sent = Sent(widget_id=None, honest=honest)
    headers: list[tuple[bytes, bytes]] = []
    place = c.choice(["header", "query", "body", "two"] if honest else _PLACES)
    in_query = place in ("query", "two")
    in_body = place in ("body", "two")
    if place in ("header", "two", "twice"):
        headers.append((b"x-ainisa-widget-id", widget.encode()))
        if place == "twice":
            headers.append((b"x-ainisa-widget-id", c.choice([widget, "w_pro", "w_basic"]).encode()))
    if place in ("header", "two", "twice", "query"):
        sent.widget_id = widget

    user_place = c.choice(["json", "form", "multipart", "query"] if honest else _USER_PLACES)
    kind = c.choice(["json", "form", "none"] if honest else _KINDS)
    if user_place in ("json", "form", "multipart"):
        kind = user_place
    if in_body and kind in ("json", "form", "multipart"):
        sent.widget_id = widget

    query_user = flat_user(c, honest) if user_place in ("query", "both") else {}
    query = flat_data(c, query_user, widget if in_query else None, honest)
    sent.hashes.extend(query_user.values())
    if not honest and c.chance(8):
        query = c.choice(HOSTILE_QUERIES) + (b"&" + query if query else b"")

    body = b""
    content_type: str | None = None
    if kind == "json":
        doc: dict[str, object] = {"message": c.text(surrogates=True)}
        for _ in range(c.integer(0, 3)):
            doc[c.text(surrogates=True)] = c.json_value()
        if user_place in ("json", "both"):
            user = json_user(c, honest)
            doc["user"] = user
            if isinstance(user, dict) and isinstance(user.get("user_hash"), str):
                sent.hashes.append(user["user_hash"])
        elif honest:
            doc.pop("user", None)
        if not honest and c.chance(7):
            doc[c.choice(IDENTITY)] = c.text(surrogates=True)
        if in_body:
            doc["widget_id"] = widget
        body = _json_body(c, dict(c.permutation(list(doc.items()))))
        content_type = c.choice(JSON_TYPES[:4] if honest else JSON_TYPES[:4] * 6 + JSON_TYPES)
    elif kind == "form":
        form_user = flat_user(c, honest) if user_place in ("form", "both") else {}
        sent.hashes.extend(form_user.values())
        body = flat_data(c, form_user, widget if in_body else None, honest)
        content_type = c.choice(FORM_TYPES[:3] if honest else FORM_TYPES[:3] * 6 + FORM_TYPES)
    elif kind == "multipart":
        part_user = flat_user(c, honest) if user_place in ("multipart", "both") else {}
        sent.hashes.extend(part_user.values())
        body, content_type = multipart_data(c, part_user, widget if in_body else None, honest)
    elif kind == "other":
        body = c.binary()
        content_type = c.choice(_ALL_TYPES)
    elif kind == "hostile":
        body = c.choice(HOSTILE_BODIES)
        content_type = c.choice(JSON_TYPES + FORM_TYPES)
    elif kind == "none" and not honest and c.chance(2):
        content_type = c.choice(BODYLESS_TYPES)
    if content_type is not None and (body or c.chance(2)):
        headers.append((b"content-type", content_type.encode("latin-1")))
        if not honest and c.chance(31):
            headers.append((b"content-type", c.choice(JSON_TYPES + FORM_TYPES).encode("latin-1")))
    if c.chance(2):
        headers.append((b"content-length", str(len(body)).encode()))
    if not honest and c.chance(9):
        headers.append((b"X-Ainisa-Widget-Id", b"w_basic"))  # not lower case: not a header
    headers.append((b"user-agent", b"hypothesis"))
    headers = c.permutation(headers)

    root = ""
    if intercepted:
        method = c.choice(["POST"] * 6 + ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
        if method == "OPTIONS" and c.chance(2):
            # Access-Control-Request-Method, but a body: not a preflight, inspected.
            headers = _not_a_preflight(c, headers, body)
        path = c.choice(PATH_VARIANTS if c.chance(4) else [PATH, PATH + "/", PATH + "/sub/x"])
        if c.chance(6):
            # Mounted: the path with the mount point (Starlette's Mount, uvicorn
            # --root-path) or without it (WSGI's SCRIPT_NAME, older servers).
            root = c.choice([MOUNT, MOUNT + "/"])
            # Not "/api/./chat" under "/api/": Django's ASGIRequest strips the root
            # to "./chat", which PathMatcher misreads (an xfail in tests/test_paths.py).
            if c.chance(2) and not (root.endswith("/") and path.startswith("/./")):
                path = MOUNT + path
    else:
        method = c.choice(["POST", "GET"])
        path = c.choice(["/chatter", "/", "/other/chat", "/Chat", "/c"])
    cuts = [c.integer(0, 1 << 16) for _ in range(c.integer(0, 3))]
    req = Request(method, path, headers, query, body, _chunks(body, cuts), sent, root)
    if not intercepted and c.chance(2):
        return as_preflight(replace(req, path=c.choice([PATH, PATH + "/x", "//chat"])))
    return req


PREFLIGHT_HEADER = (b"access-control-request-method", b"POST")


def _not_a_preflight(
    c: Chooser, headers: list[tuple[bytes, bytes]], body: bytes
) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Access-Control-Request-Method`` and a body the server can see.

    An HTTP/1.1 body comes with ``Content-Length`` or ``Transfer-Encoding``: a
    request that carries neither has no body as far as any host can tell.
    """
    if not body:
        return headers
    out = [*headers, PREFLIGHT_HEADER]
    if not any(n == b"content-length" for n, _ in headers):
        out.append((b"transfer-encoding", b"chunked"))
    return c.permutation(out)


def as_preflight(req: Request) -> Request:
    """``req`` made a genuine CORS preflight: ``OPTIONS``, the header, no body.

    The query string and the other headers stay: a preflight passes untouched
    whatever it carries.
    """
    framing = (b"content-length", b"transfer-encoding", PREFLIGHT_HEADER[0])
    headers = [(n, v) for n, v in req.headers if n.lower() not in framing]
    headers.append(PREFLIGHT_HEADER)
    if len(req.body) % 2:  # some clients send "Content-Length: 0", most nothing
        headers.append((b"content-length", b"0"))
    return replace(req, method="OPTIONS", headers=headers, body=b"", chunks=[b""])


def _charset_attack(c: Chooser, intercepted: bool) -> Request:
    """A bodiless request whose Content-Type charset would re-decode the query.

    Hosts that honour the charset (Django) would read ``user+AF8-id`` as
    ``user_id`` under UTF-7, or ``%C3%A9`` as ``Ã©`` under latin-1.
    """
    uid = c.choice(["é", "victim", "42"])
    digest = user_hash(SECRET_NEW, uid)
    query = c.choice(
        [
            b"user+AF8-id=victim&firstname=Eve",
            b"user%2BAF8-id=victim",
            b"user_id=" + quote(uid).encode() + b"&user_hash=" + digest.encode(),
        ]
    )
    charset = c.choice(["utf-7", "latin-1", "utf-16", "UTF-8"])
    headers = [
        (b"x-ainisa-widget-id", b"w_pro"),
        (b"content-type", f"text/plain; charset={charset}".encode()),
    ]
    method = c.choice(["GET", "POST"])
    path = PATH if intercepted else "/chatter"
    sent = Sent(widget_id="w_pro", hashes=[digest])
    return Request(method, path, headers, query, b"", [b""], sent)


# -- JSON text for the two JSON parsing paths ---------------------------------

#: String contents, written as JSON: what a scanner that skips strings without
#: decoding them must get right (quotes, backslashes, brackets, colons) and what
#: decodes to something awkward (lone surrogates, NUL, astral characters).
STRING_PIECES = [
    "a",
    "user_id",
    r"\"",
    r"\\",
    r"\\\"",
    r"\\\\",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    '\\":\\"',
    r"\/",
    r"\u0061",
    r"\u005c",
    r"\u0022",
    r"\ud800",
    r"\udfff",
    r"\ud83d\ude00",
    r"\u0000",
    r"\n\t",
    "é",
    "𝒳",
    "\u2028",
]
#: String contents strict JSON refuses: a raw control character, bad escapes.
BAD_STRING_PIECES = ["\x01", "\n", r"\x41", r"\u12", "\\", r"\'"]
#: Keys, and other spellings of the same key for a duplicate that differs in text only.
JSON_KEYS = ['"a"', '"b"', '"user"', '"user_id"', '"user_hash"', '"widget_id"', '""', '"é"', '"/"']
RESPELLINGS = {
    '"a"': [r'"\u0061"'],
    '"user_id"': [r'"user\u005fid"', r'"\u0075ser_id"'],
    '"é"': [r'"\u00e9"', r'"\u00E9"'],
    '"/"': [r'"\/"'],
    '""': ['""'],
}
NUMBERS = [
    "0",
    "-0",
    "1",
    "-1",
    "1.5",
    "-0.0",
    "1e3",
    "1E+2",
    "2e-5",
    "1e-400",
    "0e999999",
    "1e308",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "1e309",
    "-1e400",
    "1e999999",
    "9007199254740993",
    "123.456e-7",
]
#: Numbers and literals strict JSON refuses.
BAD_NUMBERS = ["01", "1.", ".5", "+1", "1e", "--1", "0x10", "NaN", "Infinity", "-Infinity", "nul"]
#: What a generated text is built to test; "clean" texts must parse, the others
#: mostly must not, and "mixed" lets every kind of trouble in at once.
JSON_TROUBLES = ["clean"] * 4 + ["duplicate", "deep", "number", "syntax", "top", "mixed"]
JSON_WHITESPACE = ["", "", " ", "\n", "\t", "\r\n  "]
#: What a mutation inserts: structure, escapes, and whitespace JSON does not allow.
MUTATIONS = list('{}[]:,"\\ 0e-.') + ["\u00a0", "\x0b", "\ufeff"]


class _JsonWriter:
    """Writes one JSON-ish text; ``trouble`` says which refusals it invites."""

    def __init__(self, c: Chooser, trouble: str) -> None:
        self.c = c
        mixed = trouble == "mixed"
        self.duplicates = trouble == "duplicate" or mixed
        self.bad_numbers = trouble == "number" or mixed
        self.bad_syntax = trouble == "syntax" or mixed
        self.deep = c.choice([33, 34, 40] if trouble == "deep" else [0, 0, 1, 2, 16, 31, 32])
        # whitespace between tokens in a third of the texts (a choice per token costs)
        self.spaced = c.chance(3)

    def ws(self) -> str:
        return self.c.choice(JSON_WHITESPACE) if self.spaced else ""

    def string(self, *, key: bool = False) -> str:
        c = self.c
        pieces = []
        for _ in range(c.integer(1 if key else 0, 3)):
            if c.chance(2):
                pieces.append(c.choice(STRING_PIECES))
            else:
                pieces.append(json.dumps(c.text(), ensure_ascii=c.chance(2))[1:-1])
        if self.bad_syntax and c.chance(10):
            pieces.append(c.choice(BAD_STRING_PIECES))
        return '"' + "".join(pieces) + '"'

    def number(self, *, bad: bool = False) -> str:
        c = self.c
        roll = c.integer(5, 9) if bad else c.integer(0, 9 if self.bad_numbers else 4)
        if roll < 2:
            return str(c.integer(-(2**70), 2**70))
        if roll < 4:
            return c.choice(NUMBERS[:13])  # finite and faithful
        if roll == 4:
            sign = c.choice(["", "+", "-"])
            return f"{c.integer(-9, 9)}.{c.integer(0, 999)}e{sign}{c.integer(0, 300)}"
        if roll == 5:
            return c.choice(NUMBERS)
        if roll == 6:  # around Python's 4300-digit limit, and past it
            return c.choice(["", "-"]) + "9" * c.choice([17, 309, 4299, 4300, 4301])
        if roll == 7:  # around the largest finite float
            return f"{c.integer(1, 9)}.{c.integer(0, 99)}e{c.integer(300, 310)}"
        if roll == 8:  # a long mantissa that overflows, or not
            return "1" * c.integer(300, 312) + ".5"
        return c.choice(BAD_NUMBERS)

    def leaf(self) -> str:
        roll = self.c.integer(0, 5)
        if roll < 2:
            return self.string()
        if roll < 4:
            return self.number()
        return self.c.choice(["true", "false", "null"])

    def key(self, keys: list[str]) -> str:
        c = self.c
        if keys and self.duplicates and c.chance(2):  # spelled differently, at times
            key = c.choice(keys)
            return c.choice([key, *RESPELLINGS.get(key, [])])
        return c.choice(JSON_KEYS) if c.chance(3) else self.string(key=True)

    def member(self, depth: int) -> str:
        if depth < 4 and self.c.chance(4):
            return self.container(depth + 1)
        return self.leaf()

    def container(self, depth: int, *, kind: str = "", extra: str = "") -> str:
        """An array or object at ``depth``, with a descendant at ``self.deep`` if deeper."""
        c = self.c
        spine = self.deep > depth
        values = [self.member(depth) for _ in range(c.integer(0, 1 if spine else 3))]
        if spine:
            values.insert(c.integer(0, len(values)), self.container(depth + 1))
        if extra:
            values.insert(c.integer(0, len(values)), extra)
        sep = self.ws() + "," + self.ws()
        if (kind or c.choice("{{[")) == "[":
            return "[" + self.ws() + sep.join(values) + self.ws() + "]"
        keys: list[str] = []
        for _ in values:
            key = self.key(keys)
            if not self.duplicates:
                while key in keys:  # rare: from the short key list
                    key = self.string(key=True)[:-1] + 'x"'
            keys.append(key)
        colon = self.ws() + ":" + self.ws()
        members = [key + colon + value for key, value in zip(keys, values, strict=True)]
        return "{" + self.ws() + sep.join(members) + self.ws() + "}"

    def mutate(self, text: str) -> str:
        c = self.c
        at = c.integer(0, len(text))
        roll = c.integer(0, 3)
        if roll == 0:
            return text[:at] + text[at + 1 :]
        if roll == 1:
            return text[:at] + c.choice(MUTATIONS) + text[at:]
        if roll == 2:
            return text[:at]
        return text[:at] + text[at : at + c.integer(1, 8)] + text[at:]


def json_text(c: Chooser) -> str:
    """JSON-ish text: about half of it valid, the rest refused for one reason or several.

    Duplicate keys (also spelled differently), nesting around the limit of 32,
    numbers around the int and float limits, broken syntax, a top level that
    is not an object. Every text is valid UTF-8 once encoded: lone surrogates
    appear only as ``\\ud800`` escapes, as a body that decodes at all carries them.
    """
    trouble = c.choice(JSON_TROUBLES)
    writer = _JsonWriter(c, trouble)
    if trouble == "top":
        text = writer.member(1) if c.chance(2) else writer.container(1, kind="[")
    else:
        # "number": one number at a limit, whatever else the text holds
        extra = writer.number(bad=True) if trouble == "number" else ""
        text = writer.container(1, kind="{", extra=extra)
    text = writer.ws() + text + writer.ws()
    if trouble in ("syntax", "mixed") and c.chance(2):
        text = writer.mutate(text)
    return text


# -- flat data thick with separators -------------------------------------------

FLAT_UNITS = [
    b"a=1",
    b"user_id=1",
    b"widget_id=w_pro",
    b"message=hi+there",
    b"=",
    b"",
    b"x",
    b"%26",
    b"user_hash=" + b"0" * 64,
]
FLAT_SEPARATORS = [b"&", b";", b"&&", b";&", b"&;;"]


def separator_heavy(c: Chooser) -> bytes:
    """A query string or form body: a few fields repeated up to hundreds of times."""
    unit = b"".join(
        c.choice(FLAT_UNITS) + c.choice(FLAT_SEPARATORS) for _ in range(c.integer(1, 3))
    )
    data = unit * c.choice([1, 2, 3, 10, 40, 333])
    return data + c.choice(FLAT_UNITS) if c.chance(2) else data


# -- paths built from segments -------------------------------------------------

#: Segments a path under a mount may be built from: dots, empty segments,
#: encoded slashes (once and twice), and names close to the protected prefix.
ROUTE_SEGMENTS = [
    "",
    ".",
    "..",
    "..",
    "chat",
    "chat",
    "chatter",
    "x",
    "api",
    "%2F",
    "%2f",
    "%252F",
    "chat%2F..",
    "%2Fchat",
    "chat%2Fx",
]
ROUTE_ROOTS = ["", "", "/", MOUNT, MOUNT + "/", "/" + MOUNT, "/chat"]
#: Segments that read the same to every router and never as ``chat``.
PLAIN_SEGMENTS = ["", ".", "..", "x", "chatter", "api", "Chat", "chat.json", "c", "hat"]
PLAIN_ROOTS = ["", "/", MOUNT, MOUNT + "/"]


def route_path(c: Chooser, segments: Sequence[str], roots: Sequence[str]) -> tuple[str, str]:
    """A path and the mount point (``""`` for none) it is served under.

    The path holds the mount point or not, as hosts disagree on which is right.
    """
    path = "/" + "/".join(c.choice(segments) for _ in range(c.integer(0, 6)))
    root = c.choice(roots)
    if root and c.chance(2):
        path = root.rstrip("/") + path
    return path, root


@st.composite
def _drawn(draw: st.DrawFn, intercepted: bool) -> Request:
    return build_request(DrawChooser(draw), intercepted)


def requests(*, intercepted: bool = True) -> st.SearchStrategy[Request]:
    """Shrinkable requests (the CI profile)."""
    return _drawn(intercepted)


def fast_requests(*, intercepted: bool = True) -> st.SearchStrategy[Request]:
    """Requests from a seeded Random (the long profile): one draw per example.

    A failure is replayed with ``build_request(RandomChooser(random.Random(seed)))``.
    """
    # A plain Random from a drawn seed: Hypothesis' own Random wrapper records
    # every call, which would cost more than building the request.
    return st.integers(0, 2**64 - 1).map(
        lambda seed: build_request(RandomChooser(random.Random(seed)), intercepted)
    )


def any_requests(*, intercepted: bool = True, fast: bool = False) -> st.SearchStrategy[Any]:
    return fast_requests(intercepted=intercepted) if fast else requests(intercepted=intercepted)


def chosen(
    make: Callable[[Chooser], T], *, fast: bool = False, batch: int = 1
) -> st.SearchStrategy[list[T]]:
    """``make`` run on drawn choices (one result, shrinkable), or, ``fast``, ``batch``
    times on a Random seeded by one draw: Hypothesis' own cost per example is
    then shared by ``batch`` cheap checks. Replay a fast failure from the seed."""
    if fast:

        def run(seed: int) -> list[T]:
            rng = RandomChooser(random.Random(seed))
            return [make(rng) for _ in range(batch)]

        return st.integers(0, 2**64 - 1).map(run)
    return st.composite(lambda draw: [make(DrawChooser(draw))])()
