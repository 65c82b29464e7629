"""URLs of the Django test project: echo views on /chat, the admin, a view outside."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from tests.test_django import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("chat", views.echo),
    path("chat/async", views.async_echo),
    path("other", views.echo),
]
