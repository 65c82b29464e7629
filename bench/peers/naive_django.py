"""Verification as a typical Django user writes it: a plain middleware and ``json.loads``."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from ainisa_middleware import AinisaUser, Status
from bench.workload import BUSINESS, WIDGET_ID

BUSINESSES = {WIDGET_ID: BUSINESS}


class NaiveDjangoVerify:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        if not request.path.startswith("/chat"):
            return self.get_response(request)
        widget_id = request.headers.get("X-Ainisa-Widget-Id", "")
        business = BUSINESSES.get(widget_id)
        if business is None:
            return JsonResponse({"error": "unknown_widget"}, status=404)
        try:
            data = json.loads(request.body)
        except ValueError:
            return JsonResponse({"error": "malformed_body"}, status=400)
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
            request.ainisa_user = AinisaUser(  # type: ignore[attr-defined]
                widget_id=widget_id,
                business_id=business.id,
                status=status,
                user_id=str(user_id),
                firstname=user.get("firstname"),
                lastname=user.get("lastname"),
                email=user.get("email"),
            )
        else:
            request.ainisa_user = AinisaUser(  # type: ignore[attr-defined]
                widget_id=widget_id, business_id=business.id, status=status
            )
        return self.get_response(request)
