"""The deployment check's shared parts: a finding, the report, and the bus step.

``ainisa-middleware check`` (SQL store) and Django's ``manage.py check --database
default`` (the Django models) each collect :class:`Finding` s about a deployment
before traffic reaches it; this module holds what both need and no I/O of its
own but the bus's ``ping()``. A finding never holds a secret: the checks report
ids, counts and what to do.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "BUS_FACTORY",
    "BUS_MODULE",
    "INVALIDATION_URL_ENV",
    "Finding",
    "Level",
    "bus_findings",
    "render",
]

#: ``ok``: as it should be; ``warning``: works, but look at it; ``problem``: fix it
#: before traffic arrives (the check exits non-zero).
Level = Literal["ok", "warning", "problem"]
#: The environment variable naming the invalidation bus.
INVALIDATION_URL_ENV: Final = "AINISA_INVALIDATION_URL"
#: Where the invalidation bus lives, and the function there that opens one from a URL.
BUS_MODULE: Final = "ainisa_middleware.invalidation"
BUS_FACTORY: Final = "from_url"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the check found: how bad, what, and what to do about it."""

    level: Level
    message: str
    fix: str = ""


def _safe(url: str) -> str:
    """``url`` without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    credentials, _, host = rest.partition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def bus_findings(url: str | None, opener: Callable[[str], object] | None = None) -> list[Finding]:
    """Whether the invalidation bus at ``url`` answers ``ping()``.

    ``url`` ``None`` reads :data:`INVALIDATION_URL_ENV`; no URL at all is fine
    (one process, or caches that expire on their TTL). ``opener`` turns the URL
    into a bus object; by default :data:`BUS_FACTORY` of :data:`BUS_MODULE`,
    when this version of the package has it.
    """
    url = (os.environ.get(INVALIDATION_URL_ENV) or None) if url is None else url
    if not url:
        return [
            Finding(
                "ok",
                "invalidation bus: not configured (each process's cache expires on its TTL)",
            )
        ]
    where = _safe(url)
    if opener is None:
        try:
            module = importlib.import_module(BUS_MODULE)
            opener = getattr(module, BUS_FACTORY)
        except (ImportError, AttributeError):
            return [
                Finding(
                    "problem",
                    f"invalidation bus {where} is configured, but this installation of "
                    "ainisa-middleware has no invalidation bus",
                    f"upgrade ainisa-middleware, or unset {INVALIDATION_URL_ENV}",
                )
            ]
    bus: object = None
    try:
        bus = opener(url)
        ping = getattr(bus, "ping", None)
        if ping is None:
            return [Finding("problem", f"invalidation bus {where}: the bus has no ping()", "")]
        ping()
    except Exception as exc:
        return [
            Finding(
                "problem",
                f"invalidation bus {where} does not answer ({type(exc).__name__})",
                f"check that the server at {where} is up and reachable from here, or unset "
                f"{INVALIDATION_URL_ENV}; without it a retired secret verifies in other "
                "processes until their caches expire",
            )
        ]
    finally:
        close = getattr(bus, "close", None)
        if callable(close):
            close()
    return [Finding("ok", f"invalidation bus {where} answers")]


_MARKS: Final = {"ok": "ok  ", "warning": "WARN", "problem": "FAIL"}


def render(findings: Iterable[Finding]) -> tuple[str, int]:
    """The findings as lines for a terminal, and how many are problems."""
    lines: list[str] = []
    problems = 0
    for finding in findings:
        problems += finding.level == "problem"
        lines.append(f"{_MARKS[finding.level]}  {finding.message}")
        if finding.fix:
            lines.append(f"      -> {finding.fix}")
    lines.append(
        "no problems found" if not problems else f"{problems} problem(s): fix them before traffic"
    )
    return "\n".join(lines), problems
