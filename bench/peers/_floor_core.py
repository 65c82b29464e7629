"""The part of the floor shared by its ASGI and WSGI versions: parse, verify, rewrite.

Kept to what a JSON chat request needs: strict JSON (duplicate keys, NaN and
Infinity, depth), one HMAC per secret from a keyed object made at start-up,
``user_hash`` removed and an unverified ``user`` dropped, the body re-serialised.
It leaves out what ainisa-middleware also does: form bodies, identity in the
query string, the widget ID rules (format, query and body sources, conflicts),
the resolver protocol, caching and timeouts, logging, ``require_identity`` and
enforce mode.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import json.encoder
from collections.abc import Mapping
from typing import Any

from ainisa_middleware import AinisaUser, Business, Status

_KEPT = ("user_id", "firstname", "lastname", "email")
_HEX = frozenset("0123456789abcdefABCDEF")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(name)


# Hand-tuned the way ours is: the decoder and the C encoder are built once, not
# per call as json.loads / json.dumps with keyword arguments build them.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_no_constant)
_ENCODE = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, None, json.encoder.encode_basestring, None, ":", ",", False, False, False
)


def _too_deep(obj: Any, depth: int = 1) -> bool:
    if depth > 32:
        return True
    children = obj.values() if type(obj) is dict else obj
    return any(_too_deep(child, depth + 1) for child in children if type(child) in (dict, list))


class Floor:
    """Keyed HMAC objects per widget, made once."""

    def __init__(self, businesses: Mapping[str, Business]) -> None:
        self.businesses = dict(businesses)
        self.keys = {
            widget_id: tuple(
                hmac.new(secret.encode(), digestmod=hashlib.sha256) for secret in business.secrets
            )
            for widget_id, business in businesses.items()
        }

    def check(self, widget_id: str, body: bytes) -> tuple[int, bytes, AinisaUser | None]:
        """``(status code, body for the app or error code, user)``."""
        business = self.businesses.get(widget_id)
        if business is None:
            return 404, b"unknown_widget", None
        try:
            text = body.decode()
            if text.startswith("\ufeff"):
                raise ValueError("BOM")
            data = _DECODER.decode(text)
        except (ValueError, RecursionError):
            return 400, b"malformed_body", None
        if type(data) is not dict or (body.count(b"{") + body.count(b"[") > 32 and _too_deep(data)):
            return 400, b"malformed_body", None
        user = data.pop("user", None)
        data.pop("user_hash", None)
        status = Status.ANONYMOUS
        verified: dict[str, Any] | None = None
        if type(user) is dict and user:
            user_id = user.get("user_id")
            given = user.get("user_hash")
            status = Status.INVALID_HASH
            if (
                type(user_id) is str
                and type(given) is str
                and len(given) == 64
                and _HEX.issuperset(given)
            ):
                message = user_id.encode()
                expected = given.lower().encode()
                for key in self.keys[widget_id]:
                    mac = key.copy()
                    mac.update(message)
                    if hmac.compare_digest(mac.hexdigest().encode(), expected):
                        status = Status.VERIFIED
                if status is Status.VERIFIED:
                    verified = {k: user[k] for k in _KEPT if k in user}
                    data["user"] = verified
        try:
            new_body = "".join(_ENCODE(data, 0)).encode()
        except (ValueError, UnicodeEncodeError):
            return 400, b"malformed_body", None
        if verified is not None:
            person = AinisaUser(
                widget_id=widget_id,
                business_id=business.id,
                status=status,
                user_id=verified["user_id"],
                firstname=verified.get("firstname"),
                lastname=verified.get("lastname"),
                email=verified.get("email"),
            )
        else:
            person = AinisaUser(widget_id=widget_id, business_id=business.id, status=status)
        return 200, new_body, person
