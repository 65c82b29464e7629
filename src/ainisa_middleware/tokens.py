"""Signed identity tokens: ``user_token``, a compact JWT bound to one widget that expires.

The guide's ``user_hash`` signs only the user id, never expires and fits every
widget of the business: a hash copied from one page verifies forever. A token
signs the id, the names and the email, names the widget it was made for (``aud``)
and stops working at ``exp``.

Verifying takes two steps. First the segments are checked here with the rules
the request parser applies to bodies (canonical base64url, strict RFC 8259 JSON
without duplicate keys, which PyJWT would let through: the last one wins), and
the signature is compared in constant time against every candidate secret, so
the time taken says nothing about which secret matched. Then PyJWT (extra
``tokens``) verifies the token again with that one secret, configured strictly:
``HS256`` only, ``aud``, ``exp``, ``iat`` and ``sub`` required, 60 s of leeway.
The lifetime (``exp - iat``) is capped by :attr:`Business.max_token_age`.

Signing needs only the standard library (:func:`user_token`), so a page that
renders tokens does not need PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any, Final

from .errors import RequestError
from .models import Business, SignedFields, Status
from .request import _WIDGET_ID, FlatData, FlatField, ParsedRequest, Source, parse_json_object

__all__ = [
    "DEFAULT_MAX_TOKEN_AGE",
    "DEFAULT_TOKEN_TTL",
    "LEEWAY",
    "MAX_TOKEN_LENGTH",
    "TOKEN_ALGORITHM",
    "TOKEN_CLAIMS",
    "TokenCheck",
    "check_token",
    "judge_token",
    "user_token",
]

logger = logging.getLogger("ainisa_middleware")

#: The one algorithm accepted; ``none`` and every other ``alg`` are invalid.
TOKEN_ALGORITHM: Final = "HS256"
#: Seconds of clock difference forgiven on ``exp``, ``iat`` and ``nbf``.
LEEWAY: Final = 60
#: The longest ``exp - iat`` a business accepts unless it says otherwise: 24 hours.
DEFAULT_MAX_TOKEN_AGE: Final = 86_400
#: What :func:`user_token` signs for unless told: one hour.
DEFAULT_TOKEN_TTL: Final = 3600
#: A token with every claim filled in is a few hundred characters; past this it
#: is refused before any decoding.
MAX_TOKEN_LENGTH: Final = 4096
#: Claim name -> the identity field it vouches for.
TOKEN_CLAIMS: Final[Mapping[str, str]] = {
    "sub": "user_id",
    "firstname": "firstname",
    "lastname": "lastname",
    "email": "email",
}

# Three base64url segments without padding; an HS256 signature is 32 bytes, 43 characters.
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})")
# Header members that change how the token must be read: a verifier that does
# not understand them must refuse the token (RFC 7515 section 4.1.11).
_REFUSED_HEADERS: Final = frozenset({"crit", "b64", "zip", "enc"})
_TIME_CLAIMS: Final = ("iat", "exp", "nbf")
_EXPIRED, _INVALID = Status.EXPIRED_TOKEN, Status.INVALID_TOKEN


class TokenCheck:
    """What a token check found: the status, and the verified fields or the reason it failed.

    ``reason`` is for the diagnostics and tests, never for the client (enforce
    mode answers the one 401 whatever the cause).
    """

    __slots__ = ("fields", "matched", "reason", "status")

    def __init__(
        self,
        status: Status,
        reason: str,
        fields: SignedFields | None = None,
        matched: int | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.fields = fields
        self.matched = matched

    def __repr__(self) -> str:
        return f"TokenCheck({self.status.value!r}, {self.reason!r})"


def _b64decode(segment: str) -> bytes | None:
    """The bytes of a canonical unpadded base64url segment, or ``None``.

    Canonical: re-encoding gives the same text, so a token has one spelling
    (unused low bits set to 1 would otherwise decode to the same bytes).
    """
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        return None
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _strict_object(raw: bytes) -> dict[str, Any] | None:
    """A JSON object under the body rules (no duplicate keys, strict numbers), or ``None``."""
    try:
        return parse_json_object(raw)
    except RequestError:
        return None


def _is_time(value: object) -> bool:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


@cache
def _decoder() -> Any:
    """PyJWT configured strictly, or ``None`` when the extra is not installed.

    The instance knows HS256 alone (no other algorithm can be reached, whatever
    ``algorithms`` says), and its HS256 does not warn about short keys: the
    business chose its secret, and a warning per request would flood the logs.
    """
    try:
        import jwt
        from jwt.algorithms import HMACAlgorithm
        from jwt.api_jws import PyJWS
    except ImportError:
        logger.error(
            "ainisa: a user_token arrived but PyJWT is not installed; "
            "install ainisa-middleware[tokens] (every token is invalid until then)"
        )
        return None

    # Preparing a key (PyJWT refuses PEM and JWK-looking keys) costs a JSON parse
    # per request; a business's few secrets are prepared once.
    prepare = lru_cache(maxsize=1024)(HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key)

    class _HS256(HMACAlgorithm):
        def check_key_length(self, key: Any) -> str | None:
            return None

        def prepare_key(self, key: str | bytes) -> bytes:
            return prepare(key)

    class _StrictJWT(jwt.PyJWT):
        def __init__(self) -> None:
            super().__init__(
                options={
                    "require": ["exp", "iat", "sub", "aud"],
                    "strict_aud": True,
                    "verify_signature": True,
                }
            )
            # PyJWT keeps its signature layer here; replace it with one that
            # knows HS256 alone (tests/test_tokens.py breaks if this changes).
            jws = PyJWS(algorithms=[], options=self._get_sig_options())
            jws.register_algorithm(TOKEN_ALGORITHM, _HS256(HMACAlgorithm.SHA256))
            self._jws = jws

    return _StrictJWT()


def _key_bytes(secret: str) -> bytes:
    # "surrogatepass": a secret holding a lone surrogate still keys an HMAC, never a 500.
    return secret.encode("utf-8", "surrogatepass")


def _claims_error(payload: dict[str, Any], max_age: int) -> str | None:
    """What PyJWT does not check: types it accepts (``True`` as a time), the lifetime cap."""
    for name in ("sub", "aud", "iat", "exp"):
        if name not in payload:
            return f"{name} is missing"
    for name in _TIME_CLAIMS:
        if name in payload and not _is_time(payload[name]):
            return f"{name} is not a number"
    sub = payload.get("sub")
    if type(sub) is not str or not sub:
        return "sub is not a non-empty string"
    for claim in ("firstname", "lastname", "email"):
        if claim in payload and type(payload[claim]) is not str:
            return f"{claim} is not a string"
    if payload["exp"] - payload["iat"] > max_age:
        return "lifetime (exp - iat) is over the business's maximum"
    return None


def check_token(
    token: object,
    business: Business,
    widget_id: str,
    *,
    now: float | None = None,
) -> TokenCheck:
    """Verify ``token`` for ``widget_id`` under ``business``'s active secrets.

    Never raises on hostile input: every failure is ``invalid_token`` or, for a
    well-signed token past its ``exp``, ``expired_token``.
    """
    if type(token) is not str or len(token) > MAX_TOKEN_LENGTH:
        return TokenCheck(_INVALID, "not a string, or longer than the limit")
    match = _COMPACT.fullmatch(token)
    if match is None:
        return TokenCheck(_INVALID, "not three base64url segments")
    head_raw = _b64decode(match[1])
    body_raw = _b64decode(match[2])
    signature = _b64decode(match[3])
    if head_raw is None or body_raw is None or signature is None:
        return TokenCheck(_INVALID, "a segment is not canonical base64url")
    header = _strict_object(head_raw)
    payload = _strict_object(body_raw)
    if header is None or payload is None:
        return TokenCheck(_INVALID, "header or payload is not a strict JSON object")
    if header.get("alg") != TOKEN_ALGORITHM:
        return TokenCheck(_INVALID, "alg is not HS256")
    if not _REFUSED_HEADERS.isdisjoint(header):
        return TokenCheck(_INVALID, "header asks for an extension")
    kid = header.get("kid")
    if "kid" in header:
        if type(kid) is not str or kid not in business.secret_ids:
            return TokenCheck(_INVALID, "kid names no active secret of the business")
        candidates: tuple[int, ...] = (business.secret_ids.index(kid),)
    else:
        candidates = tuple(range(len(business.secrets)))
    # Every candidate is compared, even after a match: the time does not tell which matched.
    signing_input = token[: match.end(2)].encode("ascii")
    matched: int | None = None
    for index in candidates:
        mac = hmac.digest(_key_bytes(business.secrets[index]), signing_input, "sha256")
        if hmac.compare_digest(mac, signature) and matched is None:
            matched = index
    if matched is None:
        return TokenCheck(_INVALID, "signature matches no active secret")
    problem = _claims_error(payload, business.max_token_age)
    if problem is not None:
        return TokenCheck(_INVALID, problem)
    decoder = _decoder()
    if decoder is None:
        return TokenCheck(_INVALID, "PyJWT is not installed")
    import jwt  # present: _decoder() found it

    if now is not None:
        # PyJWT reads the clock itself; a given ``now`` is checked here with the same rules.
        problem, expired = _times_error(payload, now)
        if problem is not None:
            return TokenCheck(_EXPIRED if expired else _INVALID, problem)
    options: dict[str, Any] = {}
    if now is not None:
        options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    try:
        decoder.decode(
            token,
            _key_bytes(business.secrets[matched]),
            algorithms=[TOKEN_ALGORITHM],
            audience=widget_id,
            leeway=LEEWAY,
            options=options or None,
        )
    except jwt.ExpiredSignatureError:
        return TokenCheck(_EXPIRED, "expired (exp is past, leeway included)")
    except jwt.PyJWTError as exc:  # audience, not yet valid, a claim missing ...
        return TokenCheck(_INVALID, f"{type(exc).__name__}: {exc}")
    fields = SignedFields()
    for claim, name in TOKEN_CLAIMS.items():
        value = payload.get(claim)
        if value:
            fields[name] = value
    return TokenCheck(Status.VERIFIED, "verified", fields, matched)


def _times_error(payload: dict[str, Any], now: float) -> tuple[str | None, bool]:
    """PyJWT's time rules against a given clock: (problem, whether it is expiry)."""
    if payload["iat"] > now + LEEWAY:
        return "issued in the future (iat)", False
    if "nbf" in payload and payload["nbf"] > now + LEEWAY:
        return "not valid yet (nbf)", False
    if payload["exp"] <= now - LEEWAY:
        return "expired (exp is past, leeway included)", True
    return None, False


def judge_token(
    parsed: ParsedRequest, business: Business, fields: dict[str, str], token: str
) -> tuple[Status, dict[str, str], int | None]:
    """The engine's token step: the status, the verified fields, the secret that matched.

    On success the request's user data is replaced by the token's claims, so the
    rewrite hands the app exactly what was signed (unsigned names sent beside a
    token are dropped). A ``user_id`` sent beside the token must equal ``sub``.
    """
    check = check_token(token, business, parsed.widget_id)
    verified = check.fields
    if "token" not in business.proofs:
        # Checked all the same: the time taken does not tell which proofs a business takes.
        return _INVALID, {}, None
    if verified is None:
        return check.status, {}, None
    sent_id = fields.get("user_id")
    if sent_id is not None and sent_id != verified["user_id"]:
        return _INVALID, {}, None
    source = parsed.source
    if source is Source.JSON and parsed.json_body is not None:
        parsed.json_body["user"] = dict(verified)
    elif source is Source.FORM and parsed.form is not None:
        _replace_flat(parsed.form, verified)
    elif source is Source.QUERY:
        _replace_flat(parsed.query, verified)
    return Status.VERIFIED, verified, check.matched


_SHOWN: Final = frozenset({"user_id", "firstname", "lastname", "email"})


def _replace_flat(data: FlatData, verified: Mapping[str, str]) -> None:
    """Swap the sent identity fields of a query or form for the signed ones.

    The proof fields stay in place for the rewrite to drop; the signed values
    are appended, percent-encoded, each in a segment of its own.
    """
    from urllib.parse import quote

    kept = [field for field in data.fields if field.name not in _SHOWN]
    group = max((field.group for field in data.fields), default=0) + 1
    for name, value in verified.items():
        raw = f"{name}={quote(value, safe='')}".encode("ascii")
        kept.append(FlatField(b"&", raw, name, value, group))
        group += 1
    data.fields = kept


# -- the sender side ------------------------------------------------------------


def _compact_json(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def user_token(
    secret: str,
    user_id: str | int,
    *,
    widget_id: str,
    ttl: int = DEFAULT_TOKEN_TTL,
    kid: str | None = None,
    firstname: str | None = None,
    lastname: str | None = None,
    email: str | None = None,
    now: float | None = None,
) -> str:
    """A ``user_token`` for ``user_id`` on ``widget_id``, valid for ``ttl`` seconds.

    Compute it on the server that renders the page, never in the browser. The
    names and email given here are signed too; leave one out (``None`` or empty)
    and the app sees it as absent. ``kid`` is the id of ``secret`` in the store,
    so the middleware tries that secret alone.

    >>> token = user_token("s3cret", 42, widget_id="w1")
    >>> token.count(".")
    2
    """
    # Checked at run time: templates and untyped callers pass anything.
    given: dict[str, object] = {"secret": secret, "widget_id": widget_id, "ttl": ttl, "kid": kid}
    if not isinstance(given["secret"], str) or not secret:
        raise ValueError("secret must be a non-empty string")
    uid: object = user_id
    if isinstance(uid, bool) or not isinstance(uid, str | int):
        raise TypeError(f"user_id must be a str or an int, not {type(uid).__name__}")
    sub = str(uid)
    if not sub:
        raise ValueError("user_id must not be empty: a guest gets no token")
    wid = given["widget_id"]
    if not isinstance(wid, str) or _WIDGET_ID.fullmatch(wid) is None:
        raise ValueError("widget_id must be 1 to 128 characters of A-Z a-z 0-9 _ - .")
    life = given["ttl"]
    if isinstance(life, bool) or not isinstance(life, int) or not 0 < life <= DEFAULT_MAX_TOKEN_AGE:
        raise ValueError(f"ttl must be whole seconds from 1 to {DEFAULT_MAX_TOKEN_AGE}")
    header: dict[str, str] = {"alg": TOKEN_ALGORITHM, "typ": "JWT"}
    if kid is not None:
        if not isinstance(given["kid"], str) or not kid:
            raise ValueError("kid must be a non-empty string (the secret's id in the store)")
        header["kid"] = kid
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"sub": sub, "aud": widget_id, "iat": issued, "exp": issued + ttl}
    for claim, value in (("firstname", firstname), ("lastname", lastname), ("email", email)):
        if value is None or value == "":
            continue
        shown: object = value
        if not isinstance(shown, str):
            raise TypeError(f"{claim} must be a str, not {type(shown).__name__}")
        payload[claim] = shown
    signing_input = f"{_b64encode(_compact_json(header))}.{_b64encode(_compact_json(payload))}"
    mac = hmac.digest(secret.encode("utf-8"), signing_input.encode("ascii"), "sha256")
    return f"{signing_input}.{_b64encode(mac)}"
