"""The package surface: public names, no framework imported by the core, imports one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ainisa_demo
import ainisa_middleware

LIBRARY = Path(ainisa_middleware.__file__).parent
DEMO = Path(ainisa_demo.__file__).parent


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
        "ainisa_middleware.cli.build_parser();"
        "bad = [m for m in ('starlette', 'fastapi', 'django', 'werkzeug', 'sqlalchemy', 'anyio',"
        " 'flask', 'jinja2', 'cryptography', 'uvicorn', 'ainisa_demo') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _imports(path: Path, package: str) -> list[tuple[str, bool]]:
    """``(absolute module name, at module level)`` of each import in ``path``."""
    tree = ast.parse(path.read_text("utf-8"))
    top = set(map(id, tree.body))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            # "from . import x" imports the module x; "from .m import x", a name of m.
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        found += [(name, id(node) in top) for name in names]
    return found


def _module_imports(root: Path, name: str) -> dict[str, list[tuple[str, bool]]]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [name, *path.relative_to(root).with_suffix("").parts]
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        # What a relative import starts from: the package holding the file.
        modules[module] = _imports(path, ".".join(parts[:-1]))
    return modules


def test_only_the_demo_command_imports_the_demo_and_only_when_it_runs() -> None:
    importers = {
        (module, top_level)
        for module, imports in _module_imports(LIBRARY, "ainisa_middleware").items()
        for imported, top_level in imports
        if imported.split(".")[0] == "ainisa_demo"
    }
    assert importers == {("ainisa_middleware.cli.demo", False)}
    for module, imports in _module_imports(DEMO, "ainisa_demo").items():
        assert not [i for i, _ in imports if i.startswith("ainisa_middleware.cli")], module


@pytest.mark.parametrize(
    ("package", "layers"),
    [
        pytest.param(
            "ainisa_middleware.stores.sql",
            [{"errors"}, {"schema", "crypto", "engine"}, {"store"}, {"resolver", "health"}],
            id="sql-store",
        ),
        pytest.param(
            "ainisa_middleware.cli",
            [{"common"}, {"sender", "store", "demo"}, {"check"}],
            id="cli",
        ),
    ],
)
def test_imports_run_one_way(package: str, layers: list[set[str]]) -> None:
    """Each module imports only from layers below its own; nothing imports ``__init__``."""
    root = LIBRARY.joinpath(*package.split(".")[1:])
    modules = _module_imports(root, package)
    assert set(modules) == {package} | {f"{package}.{m}" for layer in layers for m in layer}
    for depth, layer in enumerate(layers):
        below = {f"{package}.{m}" for lower in layers[:depth] for m in lower}
        for name in layer:
            inside = {i for i, _ in modules[f"{package}.{name}"] if i.startswith(package)}
            assert inside <= below, f"{package}.{name} imports {sorted(inside - below)}"


def test_py_typed_marker_ships() -> None:
    assert (Path(ainisa_middleware.__file__).parent / "py.typed").exists()
