"""Rewriting what the app reads: the raw request target servers keep."""

from __future__ import annotations

import pytest

from ainisa_middleware.rewrite import RAW_TARGET_KEYS, rewrite_target

HASH = "0" * 64


@pytest.mark.parametrize(
    ("target", "query", "rewritten"),
    [
        pytest.param(
            f"/chat?user_id=7&user_hash={HASH}", "user_id=7", "/chat?user_id=7", id="query-replaced"
        ),
        pytest.param(f"/chat?user_hash={HASH}", "", "/chat", id="empty-query-drops-the-mark"),
        pytest.param("/chat?", "", "/chat", id="bare-question-mark-dropped"),
        pytest.param("/chat", "", "/chat", id="no-query"),
        pytest.param("/chat", "a=1", "/chat?a=1", id="query-added"),
        pytest.param(
            f"/chat?a=1?user_hash={HASH}", "a=1", "/chat?a=1", id="question-mark-in-the-query"
        ),
        pytest.param("/c%3Fhat?user_hash=x", "", "/c%3Fhat", id="encoded-mark-in-the-path"),
        pytest.param("//chat/../x?user_hash=x", "", "//chat/../x", id="path-kept-byte-for-byte"),
        pytest.param(
            f"http://example.com/chat?user_hash={HASH}&a=1",
            "a=1",
            "http://example.com/chat?a=1",
            id="absolute-form-target",
        ),
    ],
)
def test_rewrite_target(target: str, query: str, rewritten: str) -> None:
    assert rewrite_target(target, query) == rewritten


def test_raw_target_keys_name_the_servers_copies() -> None:
    # gunicorn's RAW_URI; waitress', uWSGI's and mod_wsgi's REQUEST_URI
    assert set(RAW_TARGET_KEYS) == {"RAW_URI", "REQUEST_URI"}
