"""A bounded soak: a real server, the SQL store, thousands of mixed requests.

    python -m tests.hardening.soak --server asgi --requests 3000 --concurrency 32
    python -m tests.hardening.soak --server wsgi

Starts uvicorn (one worker) or waitress on 127.0.0.1 serving a chat app behind
the middleware and ``SQLResolver`` on a fresh SQLite file, sends a fixed number
of mixed requests (signed, tampered, anonymous and generated hostile ones) at
the given concurrency, stops the server, and reports: answers by status, 500s,
problems the app itself saw (a hash or unverified identity field reaching it,
see ``soak_apps.py``) and the server's RSS after warm-up and at the end. It
stops by itself: every request has a timeout and the run a deadline. Exit
status 1 on any 500, any problem, or RSS growth past ``--max-rss-growth-mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from ainisa_middleware import user_hash
from ainisa_middleware.stores.sql import SQLStore, generate_master_key

from .strategies import (
    SECRET_NEW,
    SECRET_OLD,
    SECRET_OTHER,
    RandomChooser,
    Request,
    build_request,
)

ROOT = Path(__file__).resolve().parents[2]


def make_store(path: Path, master_key: str) -> str:
    url = f"sqlite:///{path}"
    store = SQLStore(url, master_key=master_key)
    store.init()
    store.add_business("biz_pro", plan="pro")
    store.rotate_secret("biz_pro", value=SECRET_OLD)
    store.rotate_secret("biz_pro", value=SECRET_NEW)  # the old one stays valid (grace)
    store.add_widget("w_pro", business_id="biz_pro")
    store.add_business("biz_basic", plan="free")
    store.rotate_secret("biz_basic", value=SECRET_NEW)
    store.add_widget("w_basic", business_id="biz_basic")
    store.add_business("biz_strict", plan="pro", require_identity=True)
    store.rotate_secret("biz_strict", value=SECRET_OTHER)
    store.add_widget("w_strict", business_id="biz_strict")
    store.add_business("biz_empty", plan="pro")
    store.add_widget("w_empty", business_id="biz_empty")
    store.close()
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(kind: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if kind == "asgi":
        command = [
            sys.executable, "-m", "uvicorn", "tests.hardening.soak_apps:asgi_app",
            "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "waitress", "--host=127.0.0.1", f"--port={port}",
            "--threads=8", "tests.hardening.soak_apps:wsgi_app",
        ]  # fmt: skip
    # The server's own output goes to a file: a pipe nobody reads fills up (64 KiB
    # of log lines) and blocks the server mid-request.
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=sink, stdout=sink)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start in 30 s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def mixed_request(rng: random.Random) -> tuple[str, Request]:
    """One request of the soak's mix: signed, tampered, anonymous or hostile."""
    roll = rng.random()
    uid = str(rng.randint(1, 10**6))
    if roll < 0.7:
        kind = "signed" if roll < 0.35 else "tampered" if roll < 0.5 else "anonymous"
        user: dict[str, object] = {}
        if kind == "signed":
            user = {"user_id": uid, "user_hash": user_hash(SECRET_NEW, uid), "firstname": "Ann"}
        elif kind == "tampered":
            user = {"user_id": uid + "1", "user_hash": user_hash(SECRET_NEW, uid)}
        body = json.dumps({"message": "hello", "user": user}).encode()
        widget = rng.choice(["w_pro", "w_pro", "w_pro", "w_basic", "w_strict", "w_unknown"])
        headers = [(b"content-type", b"application/json"), (b"x-ainisa-widget-id", widget.encode())]
        return kind, Request("POST", "/chat", headers, b"", body, [body])
    req = build_request(RandomChooser(rng))
    return "generated", req


async def send_all(
    port: int, total: int, concurrency: int, seed: int, pid: int, deadline: float
) -> tuple[Counter[str], Counter[str], int, int]:
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    warm_rss = 0
    done = 0
    rng = random.Random(seed)
    plan = [mixed_request(rng) for _ in range(total)]
    semaphore = asyncio.Semaphore(concurrency)
    timeout = httpx.Timeout(10.0)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=timeout, limits=limits
    ) as client:

        async def one(kind: str, req: Request) -> None:
            nonlocal done, warm_rss
            headers = [
                (n, v)
                for n, v in req.headers
                if n.lower() not in (b"content-length", b"transfer-encoding", b"host")
            ]
            async with semaphore:
                if time.monotonic() > deadline:
                    statuses["skipped (deadline)"] += 1
                    return
                try:
                    url = httpx.URL(req.path, query=req.query)
                    response = await client.request(
                        req.method, url, headers=headers, content=req.body
                    )
                except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeError, ValueError):
                    statuses["unsendable"] += 1
                    return
                statuses[str(response.status_code)] += 1
                kinds[kind] += 1
                done += 1
                if done == total // 5:
                    warm_rss = rss_kib(pid)

        await asyncio.gather(*(one(kind, req) for kind, req in plan))
    return statuses, kinds, warm_rss, rss_kib(pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["asgi", "wsgi"], default="asgi")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=240.0)
    parser.add_argument("--max-rss-growth-mb", type=float, default=32.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ainisa-soak-") as tmp:
        key = generate_master_key()  # secrets encrypted at rest, as in production
        db = make_store(Path(tmp) / "soak.db", key)
        log = Path(tmp) / "seen.jsonl"
        env = dict(os.environ, AINISA_SOAK_DB=db, AINISA_SOAK_LOG=str(log), AINISA_MASTER_KEY=key)
        env.pop("PYTHONDEVMODE", None)
        env["PYTHONPATH"] = str(ROOT)
        port = free_port()
        started = time.monotonic()
        server = start_server(args.server, port, env, Path(tmp) / "server.log")
        try:
            statuses, kinds, warm, end = asyncio.run(
                send_all(
                    port,
                    args.requests,
                    args.concurrency,
                    args.seed,
                    server.pid,
                    started + args.max_seconds,
                )
            )
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        elapsed = time.monotonic() - started
        lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    seen_problems = Counter(p for line in lines for p in line["problems"])
    seen_status = Counter(line["status"] for line in lines)
    five_hundreds = sum(n for code, n in statuses.items() if code == "500")
    growth_mb = (end - warm) / 1024
    print(
        f"soak {args.server}: {sum(kinds.values())} requests in {elapsed:.1f} s at concurrency "
        f"{args.concurrency}; answers {dict(sorted(statuses.items()))}; sent {dict(kinds)}"
    )
    print(f"soak {args.server}: app saw {len(lines)} requests, statuses {dict(seen_status)}")
    print(
        f"soak {args.server}: 500s={five_hundreds} leaks={sum(seen_problems.values())} "
        f"{dict(seen_problems)}; RSS after warm-up {warm / 1024:.1f} MiB, at end "
        f"{end / 1024:.1f} MiB (growth {growth_mb:+.1f} MiB)"
    )
    failed = (
        five_hundreds > 0
        or seen_problems
        or growth_mb > args.max_rss_growth_mb
        or statuses["skipped (deadline)"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
