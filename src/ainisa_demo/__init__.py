"""A complete local demo: a business website, a reference widget and a verified chat backend.

Run it with ``make demo`` or ``ainisa-middleware demo`` (install the extra first,
``pip install "ainisa-middleware[demo]"``). Nothing here is needed to use the
middleware, and nothing in :mod:`ainisa_middleware` imports it but the ``demo``
command, when it runs: it exists to show the whole flow at a glance, and its
browser tests prove that flow end to end.

It ships in the same wheel as the library, beside it rather than inside it,
so the library's import graph carries no web framework, server or database.
"""

from __future__ import annotations

# One sentence naming the extra, before any module of the demo needs one of them.
try:
    import fastapi  # noqa: F401
    import sqlalchemy  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "The demo needs its extra: install it with 'pip install \"ainisa-middleware[demo]\"'.",
        name=exc.name,
    ) from exc
