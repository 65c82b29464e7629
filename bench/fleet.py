"""Invalidation latency across a fleet: 4 uvicorn processes, one store, one bus.

Each worker runs our ASGI middleware over :class:`SQLResolver` with long cache
times (ttl 300 s, index 300 s), so only the bus can make a change visible
within a second. A trial rotates the secret and retires the previous one
through the command line, then polls every worker until the old hash fails
everywhere, timing from the command's return to the last worker rejecting.

    python -m bench.fleet --trials 20        # both buses; prints median and worst
    python -m bench.fleet --throughput 10    # also wrk on every worker at once, bus and none

The tests (tests/stores/test_fleet.py) drive the same :class:`Fleet` with fewer trials.
The ASGI app the workers serve is :data:`app`, configured by environment variables.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Each worker's configuration, read by :func:`make_app`.
ENV_DB, ENV_PREFIX, ENV_BUS = "FLEET_DB", "FLEET_PREFIX", "FLEET_BUS"
WIDGET, BUSINESS, USER = "wid_fleet", "fleet", "visitor-42"
START_TIMEOUT = 30.0
#: Seconds a trial waits for every worker before it counts as failed.
POLL_LIMIT = 5.0


def make_app() -> Any:
    """The worker: a chat endpoint behind the middleware, and ``/ready`` for the bus state."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ainisa_middleware.asgi import AinisaMiddleware
    from ainisa_middleware.stores.sql import SQLResolver

    resolver = SQLResolver(
        os.environ[ENV_DB],
        table_prefix=os.environ[ENV_PREFIX],
        master_key="",
        invalidation=os.environ[ENV_BUS] or False,
        ttl=300,
        negative_ttl=300,
        index_max_age=300,
    )

    async def chat(request: Request) -> JSONResponse:
        user = request.state.ainisa_user
        return JSONResponse({"status": user.status.value, "pid": os.getpid()})

    async def ready(request: Request) -> JSONResponse:
        bus: Any = resolver.bus
        if bus is None:
            return JSONResponse({"connected": True, "subscriptions": 0, "pid": os.getpid()})
        return JSONResponse(
            {"connected": bus.connected, "subscriptions": bus.subscriptions, "pid": os.getpid()}
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        resolver.close()  # the bus's thread ends with the worker, cleanly

    inner = Starlette(
        routes=[Route("/chat", chat, methods=["POST"]), Route("/ready", ready)],
        lifespan=lifespan,
    )
    return AinisaMiddleware(inner, resolver=resolver, paths=["/chat"])


def __getattr__(name: str) -> Any:
    # ``uvicorn bench.fleet:app``: built on first access, in the worker only.
    if name == "app":
        return make_app()
    raise AttributeError(name)


# -- the harness -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """One uvicorn process and a keep-alive connection to it."""

    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port, self.process, self.log = port, process, log
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                data = json.dumps(body).encode() if body is not None else None
                headers = {"Content-Type": "application/json"} if data else {}
                self._conn.request(method, path, body=data, headers=headers)
                response = self._conn.getresponse()
                payload = response.read()
                return response.status, json.loads(payload)
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def status(self, user_hash: str, widget: str = WIDGET) -> str:
        code, body = self.request(
            "POST",
            "/chat",
            {"widget_id": widget, "user": {"user_id": USER, "user_hash": user_hash}},
        )
        return str(body["status"]) if code == 200 else str(body["error"])

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Fleet:
    """Workers on one store and one bus, and the command line that changes the store."""

    db: str
    bus: str
    prefix: str
    workers: list[Worker] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ainisa_middleware", *args]
        command += ["--db", self.db, "--table-prefix", self.prefix, "--invalidation-url", self.bus]
        env = {**os.environ, "AINISA_MASTER_KEY": ""}
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False
        )

    def rotate(self) -> tuple[int, str]:
        """A new secret through the command line: its id and value."""
        done = self.cli("secret", "rotate", BUSINESS)
        assert done.returncode == 0, done.stderr
        found = re.search(r"secret (\d+) is now the current secret", done.stderr)
        assert found is not None, done.stderr
        return int(found.group(1)), done.stdout.strip()

    def wait_all(
        self, user_hash: str, want: set[str], since: float | None = None, limit: float = POLL_LIMIT
    ) -> list[float]:
        """Poll every worker until its answer is in ``want``; seconds each took from ``since``
        (a ``time.perf_counter()``; default: now)."""
        start = time.perf_counter() if since is None else since
        pending = dict(enumerate(self.workers))
        took = [0.0] * len(self.workers)
        while pending:
            for index, worker in list(pending.items()):
                if worker.status(user_hash) in want:
                    took[index] = time.perf_counter() - start
                    del pending[index]
            if pending and time.perf_counter() - start > limit:
                raise AssertionError(
                    f"workers {sorted(pending)} still answer otherwise after {limit} s"
                )
        return took


@contextmanager
def fleet(
    db: str, bus: str, *, workers: int = 4, logs: Path, prefix: str | None = None
) -> Iterator[Fleet]:
    """A store with business, widget and secret, and ``workers`` uvicorn processes on it."""
    from ainisa_middleware.stores.sql import SQLStore

    prefix = prefix or f"f{uuid.uuid4().hex[:10]}_"
    store = SQLStore(db, table_prefix=prefix, master_key="", invalidation=False)
    store.init()
    store.add_business(BUSINESS, plan="pro")
    store.add_widget(WIDGET, business_id=BUSINESS)
    store.rotate_secret(BUSINESS)
    result = Fleet(db=db, bus=bus, prefix=prefix)
    env = {**os.environ, ENV_DB: db, ENV_PREFIX: prefix, ENV_BUS: bus, "AINISA_MASTER_KEY": ""}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        with ExitStack() as stack:
            for number in range(workers):
                port = _free_port()
                log = logs / f"worker-{number}.log"
                with log.open("wb") as sink:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "uvicorn", "bench.fleet:app", "--host",
                         "127.0.0.1", "--port", str(port), "--log-level", "warning",
                         "--no-access-log"],
                        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                    )  # fmt: skip
                worker = Worker(port, process, log)
                stack.callback(worker.stop)
                result.workers.append(worker)
            for worker in result.workers:
                _wait_subscribed(worker)
            yield result
    finally:
        try:
            store.drop()
        finally:
            store.close()


def on_channel(url: str, channel: str) -> str:
    """``url`` with its own ``channel``, so runs sharing a server do not meet."""
    return f"{url}{'&' if '?' in url else '?'}channel={channel}"


def _wait_subscribed(worker: Worker) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.log.read_text()[-3000:]}")
        try:
            code, body = worker.request("GET", "/ready")
            if code == 200 and body["connected"]:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker not subscribed in {START_TIMEOUT} s")
        time.sleep(0.05)


def trial(f: Fleet, old_id: int, old_hash: str) -> tuple[int, str, float]:
    """Rotate, then retire the old secret; seconds from ``retire`` returning to the last
    worker rejecting the old hash. Returns the new secret's id and hash, and that time."""
    from ainisa_middleware import user_hash

    for worker in f.workers:  # every worker verifies, and caches the business
        assert worker.status(old_hash) == "verified"
    new_id, new_value = f.rotate()
    new_hash = user_hash(new_value, USER)
    f.wait_all(new_hash, {"verified"})
    done = f.cli("secret", "retire", str(old_id))
    returned = time.perf_counter()
    assert done.returncode == 0, done.stderr + done.stdout
    took = f.wait_all(old_hash, {"invalid_hash"}, since=returned)
    return new_id, new_hash, max(took)


def run_trials(f: Fleet, trials: int) -> list[float]:
    """``trials`` rotations with a retirement each; the latency of each."""
    from ainisa_middleware import user_hash
    from ainisa_middleware.stores.sql import SQLStore

    store = SQLStore(f.db, table_prefix=f.prefix, master_key="", invalidation=False)
    try:
        info = store.get_business(BUSINESS, reveal=True)
    finally:
        store.close()
    current = next(s for s in info.secrets if s.state(store.now()) == "active")
    assert current.value is not None
    secret_id, current_hash = current.id, user_hash(current.value, USER)
    latencies = []
    for _ in range(trials):
        secret_id, current_hash, latency = trial(f, secret_id, current_hash)
        latencies.append(latency)
    return latencies


def throughput(f: Fleet, seconds: float, logs: Path) -> float:
    """Verified chat requests per second over every worker at once (one ``wrk`` each)."""
    import shutil

    from ainisa_middleware import user_hash
    from ainisa_middleware.stores.sql import SQLStore

    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    store = SQLStore(f.db, table_prefix=f.prefix, master_key="", invalidation=False)
    try:
        info = store.get_business(BUSINESS, reveal=True)
        value = next(s.value for s in info.secrets if s.state(store.now()) == "active")
    finally:
        store.close()
    assert value is not None
    body = logs / "fleet-body.json"
    body.write_text(
        json.dumps(
            {"widget_id": WIDGET, "user": {"user_id": USER, "user_hash": user_hash(value, USER)}}
        )
    )
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body),
        "BENCH_HEADERS": "Content-Type: application/json",
    }
    lua = Path(__file__).resolve().parent / "wrk_post.lua"
    runs = [
        subprocess.Popen(
            [
                wrk,
                "-t1",
                "-c8",
                f"-d{max(1, round(seconds))}s",
                "-s",
                str(lua),
                f"http://127.0.0.1:{w.port}/chat",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for w in f.workers
    ]
    total = 0.0
    for run in runs:
        out, _ = run.communicate(timeout=seconds + 30)
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert found is not None and "Non-2xx" not in out, out
        total += float(found.group(1))
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AINISA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test"),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("AINISA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--logs", type=Path, default=Path("/tmp"))
    parser.add_argument(
        "--throughput", type=float, default=0, help="also run wrk for this many seconds"
    )
    args = parser.parse_args(argv)
    channel = f"bench_{uuid.uuid4().hex[:8]}"
    setups = [
        ("PostgreSQL store, PostgreSQL bus", args.postgres, on_channel(args.postgres, channel)),
        ("SQLite store, Redis bus", f"sqlite:///{args.logs / 'fleet.db'}",
         on_channel(args.redis, channel)),
    ]  # fmt: skip
    worst_overall = 0.0
    for name, db, bus in setups:
        with fleet(db, bus, workers=args.workers, logs=args.logs) as f:
            latencies = run_trials(f, args.trials)
            if args.throughput:
                rate = throughput(f, args.throughput, args.logs)
                print(f"{name}: {args.workers} workers, verified requests: {rate:.0f}/s")
        worst_overall = max(worst_overall, max(latencies))
        print(
            f"{name}: {args.workers} workers, {len(latencies)} retirements, latency from the "
            f"command returning to the last worker rejecting: median "
            f"{statistics.median(latencies) * 1000:.1f} ms, worst {max(latencies) * 1000:.1f} ms"
        )
    if args.throughput:
        with fleet(setups[0][1], "", workers=args.workers, logs=args.logs) as f:
            rate = throughput(f, args.throughput, args.logs)
        print(f"PostgreSQL store, no bus: {args.workers} workers, verified requests: {rate:.0f}/s")
    return 0 if worst_overall < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
