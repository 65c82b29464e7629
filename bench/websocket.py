"""``python -m bench.websocket``: what the middleware costs per WebSocket frame.

A bare ASGI echo (accept, then send back every text frame) against the same
echo behind :class:`~ainisa_middleware.asgi.AinisaMiddleware`, driven in process
by a fake server that hands over ``count`` frames on one connection, so the
figure is the middleware's own work per frame (strict JSON parse, the
``widget_id`` check, and for a frame carrying ``user`` the rewrite), with no
network. Variants are interleaved, A B A B ..., so machine drift hits both alike.

    python -m bench.websocket              # about 20 seconds
    python -m bench.websocket --network    # also round trips through uvicorn (websockets client)
    python -m bench.websocket --smoke      # a second: checks that it runs

``--network`` serves both echoes with uvicorn (its ``websockets-sansio``
implementation) on 127.0.0.1 and times send-then-receive round trips from the
``websockets`` client, alternating between the two servers in batches: the cost a
visitor's frame really sees, network stack and server included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ainisa_middleware import Business, StaticResolver, user_hash
from ainisa_middleware.asgi import AinisaMiddleware

SECRET = "bench-secret"
RESOLVER = StaticResolver({"w_bench": Business(id="bench", secrets=(SECRET,))})
Message = dict[str, Any]

#: Frames as a chat widget sends them: a plain message (the common case), and a
#: later frame that still carries the user object (removed by the middleware).
FRAMES = {
    "chat 120 B": json.dumps({"message": "Hello, is my order #1234 on its way yet?", "n": 7}),
    "chat with user 250 B": json.dumps(
        {
            "message": "Hello, is my order #1234 on its way yet?",
            "user": {"user_id": "42", "user_hash": user_hash(SECRET, "42"), "firstname": "Ann"},
        }
    ),
    "chat 4 KiB": json.dumps({"message": "x" * 4000}),
}


async def echo(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message.get("text")})


def _scope() -> Message:
    return {
        "type": "websocket",
        "path": "/chat/ws",
        "raw_path": b"/chat/ws",
        "query_string": b"widget_id=w_bench",
        "headers": [],
        "extensions": {"websocket.http.response": {}},
    }


async def _connection(app: Callable[..., Any], frame: str, count: int) -> float:
    """Seconds for one connection of ``count`` frames (after the first, which settles identity)."""
    sent = 0
    first = json.dumps({"message": "hi"})
    messages: list[Message] = [{"type": "websocket.connect"}]
    messages.append({"type": "websocket.receive", "text": first})
    messages.extend({"type": "websocket.receive", "text": frame} for _ in range(count))
    messages.append({"type": "websocket.disconnect", "code": 1000})
    it = iter(messages)

    async def receive() -> Message:
        return next(it)

    async def send(message: Message) -> None:
        nonlocal sent
        sent += 1

    started = time.perf_counter()
    await app(_scope(), receive, send)
    elapsed = time.perf_counter() - started
    assert sent == count + 2, sent  # the accept, the first frame, every frame
    return elapsed


@dataclass
class Row:
    frame: str
    bare_us: float
    ours_us: float

    @property
    def extra_us(self) -> float:
        return self.ours_us - self.bare_us


def measure(count: int, reps: int) -> list[Row]:
    ours = AinisaMiddleware(echo, resolver=RESOLVER, paths=["/chat"])
    variants = {"bare": echo, "ours": ours}
    rows = []
    loop = asyncio.new_event_loop()
    try:
        for label, frame in FRAMES.items():
            times: dict[str, list[float]] = {name: [] for name in variants}
            for app in variants.values():  # warm up
                loop.run_until_complete(_connection(app, frame, 10))
            for _ in range(reps):
                for name, app in variants.items():
                    seconds = loop.run_until_complete(_connection(app, frame, count))
                    times[name].append(seconds / count * 1e6)
            rows.append(
                Row(label, statistics.median(times["bare"]), statistics.median(times["ours"]))
            )
    finally:
        loop.close()
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| frame | bare echo µs/frame | with the middleware µs/frame | added µs/frame |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.frame} | {row.bare_us:.2f} | {row.ours_us:.2f} | {row.extra_us:.2f} |"
        )
    return "\n".join(lines)


def _serve(app: Any) -> tuple[Any, Any, str]:
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, ws="websockets-sansio", lifespan="off", log_level="warning", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread, f"ws://127.0.0.1:{sock.getsockname()[1]}/chat/ws?widget_id=w_bench"


def measure_network(count: int, reps: int) -> list[Row]:
    """Median round trip per frame, microseconds, through uvicorn and a real client."""
    from websockets.sync.client import connect

    served = {
        "bare": _serve(echo),
        "ours": _serve(AinisaMiddleware(echo, resolver=RESOLVER, paths=["/chat"])),
    }
    rows = []
    try:
        stack = contextlib.ExitStack()
        clients = {name: stack.enter_context(connect(url)) for name, (_, _, url) in served.items()}
        for client in clients.values():
            client.send(json.dumps({"message": "hi"}))  # the first frame settles identity
            client.recv(timeout=10)
        for label, frame in FRAMES.items():
            times: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(reps):
                for name, client in clients.items():
                    started = time.perf_counter()
                    for _ in range(count):
                        client.send(frame)
                        client.recv(timeout=10)
                    times[name].append((time.perf_counter() - started) / count * 1e6)
            rows.append(
                Row(label, statistics.median(times["bare"]), statistics.median(times["ours"]))
            )
        stack.close()
    finally:
        for server, thread, _ in served.values():
            server.should_exit = True
            thread.join(10)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks that it runs")
    parser.add_argument("--frames", type=int, default=20_000, help="frames per connection")
    parser.add_argument("--reps", type=int, default=15, help="connections per variant")
    parser.add_argument("--network", action="store_true", help="also time round trips")
    args = parser.parse_args(argv)
    count, reps = (200, 2) if args.smoke else (args.frames, args.reps)
    print("In process (no network):\n")
    print(table(measure(count, reps)))
    if args.network:
        print("\nRound trips through uvicorn (websockets-sansio) and the websockets client:\n")
        print(table(measure_network(max(count // 40, 50), reps * 2)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
