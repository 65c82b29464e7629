"""The shared table's catch-all route to the async echo view."""

from __future__ import annotations

from tests.test_django.table_urls import async_urlpatterns as urlpatterns

__all__ = ["urlpatterns"]
