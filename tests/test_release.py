"""The release: ``python -m build`` and ``twine check``, then the wheel in a fresh environment.

One environment gets the wheel (never the work tree) with every extra at once,
from the package index as a user's ``pip install`` would; the command line runs
and every adapter imports from that environment's ``site-packages``. Without
the index the install step fails in CI and skips elsewhere, as the quickstarts do.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from ainisa_middleware import __version__, user_hash

from .test_quickstarts import ROOT, clean_environment, index_unreachable, pip

#: Extras a user may install; ``dev`` is the project's own toolbox.
EXTRAS = sorted(
    set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    - {"dev"}
)
#: Every module a user imports, each with what it needs.
MODULES = [
    "ainisa_middleware",
    "ainisa_middleware.asgi",
    "ainisa_middleware.wsgi",
    "ainisa_middleware.fastapi",
    "ainisa_middleware.django",
    "ainisa_middleware.django.middleware",
    "ainisa_middleware.channels",
    "ainisa_middleware.jinja",
    "ainisa_middleware.snippet",
    "ainisa_middleware.stores.sql",
    "ainisa_middleware.prometheus",
    "ainisa_middleware.otel",
    "ainisa_middleware.decisions",
    "ainisa_demo",
]
TIMEOUT = 600


def run(*command: str, cwd: Path, venv: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=clean_environment(venv),
        check=False,
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from it, as ``python -m build`` makes them."""
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--outdir", str(out), str(ROOT), cwd=out)
    index_unreachable(built.stdout + built.stderr)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def test_build_makes_a_wheel_and_an_sdist_that_twine_accepts(dist: Path) -> None:
    wheel, sdist = (
        dist / f"ainisa_middleware-{__version__}-py3-none-any.whl",
        dist / (f"ainisa_middleware-{__version__}.tar.gz"),
    )
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())
    checked = run(
        sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist), cwd=dist
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_wheel_holds_the_packages_and_nothing_else(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {
        "ainisa_middleware",
        "ainisa_demo",
        f"ainisa_middleware-{__version__}.dist-info",
    }
    assert "ainisa_middleware/py.typed" in names
    assert not [n for n in names if n.endswith((".db", ".sqlite3", ".pyc"))]
    assert not [n for n in names if re.search(r"(^|/)(tests?|bench|fuzz|examples)/", n)]
    metadata = (
        zipfile.ZipFile(wheel).read(f"ainisa_middleware-{__version__}.dist-info/METADATA").decode()
    )
    assert f"\nVersion: {__version__}\n" in metadata
    for extra in EXTRAS:
        assert f"Provides-Extra: {extra}\n" in metadata
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert not [m for m in members if m.endswith((".db", ".sqlite3")) or "/.venv/" in m]


def test_the_version_comes_from_one_place() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/ainisa_middleware/__init__.py"
    changelog = (ROOT / "docs" / "changelog.md").read_text()
    assert f"## {__version__} " in changelog


def test_the_wheel_with_every_extra_installs_and_runs_from_a_fresh_environment(
    dist: Path, tmp_path: Path
) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = pip(
        Path(sys.executable),
        "--python",
        str(python),
        "install",
        "--retries",
        "1",
        "--timeout",
        "30",
        "--no-compile",  # byte-compiling every dependency costs more than the install
        f"{wheel}[{','.join(EXTRAS)}]",
    )
    index_unreachable(installed.stdout + installed.stderr)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    version = run(str(venv / "bin" / "ainisa-middleware"), "--version", cwd=tmp_path, venv=venv)
    assert version.stdout.strip() == f"ainisa-middleware {__version__}", version.stderr
    hashed = subprocess.run(
        [str(python), "-m", "ainisa_middleware", "hash", "42"],
        input="secret\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        env=clean_environment(venv),
        check=False,
    )
    assert hashed.stdout.strip() == user_hash("secret", "42"), hashed.stderr
    checked = run(
        str(venv / "bin" / "ainisa-middleware"),
        "check",
        "--db",
        f"sqlite:///{tmp_path / 'fresh.db'}",
        cwd=tmp_path,
        venv=venv,
    )
    assert checked.returncode == 1 and "no database file at" in checked.stdout

    script = textwrap.dedent(
        f"""
        import importlib, pathlib
        for name in {MODULES!r}:
            module = importlib.import_module(name)
            where = pathlib.Path(module.__file__).resolve()
            assert "site-packages" in where.parts, (name, where)
            assert pathlib.Path({str(ROOT)!r}) not in where.parents, (name, where)
        print("imported", len({MODULES!r}))
        """
    )
    imported = run(str(python), "-c", script, cwd=tmp_path, venv=venv)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert imported.stdout.strip() == f"imported {len(MODULES)}"
