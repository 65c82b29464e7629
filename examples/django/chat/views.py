"""The chat views: identity comes from ``request.ainisa_user``, never from the body."""

from __future__ import annotations

import json
from collections import defaultdict

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ainisa_middleware.django import get_ainisa_user

#: Messages per verified user id (a real site would use a model).
HISTORY: dict[str, list[str]] = defaultdict(list)


@csrf_exempt  # the widget posts from the shop's pages without a CSRF token
@require_POST
async def chat(request: HttpRequest) -> JsonResponse:
    user = get_ainisa_user(request)  # request.ainisa_user, typed; None outside AINISA["PATHS"]
    body = json.loads(request.body or b"{}")  # holds only verified identity
    message = str(body.get("message", ""))
    if user is None:
        return JsonResponse({"reply": "Hello, guest!", "status": "not inspected"})
    if user.verified and user.user_id is not None:
        HISTORY[user.user_id].append(message)
        # user_id is verified; firstname is whatever the visitor typed.
        name = user.firstname or f"user {user.user_id}"
        return JsonResponse({"reply": f"Welcome back, {name}!", "status": user.status})
    return JsonResponse({"reply": "Hello, guest!", "status": user.status})


@csrf_exempt
@require_POST
def history(request: HttpRequest) -> JsonResponse:
    user = get_ainisa_user(request)
    if user is None or not user.verified or user.user_id is None:
        return JsonResponse(
            {"error": "identity_required", "detail": "Sign in to see your history."}, status=401
        )
    return JsonResponse({"user_id": user.user_id, "messages": HISTORY[user.user_id]})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "inspected": hasattr(request, "ainisa_user")})
