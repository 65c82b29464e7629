"""Every Python block in the pages below runs, in order, so the docs cannot rot.

The blocks of one page share a namespace, as a reader following the steps
would. A block whose first line is a comment holding only a file name
(``# main.py``, ``# chat/views.py``) is that file's content instead: it is
written there, in a directory of the page's own that is the working directory
and on ``sys.path``, for later blocks to import. A block that is only an
illustration is marked by putting the line ``<!-- snippet: skip -->`` directly
above its opening fence.

tests/test_quickstarts.py reads the same blocks, and the pages' shell commands,
to follow the quickstarts in fresh virtual environments.
"""

from __future__ import annotations

import logging
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .page_runner import write_block

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
    "docs/observability.md",
    "docs/scaling.md",
    "docs/hosts.md",
    "docs/threat-model.md",
    "docs/attachments.md",
    "docs/websocket.md",
    "docs/tokens.md",
    "docs/diagnostics.md",
]
SKIP_MARK = "<!-- snippet: skip -->"
#: Secrets the snippets read from the environment, as a deployment would.
ENVIRONMENT = {"AINISA_SECRET": "docs-snippet-secret"}

_FENCE = re.compile(r"^```(\w*)\s*$")
_FILE_NAME = re.compile(r"# (\w[\w.-]*(?:/\w[\w.-]*)*\.py)")


@dataclass(frozen=True)
class Block:
    """A fenced block of a page."""

    #: The line number of the opening fence; the code starts on the next line.
    line: int
    #: The fence's language (``python``, ``bash``), or ``""``.
    language: str
    code: str
    #: Marked ``<!-- snippet: skip -->``: an illustration, not a step.
    skipped: bool


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order."""
    blocks: list[Block] = []
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
        code = "\n".join(body) + "\n"
        blocks.append(Block(start + 1, opening.group(1), code, previous.strip() == SKIP_MARK))
    return blocks


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each runnable ```` ```python ```` block of ``text``."""
    return [
        (block.line, block.code)
        for block in fenced_blocks(text)
        if block.language == "python" and not block.skipped
    ]


def block_file(code: str) -> str | None:
    """The file a block is the content of, when its first line names one, else ``None``."""
    match = _FILE_NAME.fullmatch(code.split("\n", 1)[0].strip())
    return match.group(1) if match else None


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
    assert [(block.language, block.skipped) for block in fenced_blocks(text)] == [
        ("python", False),
        ("bash", False),
        ("python", True),
        ("python", False),
    ]


def test_a_first_line_naming_a_file_puts_the_block_in_it() -> None:
    assert block_file("# main.py\nimport os\n") == "main.py"
    assert block_file("# chat/views.py\n") == "chat/views.py"
    # Anything more on the line is a comment, not a file name.
    assert block_file("# myproject/ainisa.py, when businesses live in the database\n") is None
    assert block_file("import os\n") is None
    assert block_file("# ../outside.py\n") is None


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    # A Litestar app configures the root logger (INFO, its own handler) when built;
    # the rest of the session must not inherit that.
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def _page_modules_forgotten(tmp_path: Path) -> Iterator[None]:
    # A page's own files (main.py) are imported by its later blocks; the next
    # page must import its own, not find this one's in sys.modules.
    yield
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None) or ""
        if origin.startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.mark.usefixtures("_page_modules_forgotten")
@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_run(page: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = ROOT / page
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert blocks, f"{page} has no runnable Python block"
    # A real module in sys.modules: frameworks that resolve annotations through the
    # handler's module (Litestar) find the page's names there.
    module = types.ModuleType(f"docs_snippet_{path.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict[str, object] = module.__dict__
    for line, code in blocks:
        target = block_file(code)
        if target is not None:
            write_block(tmp_path, target, code)
            continue
        # Pad so a traceback's line numbers are the page's own.
        compiled = compile("\n" * line + code, str(path), "exec")
        exec(compiled, namespace)
