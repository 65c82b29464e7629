"""Run the fuzz targets for a bounded time each and report executions and crashes.

    python fuzz/run.py                  # every target, 180 s each, in parallel
    python fuzz/run.py --seconds 20     # the smoke run of ``make test``
    python fuzz/run.py --only asgi

Each target runs under libFuzzer (atheris) over the seed corpus in
``fuzz/corpus`` plus a work corpus in ``fuzz/corpus-work/<target>`` (not
committed), writing crashing inputs to ``fuzz/crashes/``. The last line says
how many executions and crashes each target had; the exit status is non-zero
if any target crashed or failed to run. A crash becomes a regression test.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
TARGETS = {"parser": "fuzz_parser.py", "asgi": "fuzz_asgi.py", "wsgi": "fuzz_wsgi.py"}
_RUNS = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(rb"Done (\d+) runs")


def start(name: str, seconds: int, crashes: Path) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """The target running, its output going to a file: targets run side by side,
    and one blocked on a full pipe while another is read would look slow."""
    work = HERE / "corpus-work" / name
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("PYTHONDEVMODE", None)  # dev mode's checks slow the fuzzer tenfold
    env["PYTHONPATH"] = str(HERE.parent)
    command = [
        sys.executable,
        str(HERE / TARGETS[name]),
        str(work),
        str(HERE / "corpus"),
        f"-max_total_time={seconds}",
        "-max_len=8192",
        "-timeout=20",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/{name}-",
    ]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - read and closed by _collect
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, log


def _collect(process: subprocess.Popen[bytes], log: IO[bytes]) -> bytes:
    process.wait()
    with log:
        log.seek(0)
        return log.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=180, help="time per target (default 180)")
    parser.add_argument("--only", choices=sorted(TARGETS), action="append")
    parser.add_argument("--serial", action="store_true", help="one target at a time")
    args = parser.parse_args(argv)
    names = args.only or list(TARGETS)
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    before = set(crashes.iterdir())
    started = time.monotonic()
    results: dict[str, tuple[int, int, int, bytes]] = {}
    running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}
    for name in names:
        running[name] = start(name, args.seconds, crashes)
        if args.serial:
            process, log = running.pop(name)
            results[name] = _result(name, process, _collect(process, log), before, crashes)
    for name, (process, log) in running.items():
        results[name] = _result(name, process, _collect(process, log), before, crashes)
    failed = False
    for name, (runs, found, code, output) in results.items():
        if found or (code != 0) or runs == 0:
            failed = True
            sys.stdout.write(output.decode("utf-8", "replace")[-4000:])
        print(f"fuzz {name}: {runs} executions, {found} crashes (exit {code})")
    total = sum(r[0] for r in results.values())
    crashed = sum(r[1] for r in results.values())
    elapsed = time.monotonic() - started
    print(f"fuzz: {total} executions, {crashed} crashes, {len(results)} targets in {elapsed:.0f} s")
    return 1 if failed else 0


def _result(
    name: str, process: subprocess.Popen[bytes], output: bytes, before: set[Path], crashes: Path
) -> tuple[int, int, int, bytes]:
    # A "slow-unit" file is an input that took over 10 s once (a stalled machine
    # does that too): reported, not a failure. A hang past -timeout is a "timeout-".
    new = [p for p in crashes.iterdir() if p not in before and p.name.startswith(name + "-")]
    found = [p for p in new if not p.name.startswith(f"{name}-slow-unit-")]
    for slow in sorted(set(new) - set(found)):
        print(f"fuzz {name}: a slow input (not a failure): {slow}")
    match = _RUNS.search(output) or _DONE.search(output)
    runs = int(match.group(1)) if match else 0
    return runs, len(found), process.returncode, output


if __name__ == "__main__":
    sys.exit(main())
