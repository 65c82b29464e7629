"""Verification as a typical Starlette user writes it.

A ``BaseHTTPMiddleware`` that awaits ``request.json()`` and checks the hash.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from ainisa_middleware import AinisaUser, Business, Status


class NaiveVerifyMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, businesses: Mapping[str, Business], path: str) -> None:
        super().__init__(app)
        self.businesses = businesses
        self.path = path

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not request.url.path.startswith(self.path):
            return await call_next(request)
        widget_id = request.headers.get("x-ainisa-widget-id", "")
        business = self.businesses.get(widget_id)
        if business is None:
            return JSONResponse({"error": "unknown_widget"}, status_code=404)
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"error": "malformed_body"}, status_code=400)
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
            request.state.ainisa_user = AinisaUser(
                widget_id=widget_id,
                business_id=business.id,
                status=status,
                user_id=str(user_id),
                firstname=user.get("firstname"),
                lastname=user.get("lastname"),
                email=user.get("email"),
            )
        else:
            request.state.ainisa_user = AinisaUser(
                widget_id=widget_id, business_id=business.id, status=status
            )
        return await call_next(request)
