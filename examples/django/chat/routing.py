"""WebSocket URLs, under AINISA["PATHS"] so the middleware verifies them."""

from __future__ import annotations

from django.urls import path

from chat.consumers import ChatConsumer

websocket_urlpatterns = [path("chat/ws", ChatConsumer.as_asgi())]
