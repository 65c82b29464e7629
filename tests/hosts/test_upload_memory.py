"""An upload through a real server grows its peak memory by a few MiB at most, however large.

The server runs in a subprocess of its own, so its peak resident set (``VmHWM``
in ``/proc/<pid>/status``) is the server's alone. After two 1 MiB uploads warm
it up, a 20 MiB upload may raise the peak by at most :data:`ALLOWED`: the
middleware spools file parts (to disk past 1 MiB) and hands them on from there,
and the app's own form parser does the same.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.multipart_cases import BOUNDARY, TYPE

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)"
)

MIB = 1024 * 1024
#: How much a 20 MiB upload may raise the server's peak memory over a 1 MiB one.
ALLOWED = 5 * MIB
ROOT = Path(__file__).resolve().parents[2]
SERVERS = {
    "uvicorn": ["-m", "uvicorn", "tests.hosts.upload_app:app", "--lifespan", "off",
                "--log-level", "warning", "--host", "127.0.0.1", "--port"],
    "django-uvicorn": ["-m", "uvicorn", "tests.hosts.upload_django:application", "--lifespan",
                       "off", "--log-level", "warning", "--host", "127.0.0.1", "--port"],
    "waitress": ["-m", "waitress", "--host", "127.0.0.1", "--threads", "1",
                 "tests.hosts.upload_app:wsgi_app", "--port"],
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")  # pragma: no cover


@pytest.fixture(params=list(SERVERS), scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, int]]:
    port = _free_port()
    command = [sys.executable, *SERVERS[request.param], str(port)]
    if request.param == "waitress":  # waitress wants --port=N before the app
        command = [sys.executable, *SERVERS["waitress"][:-2], f"--port={port}",
                   SERVERS["waitress"][-2]]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield process.pid, port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait(10)


def _parts(size: int) -> tuple[list[bytes], int, str]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    block = bytes(range(256)) * 256  # 64 KiB, no CR LF dash run that looks like a delimiter
    count = size // len(block)
    digest = hashlib.sha256()
    for _ in range(count):
        digest.update(block)
    return (
        [head, *[block] * count, tail],
        len(head) + len(block) * count + len(tail),
        (digest.hexdigest()),
    )


def upload(port: int, size: int) -> None:
    chunks, length, digest = _parts(size)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {
            "Content-Type": TYPE,
            "Content-Length": str(length),
            "X-Ainisa-Widget-Id": "w_pro",
        }
        connection.request("POST", "/chat", body=iter(chunks), headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200, answer
    assert answer == {"file": [size, digest]}


def test_a_20_mib_upload_grows_peak_memory_by_a_few_mib_at_most(
    server: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    pid, port = server
    upload(port, MIB)
    upload(port, MIB)
    small = peak_rss(pid)
    upload(port, 20 * MIB)
    large = peak_rss(pid)
    with capsys.disabled():
        print(f"\npeak RSS after 1 MiB: {small / MIB:.1f} MiB, after 20 MiB: "
              f"{large / MIB:.1f} MiB (+{(large - small) / MIB:.2f} MiB)")  # fmt: skip
    assert large - small <= ALLOWED
