"""The chat views: identity comes from ``request.ainisa_user``, never from the body."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
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
async def chat_stream(request: HttpRequest) -> StreamingHttpResponse:
    """The reply as Server-Sent Events, word by word; each event reaches the widget as sent.

    An async generator: under ASGI Django streams it without a thread per event.
    """
    user = get_ainisa_user(request)
    body = json.loads(request.body or b"{}")
    name = (user.firstname or "there") if user is not None and user.verified else "there"
    words = f"Hello {name}, you wrote: {body.get('message', '')}".split()

    async def events() -> AsyncIterator[str]:
        for word in words:
            yield f"data: {word}\n\n"
            await asyncio.sleep(0.01)  # a model producing its next token
        yield "event: done\ndata: {}\n\n"

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


@csrf_exempt
@require_POST
def chat_upload(request: HttpRequest) -> JsonResponse:
    """A message with an attachment (``multipart/form-data``): identity parts were
    verified by the middleware, the file arrives unchanged in ``request.FILES``."""
    user = get_ainisa_user(request)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "no_file", "detail": "Attach a file."}, status=400)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    return JsonResponse(
        {
            "message": request.POST.get("message", ""),
            "file": {"name": upload.name, "size": upload.size, "sha256": digest.hexdigest()},
            "status": user.status if user is not None else "not inspected",
            "user_id": user.user_id if user is not None else None,
        }
    )


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
