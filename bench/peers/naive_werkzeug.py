"""Verification as a typical werkzeug user writes it: a ``Request``-based WSGI wrapper."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from ainisa_middleware import AinisaUser, Business, Status


class NaiveWSGIVerify:
    def __init__(self, app: Any, businesses: Mapping[str, Business], path: str) -> None:
        self.app = app
        self.businesses = businesses
        self.path = path

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if not request.path.startswith(self.path):
            return self.app(environ, start_response)
        widget_id = request.headers.get("X-Ainisa-Widget-Id", "")
        business = self.businesses.get(widget_id)
        if business is None:
            return Response('{"error":"unknown_widget"}', 404)(environ, start_response)
        raw = request.get_data()
        # The app reads the body again: hand it a fresh stream.
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            data = json.loads(raw)
        except ValueError:
            return Response('{"error":"malformed_body"}', 400)(environ, start_response)
        user = data.get("user") or {}
        user_id = user.get("user_id")
        given = user.get("user_hash")
        status = Status.ANONYMOUS
        if user_id and given:
            expected = hmac.new(
                business.secrets[0].encode(), str(user_id).encode(), hashlib.sha256
            ).hexdigest()
            status = (
                Status.VERIFIED if hmac.compare_digest(expected, given) else Status.INVALID_HASH
            )
        if status is Status.VERIFIED:
            environ["ainisa.user"] = AinisaUser(
                widget_id=widget_id,
                business_id=business.id,
                status=status,
                user_id=str(user_id),
                firstname=user.get("firstname"),
                lastname=user.get("lastname"),
                email=user.get("email"),
            )
        else:
            environ["ainisa.user"] = AinisaUser(
                widget_id=widget_id, business_id=business.id, status=status
            )
        return self.app(environ, start_response)
