"""Hypothesis strategies for chat requests, honest and hostile.

A generated :class:`Request` is raw material for every adapter: method, path,
header list, query bytes and body bytes (with a chunking for ASGI), plus a
:class:`~.views.Sent` record of what it carried (the widget it named and every
hash candidate in it) so the checks need no second parser of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from hypothesis import strategies as st

from ainisa_middleware import Business, user_hash

from .views import Sent

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

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


# -- values --------------------------------------------------------------------

tricky_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
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
            "é",
            "Ã©",
            "\ufeff",
            "\x00",
            "𝒳",
            "__proto__",
            "constructor",
            "user_id",
            "1e999999",
            "9" * 40,
        ]
    ),
)
# JSON strings may hold lone surrogates; flat fields are UTF-8 bytes and cannot.
json_text = st.one_of(tricky_text, st.sampled_from(["\ud800", "a\udfffb", "\udbff\udc00"]))
flat_text = tricky_text.filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s))

user_ids = st.one_of(flat_text, st.integers(min_value=-(10**20), max_value=10**20).map(str))
json_user_ids = st.integers(0, 9).flatmap(
    lambda i: (
        json_text
        if i < 5
        else st.integers()
        if i < 8
        else st.integers(min_value=10**40, max_value=10**60)
        if i == 8
        else st.sampled_from([True, False, None, 1.5, 1e300, [], {}, ["1"]])
    )
)


def hash_for(user_id: object, draw: st.DrawFn, honest: bool = False) -> str:
    """A hash candidate for ``user_id``: valid, rotated, foreign, wrong or malformed."""
    uid = user_id if isinstance(user_id, str) else str(user_id)
    try:
        uid.encode("utf-8")
        valid = {
            "new": user_hash(SECRET_NEW, uid),
            "old": user_hash(SECRET_OLD, uid),
            "other": user_hash(SECRET_OTHER, uid),
        }
    except UnicodeEncodeError:
        valid = {"new": "0" * 64, "old": "1" * 64, "other": "2" * 64}
    kind = draw(
        st.sampled_from(
            ["new", "old", "upper"]
            if honest
            else [
                "new",
                "new",
                "new",
                "new",
                "new",
                "old",
                "old",
                "other",
                "upper",
                "prefix",
                "short",
                "long",
                "nonhex",
                "unicode",
                "wrong_user",
                "empty",
                "random",
            ]
        )
    )
    if kind in valid:
        return valid[kind]
    good = valid["new"]
    if kind == "upper":
        return good.upper()
    if kind == "prefix":
        n = draw(st.integers(0, 63))
        return good[:n] + ("0" if good[n] != "0" else "1") + good[n + 1 :]
    if kind == "short":
        return good[: draw(st.integers(0, 63))]
    if kind == "long":
        return good + "0"
    if kind == "nonhex":
        return "g" + good[1:]
    if kind == "unicode":
        return "é" + good[2:]
    if kind == "wrong_user":
        return user_hash(SECRET_NEW, uid.encode("utf-8", "replace").decode() + "x")
    if kind == "empty":
        return ""
    return f"{draw(st.integers(0, 2**256 - 1)):064x}"


@st.composite
def flat_users(draw: st.DrawFn, honest: bool = False) -> dict[str, str]:
    """User data as the flat fields of a query or form (all strings)."""
    user: dict[str, str] = {}
    uid = draw(user_ids.filter(bool) if honest else user_ids)
    if honest or draw(st.booleans()) or draw(st.booleans()):
        user["user_id"] = uid
    if honest or draw(st.integers(0, 3)):
        user["user_hash"] = hash_for(uid, draw, honest)
    for name in ("firstname", "lastname", "email"):
        if draw(st.booleans()):
            user[name] = draw(flat_text)
    return user


@st.composite
def json_users(draw: st.DrawFn, honest: bool = False) -> object:
    """The ``user`` object of a JSON body, including values of the wrong type."""
    if not honest and draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from([None, "", "x", 1, [], True]))
    user: dict[str, object] = {}
    uid = draw(st.one_of(json_text.filter(bool), st.integers()) if honest else json_user_ids)
    if honest or draw(st.integers(0, 4)):
        user["user_id"] = uid
    if honest or draw(st.integers(0, 3)):
        user["user_hash"] = hash_for(uid, draw, honest)
    for name in ("firstname", "lastname", "email"):
        if draw(st.booleans()):
            wrong = not honest and draw(st.integers(0, 9)) == 0
            user[name] = draw(st.sampled_from([None, 1, []]) if wrong else json_text)
    if not honest and draw(st.integers(0, 5)) == 0:
        user[draw(st.sampled_from(["role", "user_hash ", "USER_ID", "extra"]))] = "admin"
    return user


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    json_text,
)
json_values = st.recursive(
    json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(json_text, kids, max_size=3)
    ),
    max_leaves=8,
)


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


@st.composite
def flat_data(
    draw: st.DrawFn, user: dict[str, str], widget: str | None, *, honest: bool = False
) -> bytes:
    """A query string or form body with ``user``, the widget ID and noise."""
    fields: list[tuple[str, bytes]] = []
    for name, value in user.items():
        name_how = draw(st.integers(0, 8))
        value_how = draw(st.sampled_from([0, 1] if honest else [0, 0, 0, 1, 1, 2, 3]))
        fields.append((encode_name(name, name_how), encode_value(value, value_how)))
    if widget is not None:
        fields.append(("widget_id", encode_value(widget, 0)))
    for _ in range(draw(st.integers(0, 3))):
        names = (
            IDENTITY
            if not honest and draw(st.integers(0, 9)) == 0
            else ("message", "lang", "x", "", "user")
        )
        name = draw(st.sampled_from(names))
        how = draw(st.sampled_from([0, 1] if honest else [0, 1, 2, 3]))
        fields.append((quote(name), encode_value(draw(flat_text), how)))
    fields = draw(st.permutations(fields))
    out = b""
    for index, (name, value) in enumerate(fields):
        if index:
            out += b"&" if honest else draw(st.sampled_from([b"&"] * 18 + [b";", b"&&", b"&;"]))
        form = 1 if honest else draw(st.integers(0, 12))
        if form == 0:
            out += name.encode()  # no '=' at all
        else:
            out += name.encode() + b"=" + value
    if not honest and draw(st.integers(0, 10)) == 0:
        out = draw(st.sampled_from([b"&", b";", b"\xef\xbb\xbf"])) + out
    return out


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


def _chunks(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(body[last:p])
        last = p
    out.append(body[last:])
    return out


def _json_body(draw: st.DrawFn, doc: dict[str, object]) -> bytes:
    style = draw(st.integers(0, 3))
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
    except UnicodeEncodeError:
        return json.dumps(doc).encode("ascii")


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
]


@st.composite
def requests(draw: st.DrawFn, *, intercepted: bool = True) -> Request:
    """A chat request: JSON, form or query user data, honest or hostile.

    A third of the requests are honest (a signed visitor of a known widget, sent
    the way a browser would, with only the encodings a browser may choose), so
    that verified visitors, the case where a leak would matter, are common.
    """
    honest = draw(st.integers(0, 2)) == 0
    widgets = ["w_pro"] * 8 + ["w_basic", "w_empty"] * 2 + [*WIDGETS, "bad id", "x" * 129, ""]
    widget = draw(st.sampled_from(["w_pro"] if honest else widgets))
    sent = Sent(widget_id=None)
    headers: list[tuple[bytes, bytes]] = []
    places = ["header"] * 6 + ["query", "body", "two"] * 2 + ["none", "twice"]
    place = draw(st.sampled_from(["header", "query", "body", "two"] if honest else places))
    in_query = place in ("query", "two")
    in_body = place in ("body", "two")
    if place in ("header", "two", "twice"):
        headers.append((b"x-ainisa-widget-id", widget.encode()))
        if place == "twice":
            other = draw(st.sampled_from([widget, "w_pro", "w_basic"]))
            headers.append((b"x-ainisa-widget-id", other.encode()))
    if place != "none":
        sent.widget_id = widget

    user_places = ["json"] * 4 + ["form"] * 4 + ["query"] * 2 + ["none", "both"]
    user_place = draw(st.sampled_from(["json", "form", "query"] if honest else user_places))
    kinds = ["json"] * 6 + ["form"] * 6 + ["none"] * 3 + ["other", "hostile"]
    kind = draw(st.sampled_from(["json", "form", "none"] if honest else kinds))
    if user_place == "json":
        kind = "json"
    elif user_place == "form":
        kind = "form"

    query_user = draw(flat_users(honest)) if user_place in ("query", "both") else {}
    query = draw(flat_data(query_user, widget if in_query else None, honest=honest))
    for value in query_user.values():
        sent.hashes.append(value)

    body = b""
    content_type: str | None = None
    if kind == "json":
        doc: dict[str, object] = {"message": draw(json_text)}
        for key, value in draw(st.dictionaries(json_text, json_values, max_size=3)).items():
            doc[key] = value
        if user_place in ("json", "both"):
            user = draw(json_users(honest))
            doc["user"] = user
            if isinstance(user, dict) and isinstance(user.get("user_hash"), str):
                sent.hashes.append(user["user_hash"])
        if draw(st.integers(0, 6)) == 0:
            doc[draw(st.sampled_from(IDENTITY))] = draw(json_text)
        if honest and kind == "json" and user_place != "json":
            doc.pop("user", None)
        if in_body:
            doc["widget_id"] = widget
        items = list(doc.items())
        doc = dict(draw(st.permutations(items)))
        body = _json_body(draw, doc)
        content_type = draw(
            st.sampled_from(JSON_TYPES[:4] if honest else JSON_TYPES[:4] * 6 + JSON_TYPES)
        )
    elif kind == "form":
        form_user = draw(flat_users(honest)) if user_place in ("form", "both") else {}
        sent.hashes.extend(form_user.values())
        body = draw(flat_data(form_user, widget if in_body else None, honest=honest))
        content_type = draw(
            st.sampled_from(FORM_TYPES[:3] if honest else FORM_TYPES[:3] * 6 + FORM_TYPES)
        )
    elif kind == "other":
        body = draw(st.binary(max_size=40))
        content_type = draw(st.sampled_from(OTHER_TYPES + JSON_TYPES + FORM_TYPES))
    elif kind == "hostile":
        body = draw(st.sampled_from(HOSTILE_BODIES))
        content_type = draw(st.sampled_from(JSON_TYPES + FORM_TYPES))
    if content_type is not None and (body or draw(st.booleans())):
        headers.append((b"content-type", content_type.encode("latin-1")))
        if draw(st.integers(0, 30)) == 0:
            second = draw(st.sampled_from(JSON_TYPES + FORM_TYPES))
            headers.append((b"content-type", second.encode("latin-1")))
    if draw(st.booleans()):
        headers.append((b"content-length", str(len(body)).encode()))
    if draw(st.integers(0, 8)) == 0:
        headers.append((b"X-Ainisa-Widget-Id", b"w_basic"))  # not lower case: not a header
    headers.append((b"user-agent", b"hypothesis"))
    headers = draw(st.permutations(headers))

    if intercepted:
        method = draw(st.sampled_from(["POST"] * 6 + ["GET", "HEAD", "PUT", "DELETE"]))
        path = draw(st.sampled_from([PATH, PATH + "/", PATH + "/sub/x"]))
    else:
        method, path = draw(
            st.one_of(
                st.tuples(st.just("OPTIONS"), st.sampled_from([PATH, PATH + "/x"])),
                st.tuples(
                    st.sampled_from(["POST", "GET"]),
                    st.sampled_from(["/chatter", "/", "/other/chat", "/Chat", "/c"]),
                ),
            )
        )
    cuts = draw(st.lists(st.integers(0, 1 << 16), max_size=3))
    return Request(method, path, list(headers), query, body, _chunks(body, cuts), sent)
