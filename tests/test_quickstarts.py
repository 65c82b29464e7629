"""Each quickstart, followed from a fresh virtual environment as a newcomer would.

For each page below, a new virtual environment gets exactly what the page's
``pip install`` lines name, the work tree's wheel standing in for
``ainisa-middleware`` (one environment per distinct install, shared by the pages
that install the same). tests/page_runner.py then follows the page there, in an
empty directory (for an example, one holding a copy of it): the Python blocks,
extracted as tests/test_docs_snippets.py extracts them; the files those blocks
name; and the shell commands that set up, check and start a project (``export``,
``cd``, ``django-admin``, ``python manage.py``, and ``uvicorn``, ``flask run`` and
``runserver``, stopped once they answer). Commands that need a running server in
a second shell (``curl``) are not run here; tests/test_examples_*.py check what
they print.

The environments are made without pip of their own: the pip of the Python
running the tests installs into each (``pip --python``), from the package index,
with the user's pip configuration and the cache it shares between them. Without the index the test
fails in CI (``CI`` set) and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .test_docs_snippets import ROOT, Block, block_file, fenced_blocks

RUNNER = Path(__file__).resolve().parent / "page_runner.py"

#: Each page, and the directory of the repository it needs beside it ("" for none).
PAGES = {
    "README.md": "",
    "docs/index.md": "",
    "docs/quickstart-fastapi.md": "",
    "docs/quickstart-wsgi.md": "",
    "docs/quickstart-django.md": "",
    "examples/fastapi/README.md": "examples/fastapi",
    "examples/flask/README.md": "examples/flask",
    "examples/django/README.md": "examples/django",
}
PROJECT = "ainisa-middleware"
#: ``manage.py`` commands that wait for a person at the keyboard.
INTERACTIVE = {"createsuperuser", "changepassword", "shell", "dbshell"}
#: What pip prints when it cannot reach the index (urllib3's errors, retried).
UNREACHABLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
    "Max retries exceeded",
)
#: Seconds for one environment's install, and for following one page.
INSTALL_TIMEOUT = 600
PAGE_TIMEOUT = 600


@dataclass(frozen=True)
class Install:
    """What a page's ``pip install`` lines ask for."""

    extras: tuple[str, ...]
    others: tuple[str, ...]

    def arguments(self, wheel: Path) -> list[str]:
        suffix = f"[{','.join(self.extras)}]" if self.extras else ""
        return [f"{wheel}{suffix}", *self.others]


@dataclass(frozen=True)
class Plan:
    install: Install
    steps: list[dict[str, Any]]


def commands(block: Block) -> Iterator[tuple[int, list[str], str]]:
    """``(line, words, text)`` of each command of a shell block, continuations joined."""
    pending: list[str] = []
    first = 0
    for number, line in enumerate(block.code.splitlines(), start=block.line + 1):
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        text = " ".join([*pending, line])
        pending = []
        words = shlex.split(text, comments=True)
        if words:
            yield first, words, text


#: Stands for the port a server step listens on, chosen free when the page is followed.
PORT = "{port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def on_any_port(words: list[str], flag: str | None) -> list[str]:
    """``words`` with the port to serve on replaced by :data:`PORT`.

    The port is the value after ``flag`` (added if missing), or with no flag the last word.
    """
    words = list(words)
    if flag is None:
        words[-1] = PORT
    elif flag in words:
        words[words.index(flag) + 1] = PORT
    else:
        words += [flag, PORT]
    return words


def with_free_ports(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``steps`` with each server's :data:`PORT` replaced by a port free now."""
    chosen: list[dict[str, Any]] = []
    for step in steps:
        if step["kind"] == "server":
            port = free_port()
            argv = [str(port) if word == PORT else word for word in step["argv"]]
            step = {**step, "argv": argv, "port": port}
        chosen.append(step)
    return chosen


def shell_step(line: int, words: list[str], text: str) -> dict[str, Any] | None:
    """The runner's step for one command of the page, or ``None`` for one it does not run."""
    head = words[0]
    if head == "export" and len(words) == 2 and "=" in words[1] and "$" not in text:
        name, value = words[1].split("=", 1)
        return {"kind": "env", "line": line, "name": name, "value": value}
    if head == "cd" and len(words) == 2:
        return {"kind": "cd", "line": line, "path": words[1]}
    if head == "django-admin":
        return {"kind": "command", "line": line, "argv": words}
    if words[:2] == ["python", "manage.py"] and len(words) > 2:
        if words[2] == "runserver":
            argv = on_any_port(words if len(words) > 3 else [*words, "8000"], None)
            return {"kind": "server", "line": line, "argv": argv}
        if words[2] not in INTERACTIVE:
            return {"kind": "command", "line": line, "argv": words}
        return None
    if head == "uvicorn" or (head == "flask" and "run" in words):
        return {"kind": "server", "line": line, "argv": on_any_port(words, "--port")}
    return None


def install_of(arguments: list[str], page: str) -> tuple[set[str], list[str]]:
    """The extras of this project and the other requirements of one ``pip install``."""
    extras: set[str] = set()
    others: list[str] = []
    for word in arguments:
        if word == "-e":
            continue
        name, _, rest = word.partition("[")
        if name in (PROJECT, "."):
            extras.update(part.strip() for part in rest.rstrip("]").split(",") if part.strip())
        elif word.startswith("-"):
            raise AssertionError(f"{page}: pip option {word} is not understood here")
        else:
            others.append(word)
    return extras, others


def plan(page: str) -> Plan:
    """The install and the steps of ``page``, in the page's order."""
    extras: set[str] = set()
    others: list[str] = []
    installs = 0
    steps: list[dict[str, Any]] = []
    for block in fenced_blocks((ROOT / page).read_text(encoding="utf-8")):
        if block.skipped:
            continue
        if block.language == "python":
            line = block.line
            target = block_file(block.code)
            if target is None:
                steps.append({"kind": "python", "line": line, "code": block.code})
            else:
                steps.append({"kind": "file", "line": line, "path": target, "code": block.code})
        elif block.language in ("bash", "sh", "shell", "console"):
            for line, words, text in commands(block):
                if words[:2] == ["pip", "install"]:
                    more_extras, more_others = install_of(words[2:], page)
                    extras |= more_extras
                    others += more_others
                    installs += 1
                    continue
                step = shell_step(line, words, text)
                if step is not None:
                    steps.append(step)
    assert installs, f"{page} never says what to pip install"
    return Plan(Install(tuple(sorted(extras)), tuple(sorted(set(others)))), steps)


def clean_environment(venv: Path | None = None) -> dict[str, str]:
    """A newcomer's environment: none of the test session's Python, Django or app settings."""
    dropped = ("PYTHON", "VIRTUAL_ENV", "DJANGO_", "AINISA_", "COV_CORE_", "COVERAGE_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(dropped)}
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def index_unreachable(output: str) -> None:
    """Fail in CI, skip elsewhere, when pip's ``output`` says the index cannot be reached."""
    signs = [line.strip() for line in output.splitlines() if any(s in line for s in UNREACHABLE)]
    if not signs:
        return
    reason = "pip cannot reach the package index, so no fresh environment can be installed"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the quickstarts must run:\n{signs[0]}", pytrace=False)
    pytest.skip(f"QUICKSTARTS NOT FOLLOWED: {reason}")


def pip(python: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", *arguments, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env=clean_environment(),
        check=False,
    )


def create(venv: Path, install: Install, wheel: Path) -> str:
    """Create ``venv`` with ``install``; pip's output, or ``""`` when all went well."""
    # Without pip of its own: the tests' pip installs into it (``--python``), several
    # times quicker than bootstrapping a pip in each environment.
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        return made.stdout + made.stderr
    # One retry and a short timeout: an unreachable index fails in seconds, not minutes.
    done = pip(
        Path(sys.executable),
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--retries",
        "1",
        "--timeout",
        "30",
        *install.arguments(wheel),
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


PLANS = {page: plan(page) for page in PAGES}


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> dict[Install, Path]:
    """One fresh environment per distinct install, made side by side."""
    base = tmp_path_factory.mktemp("quickstart-environments")
    built = pip(Path(sys.executable), "wheel", "--no-deps", "-w", str(base / "dist"), str(ROOT))
    index_unreachable(built.stdout + built.stderr)
    assert built.returncode == 0, f"the work tree does not build:\n{built.stdout}{built.stderr}"
    (wheel,) = (base / "dist").glob("ainisa_middleware-*.whl")
    installs = sorted({page_plan.install for page_plan in PLANS.values()}, key=repr)
    venvs = {install: base / f"venv{number}" for number, install in enumerate(installs)}
    with ThreadPoolExecutor(max_workers=len(venvs)) as pool:
        failures = dict(
            zip(
                installs,
                pool.map(lambda install: create(venvs[install], install, wheel), installs),
                strict=True,
            )
        )
    for install, output in failures.items():
        if output:
            index_unreachable(output)
            # Not the index: the page's install line itself is wrong.
            pytest.fail(f"pip install {' '.join(install.arguments(wheel))} failed:\n{output}")
    return venvs


def test_the_shell_commands_a_reader_runs_are_the_ones_followed() -> None:
    block = Block(
        10,
        "bash",
        "\n".join(
            [
                'pip install -e ".[wsgi]"  # from the repository root',
                "export AINISA_SECRET='a secret'",
                "export KEY=$(ainisa-middleware store genkey)",
                "cd examples/django",
                "python manage.py migrate",
                "python manage.py createsuperuser",
                "python manage.py runserver 8000",
                "flask --app app.py run --port 5000",
                "HASH=$(ainisa-middleware hash --secret-env AINISA_SECRET 42)",
                "curl -s localhost:8000/chat \\",
                "     -d '{}'",
            ]
        ),
        skipped=False,
    )
    steps = [shell_step(line, words, text) for line, words, text in commands(block)]
    assert [(step or {}).get("kind") for step in steps] == [
        None,  # pip install is collected by plan(), not run
        "env",
        None,
        "cd",
        "command",
        None,
        "server",
        "server",
        None,
        None,
    ]
    assert [line for line, _, _ in commands(block)][-1] == 20
    assert steps[6] == {
        "kind": "server",
        "line": 17,
        "argv": ["python", "manage.py", "runserver", PORT],
    }
    assert steps[7] == {
        "kind": "server",
        "line": 18,
        "argv": ["flask", "--app", "app.py", "run", "--port", PORT],
    }
    (served,) = with_free_ports([steps[7]])
    assert served["argv"][-1] == str(served["port"])
    assert install_of(["-e", ".[wsgi,flask]", "uvicorn"], "page") == (
        {"wsgi", "flask"},
        ["uvicorn"],
    )
    assert install_of([f"{PROJECT}[django]"], "page") == ({"django"}, [])


@pytest.mark.slow
@pytest.mark.parametrize("page", list(PAGES))
def test_page_followed_in_a_fresh_environment(
    page: str, environments: dict[Install, Path], tmp_path: Path
) -> None:
    page_plan = PLANS[page]
    venv = environments[page_plan.install]
    work = tmp_path / "work"
    work.mkdir()
    if PAGES[page]:
        shutil.copytree(
            ROOT / PAGES[page],
            work / PAGES[page],
            ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"),
        )
    steps_file = tmp_path / "steps.json"
    steps = with_free_ports(page_plan.steps)
    steps_file.write_text(json.dumps({"page": page, "steps": steps}), encoding="utf-8")
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(RUNNER), str(steps_file)],
        cwd=work,
        env=clean_environment(venv),
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"following {page}:\n{done.stdout}{done.stderr}", pytrace=False)
