"""The rendered snippet in Debian's Chromium: ``window.ainisaUser`` read back from a real page.

No server: each page is set with ``page.set_content``. The value comes back
through ``JSON.stringify`` in the page, which escapes lone surrogates, so the
comparison is exact for every string, including those the DevTools protocol
could not carry as they are.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ainisa_middleware import user_hash
from ainisa_middleware.snippet import user_script, widget_script

from .test_snippet import HOSTILE

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

SECRET = "browser-secret"
#: Stands in for the widget: a data: URL would be refused by widget_script, so
#: the page's own check reads the object, as widget.js would.
READ_BACK = """() => ({
  user: window.ainisaUser === undefined ? null : JSON.stringify(window.ainisaUser),
  pwned: window.pwned === undefined ? null : String(window.pwned),
  scripts: document.scripts.length,
  src: Array.from(document.scripts).map((e) => e.getAttribute('src')),
  body: Array.from(document.body.children).map((e) => e.tagName.toLowerCase()),
})"""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    context.route("**/*", lambda route: route.abort())  # stay off the network
    yield context
    context.close()


def _load(context: BrowserContext, body: str, head: str = "") -> dict[str, Any]:
    # A fresh page each time: set_content() on a used page keeps its window,
    # so a blocked script would read back the previous page's object.
    page = context.new_page()
    try:
        page.set_content(
            f'<!DOCTYPE html><html><head><meta charset="utf-8">{head}</head>'
            f'<body><p id="before">x</p>{body}<p id="after">y</p></body></html>'
        )
        result: dict[str, Any] = page.evaluate(READ_BACK)
    finally:
        page.close()
    return result


_READ_FRAMES = """() => Array.from(document.querySelectorAll('iframe')).map((frame) => {
  const win = frame.contentWindow;
  const doc = frame.contentDocument;
  return {
    user: win.ainisaUser === undefined ? null : JSON.stringify(win.ainisaUser),
    pwned: win.pwned === undefined ? null : String(win.pwned),
    scripts: doc.scripts.length,
    body: Array.from(doc.body.children).map((e) => e.tagName.toLowerCase()),
  };
})"""


def test_every_hostile_value_reads_back_exactly_in_chromium(context: BrowserContext) -> None:
    # One document per value, each in its own srcdoc frame of one page: a page
    # per value costs half a second. html.escape() is undone exactly by the
    # attribute parser, and the snippet is printable ASCII with no CR or NUL.
    breakout = "</script><script>window.pwned=1//"
    frames = []
    for param in HOSTILE:
        snippet = user_script("42", secret=SECRET, firstname=param.values[0], lastname=breakout)
        document = f'<!DOCTYPE html><p id="before">x</p>{snippet}<p id="after">y</p>'
        frames.append(f'<iframe srcdoc="{html.escape(document, quote=True)}"></iframe>')
    page = context.new_page()
    page.set_content("<!DOCTYPE html><html><body>" + "".join(frames) + "</body></html>")
    results = page.evaluate(_READ_FRAMES)
    assert len(results) == len(HOSTILE)
    for param, got in zip(HOSTILE, results, strict=True):
        assert got["pwned"] is None, param.id
        assert got["scripts"] == 1, param.id
        assert got["body"] == ["p", "script", "p"], param.id
        assert json.loads(got["user"]) == {
            "user_id": "42",
            "user_hash": user_hash(SECRET, "42"),
            "firstname": param.values[0],
            "lastname": breakout,
            "email": "",
        }, param.id


def test_nonce_lets_the_snippet_run_under_a_strict_policy(context: BrowserContext) -> None:
    policy = (
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"script-src 'nonce-r4nd0m'; default-src 'none'\">"
    )
    with_nonce = _load(context, user_script("7", secret=SECRET, nonce="r4nd0m"), head=policy)
    assert json.loads(with_nonce["user"])["user_id"] == "7"
    without = _load(context, user_script("7", secret=SECRET), head=policy)
    assert without["user"] is None  # the same tag without the nonce is blocked


def test_widget_tag_is_one_script_element_with_the_escaped_source(context: BrowserContext) -> None:
    src = 'https://cdn.invalid/w.js?a=1&b="><script>window.pwned=1</script>'
    got = _load(context, user_script(None) + widget_script(src, widget_id="w-1"))
    assert got["pwned"] is None
    assert got["body"] == ["p", "script", "script", "p"]
    assert got["src"] == [None, src]
    assert json.loads(got["user"]) == {
        "user_id": "",
        "user_hash": "",
        "firstname": "",
        "lastname": "",
        "email": "",
    }
