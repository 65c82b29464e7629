"""Which requests are inspected: paths as routers read them, mounts, CORS preflights."""

from __future__ import annotations

import pytest

from ainisa_middleware.paths import (
    PathMatcher,
    is_cors_preflight,
    normalise_path,
    normalise_prefix,
)

CHAT = PathMatcher(["/chat"])


# -- normalise_path ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        pytest.param("/chat/x", "/chat/x", id="plain-path-as-it-is"),
        pytest.param("//chat", "/chat", id="repeated-slash"),
        pytest.param("///chat/x", "/chat/x", id="three-slashes"),
        pytest.param("/chat//x", "/chat/x", id="repeated-slash-inside"),
        pytest.param("/%2Fchat", "/chat", id="encoded-slash"),
        pytest.param("/%2fchat", "/chat", id="encoded-slash-lower-case"),
        pytest.param("/%252Fchat", "/chat", id="double-encoded-slash"),
        pytest.param("/%25252fchat", "/chat", id="triple-encoded-slash"),
        pytest.param("/x/../chat", "/chat", id="dot-dot"),
        pytest.param("/./chat", "/chat", id="dot"),
        pytest.param("/chat/..", "/", id="dot-dot-last"),
        pytest.param("/a/b/../../chat", "/chat", id="dot-dots"),
        pytest.param("/..//chat", "/chat", id="dot-dot-above-the-root"),
        pytest.param("/x/%2E%2E/chat", "/chat", id="encoded-dot-dot"),
        pytest.param("/x/%2e./chat", "/chat", id="half-encoded-dot-dot"),
        pytest.param("\\chat", "/chat", id="backslash"),
        pytest.param("/x\\..\\chat", "/chat", id="backslashes-and-dots"),
        pytest.param("/chat/", "/chat/", id="trailing-slash-kept"),
        pytest.param("/chat//", "/chat/", id="trailing-slashes-collapsed"),
        pytest.param("/chat/.", "/chat/", id="trailing-dot-leaves-a-slash"),
        pytest.param("/chat/x/..", "/chat/", id="trailing-dot-dot-leaves-a-slash"),
        pytest.param("//chatter", "/chatter", id="repeated-slash-other-name"),
        pytest.param("/%41chat", "/%41chat", id="other-escapes-kept"),
        pytest.param("chat", "/chat", id="no-leading-slash"),
        pytest.param("", "/", id="empty"),
        pytest.param("/chät/ü", "/chät/ü", id="unicode-as-it-is"),
        pytest.param("//chät/./ü", "/chät/ü", id="unicode-normalised"),
    ],
)
def test_normalise_path(path: str, normal: str) -> None:
    assert normalise_path(path) == normal


@pytest.mark.parametrize(
    ("prefix", "normal"),
    [("/chat", "/chat"), ("/chat/", "/chat"), ("//chat", "/chat"), ("/", "/"), ("//", "/")],
)
def test_normalise_prefix(prefix: str, normal: str) -> None:
    assert normalise_prefix(prefix) == normal


# -- PathMatcher ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/chat", id="the-prefix"),
        pytest.param("/chat/", id="trailing-slash"),
        pytest.param("/chat/x/y", id="below"),
        pytest.param("//chat", id="repeated-slash"),
        pytest.param("///chat/x", id="three-slashes"),
        pytest.param("/%2Fchat", id="encoded-slash"),
        pytest.param("/%2fchat", id="encoded-slash-lower-case"),
        pytest.param("/%252Fchat", id="double-encoded-slash"),
        pytest.param("/x/../chat", id="dot-dot"),
        pytest.param("/./chat", id="dot"),
        pytest.param("/a/b/../../chat/x", id="dot-dots"),
        pytest.param("/..//chat", id="dot-dot-above-the-root"),
        pytest.param("\\chat", id="backslash"),
        pytest.param("chat", id="no-leading-slash"),
        # The raw reading counts too: a router that keeps dot segments
        # (Starlette, werkzeug) sends these to /chat/<path>.
        pytest.param("/chat/..", id="raw-dot-dot-below-the-prefix"),
        pytest.param("/chat/x/../..", id="raw-dot-dots-below-the-prefix"),
    ],
)
def test_paths_a_router_sends_under_the_prefix_are_inspected(path: str) -> None:
    assert CHAT.matches(path)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/chatter", id="longer-name"),
        pytest.param("//chatter", id="longer-name-repeated-slash"),
        pytest.param("/%2Fchatter", id="longer-name-encoded-slash"),
        pytest.param("/chat%2Ejson", id="encoded-dot-in-a-name"),
        pytest.param("/", id="root"),
        pytest.param("", id="empty"),
        pytest.param("/other/chat", id="prefix-further-down"),
        pytest.param("/Chat", id="case-differs"),
        pytest.param("/chät", id="unicode-name"),
        pytest.param("/x/../chatter", id="dots-to-another-name"),
    ],
)
def test_other_paths_pass(path: str) -> None:
    assert not CHAT.matches(path)


@pytest.mark.parametrize(
    ("path", "root"),
    [
        # Starlette's Mount and uvicorn --root-path: the path holds the mount point.
        pytest.param("/api/chat", "/api", id="path-holds-the-mount"),
        pytest.param("/api/chat/x", "/api", id="path-holds-the-mount-below"),
        # WSGI's SCRIPT_NAME and older ASGI servers: it does not.
        pytest.param("/chat", "/api", id="path-below-the-mount"),
        pytest.param("/api//chat", "/api", id="mount-then-repeated-slash"),
        pytest.param("/api/x/../chat", "/api", id="mount-then-dot-dot"),
        pytest.param("/api/%2Fchat", "/api", id="mount-then-encoded-slash"),
        pytest.param("/api/chat", "/api/", id="mount-with-trailing-slash"),
        pytest.param("/api/chat", "//api", id="mount-with-repeated-slash"),
        pytest.param("/chat", "/", id="mount-at-the-root"),
        pytest.param("/x", "/chat", id="mounted-at-the-prefix"),
        pytest.param("/", "/chat", id="mount-point-itself"),
    ],
)
def test_mounted_paths_are_inspected(path: str, root: str) -> None:
    assert CHAT.matches(path, root)


@pytest.mark.parametrize(
    ("path", "root"),
    [
        pytest.param("/api/chatter", "/api", id="longer-name-under-the-mount"),
        pytest.param("/apichat", "/api", id="mount-glued-to-a-name"),
        pytest.param("/x", "/api", id="other-path-under-the-mount"),
        pytest.param("/x", "/", id="other-path-at-the-root"),
        pytest.param("/x", "/api/", id="other-path-mount-with-trailing-slash"),
        pytest.param("/x", "/chatter", id="mount-with-a-longer-name"),
    ],
)
def test_mounted_other_paths_pass(path: str, root: str) -> None:
    assert not CHAT.matches(path, root)


def test_a_prefix_given_as_the_public_path_covers_the_app_below_its_mount() -> None:
    # paths=["/api/chat"] for an app mounted at /api that routes /chat itself
    matcher = PathMatcher(["/api/chat"])
    assert matcher.matches("/chat", "/api")
    assert matcher.matches("/chat/x", "/api/")
    assert not matcher.matches("/chat", "")
    assert not matcher.matches("/chatter", "/api")


def test_prefix_root_covers_every_path() -> None:
    everything = PathMatcher(["/"])
    for path in ("/", "", "/x", "/chatter", "//", "/%2F"):
        assert everything.matches(path)
    assert everything.matches("/x", "/api")


@pytest.mark.parametrize("prefix", ["/chat/", "//chat", "/chat//", "/x/../chat", "/%2Fchat"])
def test_prefixes_are_normalised_like_paths(prefix: str) -> None:
    matcher = PathMatcher([prefix])
    assert matcher.prefixes == ("/chat",)
    assert matcher.matches("/chat")
    assert matcher.matches("/chat/x")
    assert not matcher.matches("/chatter")


def test_prefixes_spelled_twice_are_kept_once_in_order() -> None:
    matcher = PathMatcher(["/chat", "/b", "/chat/", "//chat", "/a"])
    assert matcher.prefixes == ("/chat", "/b", "/a")
    assert matcher.matches("/a/x") and matcher.matches("/b") and not matcher.matches("/c")


@pytest.mark.parametrize("path", ["//chat/..", "//chat/%2e.", "//chat/..%252F"])
def test_paths_merged_but_not_dot_resolved_are_inspected(path: str) -> None:
    assert CHAT.matches(path)


@pytest.mark.parametrize(("path", "root"), [("./chat", ""), ("../chat", ""), ("./chat", "/api/")])
def test_relative_paths_with_dot_segments_are_inspected(path: str, root: str) -> None:
    assert normalise_path(path) == "/chat"
    assert CHAT.matches(path, root)


# -- CORS preflights -----------------------------------------------------------

ACRM = "POST"


@pytest.mark.parametrize(
    ("method", "header", "length", "encoding"),
    [
        pytest.param("OPTIONS", ACRM, None, None, id="no-body-headers"),
        pytest.param("OPTIONS", ACRM, "0", None, id="content-length-0"),
        pytest.param("OPTIONS", ACRM, "0 ", None, id="content-length-0-padded"),
        pytest.param("OPTIONS", ACRM, "", None, id="empty-content-length-as-wsgi-servers-set"),
        pytest.param("OPTIONS", "PUT", None, None, id="other-requested-method"),
    ],
)
def test_genuine_preflights(
    method: str, header: str | None, length: str | None, encoding: str | None
) -> None:
    assert is_cors_preflight(method, header, length, encoding)


@pytest.mark.parametrize(
    ("method", "header", "length", "encoding"),
    [
        pytest.param("OPTIONS", None, None, None, id="no-request-method-header"),
        pytest.param("OPTIONS", "", None, None, id="empty-request-method-header"),
        pytest.param("OPTIONS", ACRM, "5", None, id="a-body"),
        pytest.param("OPTIONS", ACRM, None, "chunked", id="chunked-body"),
        pytest.param("OPTIONS", ACRM, "0", "chunked", id="chunked-despite-content-length-0"),
        pytest.param("POST", ACRM, None, None, id="post"),
        pytest.param("GET", ACRM, "0", None, id="get"),
        pytest.param("options", ACRM, None, None, id="method-names-are-case-sensitive"),
    ],
)
def test_other_requests_are_not_preflights(
    method: str, header: str | None, length: str | None, encoding: str | None
) -> None:
    assert not is_cors_preflight(method, header, length, encoding)
