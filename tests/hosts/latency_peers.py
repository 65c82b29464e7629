"""The server app and the hostile client of ``test_hostile_latency.py``.

``tests.hosts.latency_peers:app`` is what uvicorn serves: a Starlette app behind
the middleware on ``/chat``, whose endpoint answers without reading the body,
and an unrelated ``/health``. ``python -m tests.hosts.latency_peers PORT SECONDS``
is one hostile client: it posts bodies to ``/chat`` in a loop, in turn a 1 MiB
form of ``;``, a 1 MiB JSON object holding an array of empty arrays and a
multipart body of 1,000 parts of short headers, until SIGTERM
or its deadline, then prints how many answers of each status it got.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import time
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ainisa_middleware import Business, StaticResolver
from ainisa_middleware.asgi import AinisaMiddleware

WIDGET_ID = "wid_latency"
BODY_SIZE = 1 << 20  # the default max_body_size: the largest body the middleware reads
FORM = b";" * BODY_SIZE
_OPEN, _CLOSE = b'{"message":"hi","a":[', b"[]]}"
# As many empty arrays as fit: about 349,000 values for the C scanner to build.
ARRAYS = _OPEN + b"[]," * ((BODY_SIZE - len(_OPEN) - len(_CLOSE)) // 3) + _CLOSE
# The costliest multipart body within the limits: 1,000 parts (max_form_fields) of
# seven short headers each, every header a Python call in python-multipart.
_PART = b'--b\r\nContent-Disposition: form-data; name="x"\r\n' + b"A: b\r\n" * 7 + b"\r\n\r\n"
PARTS = _PART * 1000 + b"--b--\r\n"
HOSTILE = (
    (FORM, "application/x-www-form-urlencoded"),
    (ARRAYS, "application/json"),
    (PARTS, "multipart/form-data; boundary=b"),
)


async def _chat(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")  # the body is never read: only the middleware parses it


async def _health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def build_app() -> Any:
    inner = Starlette(routes=[Route("/chat", _chat, methods=["POST"]), Route("/health", _health)])
    resolver = StaticResolver({WIDGET_ID: Business(id="biz_latency", secrets=("s" * 32,))})
    return AinisaMiddleware(inner, resolver=resolver, paths=["/chat"])


app = build_app()


_stopping = False


def _stop(signum: int, frame: object) -> None:
    global _stopping
    _stopping = True  # the request under way finishes first


def run_client(port: int, seconds: float) -> Counter[int]:
    """Post the hostile bodies until SIGTERM or ``seconds`` have passed."""
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    index = 0
    try:
        while not _stopping and time.monotonic() < deadline:
            body, content_type = HOSTILE[index % len(HOSTILE)]
            index += 1
            headers = {"Content-Type": content_type, "X-Ainisa-Widget-Id": WIDGET_ID}
            try:
                connection.request("POST", "/chat", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                statuses[response.status] += 1
            except (OSError, http.client.HTTPException):
                statuses[0] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            if sum(statuses.values()) == 1:
                print("ready", flush=True)
    finally:
        connection.close()
    return statuses


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    statuses = run_client(int(argv[0]), float(argv[1]))
    answers = {str(status): count for status, count in sorted(statuses.items())}
    print(json.dumps(answers, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
