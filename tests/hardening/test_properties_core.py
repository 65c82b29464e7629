"""Properties of the sans-IO core: the five over whole requests, then its parts.

The parts: the two JSON parsing paths agree on every text, the field cap gives
its documented codes and nothing but ``RequestError`` escapes the parser, and
path matching fails closed against routers that normalise paths.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Callable

from hypothesis import example, given

from ainisa_middleware.errors import RequestError
from ainisa_middleware.paths import PathMatcher
from ainisa_middleware.request import parse_request

from .harness import MALFORMED, check_json_paths_agree, core_outcome, passthrough_variant
from .profile import BATCH, FAST, FLOOR, MODES, PASS_RATIO, hypothesis_settings, run_counted
from .strategies import (
    BUSINESSES,
    PLAIN_ROOTS,
    PLAIN_SEGMENTS,
    ROUTE_ROOTS,
    ROUTE_SEGMENTS,
    SECRETS,
    Chooser,
    Request,
    any_requests,
    chosen,
    json_text,
    route_path,
    separator_heavy,
)
from .views import check_answer, check_passed, check_untouched, log_leak_check


def test_core_properties() -> None:
    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(any_requests(fast=FAST), MODES)
        def test(req: Request, mode: str) -> None:
            outcome = core_outcome(req, mode)
            log.check(SECRETS, req.sent.hashes)
            counts["p3_never_500"] += 1
            if outcome.seen is None:
                check_answer(outcome.status, outcome.headers, outcome.body)
            else:
                check_passed(outcome.seen, req.sent, BUSINESSES)
                counts["p1_no_user_hash"] += 1
                counts["p2_identity_only_valid"] += 1
                counts["p4_no_differential"] += 1
                counts["verified"] += bool(getattr(outcome.seen.user, "verified", False))
            other = passthrough_variant(req)
            untouched = core_outcome(other, mode)
            assert untouched.seen is not None
            check_untouched(untouched.seen, other.body, other.query, other.headers)
            counts["p5_passthrough_identical"] += 1

        return test

    # One log checker for the whole run: installing it per example costs more
    # than the example (setting a logger's level clears every logger's cache).
    with log_leak_check() as log:
        run_counted("core", make, ratio=PASS_RATIO)


# -- the two JSON parsing paths ------------------------------------------------


#: Texts at each limit, on either side of it: run first on every profile.
JSON_EDGES = [
    '{"a":' + "9" * 4300 + "}",
    '{"a":-' + "9" * 4300 + "}",
    '{"a":' + "9" * 4301 + "}",
    '{"a":1.7976931348623157e308}',
    '{"a":1.7976931348623159e308}',
    '{"a":[' + "[" * 30 + "]" * 30 + "]}",
    '{"a":[' + "[" * 31 + "]" * 31 + "]}",
    '{"a":"' + "[" * 40 + '"}',
    r'{"a\"":1,"a\"":2}',
    r'{"\\":1,"\\":2}',
    r'{"a":1,"\u0061":2}',
    r'{"\ud800":1,"\ud800":2}',
    r'{"\ud800":{"\udfff":[]}}',
    '{"a":{"b":1},"c":{"b":1}}',
    '[{"a":1,"a":2}]',
    " \t\r\n{}\n",
]


def _with_examples(
    texts: list[str],
) -> Callable[[Callable[[list[str]], None]], Callable[[list[str]], None]]:
    def add(test: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        for text in texts:
            test = example([text])(test)
        return test

    return add


def test_core_properties_json_paths_agree() -> None:
    """Hooks (small bodies) and ``_parse_large`` (large ones) accept and refuse alike.

    The text is driven through both directly, whatever its size, and through
    ``parse_json_object``; a share of the texts must be accepted and a share
    refused, or the generator has stopped reaching one side.
    """

    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(chosen(json_text, fast=FAST, batch=BATCH))
        @_with_examples(JSON_EDGES)
        def test(texts: list[str]) -> None:
            for text in texts:
                verdict = check_json_paths_agree(text.encode("utf-8"))
                counts["json_paths_agree"] += 1
                counts["json_refused" if verdict == MALFORMED else "json_accepted"] += 1

        return test

    share = FLOOR // 5
    floors = {"json_paths_agree": FLOOR, "json_accepted": share, "json_refused": share}
    run_counted("json", make, floors=floors)


# -- the field cap -------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def _fields(data: bytes) -> int:
    """Fields as the cap counts them: one more than the separators."""
    return data.count(b"&") + data.count(b";") + 1


def _code(form: bytes, query: bytes, cap: int) -> str:
    try:
        parse_request(
            content_type=FORM if form else None,
            widget_header="w_pro",
            query_string=query,
            body=form,
            max_body_size=1 << 20,
            max_form_fields=cap,
        )
    except RequestError as error:  # anything else escaping fails the property
        return error.code
    return "ok"


def _flat_case(c: Chooser) -> tuple[bytes, bytes, int]:
    """A form body, a query string or both, and the cap to parse them with.

    The cap is drawn around the field count of the form (or of the query,
    without a form), so both sides of the boundary are common; or it is the
    default, 1000, with the data padded to 998 to 1002 fields or flooded with
    100,000 separators.
    """
    form = separator_heavy(c) if c.chance(3) or c.chance(2) else b""
    query = separator_heavy(c) if not form or c.chance(2) else b""
    offset = c.integer(-2, 2)
    kind = c.choice(["near", "near", "default", "flood"])
    padding = b""
    if kind == "default":
        padding = b"&" * max(0, 1000 + offset - _fields(form or query))
    elif kind == "flood":
        padding = b"&;" * 50_000
    if form:
        form += padding
    else:
        query += padding
    cap = max(1, _fields(form or query) + offset) if kind == "near" else 1000
    return form, query, cap


def test_core_properties_field_cap() -> None:
    """A form over the cap is ``malformed_body``, a query over it ``malformed_request``.

    Within the cap, the cap changes nothing: the answer is the one an unlimited
    cap gives. Nothing but ``RequestError`` escapes the parser.
    """

    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(chosen(_flat_case, fast=FAST, batch=BATCH))
        def test(cases: list[tuple[bytes, bytes, int]]) -> None:
            for form, query, cap in cases:
                code = _code(form, query, cap)
                counts["field_cap"] += 1
                if form and _fields(form) > cap:
                    assert code == "malformed_body", code
                    counts["over_cap"] += 1
                elif query and _fields(query) > cap:
                    assert code == "malformed_request", code
                    counts["over_cap"] += 1
                else:
                    assert code == _code(form, query, 10**9), code
                    counts["within_cap"] += 1

        return test

    share = FLOOR // 5
    run_counted(
        "field_cap", make, floors={"field_cap": FLOOR, "over_cap": share, "within_cap": share}
    )


# -- path matching -------------------------------------------------------------

MATCHER = PathMatcher(["/chat"])
_ENCODED_SLASH = re.compile(r"%(?:25)*2[fF]")


def _normalising_route(path: str) -> str:
    """Where a router that normalises sends ``path``: encoded slashes decoded
    (double-encoded ones too, as a proxy and then a server would), repeated
    slashes collapsed, dot segments resolved."""
    decoded = _ENCODED_SLASH.sub("/", path)
    return posixpath.normpath(re.sub("/+", "/", "/" + decoded))


def _merging_route(path: str) -> str:
    """Where werkzeug's and Litestar's routers send ``path``: slashes merged, dots kept."""
    return re.sub("/+", "/", path)


def _under_chat(path: str) -> bool:
    return path == "/chat" or path.startswith("/chat/")


def _readings(path: str, root: str, route: Callable[[str], str]) -> list[str]:
    """``path`` served under the mount ``root`` as an app's router may read it.

    As it is (the mount point already removed, WSGI's convention), in full (a
    prefix configured as the public path), and without the mount point when it
    holds it (Starlette's ``Mount``, uvicorn's ``--root-path``).
    """
    routed = route(path)
    readings = [routed]
    if root:
        readings.append(route(root + "/" + path))
        base = route(root).rstrip("/")
        if base and (routed == base or routed.startswith(base + "/")):
            readings.append(routed[len(base) :] or "/")
    return readings


def _route_pair(c: Chooser) -> tuple[str, str]:
    return route_path(c, ROUTE_SEGMENTS, ROUTE_ROOTS)


def _path_case(c: Chooser) -> tuple[tuple[str, str], tuple[str, str]]:
    """A path and mount to route, and a plain pair no router sends to ``/chat``."""
    return _route_pair(c), route_path(c, PLAIN_SEGMENTS, PLAIN_ROOTS)


def test_core_properties_paths_fail_closed() -> None:
    """A path a normalising router sends to ``/chat`` or below is intercepted.

    And a plain path (no ``chat`` segment, no encoding, no mount named ``chat``)
    is not: failing closed must not mean intercepting everything.
    """

    def make(counts: Counter[str], examples: int) -> Callable[[], None]:
        @hypothesis_settings(examples)
        @given(chosen(_path_case, fast=FAST, batch=BATCH))
        def test(cases: list[tuple[tuple[str, str], tuple[str, str]]]) -> None:
            for (path, root), (plain, plain_root) in cases:
                if any(map(_under_chat, _readings(path, root, _normalising_route))):
                    assert MATCHER.matches(path, root), (path, root)
                    counts["routed_is_intercepted"] += 1
                counts["paths_fail_closed"] += 1
                assert not any(map(_under_chat, _readings(plain, plain_root, _normalising_route)))
                assert not MATCHER.matches(plain, plain_root), (plain, plain_root)
                counts["plain_passes"] += 1

        return test

    floors = {
        "paths_fail_closed": FLOOR,
        "routed_is_intercepted": FLOOR // 5,
        "plain_passes": FLOOR,
    }
    run_counted("paths", make, floors=floors)


def test_core_properties_paths_fail_closed_for_merging_routers() -> None:
    """A path werkzeug or Litestar sends to ``/chat`` or below is intercepted.

    Both merge repeated slashes and keep dot segments: ``//chat/..`` reaches a
    ``/chat/<path:rest>`` route with ``rest=".."``. Minimal failing input:
    ``PathMatcher(["/chat"]).matches("//chat/..")`` is False.
    """

    @hypothesis_settings(FLOOR)
    @given(chosen(_route_pair))
    @example([("//chat/..", "")])
    def test(pairs: list[tuple[str, str]]) -> None:
        for path, root in pairs:
            if any(map(_under_chat, _readings(path, root, _merging_route))):
                assert MATCHER.matches(path, root), (path, root)

    test()
