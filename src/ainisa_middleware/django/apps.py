"""The ``ainisa_middleware.django`` app: models, admin, system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AinisaConfig(AppConfig):
    """Add ``"ainisa_middleware.django"`` to ``INSTALLED_APPS``."""

    name = "ainisa_middleware.django"
    #: "django" would be the default label and read as Django's own.
    label = "ainisa"
    verbose_name = "Ainisa"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ainisa_middleware.django import checks
        from ainisa_middleware.django.invalidation import on_change
        from ainisa_middleware.django.models import Business, Secret, Widget
        from ainisa_middleware.django.resolver import invalidate_all

        checks.register()
        # A change saved in this process is seen by this process's resolvers at once,
        # and by every other process through the bus (AINISA["INVALIDATION_URL"]).
        for model in (Business, Widget, Secret):
            for signal in (post_save, post_delete):
                signal.connect(
                    invalidate_all, sender=model, dispatch_uid=f"ainisa-{model.__name__}"
                )
                signal.connect(on_change, sender=model, dispatch_uid=f"ainisa-bus-{model.__name__}")
