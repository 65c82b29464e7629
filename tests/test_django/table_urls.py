"""Every path to an echo view, for the shared table (sync and async views)."""

from __future__ import annotations

from django.urls import re_path

from tests.test_django import views

sync_urlpatterns = [re_path(r"^(?P<rest>.*)$", views.table_echo)]
async_urlpatterns = [re_path(r"^(?P<rest>.*)$", views.async_table_echo)]
urlpatterns = sync_urlpatterns
