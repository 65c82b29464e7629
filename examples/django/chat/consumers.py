"""The WebSocket chat: identity comes from ``scope["state"]["ainisa_user"]``, never from a frame.

``AinisaChannelsMiddleware`` (see ``chatsite/asgi.py``) decides the visitor at
connect and on the first frame, and removes every ``user`` object and
``user_hash`` from the frames before this consumer reads them.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ainisa_middleware import AinisaUser


class ChatConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Read on every frame: the widget sends its identity in the first one,
        # and the middleware settles the visitor before this frame arrives.
        user: AinisaUser = self.scope["state"]["ainisa_user"]
        message = str(content.get("message", ""))
        if user.verified:
            # user_id is verified; firstname is whatever the visitor typed.
            name = user.firstname or f"user {user.user_id}"
            reply = f"Welcome back, {name}!"
        else:
            reply = "Hello, guest!"
        await self.send_json({"reply": reply, "status": user.status, "echo": message})
