"""Logging as a quiet production process has it: configured, going nowhere.

The middleware still builds its record for every answer it logs at WARNING
(what a real handler would receive); nothing is printed while timing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_LOGGERS = ("ainisa_middleware", "django.request", "django.server")


def quiet() -> None:
    """Send the middleware's (and Django's request) records nowhere for the rest of the process."""
    for name in _LOGGERS:
        log = logging.getLogger(name)
        log.addHandler(logging.NullHandler())
        log.propagate = False


@contextmanager
def quieted() -> Iterator[None]:
    """:func:`quiet` for a while, then the logger as it was (tests share the process)."""
    handler = logging.NullHandler()
    saved = []
    for name in _LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.propagate))
        log.addHandler(handler)
        log.propagate = False
    try:
        yield
    finally:
        for log, propagate in saved:
            log.removeHandler(handler)
            log.propagate = propagate
