"""uvicorn (one worker, 127.0.0.1) per variant under ``wrk``, interleaved and bounded in time.

Every variant's server starts first and stays up; ``wrk`` then runs against
them in turn, A B C A B C ..., so drift hits every variant alike. With two or
more cores the servers are pinned to core 0 and ``wrk`` to core 1, so the load
generator does not steal the server's CPU.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .workload import PATH, Request

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "wrk_post.lua"


@dataclass
class NetResult:
    host: str
    variant: str
    rps: list[float] = field(default_factory=list)
    errors: int = 0
    answer: str = ""

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps) if self.rps else float("nan")


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pin(core: int) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start within {timeout} s")


def _answer(port: int, request: Request) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {n.decode(): v.decode() for n, v in request.headers if n != b"host"}
        conn.request("POST", PATH, body=request.body, headers=headers)
        response = conn.getresponse()
        data = json.loads(response.read())
        return response.status, data.get("status") if response.status == 200 else data.get("error")
    finally:
        conn.close()


def _wrk(
    port: int, body_file: str, headers: str, seconds: float, connections: int
) -> tuple[float, int]:
    env = dict(os.environ, BENCH_BODY_FILE=body_file, BENCH_HEADERS=headers)
    command = [
        *_pin(1),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    out = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return float(match.group(1)), (int(bad.group(1)) if bad else 0) + (1 if errors else 0)


def run(
    host: str,
    variants: tuple[str, ...],
    request: Request,
    *,
    reps: int,
    seconds: float,
    connections: int = 16,
    server_args: tuple[str, ...] = (),
) -> list[NetResult]:
    """Requests per second of every variant, ``reps`` interleaved runs of ``seconds`` each."""
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results = {name: NetResult(host, name) for name in variants}
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as handle:
        handle.write(request.body)
        body_file = handle.name
    headers = "|".join(
        f"{n.decode()}: {v.decode()}"
        for n, v in request.headers
        if n not in (b"host", b"content-length")
    )
    try:
        for name in variants:
            port = _free_port()
            env = dict(
                os.environ,
                BENCH_HOST=host,
                BENCH_VARIANT=name,
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            )
            command = [
                *_pin(0),
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bench.serve:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
                *server_args,
            ]
            proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            procs[name] = (proc, port)
        for name, (proc, port) in procs.items():
            _wait_ready(port, proc)
            status, word = _answer(port, request)
            results[name].answer = f"{status} {word}"
            _wrk(port, body_file, headers, 1, connections)  # warm-up
        for _ in range(reps):
            for name, (_proc, port) in procs.items():
                rate, errors = _wrk(port, body_file, headers, seconds, connections)
                results[name].rps.append(rate)
                results[name].errors += errors
    finally:
        for proc, _port in procs.values():
            proc.send_signal(signal.SIGINT)
        for proc, _port in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.unlink(body_file)
    return list(results.values())
