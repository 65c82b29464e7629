"""The package surface: public names, no framework imported by the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ainisa_middleware


def test_public_names() -> None:
    for name in (
        "AinisaUser",
        "Business",
        "Status",
        "StaticResolver",
        "CachedResolver",
        "user_hash",
        "verify_user_hash",
    ):
        assert name in ainisa_middleware.__all__
        assert hasattr(ainisa_middleware, name)


def test_core_imports_no_framework() -> None:
    code = (
        "import sys, ainisa_middleware, ainisa_middleware.verify, ainisa_middleware.cli;"
        "bad = [m for m in ('starlette', 'fastapi', 'django', 'werkzeug', 'sqlalchemy', 'anyio',"
        " 'flask', 'jinja2') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_marker_ships() -> None:
    assert (Path(ainisa_middleware.__file__).parent / "py.typed").exists()
