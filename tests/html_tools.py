"""Read rendered snippets back with real HTML parsers and a real JavaScript engine.

Shared by the snippet, Jinja2, command line and Django template tag tests: a
value only counts as safe if a browser-grade parser finds exactly the elements
we meant, and the script text, run or parsed, gives the value back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import html5lib
import pytest

_ASSIGNMENT = re.compile(r"\Awindow\.ainisaUser = (?P<json>\{.*\});\Z", re.DOTALL)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class _Collector(HTMLParser):
    elements: list[Element] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    stray_text: list[str] = field(default_factory=list)
    _open: Element | None = None

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.elements.append(element)
        self._open = element if tag == "script" else None

    def handle_endtag(self, tag: str) -> None:
        self._open = None
        if tag != "script":
            self.elements.append(Element(f"/{tag}", {}))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.text += data
        elif data.strip():
            self.stray_text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def parse_stdlib(fragment: str) -> list[Element]:
    """Elements found by :mod:`html.parser`; fails on comments or text outside elements."""
    collector = _Collector()
    collector.feed(fragment)
    collector.close()
    assert collector.comments == []
    assert collector.stray_text == []
    return collector.elements


def parse_html5(fragment: str) -> list[Element]:
    """The elements html5lib (the WHATWG algorithm browsers use) puts in ``<body>``.

    The fragment sits between two marker paragraphs: if anything in it ended an
    element early or opened a comment, the markers or the element list change.
    """
    document = (
        "<!DOCTYPE html><html><head><title>t</title></head><body>"
        f'<p id="before">before</p>{fragment}<p id="after">after</p></body></html>'
    )
    tree = html5lib.parse(document, namespaceHTMLElements=False)
    body = tree.find("body")
    assert body is not None
    children = list(body)
    assert [(c.tag, c.get("id")) for c in children[:1]] == [("p", "before")]
    assert [(c.tag, c.get("id"), c.text) for c in children[-1:]] == [("p", "after", "after")]
    inner = children[1:-1]
    for child in inner:
        assert len(child) == 0, "an element nested inside a script element"
        assert not (child.tail or "").strip(), "text leaked out of an element"
    return [Element(child.tag, dict(child.attrib), child.text or "") for child in inner]


def user_object_from(fragment: str) -> dict[str, Any]:
    """Both parsers agree the fragment is one script assigning ``window.ainisaUser``."""
    for elements in (parse_stdlib(fragment), parse_html5(fragment)):
        assert [element.tag for element in elements] == ["script"]
    text = parse_html5(fragment)[0].text
    assert parse_stdlib(fragment)[0].text == text
    match = _ASSIGNMENT.match(text)
    assert match is not None, text
    value: dict[str, Any] = json.loads(match.group("json"))
    return value


def node_or_skip() -> str:
    """The ``node`` binary; a skip with the reason outside CI, a failure in CI."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is not on PATH; CI must install Node.js for the cross-check")
        pytest.skip("node is not on PATH: the Node.js cross-check needs it")
    return node


_EVAL_SCRIPTS = r"""
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((code) => {
    const window = {};
    new Function('window', code)(window);
    return window.ainisaUser;
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def run_in_node(scripts: list[str]) -> list[Any]:
    """Run each script text in Node.js with a fresh ``window``; return ``window.ainisaUser``.

    One process for the whole list. ``JSON.stringify`` escapes lone surrogates,
    so every string comes back to Python exactly as JavaScript holds it.
    """
    result = subprocess.run(
        [node_or_skip(), "-e", _EVAL_SCRIPTS],
        input=json.dumps(scripts),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values: list[Any] = json.loads(result.stdout)
    return values
