"""The chat views: identity comes from ``request.ainisa_user``, never from the body."""

from __future__ import annotations

import json
from collections import defaultdict

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ainisa_middleware import AinisaUser

#: Messages per verified user id (a real site would use a model).
HISTORY: dict[str, list[str]] = defaultdict(list)


@csrf_exempt  # the widget posts from the shop's pages without a CSRF token
@require_POST
async def chat(request: HttpRequest) -> JsonResponse:
    user: AinisaUser = request.ainisa_user  # type: ignore[attr-defined]
    body = json.loads(request.body or b"{}")  # holds only verified identity
    message = str(body.get("message", ""))
    if user.verified and user.user_id is not None:
        HISTORY[user.user_id].append(message)
        # user_id is verified; firstname is whatever the visitor typed.
        name = user.firstname or f"user {user.user_id}"
        return JsonResponse({"reply": f"Welcome back, {name}!", "status": user.status})
    return JsonResponse({"reply": "Hello, guest!", "status": user.status})


@csrf_exempt
@require_POST
def history(request: HttpRequest) -> JsonResponse:
    user: AinisaUser = request.ainisa_user  # type: ignore[attr-defined]
    if not user.verified or user.user_id is None:
        return JsonResponse(
            {"error": "identity_required", "detail": "Sign in to see your history."}, status=401
        )
    return JsonResponse({"user_id": user.user_id, "messages": HISTORY[user.user_id]})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "inspected": hasattr(request, "ainisa_user")})
