"""``manage.py seed_demo``: one Pro business, its widget and a secret, for trying it out."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from ainisa_middleware.django.models import Business, Secret, Widget


class Command(BaseCommand):
    help = (
        "Create the business 'demo-shop' (plan pro) with the widget 'demo-widget' and a "
        "secret read from $AINISA_DEMO_SECRET. Run it once; use the admin for real data."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        secret = os.environ.get("AINISA_DEMO_SECRET")
        if not secret:
            self.stderr.write("Set AINISA_DEMO_SECRET first (the secret is never an argument).")
            raise SystemExit(2)
        business, _ = Business.objects.update_or_create(
            id="demo-shop", defaults={"name": "Demo shop", "plan": "pro"}
        )
        Widget.objects.get_or_create(id="demo-widget", defaults={"business": business})
        if not Secret.objects.filter(business=business, value=secret).exists():
            Secret.objects.create(business=business, value=secret)
        self.stdout.write("demo-shop is ready: widget demo-widget, secret from AINISA_DEMO_SECRET.")
