"""Every Python block in the pages below runs, in order, so the docs cannot rot.

The blocks of one page share a namespace, as a reader following the steps
would. A block that is only an illustration is marked by putting the line
``<!-- snippet: skip -->`` directly above its opening fence.
"""

from __future__ import annotations

import logging
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/quickstart-fastapi.md",
    "docs/quickstart-wsgi.md",
    "docs/quickstart-django.md",
    "docs/protocol.md",
    "docs/security.md",
    "docs/configuration.md",
    "docs/sending-user-data.md",
    "docs/demo.md",
    "docs/stores.md",
    "docs/operations.md",
    "docs/hosts.md",
    "docs/threat-model.md",
]
SKIP_MARK = "<!-- snippet: skip -->"
#: Secrets the snippets read from the environment, as a deployment would.
ENVIRONMENT = {"AINISA_SECRET": "docs-snippet-secret"}

_FENCE = re.compile(r"^```(\w*)\s*$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each runnable ```` ```python ```` block of ``text``."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
        if opening.group(1) == "python" and previous.strip() != SKIP_MARK:
            blocks.append((start + 1, "\n".join(body) + "\n"))
    return blocks


def test_blocks_are_found_and_the_skip_mark_is_honoured() -> None:
    text = "\n".join(
        [
            "```python",
            "a = 1",
            "```",
            "```bash",
            "echo no",
            "```",
            SKIP_MARK,
            "",
            "```python",
            "raise SystemExit",
            "```",
            "```python",
            "b = 2",
            "```",
        ]
    )
    assert python_blocks(text) == [(1, "a = 1\n"), (12, "b = 2\n")]


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    # A Litestar app configures the root logger (INFO, its own handler) when built;
    # the rest of the session must not inherit that.
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_run(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    path = ROOT / page
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert blocks, f"{page} has no runnable Python block"
    # A real module in sys.modules: frameworks that resolve annotations through the
    # handler's module (Litestar) find the page's names there.
    module = types.ModuleType(f"docs_snippet_{path.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict[str, object] = module.__dict__
    for line, code in blocks:
        # Pad so a traceback's line numbers are the page's own.
        compiled = compile("\n" * line + code, str(path), "exec")
        exec(compiled, namespace)
