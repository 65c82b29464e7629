"""The business's side: render ``window.ainisaUser`` and the widget tag, safely.

Ainisa's guide has the page compute ``user_hash`` on the server and render the
user object in a ``<script>`` element before ``widget.js``. Pasting values into
JavaScript by hand breaks on the first name that holds a quote or a
``</script>``; these helpers build the object from real JSON and escape it for
the HTML script element, so any value round-trips exactly and none can end the
element or open a new one.

Standard library only. Template engines get a string they will not escape a
second time (it has an ``__html__`` method, which Jinja2, MarkupSafe and Django
all honour)::

    from ainisa_middleware.snippet import user_script, widget_script

    html = user_script("42", secret=SECRET, firstname="Ada") + widget_script(WIDGET_JS)
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from typing import Final, Literal, Never, TypeAlias
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .request import _WIDGET_ID, IDENTITY_FIELDS
from .signing import HASH_LENGTH
from .signing import user_hash as compute_user_hash

__all__ = [
    "DEFAULT_WIDGET_SRC",
    "GUEST_SHAPES",
    "USER_FIELDS",
    "HTMLString",
    "SecretSource",
    "Snippets",
    "UserField",
    "check_user_fields",
    "fields_from_user",
    "script_json",
    "user_object",
    "user_script",
    "widget_script",
]

#: The widget script the guide includes after the user object.
DEFAULT_WIDGET_SRC: Final = "https://chatbot.ainisa.com/widget.js"
#: The five keys of ``window.ainisaUser``, and the only ones it may carry.
USER_FIELDS: Final = IDENTITY_FIELDS
#: ``"empty"``: the guide's guest object, every field ``""``; ``"omit"``: no script at all.
GUEST_SHAPES: Final = ("empty", "omit")

GuestShape = Literal["empty", "omit"]
#: How a template helper finds a field on a user object: an attribute name
#: (dotted for a related object, ``"profile.first_name"``) or a function of the user.
UserField: TypeAlias = str | Callable[[object], object]
#: The secret, or a function returning it (read at each render, so a rotation
#: in settings or a secrets manager takes effect without a restart).
SecretSource: TypeAlias = str | Callable[[], str]
#: A nonce, or a function returning the current request's nonce.
NonceSource: TypeAlias = str | Callable[[], str | None]

_HEX: Final = frozenset("0123456789abcdefABCDEF")
# Inside <script> the HTML tokenizer ends the element at "</script" and enters
# the double-escaped state at "<!--" and "<script"; escaping every "<" defeats
# all three. ">" and "&" are escaped too, so the text means the same if it is
# ever placed in an XHTML page or an attribute. U+2028 and U+2029 ended string
# literals in JavaScript before ES2019; json.dumps(ensure_ascii=True) already
# writes them (and lone surrogates, and all non-ASCII) as \\uXXXX escapes.
_SCRIPT_UNSAFE: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_SCRIPT_UNSAFE_RE: Final = re.compile("[<>&\u2028\u2029]")
_SCRIPT_UNSAFE_ALL: Final = {**_SCRIPT_UNSAFE, "\u2028": "\\u2028", "\u2029": "\\u2029"}
# CSP3 "base64-value": the only thing a 'nonce-...' source can hold.
_NONCE: Final = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_SAFE_SCHEMES: Final = frozenset({"https", "http", ""})


class HTMLString(str):
    """A ``str`` of ready HTML that template engines insert without escaping it again.

    Jinja2 (through MarkupSafe) and Django call ``__html__`` on a value before
    escaping it, the convention MarkupSafe set; returning the text itself says
    "already safe". Concatenating with a plain ``str`` gives a plain ``str``,
    which those engines will escape, so build whole tags with these helpers.
    """

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def script_json(value: object) -> str:
    """Serialise ``value`` as JSON that is safe as the text of an HTML ``<script>``.

    The result is plain ASCII, parses back with :func:`json.loads` to the same
    value, and holds no ``<``, ``>`` or ``&``, so nothing in it can close the
    element or start a comment, whatever the strings contained.
    """
    text = json.dumps(value, ensure_ascii=True, separators=(", ", ": "), allow_nan=False)
    return _SCRIPT_UNSAFE_RE.sub(lambda match: _SCRIPT_UNSAFE_ALL[match.group()], text)


def _attribute(name: str, value: str) -> str:
    return f' {name}="{html.escape(value, quote=True)}"'


def _nonce_attribute(nonce: str | None) -> str:
    # An empty nonce matches no Content-Security-Policy, so it is treated as
    # "no nonce" (a template whose page sets no CSP often passes "").
    if nonce is None or nonce == "":
        return ""
    if not isinstance(nonce, str):
        raise TypeError(f"nonce must be a str or None, not {type(nonce).__name__}")
    if _NONCE.fullmatch(nonce) is None:
        # A policy can only name a base64 nonce, so any other value is a bug
        # that would silently block the script.
        raise ValueError(
            "nonce must be the base64 value the Content-Security-Policy header names "
            "(letters, digits, '+', '/', '-', '_', up to two '=' at the end)"
        )
    return _attribute("nonce", nonce)


def _text(name: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
    return value


def _user_id_text(user_id: object) -> str:
    if user_id is None:
        return ""
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        raise TypeError(f"user_id must be a str, an int or None, not {type(user_id).__name__}")
    # An int is sent and hashed as its decimal string, as the middleware reads it.
    return str(user_id)


def _refuse(refused: Mapping[str, object]) -> None:
    if refused:
        names = ", ".join(sorted(refused))
        raise TypeError(
            f"window.ainisaUser carries only {', '.join(USER_FIELDS)}; refused: {names}. "
            "Never send passwords, tokens or other private data to the chat widget."
        )


def _guest(guest: object) -> GuestShape:
    if guest == "empty":
        return "empty"
    if guest == "omit":
        return "omit"
    raise ValueError(f"guest must be one of {GUEST_SHAPES}, not {guest!r}")


def _stored_hash(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"user_hash must be a str, not {type(value).__name__}")
    if len(value) != HASH_LENGTH or not _HEX.issuperset(value):
        # The value itself is not shown: a valid hash is a lasting credential.
        raise ValueError(
            f"user_hash must be the {HASH_LENGTH} hex characters of HMAC-SHA256; the stored "
            f"value has {len(value)} characters. Recompute it with user_hash(secret, user_id)."
        )
    return value.lower()


def user_object(
    user_id: str | int | None,
    *,
    secret: str | None = None,
    user_hash: str | None = None,
    firstname: str | None = None,
    lastname: str | None = None,
    email: str | None = None,
    consent: bool = True,
    **refused: Never,
) -> dict[str, str]:
    """Build the ``window.ainisaUser`` object as a dict of the five fields.

    Returns the guide's guest object (every field ``""``) when ``user_id`` is
    ``None`` or ``""``, or when ``consent`` is false; in both cases no name,
    email or hash is included, whatever was passed. See :func:`user_script` for
    the parameters and the errors. Useful where the page builds its own script
    or a JSON API hands the object to a single-page app.
    """
    _refuse(refused)
    uid = _user_id_text(user_id)
    names = {
        "firstname": _text("firstname", firstname),
        "lastname": _text("lastname", lastname),
        "email": _text("email", email),
    }
    if secret is not None and user_hash is not None:
        raise ValueError(
            "give secret (the hash is computed here) or user_hash (a stored hash), not both"
        )
    if not consent or uid == "":
        if consent and any(names.values()):
            # The middleware would see names without an id (missing_user_id)
            # and drop them; sending them is a leak with no use.
            present = ", ".join(name for name, value in names.items() if value)
            raise ValueError(
                f"{present} given without a user_id: names and email are only sent beside a "
                "signed user_id. Pass user_id, or leave them out for a guest."
            )
        return dict.fromkeys(USER_FIELDS, "")
    if secret is not None:
        given: object = secret  # checked at run time: callers may not be typed
        if not isinstance(given, str) or not secret:
            raise ValueError(
                "secret must be the business's non-empty secret key (a str); read it from "
                "settings or the environment, never from the page"
            )
        try:
            signature = compute_user_hash(secret, uid)
        except UnicodeEncodeError:
            raise ValueError(
                "user_id holds a lone surrogate and has no UTF-8 form, so it cannot be "
                "signed; pass a valid Unicode string"
            ) from None
    elif user_hash is not None:
        signature = _stored_hash(user_hash)
    else:
        raise ValueError(
            "user_id needs secret= (the hash is computed here) or user_hash= (a stored "
            "hash): without a hash the middleware treats the visitor as missing_hash"
        )
    return {"user_id": uid, "user_hash": signature, **names}


def user_script(
    user_id: str | int | None,
    *,
    secret: str | None = None,
    user_hash: str | None = None,
    firstname: str | None = None,
    lastname: str | None = None,
    email: str | None = None,
    nonce: str | None = None,
    consent: bool = True,
    guest: GuestShape = "empty",
    **refused: Never,
) -> HTMLString:
    """Render ``<script>window.ainisaUser = {...};</script>`` for one visitor.

    Put it before :func:`widget_script`. The hash is computed here from
    ``secret``, or a ``user_hash`` stored beside the user (the guide's users
    table column) is used as it is; never render the secret itself.

    :param user_id: your id for the user; an ``int`` is sent as its decimal
        string. ``None`` or ``""`` is a guest.
    :param secret: the business's secret key; the hash is computed here.
    :param user_hash: a hash computed earlier with the same secret (64 hex).
    :param firstname: optional; like ``lastname`` and ``email``, not covered by the
        hash, so the chat can show it but must not trust it.
    :param lastname: optional, unsigned.
    :param email: optional, unsigned.
    :param nonce: the page's Content-Security-Policy nonce, if it uses one.
    :param consent: when false, nothing personal is rendered: the visitor is a guest.
    :param guest: ``"empty"`` (the default) renders the guide's guest object with
        every field ``""``; ``"omit"`` renders nothing at all for a guest.

    Raises :class:`TypeError` for a key outside the five fields (the guide:
    never send passwords or tokens) or a value of the wrong type, and
    :class:`ValueError` for a user id without a hash source, names without a
    user id, or a malformed stored hash.

    >>> user_script(None)
    '<script>window.ainisaUser = {"user_id": "", "user_hash": "", "firstname": "", "lastname": "", "email": ""};</script>'
    """  # noqa: E501
    shape = _guest(guest)
    user = user_object(
        user_id,
        secret=secret,
        user_hash=user_hash,
        firstname=firstname,
        lastname=lastname,
        email=email,
        consent=consent,
        **refused,
    )
    nonce_attr = _nonce_attribute(nonce)
    if shape == "omit" and user["user_id"] == "":
        return HTMLString("")
    return HTMLString(f"<script{nonce_attr}>window.ainisaUser = {script_json(user)};</script>")


def _check_src(src: object) -> str:
    if not isinstance(src, str) or not src.strip():
        raise ValueError(f"src must be the widget script's URL, not {src!r}")
    scheme = urlsplit(src.strip()).scheme.lower()
    if scheme not in _SAFE_SCHEMES:
        raise ValueError(
            f"src must be an https:// (or http://, or relative) URL; the scheme {scheme!r} "
            "is refused"
        )
    return src


def widget_script(
    src: str = DEFAULT_WIDGET_SRC,
    *,
    widget_id: str | None = None,
    nonce: str | None = None,
    defer: bool = False,
) -> HTMLString:
    """Render the widget's ``<script src=...></script>`` tag, every attribute escaped.

    :param src: the widget script (the guide's ``https://chatbot.ainisa.com/widget.js``).
    :param widget_id: written as ``data-widget-id`` when given; it must be a
        valid widget ID (1 to 128 of ``A-Z a-z 0-9 _ - .``), the rule the middleware applies.
    :param nonce: the page's Content-Security-Policy nonce, if it uses one.
    :param defer: add ``defer``; the user object still runs first, as an inline
        script before it in the page.
    """
    attrs = _attribute("src", _check_src(src))
    if widget_id is not None:
        given: object = widget_id  # checked at run time: callers may not be typed
        if not isinstance(given, str) or _WIDGET_ID.fullmatch(widget_id) is None:
            raise ValueError(
                "widget_id must be 1 to 128 characters of letters, digits, '_', '-' or '.', "
                f"not {widget_id!r}"
            )
        attrs += _attribute("data-widget-id", widget_id)
    attrs += _nonce_attribute(nonce)
    if defer:
        attrs += " defer"
    return HTMLString(f"<script{attrs}></script>")


def check_user_fields(mapping: object, *, setting: str = "user_fields") -> dict[str, UserField]:
    """Validate a field mapping (``{"user_id": "pk", "email": "email", ...}``).

    Keys must be among the five fields of ``window.ainisaUser`` and ``user_id``
    is required; anything else is refused here, at configuration time, so a
    password or token column can never be mapped into the page.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigurationError(
            f"{setting} must be a mapping such as {{'user_id': 'pk', 'email': 'email'}}, "
            f"not {type(mapping).__name__}."
        )
    problems: list[str] = []
    extra = sorted(str(key) for key in mapping if key not in USER_FIELDS)
    if extra:
        problems.append(
            f"keys {', '.join(extra)} are not fields of window.ainisaUser (allowed: "
            f"{', '.join(USER_FIELDS)}); never send passwords or tokens to the widget"
        )
    if "user_id" not in mapping:
        problems.append("'user_id' is required: name the attribute that holds your user's id")
    for key, source in mapping.items():
        if key in USER_FIELDS and not (callable(source) or (isinstance(source, str) and source)):
            problems.append(
                f"{key!r} must map to an attribute name or a function of the user, "
                f"not {type(source).__name__}"
            )
    if problems:
        raise ConfigurationError(f"{setting}: " + "; ".join(problems) + ".")
    return dict(mapping)


_MISSING: Final = object()


def _lookup(user: object, source: UserField) -> object:
    if callable(source):
        return source(user)
    value: object = user
    for part in source.split("."):
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def fields_from_user(user: object, mapping: Mapping[str, UserField]) -> dict[str, str | None]:
    """Read the mapped fields off a user object; ``{}`` for an anonymous visitor.

    A visitor is anonymous when ``user`` is ``None``, its ``is_authenticated``
    is false (Django's ``AnonymousUser``, Flask-Login's anonymous user), or its
    id is empty. An optional field whose attribute does not exist reads as
    absent, so one mapping serves user models with and without, say, a last
    name; a missing ``user_id`` attribute is a :class:`ConfigurationError`, since
    it would silently turn every signed-in user into a guest. Values that are
    not strings (an integer or UUID primary key) are sent as ``str(value)``.
    """
    if user is None or not getattr(user, "is_authenticated", True):
        return {}
    fields: dict[str, str | None] = {}
    for key, source in mapping.items():
        value = _lookup(user, source)
        if value is _MISSING and key == "user_id":
            raise ConfigurationError(
                f"user_fields maps user_id to {source!r}, but the signed-in user "
                f"({type(user).__name__}) has no such attribute; name the attribute that "
                "holds your user's id."
            )
        fields[key] = None if value is None or value is _MISSING else str(value)
    if not fields.get("user_id"):
        return {}
    return fields


class Snippets:
    """The two helpers with a site's settings bound once: what template engines call.

    :mod:`ainisa_middleware.jinja` and the Django template tags are thin
    wrappers around one of these, so the rules live here once.

    :param secret: the business's secret, or a function returning it.
    :param user_fields: how to read the five fields off a user object (see
        :func:`check_user_fields`); used when a template passes ``user=``.
    :param widget_src: the widget script URL.
    :param widget_id: the default ``data-widget-id``.
    :param guest: the guest shape, ``"empty"`` or ``"omit"``.
    :param nonce: the CSP nonce, or a function returning the current one; a
        nonce passed to a call wins.
    :param setting: how the user names this configuration, for error messages.
    """

    def __init__(
        self,
        *,
        secret: SecretSource | None = None,
        user_fields: Mapping[str, UserField],
        widget_src: str = DEFAULT_WIDGET_SRC,
        widget_id: str | None = None,
        guest: GuestShape = "empty",
        nonce: NonceSource | None = None,
        setting: str = "install()",
    ) -> None:
        given: object = secret
        if given is not None and not callable(given) and not (isinstance(given, str) and given):
            raise ConfigurationError(
                f"{setting}: secret must be the business's secret (a non-empty str) or a "
                f"function returning it, not {type(given).__name__}."
            )
        try:
            self.guest: GuestShape = _guest(guest)
            widget_script(widget_src, widget_id=widget_id)
        except ValueError as error:
            raise ConfigurationError(f"{setting}: {error}.") from None
        self.secret = secret
        self.user_fields = check_user_fields(user_fields, setting=f"{setting} user_fields")
        self.widget_src = widget_src
        self.widget_id = widget_id
        self.nonce = nonce
        self.setting = setting

    def __repr__(self) -> str:
        # Never show the secret, even in a template debugger.
        return f"Snippets(widget_src={self.widget_src!r}, widget_id={self.widget_id!r})"

    def _secret(self) -> str:
        secret = self.secret() if callable(self.secret) else self.secret
        if not isinstance(secret, str) or not secret:
            raise ConfigurationError(
                f"{self.setting}: no secret to sign the user id with; configure the "
                "business's secret key (or store each user's hash and map user_hash)."
            )
        return secret

    def _nonce(self, nonce: str | None) -> str | None:
        if nonce is not None:
            return nonce
        return self.nonce() if callable(self.nonce) else self.nonce

    def user_script(
        self,
        user_id: str | int | None = None,
        *,
        user: object = None,
        user_hash: str | None = None,
        firstname: str | None = None,
        lastname: str | None = None,
        email: str | None = None,
        nonce: str | None = None,
        consent: bool = True,
        **refused: Never,
    ) -> HTMLString:
        """:func:`user_script` for a user id and fields, or for a user object (``user=``)."""
        _refuse(refused)
        fields: dict[str, str | None] = {
            "user_hash": user_hash,
            "firstname": firstname,
            "lastname": lastname,
            "email": email,
        }
        if user is not None:
            if user_id is not None or any(value is not None for value in fields.values()):
                raise TypeError("pass either user= or user_id and its fields, not both")
            try:
                fields = fields_from_user(user, self.user_fields)
            except ConfigurationError as error:
                raise ConfigurationError(f"{self.setting}: {error}") from None
            user_id = fields.pop("user_id", None)
        stored = fields.pop("user_hash", None)
        secret = None
        if consent and user_id not in (None, "") and not stored:
            secret = self._secret()
        return user_script(
            user_id,
            secret=secret,
            user_hash=stored or None,
            nonce=self._nonce(nonce),
            consent=consent,
            guest=self.guest,
            firstname=fields.get("firstname"),
            lastname=fields.get("lastname"),
            email=fields.get("email"),
        )

    def widget_script(
        self,
        src: str | None = None,
        *,
        widget_id: str | None = None,
        nonce: str | None = None,
        defer: bool = False,
    ) -> HTMLString:
        """:func:`widget_script` with the configured source, widget ID and nonce."""
        return widget_script(
            src or self.widget_src,
            widget_id=widget_id or self.widget_id,
            nonce=self._nonce(nonce),
            defer=defer,
        )
