"""Logging as a quiet production process has it: configured, going nowhere.

The middleware still builds its record for every answer it logs at WARNING
(what a real handler would receive); nothing is printed while timing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_LOGGER = "ainisa_middleware"


def quiet() -> None:
    """Send the middleware's records to a NullHandler for the rest of the process."""
    log = logging.getLogger(_LOGGER)
    log.addHandler(logging.NullHandler())
    log.propagate = False


@contextmanager
def quieted() -> Iterator[None]:
    """:func:`quiet` for a while, then the logger as it was (tests share the process)."""
    log = logging.getLogger(_LOGGER)
    handler = logging.NullHandler()
    propagate = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
