"""Why does this visitor not verify? A support engineer's checklist, run by the machine.

Given the secret a site believes it signs with, the user id and the ``user_hash``
or ``user_token`` the site sent, :func:`diagnose` tries what usually went wrong:
the id sent differently from how it was signed (case, whitespace, an integer
hashed as ``42.0`` or ``0042``, the email instead of the id), a secret from the
business's history (retired, expired) or another business, the secret with a
stray newline, the example output of the vendor's guide pasted as a real hash,
the wrong algorithm or encoding, and for tokens the widget, the expiry and the
clocks. Every message names secrets by their store id or their role, never by
value, and never shows the hash that was expected: the report can be pasted
into a ticket.

Standard library only; token checks use PyJWT (extra ``tokens``) when present.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .models import Business, Status
from .request import _WIDGET_ID
from .signing import HASH_LENGTH
from .tokens import DEFAULT_MAX_TOKEN_AGE, LEEWAY, TOKEN_ALGORITHM, check_token

__all__ = [
    "GUIDE_EXAMPLE_HASH",
    "GUIDE_PLACEHOLDER_SECRET",
    "RECENT_SECRET",
    "Diagnosis",
    "Finding",
    "KnownSecret",
    "diagnose",
]

#: The "Output:" line of the vendor guide's Node example: an illustration, made
#: with a secret nobody has. A site that stores it verifies no one.
GUIDE_EXAMPLE_HASH: Final = "c82448e627ac6d4bbdfcbe8720513a6f2052fbaa5c0386867f8a9e8def656627"
#: The guide's placeholder secret, sometimes left in a configuration file.
GUIDE_PLACEHOLDER_SECRET: Final = "your_secret_key_here"

_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class KnownSecret:
    """A secret the diagnosis may try: from the store's history or another business.

    ``label`` names it in the report (a store id, never the value).
    """

    label: str
    value: str = field(repr=False)
    #: ``active``, ``expiring``, ``expired`` or ``retired`` (``SecretInfo.state``)
    state: str = "active"
    #: the business it belongs to, when it is not the one being diagnosed
    business_id: str | None = None
    #: when it was made and when its grace period ends (seconds since 1970), if known
    created: float | None = None
    expires: float | None = None


#: A secret made less than this long ago may not be known yet to every process:
#: a resolver cache holds the business it read before (``CachedResolver``'s ttl,
#: 60 s by default).
RECENT_SECRET: Final = 300.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the diagnosis established, as a person would say it."""

    #: a stable word for programs (``verified``, ``user_id_case``, ``retired_secret`` ...)
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The verdict and the findings behind it."""

    proof: str  # "hash", "token" or "unknown"
    verified: bool
    findings: tuple[Finding, ...]

    @property
    def codes(self) -> list[str]:
        return [finding.code for finding in self.findings]

    def text(self) -> str:
        """The report as lines of text, verdict first."""
        verdict = "VERIFIES" if self.verified else "DOES NOT VERIFY"
        lines = [f"{self.proof}: {verdict}"]
        lines += [f"- {finding.message}" for finding in self.findings]
        return "\n".join(lines)


def _mac(secret: str, message: str) -> bytes:
    return hmac.digest(
        secret.encode("utf-8", "surrogatepass"), message.encode("utf-8", "surrogatepass"), "sha256"
    )


def _id_variants(user_id: str, email: str | None) -> list[tuple[str, str, str]]:
    """(code, how the id was changed, the variant) for the usual ways a site signs another id."""
    variants: list[tuple[str, str, str]] = []

    def add(code: str, how: str, value: str) -> None:
        if value != user_id and all(value != v for _, _, v in variants):
            variants.append((code, how, value))

    stripped = user_id.strip()
    add("user_id_whitespace", "with the whitespace around it removed", stripped)
    for candidate in (f" {stripped}", f"{stripped} ", f"{stripped}\n", f"{stripped}\r\n"):
        add("user_id_whitespace", "with whitespace or a newline added around it", candidate)
    add("user_id_case", "in lower case", user_id.lower())
    add("user_id_case", "in upper case", user_id.upper())
    if re.fullmatch(r"-?\d+", stripped):
        number = int(stripped)
        add("user_id_float", "as a float (PHP or JavaScript number formatting)", f"{number}.0")
        add("user_id_padded", "without its leading zeros", str(number))
        for width in range(len(stripped) + 1, 13):
            add("user_id_padded", "padded with leading zeros", str(number).zfill(width))
    if re.fullmatch(r"-?\d+\.0+", stripped):
        add(
            "user_id_float",
            "as an integer (the site signed 42, sends 42.0)",
            stripped.split(".")[0],
        )
    add("user_id_quoted", "inside JSON quotes", json.dumps(user_id))
    for empty in ("", "null", "undefined", "None", "0"):
        add("user_id_empty", f"as {empty!r} (signed before the user was known)", empty)
    if email:
        add("email_hashed", "as the visitor's email instead of the id", email)
        add("email_hashed", "as the visitor's email in lower case", email.strip().lower())
    return variants


def _secret_variants(secret: str) -> list[tuple[str, str, str]]:
    variants: list[tuple[str, str, str]] = []
    if secret.strip() != secret:
        variants.append(
            (
                "secret_whitespace",
                "The site's secret has whitespace or a newline around it that the other side lacks "
                "(a copy-paste or a file read without stripping): "
                "the hash verifies once it is removed on one side.",
                secret.strip(),
            )
        )
    variants.append(
        (
            "guide_placeholder_secret",
            "The hash was made with the guide's placeholder secret 'your_secret_key_here': "
            "put the business's real secret in the site's configuration.",
            GUIDE_PLACEHOLDER_SECRET,
        )
    )
    return variants


def _history_message(known: KnownSecret, what: str) -> tuple[str, str]:
    if known.business_id is not None:
        return (
            "wrong_business",
            f"{what} made with a secret of another business ({known.business_id!r}, "
            f"secret {known.label}): the site is configured with the wrong business's key, "
            "or the widget belongs to the wrong business.",
        )
    if known.state == "retired":
        return (
            "retired_secret",
            f"{what} made with secret {known.label}, which is retired: the site still signs with "
            "an old key. Deploy the current secret to the site.",
        )
    if known.state == "expired":
        return (
            "expired_secret",
            f"{what} made with secret {known.label}, whose rotation grace period is over: the site "
            "still signs with the previous key. Deploy the current secret to the site.",
        )
    return (
        "other_active_secret",
        f"{what} made with secret {known.label}, which is active for this business: it verifies "
        "in the middleware even though it is not the secret you gave.",
    )


def _not_active_message(history: Sequence[KnownSecret], secret: str) -> Finding | None:
    """Whether the secret given is known to the store but no longer verifies, or unknown to it."""
    own = [k for k in history if k.business_id is None]
    if not own:
        return None
    for known in own:
        if hmac.compare_digest(known.value.encode(), secret.encode()):
            if known.state in ("active", "expiring"):
                return None
            return Finding(
                "given_secret_not_active",
                f"The secret you gave is secret {known.label} in the store, which is "
                f"{known.state}: the middleware no longer accepts it. Deploy the current "
                "secret to the site.",
            )
    return Finding(
        "given_secret_unknown",
        "The secret you gave is not among this business's secrets in the store (not the "
        "current one, nor any earlier one).",
    )


def _store_notes(history: Sequence[KnownSecret], secret: str, now: float) -> list[Finding]:
    """What the store says of the secret given, when it verifies: just made, or about to end."""
    for known in history:
        if known.business_id is not None:
            continue
        if not hmac.compare_digest(known.value.encode(), secret.encode()):
            continue
        notes: list[Finding] = []
        if known.created is not None and 0 <= now - known.created < RECENT_SECRET:
            notes.append(
                Finding(
                    "secret_not_yet_everywhere",
                    f"Secret {known.label} was made {_when(now - known.created)} ago: a "
                    "middleware process whose resolver cache still holds the business (60 s "
                    "by default) does not know it yet and answers invalid there until the "
                    "cache expires. Sites should switch to a new secret only after that.",
                )
            )
        if known.state == "expiring" and known.expires is not None:
            notes.append(
                Finding(
                    "secret_expiring",
                    f"Secret {known.label} is a previous secret in its grace period: it stops "
                    f"verifying in {_when(known.expires - now)}. Deploy the current secret to "
                    "the site before then.",
                )
            )
        return notes
    return []


def _diagnose_hash(
    secret: str,
    user_id: str,
    proof: str,
    email: str | None,
    history: Sequence[KnownSecret],
    now: float,
) -> Diagnosis:
    findings: list[Finding] = []
    given = proof.strip()
    if given != proof:
        findings.append(
            Finding(
                "hash_whitespace",
                "The hash has whitespace or a newline around it; the middleware reads it as "
                "sent, so it is malformed. Strip it where the page renders it.",
            )
        )
    if given.lower() == GUIDE_EXAMPLE_HASH:
        findings.append(
            Finding(
                "guide_example_hash",
                "This is the example output printed in the vendor's guide, not a hash of this "
                "user: compute it per user with the business's secret.",
            )
        )
        return Diagnosis("hash", False, tuple(findings))
    shape = _hash_shape(given)
    if shape is not None:
        findings.append(shape)
        return Diagnosis("hash", False, tuple(findings))
    try:
        wanted = bytes.fromhex(given)
    except ValueError:  # pragma: no cover - _hash_shape checked the hex
        return Diagnosis("hash", False, tuple(findings))

    def signs(key: str, message: str) -> bool:
        return hmac.compare_digest(_mac(key, message), wanted)

    if given != given.lower():
        findings.append(
            Finding("hash_upper_case", "The hash is in upper case: accepted, nothing to fix.")
        )
    if signs(secret, user_id):
        findings.append(
            Finding(
                "verified", "The hash is HMAC-SHA256 of this user id under the secret you gave."
            )
        )
        stale = _not_active_message(history, secret)
        verified = stale is None
        if stale is not None:
            findings.append(stale)
        else:
            findings += _store_notes(history, secret, now)
        return Diagnosis("hash", verified and given == proof, tuple(findings))
    return Diagnosis(
        "hash",
        False,
        tuple(findings + _hash_causes(secret, user_id, email, history, signs, wanted)),
    )


def _hash_shape(given: str) -> Finding | None:
    if len(given) == HASH_LENGTH and _HEX.fullmatch(given):
        return None
    if _HEX.fullmatch(given) and len(given) in (32, 40, 128):
        name = {32: "MD5", 40: "SHA-1", 128: "SHA-512"}[len(given)]
        return Finding(
            "wrong_algorithm",
            f"The hash is {len(given)} hex characters, the length of {name}: the site uses the "
            "wrong algorithm. It must be HMAC-SHA256 (64 hex characters).",
        )
    try:
        raw = base64.b64decode(given + "=" * (-len(given) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == HASH_LENGTH // 2:
        return Finding(
            "base64_digest",
            "The hash is base64 of 32 bytes: the site outputs the digest in base64. It must be "
            "lower-case hex (Node: digest('hex'); PHP: hash_hmac without the binary flag).",
        )
    return Finding(
        "malformed_hash",
        f"The hash is {len(given)} characters and {'is' if _HEX.fullmatch(given) else 'is not'} "
        "hex: a user_hash is exactly 64 hex characters.",
    )


def _hash_causes(
    secret: str,
    user_id: str,
    email: str | None,
    history: Sequence[KnownSecret],
    signs: Callable[[str, str], bool],
    wanted: bytes,
) -> list[Finding]:
    found: list[Finding] = []
    for code, how, variant in _id_variants(user_id, email):
        if signs(secret, variant):
            found.append(
                Finding(
                    code,
                    f"The hash was made from the user id {how}, not from the id the page sends. "
                    "Sign exactly the string the widget sends as user_id.",
                )
            )
            return found
    for code, message, key in _secret_variants(secret):
        if signs(key, user_id):
            found.append(Finding(code, message))
            return found
    for known in history:
        if signs(known.value, user_id):
            found.append(Finding(*_history_message(known, "The hash was")))
            return found
    if signs(user_id, secret):
        found.append(
            Finding(
                "arguments_swapped",
                "The hash is HMAC of the secret keyed by the user id: the site swapped the two "
                "(PHP: hash_hmac('sha256', $userId, $secret), data first, key second).",
            )
        )
        return found
    for how, text in (
        ("the user id alone, with no key", user_id),
        ("the secret followed by the user id", secret + user_id),
        ("the user id followed by the secret", user_id + secret),
    ):
        plain = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        if hmac.compare_digest(plain, wanted):
            found.append(
                Finding(
                    "plain_sha256",
                    f"The hash is a plain SHA-256 of {how}, not an HMAC: use "
                    "crypto.createHmac / hash_hmac / hmac.new with the secret as the key.",
                )
            )
            return found
    found.append(
        Finding(
            "no_match",
            "The hash matches neither this user id under the secret you gave, nor the usual "
            "variants of the id, nor any secret known here. Check that the site and the "
            "middleware use the same business's secret, and that the hash was computed for "
            "this user.",
        )
    )
    return found


def _when(seconds: float) -> str:
    seconds = abs(int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def _token_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes] | Finding:
    from .tokens import _b64decode, _strict_object

    parts = token.split(".")
    if len(parts) != 3:
        return Finding(
            "malformed_token",
            f"The token has {len(parts)} dot-separated parts; a JWT has three "
            "(header.payload.signature).",
        )
    raw = [_b64decode(part) for part in parts]
    if any(part is None for part in raw):
        return Finding(
            "token_not_base64url",
            "A part of the token is not unpadded base64url (the characters A-Z a-z 0-9 - _): "
            "the signer used standard base64 or kept the '=' padding.",
        )
    header = _strict_object(raw[0] or b"")
    payload = _strict_object(raw[1] or b"")
    if header is None or payload is None:
        return Finding(
            "token_not_strict_json",
            "The token's header or payload is not one strict JSON object (a duplicate key, "
            "NaN, or not JSON at all): refused, since two parsers could read it differently.",
        )
    return header, payload, parts[0].encode() + b"." + parts[1].encode(), raw[2] or b""


def _diagnose_token(
    secret: str,
    user_id: str | None,
    token: str,
    widget_id: str | None,
    history: Sequence[KnownSecret],
    now: float,
    max_token_age: int,
) -> Diagnosis:
    findings: list[Finding] = []
    if token.strip() != token:
        findings.append(
            Finding("token_whitespace", "The token has whitespace around it: strip it.")
        )
        token = token.strip()
    parsed = _token_parts(token)
    if isinstance(parsed, Finding):
        return Diagnosis("token", False, (*findings, parsed))
    header, payload, signing_input, signature = parsed
    alg = header.get("alg")
    if alg != TOKEN_ALGORITHM:
        findings.append(
            Finding(
                "token_algorithm",
                f"The token's alg is {alg!r}; only HS256 is accepted (never none, never RS/ES, "
                "never HS384/HS512).",
            )
        )
    sub = payload.get("sub")
    if user_id is not None and sub != user_id:
        findings.append(
            Finding(
                "token_other_user",
                f"The token's sub is {sub!r}, not the user id {user_id!r}: it was made for "
                "another user, or sub was signed as a number (it must be a string).",
            )
        )
    aud = payload.get("aud")
    if widget_id is not None and aud != widget_id:
        findings.append(
            Finding(
                "token_wrong_audience",
                f"The token was made for widget {aud!r} (aud), but the request names widget "
                f"{widget_id!r}: a token is bound to one widget.",
            )
        )
    findings += _token_times(payload, now, max_token_age)
    findings += _token_key(secret, header, signing_input, signature, history, now)
    kid = header.get("kid")
    ids = (kid,) if isinstance(kid, str) and kid else ()
    business = Business(
        id="diagnosis",
        secrets=(secret,),
        secret_ids=ids,
        proofs=frozenset({"token"}),
        max_token_age=max_token_age,
    )
    audience = widget_id if widget_id is not None else aud if isinstance(aud, str) else ""
    check = check_token(token, business, audience or "-", now=now)
    verified = check.status is Status.VERIFIED and not any(
        f.code in _TOKEN_REFUSALS for f in findings
    )
    if verified:
        findings.insert(0, Finding("verified", "The token verifies under the secret you gave."))
    elif not findings:
        findings.append(Finding("token_invalid", f"The token is refused: {check.reason}."))
    return Diagnosis("token", verified, tuple(findings))


#: Findings that make the middleware refuse a token that check_token alone would pass
#: (it is given only the secret under diagnosis).
_TOKEN_REFUSALS: Final = frozenset(
    {"token_other_user", "given_secret_not_active", "unknown_kid", "kid_names_another_secret"}
)


def _token_times(payload: dict[str, Any], now: float, max_age: int) -> list[Finding]:
    found: list[Finding] = []
    iat, exp, nbf = payload.get("iat"), payload.get("exp"), payload.get("nbf")
    numbers = all(value is None or (type(value) in (int, float)) for value in (iat, exp, nbf))
    if not numbers or iat is None or exp is None:
        found.append(
            Finding(
                "token_claims",
                "The token lacks iat or exp, or holds them as something other than a number of "
                "seconds since 1970: both are required.",
            )
        )
        return found
    if iat > now + LEEWAY:
        found.append(
            Finding(
                "clock_skew",
                f"The token was issued {_when(iat - now)} in the future: the site's clock runs "
                f"ahead of this one by more than the {LEEWAY} s allowed. Sync the clocks (NTP).",
            )
        )
    elif iat > now + 5:
        found.append(
            Finding(
                "clock_skew_within_leeway",
                f"The site's clock runs about {_when(iat - now)} ahead of this one: within the "
                f"{LEEWAY} s allowed, but worth syncing.",
            )
        )
    if nbf is not None and nbf > now + LEEWAY:
        found.append(
            Finding(
                "token_not_yet_valid",
                f"The token is not valid for another {_when(nbf - now)} (nbf): drop nbf or sync "
                "the clocks.",
            )
        )
    if exp <= now - LEEWAY:
        found.append(
            Finding(
                "token_expired",
                f"The token expired {_when(now - exp)} ago (its lifetime was {_when(exp - iat)}): "
                "pages must render a fresh token on every load, and a long-open page needs a "
                "lifetime that covers the visit.",
            )
        )
    if exp - iat > max_age:
        found.append(
            Finding(
                "token_lifetime",
                f"The token claims a lifetime of {_when(exp - iat)}, over the maximum of "
                f"{_when(max_age)}: shorten the ttl.",
            )
        )
    return found


def _token_key(
    secret: str,
    header: dict[str, Any],
    signing_input: bytes,
    signature: bytes,
    history: Sequence[KnownSecret],
    now: float,
) -> list[Finding]:
    def signs(key: str) -> bool:
        mac = hmac.digest(key.encode("utf-8", "surrogatepass"), signing_input, "sha256")
        return hmac.compare_digest(mac, signature)

    found: list[Finding] = []
    kid = header.get("kid")
    own = [k for k in history if k.business_id is None]
    if kid is not None and own and all(k.label != kid for k in own):
        found.append(
            Finding(
                "unknown_kid",
                f"The token's kid {kid!r} is not the id of any secret of this business: the "
                "middleware tries no secret and refuses it.",
            )
        )
    if signs(secret):
        stale = _not_active_message(history, secret)
        if stale is not None:
            found.append(stale)
            return found
        found += _store_notes(history, secret, now)
        if kid is not None and own:
            match = [k for k in own if k.label == kid]
            if match and not hmac.compare_digest(match[0].value.encode(), secret.encode()):
                found.append(
                    Finding(
                        "kid_names_another_secret",
                        f"The token is signed with the secret you gave, but its kid {kid!r} "
                        "names another secret of the business: only that one is tried.",
                    )
                )
        return found
    for code, message, key in _secret_variants(secret):
        if signs(key):
            found.append(Finding(code, message.replace("hash", "token")))
            return found
    for known in history:
        if signs(known.value):
            found.append(Finding(*_history_message(known, "The token was")))
            return found
    found.append(
        Finding(
            "token_signature",
            "The token's signature matches neither the secret you gave nor any secret known "
            "here: it was signed with another key, or changed after signing.",
        )
    )
    return found


def diagnose(
    secret: str,
    user_id: str | int | None,
    proof: str,
    *,
    widget_id: str | None = None,
    email: str | None = None,
    history: Iterable[KnownSecret] = (),
    now: float | None = None,
    max_token_age: int = DEFAULT_MAX_TOKEN_AGE,
) -> Diagnosis:
    """Explain why ``proof`` (a ``user_hash`` or a ``user_token``) does or does not verify.

    :param secret: the secret the site believes it signs with.
    :param user_id: the user id the page sends (``None``: read from a token's ``sub``).
    :param proof: the hash or token the page sent, as it was sent.
    :param widget_id: the widget the request named (checked against a token's ``aud``).
    :param email: the visitor's email, to recognise a hash of the email instead of the id.
    :param history: other secrets to try: the business's earlier ones and other
        businesses' (see :class:`KnownSecret`); a match names the secret by label.
    :param now: the time to judge a token at (default: now).

    The report never holds a secret or the hash that was expected.
    """
    given: object = secret  # checked at run time: callers may not be typed
    if not isinstance(given, str) or not secret:
        raise ValueError("secret must be the non-empty secret the site signs with")
    if widget_id is not None and _WIDGET_ID.fullmatch(widget_id) is None:
        raise ValueError("widget_id must be 1 to 128 characters of A-Z a-z 0-9 _ - .")
    known = tuple(history)
    uid = None if user_id is None else str(user_id)
    moment = time.time() if now is None else now
    if proof.strip().count(".") >= 2:
        return _diagnose_token(secret, uid, proof, widget_id, known, moment, max_token_age)
    if uid is None:
        raise ValueError("a hash is checked against a user id: give user_id")
    return _diagnose_hash(secret, uid, proof, email, known, moment)
