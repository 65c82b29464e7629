"""MkDocs hooks (``mkdocs.yml`` ``hooks:``): links from the docs to the repository's files.

The pages link to examples and tests outside ``docs/`` (``../examples/sql/app.py``),
which MkDocs cannot serve. Each such link is checked to exist in the repository (a
missing one is a warning, so ``--strict`` fails on it as on a broken page link)
and rewritten: to the file on the repository's web view when ``repo_url`` is
set, else to the path in code font.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.ainisa")

# [text](../path) or [text](../path#anchor): a link that leaves docs/.
_LINK = re.compile(r"\[([^\]\n]+)\]\((\.\./[^)\s#]*)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    root = docs.parent
    page_dir = (docs / page.file.src_path).parent
    repo = (config.get("repo_url") or "").rstrip("/")

    def rewrite(match: re.Match[str]) -> str:
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        path = (page_dir / target).resolve()
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:
            log.warning("%s links outside the repository: %s", page.file.src_path, target)
            return match.group(0)
        if not path.exists():
            log.warning("%s links to a missing file: %s", page.file.src_path, relative)
            return match.group(0)
        if repo:
            kind = "tree" if path.is_dir() else "blob"
            return f"[{text}]({repo}/{kind}/main/{relative}{anchor})"
        return text if text.strip("`") == relative.rstrip("/") else f"{text} (`{relative}`)"

    return _LINK.sub(rewrite, markdown)
