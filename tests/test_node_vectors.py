"""Hashes made the way the vendor guide shows (Node, PHP) verify in Python.

The guide's own snippet is run verbatim, so a difference in encoding (UTF-8
for non-ASCII ids) or output (lowercase hex) between the two sides shows here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ainisa_middleware import user_hash, verify_user_hash

#: (secret, user_id) pairs: ASCII, Unicode, empty-ish and long ids, odd secrets.
VECTORS: list[tuple[str, str]] = [
    ("your_secret_key_here", "1"),
    ("sk_live_4f1c2b", "user-42"),
    ("sk_live_4f1c2b", "0"),
    ("sk_live_4f1c2b", " "),
    ("sk_live_4f1c2b", ""),
    ("sk_live_4f1c2b", "José Ñúñez"),
    ("sk_live_4f1c2b", "用户-七"),
    ("sk_live_4f1c2b", "👤🔐"),
    ("sk_live_4f1c2b", "e\u0301"),  # a combining accent: bytes, not normalised text
    ("sk_live_4f1c2b", "a" * 10_000),
    ("clé-secrète-🔑", "42"),
    ("k" * 200, "longer-than-the-sha256-block-key"),
]

NODE_SNIPPET = """
const crypto = require('crypto');
const out = JSON.parse(process.argv[1]).map(([secret, userId]) =>
  crypto.createHmac('sha256', secret).update(userId).digest('hex'));
process.stdout.write(JSON.stringify(out));
"""

PHP_SNIPPET = """
$out = [];
foreach (json_decode($argv[1], true) as [$secret, $userId]) {
    $out[] = hash_hmac('sha256', $userId, $secret);
}
echo json_encode($out);
"""


def _run(command: list[str]) -> list[str]:
    done = subprocess.run(
        command, capture_output=True, text=True, encoding="utf-8", timeout=60, check=True
    )
    result: list[str] = json.loads(done.stdout)
    return result


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is not on PATH but CI is set: install Node.js in the CI image")
        pytest.skip("node is not on PATH; the Node cross-check needs Node.js")
    return node


def _payload() -> str:
    return json.dumps(VECTORS)


def test_node_createhmac_matches_user_hash() -> None:
    node = _node()
    hashes = _run([node, "-e", NODE_SNIPPET, _payload()])
    assert len(hashes) == len(VECTORS)
    for (secret, user_id), from_node in zip(VECTORS, hashes, strict=True):
        assert from_node == user_hash(secret, user_id), (secret, user_id)
        assert verify_user_hash(secret, user_id, from_node)
        assert verify_user_hash(secret, user_id, from_node.upper())


def test_node_hash_of_an_integer_id_string_matches_python_int() -> None:
    # The guide says "must be string"; pages render ids from integer columns.
    node = _node()
    (from_node,) = _run([node, "-e", NODE_SNIPPET, json.dumps([["s3cret", str(1234567)]])])
    assert from_node == user_hash("s3cret", 1234567)


def _php() -> str:
    php = shutil.which("php")
    if php is None:
        if os.environ.get("CI"):
            pytest.fail("php is not on PATH but CI is set: make test installs php-cli as root")
        pytest.skip("php is not on PATH; make test installs Debian's php-cli when run as root")
    return php


def test_php_hash_hmac_matches_user_hash() -> None:
    php = _php()
    hashes = _run([php, "-r", PHP_SNIPPET, _payload()])
    for (secret, user_id), from_php in zip(VECTORS, hashes, strict=True):
        assert from_php == user_hash(secret, user_id), (secret, user_id)
