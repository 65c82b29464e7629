"""Follow a page's steps in this interpreter, as a reader of the page would.

tests/test_quickstarts.py runs this file with the Python of a fresh virtual
environment, where only the page's install line was installed: it uses the
standard library alone and imports nothing from the test suite.

    python page_runner.py STEPS.json

``STEPS.json`` is ``{"page": "docs/quickstart-django.md", "steps": [...]}``; each
step has the ``line`` of the page it comes from and a ``kind``:

- ``file``: append ``code`` to the file ``path`` (a block headed ``# path.py``);
- ``python``: run ``code``; these blocks share one namespace, with the working
  directory on ``sys.path`` so they can import the page's files;
- ``command``: run ``argv`` (``python manage.py check``) and require success;
- ``server``: start ``argv`` (``uvicorn app:app --port N``), wait until it answers
  ``GET /`` on ``port`` without a server error, and stop it;
- ``cd``: change to ``path``; ``env``: set ``name`` to ``value``.

Steps run in order in the current directory. The first failure prints the page,
the line and the error, and exits with status 1.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

#: Seconds a command or a server start may take.
COMMAND_TIMEOUT = 300
SERVER_TIMEOUT = 60


class StepFailed(Exception):
    """A step of the page did not do what the page says it does."""


def write_block(directory: Path, name: str, code: str) -> None:
    """Append ``code`` to the file ``name`` under ``directory``, as a reader adds to a file."""
    target = (directory / name).resolve()
    if not target.is_relative_to(directory.resolve()):
        raise ValueError(f"{name} is outside {directory}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as stream:
        if stream.tell():
            stream.write("\n\n")
        stream.write(code)


def _run_command(argv: list[str]) -> None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StepFailed(f"$ {' '.join(argv)}\n{error}") from error
    if done.returncode != 0:
        raise StepFailed(
            f"$ {' '.join(argv)}\nexit status {done.returncode}\n{done.stdout}{done.stderr}"
        )


def _status(port: int) -> int | None:
    """The status of ``GET /`` on ``port``, or ``None`` while nothing answers there."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
    except OSError:
        return None
    finally:
        connection.close()
    return response.status


def _serve(argv: list[str], port: int) -> None:
    # Its own session, so that stopping it stops any worker it started too.
    server = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    status = None
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while status is None and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            status = _status(port)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    # Any answer but a server error: a 404 for "/" still shows the app loaded and serves.
    if status is None or status >= 500:
        answer = "never answered" if status is None else f"answered GET / with {status}"
        raise StepFailed(f"$ {' '.join(argv)}\n{answer} on port {port}\n{output}")


def run(page: str, steps: list[dict[str, Any]]) -> None:
    """Run ``steps``; raise :class:`StepFailed` naming the page's line on the first failure."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    sys.path.insert(0, os.getcwd())
    for step in steps:
        kind, line = step["kind"], step["line"]
        try:
            if kind == "file":
                write_block(Path.cwd(), step["path"], step["code"])
            elif kind == "python":
                # Pad so a traceback's line numbers are the page's own.
                exec(compile("\n" * line + step["code"], page, "exec"), namespace)
            elif kind == "command":
                _run_command(step["argv"])
            elif kind == "server":
                _serve(step["argv"], step["port"])
            elif kind == "cd":
                os.chdir(step["path"])
                sys.path[0] = os.getcwd()
            elif kind == "env":
                os.environ[step["name"]] = step["value"]
            else:
                raise ValueError(f"unknown step kind {kind!r}")
        except StepFailed as error:
            raise StepFailed(f"{page}, the {kind} block at line {line}:\n{error}") from None
        except BaseException:
            raise StepFailed(
                f"{page}, the {kind} block at line {line}:\n{traceback.format_exc()}"
            ) from None


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    try:
        run(plan["page"], plan["steps"])
    except StepFailed as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
