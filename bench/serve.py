"""App factory for uvicorn: ``BENCH_HOST`` and ``BENCH_VARIANT`` pick the app.

BENCH_HOST=asgi BENCH_VARIANT=ours uvicorn --factory bench.serve:app
"""

from __future__ import annotations

import os
from typing import Any

from .logs import quiet


def app() -> Any:
    quiet()
    host = os.environ.get("BENCH_HOST", "asgi")
    variant = os.environ.get("BENCH_VARIANT", "bare")
    from . import variants

    return variants.server_app(host, variant)
