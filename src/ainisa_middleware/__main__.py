"""``python -m ainisa_middleware``: the same as the ``ainisa-middleware`` command."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    sys.exit(main())
