"""The deployment check for Django: ``manage.py check --database default``.

Registered under ``Tags.database``, so it runs only when asked to reach the
database, as Django's own database checks do. It reports (as
``ainisa.E030``..., ``ainisa.W030``...) the app's tables missing (migrations not
applied), identity businesses with an enabled widget and no active secret, and an
invalidation bus named by ``AINISA_INVALIDATION_URL`` that does not answer.
Secrets are stored by the Django models as the admin wrote them; nothing is
decrypted here and no value is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.db import DatabaseError, connections

from ainisa_middleware.deployment import bus_findings

__all__ = ["check_deployment"]


def check_deployment(
    app_configs: Sequence[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """The app's tables, its businesses' secrets, and the invalidation bus."""
    if not databases:
        return []  # Django asks for database checks only with --database
    from ainisa_middleware.django.models import Business, Secret, Widget, active_secrets
    from ainisa_middleware.django.resolver import DEFAULT_ELIGIBLE_PLANS

    found: list[checks.CheckMessage] = []
    for alias in databases:
        try:
            tables = set(connections[alias].introspection.table_names())
        except DatabaseError as error:
            found.append(
                checks.Error(
                    f"cannot reach database {alias!r}: {type(error).__name__}.",
                    hint="Check DATABASES and that the database is up.",
                    id="ainisa.E030",
                )
            )
            continue
        missing = [
            model._meta.db_table
            for model in (Business, Widget, Secret)
            if model._meta.db_table not in tables
        ]
        if missing:
            found.append(
                checks.Error(
                    f"database {alias!r} has no {', '.join(missing)} table(s).",
                    hint="Run 'manage.py migrate ainisa'.",
                    id="ainisa.E031",
                )
            )
            continue
        bare = [
            business.pk
            for business in Business.objects.using(alias)
            .filter(plan__in=DEFAULT_ELIGIBLE_PLANS, widgets__disabled=False)
            .distinct()
            if not active_secrets(business).using(alias).exists()
        ]
        if bare:
            found.append(
                checks.Warning(
                    f"{len(bare)} business(es) with identity and an enabled widget have no "
                    f"active secret, so no visitor of theirs can be verified: "
                    f"{', '.join(sorted(bare)[:10])}.",
                    hint="Give each a secret in the admin (Businesses > rotate).",
                    id="ainisa.W030",
                )
            )
    for finding in bus_findings(None):
        if finding.level == "problem":
            found.append(checks.Error(finding.message + ".", hint=finding.fix, id="ainisa.E032"))
    return found
