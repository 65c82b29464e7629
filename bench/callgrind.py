"""Instructions per request, counted by valgrind's callgrind: ``python -m bench.callgrind``.

Wall-clock time on a shared machine swings threefold; instruction counts do
not. One process per host runs under ``valgrind --tool=callgrind``; for each
variant it warms up, zeroes the counters, replays the verified 200-byte request
``--count`` times and dumps the counters (through callgrind's client requests,
reached by a three-line C shim built with the system compiler). "Added" is a
variant's instructions per request minus the bare app's, the same subtraction
the timed tables make.

The counters are zeroed and dumped from the request's own thread: work done in
another thread (the ASGI adapter parses bodies over 16 KiB in a worker thread)
is not attributed to that section as work on the loop is. For those rows,
compare whole-program counts of the same requests with and without the thread
(``docs/performance.md`` gives them).

python -m bench.callgrind                       # ASGI and WSGI, 2,000 requests each
python -m bench.callgrind --hosts wsgi --count 500 --sizes 200,1000000
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import variants, workload
from .drivers import ASGIDriver, WSGIDriver
from .logs import quieted

#: The variants counted per host (the SQL variant answers from the same cache).
COUNTED = {
    "asgi": ("bare", "ours", "floor", "naive"),
    "wsgi": ("bare", "ours", "floor", "naive"),
    "django": ("bare", "ours", "floor", "naive"),
}
#: Requests replayed before counting, fewer for large bodies (each is costly under valgrind).
WARM_UP = 200


def warm_up(size: int) -> int:
    return max(3, min(WARM_UP, 200_000 // size))


def count_for(size: int, count: int) -> int:
    """Requests counted at ``size``: ``count``, fewer for large bodies (the total is alike)."""
    return max(3, min(count, 4_000_000 // size))


_SHIM = r"""
#include <valgrind/callgrind.h>
void ainisa_zero(void) { CALLGRIND_ZERO_STATS; }
void ainisa_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


class CallgrindUnavailable(RuntimeError):
    """valgrind, its headers or a C compiler is missing."""


def build_shim(folder: Path) -> Path:
    """Compile the client-request shim; the header ships with Debian's valgrind."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or shutil.which("valgrind") is None:
        raise CallgrindUnavailable("needs valgrind and a C compiler (apt-get install valgrind gcc)")
    source = folder / "shim.c"
    source.write_text(_SHIM)
    library = folder / "shim.so"
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CallgrindUnavailable(f"could not build the callgrind shim: {done.stderr.strip()}")
    return library


def _child(host: str, names: Sequence[str], sizes: Sequence[int], count: int, shim: str) -> None:
    """Runs under valgrind: one dump per (variant, size), named ``variant@size``."""
    lib = ctypes.CDLL(shim)
    lib.ainisa_dump.argtypes = [ctypes.c_char_p]
    for name in names:
        app = variants.asgi_app(name) if host == "asgi" else None
        if host == "wsgi":
            app = variants.wsgi_app(name)
        elif host == "django":
            app = variants.django_app(name)
        driver = ASGIDriver(app) if host == "asgi" else WSGIDriver(app)
        try:
            for size in sizes:
                request = workload.build("verified", size)
                driver.run(request, warm_up(size))
                lib.ainisa_zero()
                driver.run(request, count_for(size, count))
                lib.ainisa_dump(f"{name}@{size}".encode())
        finally:
            driver.close()


_TRIGGER = re.compile(r"^desc: Trigger: Client Request: (\S+)", re.M)
_TOTALS = re.compile(r"^(?:totals|summary): (\d+)", re.M)


def count_host(
    host: str,
    sizes: Sequence[int],
    count: int,
    folder: Path,
    shim: Path,
    names: Sequence[str] | None = None,
) -> dict[str, dict[int, float]]:
    """Instructions per request: ``{variant: {size: instructions}}``."""
    out = folder / f"{host}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=yes",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.callgrind",
        "--child",
        host,
        "--sizes",
        ",".join(map(str, sizes)),
        "--count",
        str(count),
        "--shim",
        str(shim),
        "--variants",
        ",".join(names or COUNTED[host]),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    if host == "django":
        env["DJANGO_SETTINGS_MODULE"] = "bench.django_site"
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"callgrind run for {host} failed:\n{done.stderr[-2000:]}")
    result: dict[str, dict[int, float]] = {}
    for dump in sorted(folder.glob(f"{host}.out*")):
        text = dump.read_text(errors="replace")
        trigger, totals = _TRIGGER.search(text), _TOTALS.search(text)
        if trigger is None or totals is None:
            continue
        name, _, size = trigger.group(1).partition("@")
        result.setdefault(name, {})[int(size)] = int(totals.group(1)) / count_for(int(size), count)
    return result


def ratios(counts: dict[str, dict[int, float]], size: int = 200) -> dict[str, float]:
    """Instructions added per request by each variant, and ours against the floor and naive."""
    bare = counts["bare"][size]
    added = {name: per[size] - bare for name, per in counts.items() if name != "bare"}
    out = {f"{name} added": value for name, value in added.items()}
    if added.get("floor"):
        out["ours / floor"] = added["ours"] / added["floor"]
    if added.get("naive"):
        out["ours / naive"] = added["ours"] / added["naive"]
    return out


def run(
    hosts: Sequence[str], sizes: Sequence[int], count: int, names: Sequence[str] | None = None
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ainisa-callgrind-") as tmp:
        folder = Path(tmp)
        shim = build_shim(folder)
        report: dict[str, object] = {}
        for host in hosts:
            counts = count_host(host, sizes, count, folder, shim, names)
            if names is not None:  # a chosen set of variants: the counts alone
                report[host] = {"instructions": counts}
                continue
            report[host] = {
                "instructions": counts,
                **{f"{size} B": ratios(counts, size) for size in sizes},
            }
        return report


def format_report(report: dict[str, object], sizes: Sequence[int]) -> str:
    lines = [
        "| host | size | bare | ours adds | floor adds | naive adds "
        "| ours / floor | ours / naive |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for host, data in report.items():
        assert isinstance(data, dict)
        counts = data["instructions"]
        for size in sizes:
            r = data[f"{size} B"]
            lines.append(
                f"| {host} | {size:,} B | {counts['bare'][size]:,.0f} "
                f"| {r['ours added']:,.0f} | {r['floor added']:,.0f} | {r['naive added']:,.0f} "
                f"| {r['ours / floor']:.2f}x | {r['ours / naive']:.2f}x |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind", description=__doc__)
    parser.add_argument("--hosts", default="asgi,wsgi")
    parser.add_argument("--sizes", default="200")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--docs", type=Path, help="also write the table into this page")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--shim", help=argparse.SUPPRESS)
    parser.add_argument("--variants", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        with quieted():
            names = args.variants.split(",") if args.variants else COUNTED[args.child]
            _child(args.child, names, sizes, args.count, args.shim)
        return 0
    try:
        report = run(args.hosts.split(","), sizes, args.count)
    except CallgrindUnavailable as exc:
        print(f"bench.callgrind: {exc}", file=sys.stderr)
        return 2
    table = format_report(report, sizes)
    print(json.dumps(report, indent=2) if args.json else table)
    if args.docs is not None:
        write_docs(args.docs, table)
    return 0


MARK_START = "<!-- callgrind:start -->"
MARK_END = "<!-- callgrind:end -->"


def write_docs(path: Path, table: str) -> None:
    """Put ``table`` between the page's callgrind markers (the rest of the page is kept)."""
    text = path.read_text()
    start, end = text.index(MARK_START) + len(MARK_START), text.index(MARK_END)
    path.write_text(text[:start] + "\n" + table + "\n" + text[end:])


if __name__ == "__main__":
    raise SystemExit(main())
