"""What the ``on_decision`` hook and each exporter cost per request: ``python -m bench.hooks``.

Counts instructions per verified 200-byte request under callgrind (as
``python -m bench.callgrind`` does) for the middleware with no hook, a no-op hook,
the Prometheus hook and the OpenTelemetry hook (SDK meter provider, no span
recording), on the ASGI and WSGI adapters, and prints what each adds over no hook.
``--wall`` times the same variants in-process instead (interleaved; noisy on a
busy machine).

python -m bench.hooks                 # callgrind, ASGI and WSGI, 2,000 requests each
python -m bench.hooks --wall          # wall time in-process
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import callgrind, variants, workload
from .drivers import ASGIDriver, WSGIDriver
from .inprocess import measure
from .logs import quieted

NAMES = ("bare", "ours", *variants.HOOK_VARIANTS)
LABELS = {
    "ours": "no hook",
    "ours-hook": "no-op hook",
    "ours-prom": "Prometheus",
    "ours-otel": "OpenTelemetry",
}


def instructions(hosts: Sequence[str], count: int) -> dict[str, dict[str, float]]:
    """``{host: {variant: instructions per request}}`` at 200 bytes."""
    report = callgrind.run(hosts, [200], count, NAMES)
    out: dict[str, dict[str, float]] = {}
    for host, data in report.items():
        assert isinstance(data, dict)
        out[host] = {name: per[200] for name, per in data["instructions"].items()}
    return out


def wall(hosts: Sequence[str], reps: int) -> dict[str, dict[str, float]]:
    """``{host: {variant: median microseconds per request}}`` at 200 bytes."""
    request = workload.build("verified", 200)
    out: dict[str, dict[str, float]] = {}
    for host in hosts:
        build = variants.asgi_app if host == "asgi" else variants.wsgi_app
        drive = ASGIDriver if host == "asgi" else WSGIDriver
        drivers = {name: drive(build(name)) for name in NAMES}
        try:
            cell = measure(host, drivers, request, reps=reps, target=0.05)  # type: ignore[arg-type]
        finally:
            for driver in drivers.values():
                driver.close()
        out[host] = {name: series.median_us for name, series in cell.series.items()}
    return out


def table(results: dict[str, dict[str, float]], unit: str) -> str:
    lines = [f"| host | variant | {unit} per request | adds over no hook |", "|---|---|---|---|"]
    for host, per in results.items():
        base = per["ours"]
        for name in NAMES[1:]:
            added = per[name] - base
            share = added / (base - per["bare"])
            extra = "" if name == "ours" else f"{added:+,.1f} ({share:+.1%})"
            lines.append(f"| {host} | {LABELS[name]} | {per[name] - per['bare']:,.1f} | {extra} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hooks", description=__doc__)
    parser.add_argument("--hosts", default="asgi,wsgi")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--wall", action="store_true", help="time in-process instead")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args(argv)
    hosts = args.hosts.split(",")
    if args.wall:
        with quieted():
            print(table(wall(hosts, args.reps), "µs the middleware adds"))
        return 0
    try:
        print(table(instructions(hosts, args.count), "instructions the middleware adds"))
    except callgrind.CallgrindUnavailable as exc:
        print(f"bench.hooks: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
