"""The requests every variant answers: four kinds of chat request at four body sizes.

A request is built once, before timing, and replayed: what is measured is the
middleware and the app, never the building of the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ainisa_middleware import Business, StaticResolver, user_hash

WIDGET_ID = "wid_bench"
SECRET = "bench-secret-0123456789abcdef"
BUSINESS = Business(id="biz_bench", secrets=(SECRET,))
USER_ID = "user-4242"
PATH = "/chat"

#: Request kinds, in table order.
KINDS = ("verified", "invalid_hash", "anonymous", "hostile")
#: Body sizes in bytes, in table order (1 MB stays under the 1 MiB default limit).
SIZES = (200, 10_000, 100_000, 1_000_000)
SIZE_LABELS = {200: "200 B", 10_000: "10 KB", 100_000: "100 KB", 1_000_000: "1 MB"}

#: What our middleware answers for each kind (strip mode, the default).
EXPECTED_STATUS = {"verified": 200, "invalid_hash": 200, "anonymous": 200, "hostile": 400}
#: What our middleware puts on the request for each kind (the app echoes it).
EXPECTED_USER = {"verified": "verified", "invalid_hash": "invalid_hash", "anonymous": "anonymous"}


@dataclass(frozen=True, slots=True)
class Request:
    """One chat request as bytes, the way a server hands it over."""

    kind: str
    size: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    query_string: bytes = b""

    @property
    def label(self) -> str:
        return f"{self.kind} {SIZE_LABELS.get(self.size, f'{self.size} B')}"


def resolver() -> StaticResolver:
    return StaticResolver({WIDGET_ID: BUSINESS})


def _user(kind: str) -> dict[str, str] | None:
    if kind == "anonymous":
        return None
    digest = user_hash(SECRET, USER_ID)
    if kind == "invalid_hash":
        digest = ("0" if digest[0] != "0" else "1") + digest[1:]
    return {
        "user_id": USER_ID,
        "user_hash": digest,
        "firstname": "Ada",
        "lastname": "Lovelace",
        "email": "ada@ex.org",
    }


def body_for(kind: str, size: int) -> bytes:
    """A JSON chat body of ``size`` bytes (the message is padded to reach it).

    ``hostile`` repeats the ``message`` key, which strict parsers must refuse.
    """
    user = _user("verified" if kind == "hostile" else kind)
    prefix: dict[str, object] = {"message": ""}
    if user is not None:
        prefix["user"] = user
    base = json.dumps(prefix, separators=(",", ":")).encode()
    if kind == "hostile":
        base = base[:-1] + b',"message":""}'
    padding = max(size - len(base), 0)
    marker = b'"message":""'
    text = (b"hello widget " * (padding // 13 + 1))[:padding]
    body = base.replace(marker, b'"message":"' + text + b'"', 1)
    assert len(body) == max(size, len(base)), (len(body), size)
    return body


def build(kind: str, size: int) -> Request:
    body = body_for(kind, size)
    headers = (
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-ainisa-widget-id", WIDGET_ID.encode()),
        (b"user-agent", b"bench"),
        (b"accept", b"*/*"),
    )
    return Request(kind=kind, size=size, body=body, headers=headers)


def oversize() -> Request:
    """A body one byte over the default limit: 413 before anything is parsed."""
    body = body_for("verified", 1_048_577)
    base = build("verified", 200)
    headers = tuple(
        (n, str(len(body)).encode() if n == b"content-length" else v) for n, v in base.headers
    )
    return Request(kind="oversize", size=len(body), body=body, headers=headers)
