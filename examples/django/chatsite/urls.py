"""URLs: the chat endpoints (verified by the middleware) and the admin."""

from __future__ import annotations

from chat import views
from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("chat", views.chat),
    path("chat/history", views.history),
    path("chat/stream", views.chat_stream),
    path("chat/upload", views.chat_upload),
    path("health", views.health),
]
