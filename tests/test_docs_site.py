"""The docs site's link hook: repository links are checked and rewritten.

``make test`` builds the site with ``mkdocs build --strict``; this checks the
hook that lets pages link to examples and tests outside ``docs/`` without
letting a broken one through.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def hooks() -> Any:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(markdown: str, repo_url: str = "") -> str:
    page = SimpleNamespace(file=SimpleNamespace(src_path="operations.md"))
    config = {"docs_dir": str(ROOT / "docs"), "repo_url": repo_url}
    return str(hooks().on_page_markdown(markdown, page, config, None))


def test_a_link_to_an_existing_repository_file_is_rewritten() -> None:
    text = "see [the example app](../examples/sql/app.py) and [docs](stores.md)"
    assert render(text) == "see the example app (`examples/sql/app.py`) and [docs](stores.md)"
    assert render(text, "https://example.org/ainisa/") == (
        "see [the example app](https://example.org/ainisa/blob/main/examples/sql/app.py) "
        "and [docs](stores.md)"
    )
    assert render("[`examples/flask`](../examples/flask)", "https://x.test") == (
        "[`examples/flask`](https://x.test/tree/main/examples/flask)"
    )


@pytest.mark.parametrize("target", ["../examples/sql/nowhere.py", "../../../etc/passwd"])
def test_a_broken_repository_link_is_a_warning_that_fails_a_strict_build(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.ainisa"):
        assert render(f"[x]({target})") == f"[x]({target})"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_every_page_is_in_the_nav() -> None:
    """A page left out of the nav is unreachable from the site's menus."""
    config = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [page for page in pages if f": {page}" not in config]
    assert missing == []
