"""Hostile bodies cannot starve other requests (CONTRACT 3.7), under a real uvicorn.

One uvicorn worker serves ``tests.hosts.latency_peers:app``. The median latency
of an unrelated ``/health`` is measured idle, then while four client processes
post hostile 1 MiB bodies to ``/chat`` in a loop (a form of ``;``, and JSON
holding an array of empty arrays); the loaded median must stay within 5x the
idle one. Every process here has a deadline, and every one is stopped and
reaped before the test returns.

The idle median is floored at 1 ms. On this loopback it is a few hundred
microseconds, the same order as a scheduler's wake-up on a busy machine: with
six processes runnable on a couple of cores, a request can wait that long for a
core whatever the server does, and 5x a sub-millisecond value would measure the
scheduler, not whether the event loop was held. What the test is for is the
loop being held by a parse: tens to hundreds of milliseconds per request.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.hosts.latency_peers:app"
CLIENTS = 4
#: ``/health`` requests measured idle, then under load (one every INTERVAL).
IDLE_SAMPLES = 200
LOADED_SAMPLES = 300
#: Seconds between the ``/health`` requests of a measurement (see health_latencies).
INTERVAL = 0.01
#: Seconds a single probe may take before it counts as timed out.
PROBE_TIMEOUT = 10.0
#: The idle median is floored here (see the module docstring).
IDLE_FLOOR = 0.001
RATIO = 5.0
#: A client stops by itself after this many seconds, even if nobody tells it to.
CLIENT_SECONDS = 20.0
# What the child processes must not inherit: asyncio's debug mode (PYTHONDEVMODE
# turns it on, and it times every callback) and coverage's tracer would measure
# themselves, not the server.
_DROPPED_ENV = (
    "PYTHONDEVMODE",
    "PYTHONWARNINGS",
    "PYTHONASYNCIODEBUG",
    "PYTHONTRACEMALLOC",
    "COVERAGE_PROCESS_START",
    "COVERAGE_PROCESS_CONFIG",
)


@dataclass
class Latency:
    idle: float  # seconds, median
    loaded: float  # seconds, median
    loaded_p90: float  # seconds, 90th percentile
    client_answers: list[dict[str, int]]

    @property
    def ratio(self) -> float:
        return self.loaded / max(self.idle, IDLE_FLOOR)


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@contextmanager
def uvicorn_server(app: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """A single uvicorn worker on 127.0.0.1 serving ``app``; yields its port."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    # Output to a file: a pipe nobody reads fills up and blocks the server.
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start in 20 s") from None
                time.sleep(0.05)
        yield port
    finally:
        _stop_process(process)


_HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def _probe(
    port: int, due: float, idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
) -> float:
    """Seconds one ``GET /health`` sent at ``due`` takes (keep-alive when possible)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, due - loop.time()))
    sent = loop.time()  # not ``due``: this client's own timer is late by up to a millisecond
    reader, writer = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
    writer.write(_HEALTH)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    elapsed = loop.time() - sent
    idle.append((reader, writer))
    return elapsed


async def _probes(port: int, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    start = loop.time() + 0.01
    tasks = [asyncio.ensure_future(_probe(port, start + i * INTERVAL, idle)) for i in range(count)]
    try:
        done, pending = await asyncio.wait(tasks, timeout=count * INTERVAL + PROBE_TIMEOUT)
        # A probe still waiting is as slow as the timeout, at least.
        return [t.result() for t in done] + [PROBE_TIMEOUT] * len(pending)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with suppress(OSError):
                await writer.wait_closed()


def health_latencies(port: int, count: int) -> list[float]:
    """Seconds per ``GET /health``: one due every :data:`INTERVAL`, whatever the others do.

    Each request leaves when it is due, on a keep-alive connection if one is
    free (a new one otherwise), and is timed from then: the requests arrive as
    independent visitors would, so the median is that of a visitor's wait. Sent
    one after another instead, a request stuck behind a held event loop would be
    one slow sample while those sent between stalls would all be fast, and a
    loop held most of the time could still show a fast median.
    """
    # debug=False: PYTHONDEVMODE would time every callback of this client.
    return asyncio.run(_probes(port, count), debug=False)


def warm_up(port: int) -> None:
    """One request of each kind, so the first measured ones start no thread or import."""
    from .latency_peers import HOSTILE, WIDGET_ID

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for body, content_type in HOSTILE:
            headers = {"Content-Type": content_type, "X-Ainisa-Widget-Id": WIDGET_ID}
            connection.request("POST", "/chat", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
    finally:
        connection.close()
    health_latencies(port, 20)


def _read_line(stream: IO[bytes], deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
        raise RuntimeError("a hostile client did not answer in time")
    return stream.readline()


@contextmanager
def hostile_clients(port: int, env: dict[str, str]) -> Iterator[list[dict[str, int]]]:
    """Four processes posting hostile bodies; yields once each has had an answer.

    The list it yields is filled, on exit, with each client's answers by status.
    """
    command = [sys.executable, "-m", "tests.hosts.latency_peers", str(port), str(CLIENT_SECONDS)]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE) for _ in range(CLIENTS)
    ]
    answers: list[dict[str, int]] = []
    try:
        deadline = time.monotonic() + 20
        for process in processes:
            assert process.stdout is not None
            line = _read_line(process.stdout, deadline)
            assert line.strip() == b"ready", line
        yield answers
    finally:
        for process in processes:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        outputs = [_reap(process) for process in processes]
        for out in outputs:
            lines = out.decode().splitlines()
            answers.append(json.loads(lines[-1]) if lines and lines[-1] != "ready" else {})


def _reap(process: subprocess.Popen[bytes]) -> bytes:
    try:
        out, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=10)
    return out


def measure(app: str = APP, env: dict[str, str] | None = None, log: Path | None = None) -> Latency:
    """Idle and loaded ``/health`` medians of one server run."""
    env = child_env() if env is None else env
    log = Path(os.devnull) if log is None else log
    with uvicorn_server(app, env, log) as port:
        warm_up(port)
        idle = statistics.median(health_latencies(port, IDLE_SAMPLES))
        with hostile_clients(port, env) as answers:
            loaded_samples = health_latencies(port, LOADED_SAMPLES)
    return Latency(
        idle=idle,
        loaded=statistics.median(loaded_samples),
        loaded_p90=statistics.quantiles(loaded_samples, n=10)[-1],
        client_answers=answers,
    )


@pytest.mark.slow
def test_hostile_bodies_do_not_starve_an_unrelated_endpoint(tmp_path: Path) -> None:
    log = tmp_path / "uvicorn.log"
    result = measure(log=log)
    detail = (
        f"idle median {result.idle * 1e3:.2f} ms, loaded median {result.loaded * 1e3:.2f} ms "
        f"(90th percentile {result.loaded_p90 * 1e3:.2f} ms): ratio {result.ratio:.2f} against "
        f"max(idle, {IDLE_FLOOR * 1e3:g} ms); clients' answers {result.client_answers}"
    )
    print(detail)
    # The load was real: every client was answered, the form with 400 malformed_body
    # (past the field cap) and the JSON with 200 (valid, passed on to the app).
    assert len(result.client_answers) == CLIENTS, detail
    for answers in result.client_answers:
        assert answers.get("400", 0) >= 1 and answers.get("200", 0) >= 1, detail
        assert answers.get("0", 0) == 0, detail
    assert result.ratio <= RATIO, detail
    assert "Traceback" not in log.read_text(), log.read_text()[-2000:]
