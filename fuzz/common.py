"""Shared by the fuzz targets: the input format, the oracle, the harness.

Every target reads the same input: a small HTTP/1.1 request as text, so a seed
is readable and every seed works for every target::

    POST /chat?widget_id=w_pro HTTP/1.1
    content-type: application/json
    x-ainisa-widget-id: w_pro

    {"message": "hi", "user": {"user_id": "42", "user_hash": "..."}}

Parsing is lenient (whatever the fuzzer makes of the text is still a request),
and the oracle is the property tests' own (``tests/hardening/views.py``): the
middleware answers with a contract error or passes a request on in which no
parser finds ``user_hash`` or an identity field it did not verify.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the oracle and harness live with the tests
    sys.path.insert(0, str(ROOT))

from tests.hardening.strategies import Request  # noqa: E402
from tests.hardening.views import Sent, flat_views, lenient_json  # noqa: E402

_HASH = re.compile(rb"[0-9A-Fa-f]{64}")
logging.getLogger("ainisa_middleware").disabled = True


def _hash_values(query: bytes, body: bytes) -> list[str]:
    found: list[str] = []
    for source in (query, body):
        for pairs in flat_views(source).values():
            found += [value for name, value in pairs if name == "user_hash"]
    doc = lenient_json(body)
    if isinstance(doc, dict):
        for holder in (doc, doc.get("user")):
            if isinstance(holder, dict) and isinstance(holder.get("user_hash"), str):
                found.append(holder["user_hash"])
    return found


def parse_input(data: bytes) -> Request:
    """Read the fuzzer's bytes as a request; every byte string is some request."""
    head, _, body = data.partition(b"\n\n")
    lines = head.split(b"\n")
    first = lines[0].split(b" ")
    method = first[0].decode("latin-1") or "POST"
    target = first[1] if len(first) > 1 else b"/chat"
    path, _, query = target.partition(b"?")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip().lower(), value.strip(b" \t")))
    text_path = path.decode("utf-8", "replace") or "/"
    if not text_path.startswith("/"):
        text_path = "/" + text_path
    # Every hash the request carries, however written, for the oracle.
    hashes = [m.decode() for m in _HASH.findall(data)] + _hash_values(query, body)
    sent = Sent(widget_id=None, hashes=hashes)
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]] if len(body) > 1 else [body]
    return Request(method, text_path, headers, query, body, chunks, sent)
