"""``python -m bench``: run the benchmark and write its tables.

python -m bench                  # the full run (make bench), under ten minutes
python -m bench --smoke          # seconds: checks that everything runs, not speed
python -m bench --hosts asgi --no-network
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import inprocess, network, report, resolver_bench, variants, workload
from .drivers import CLOCK, ASGIDriver, WSGIDriver
from .logs import quieted

ROOT = Path(__file__).resolve().parent.parent
MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Profile:
    reps: int  # repetitions per cell
    headline_reps: int  # repetitions of the verified 200-byte cell
    target: float  # seconds per batch of the bare variant
    max_count: int  # most requests per batch
    sizes: tuple[int, ...]
    net_reps: int
    net_seconds: float
    lookups: int
    memory_entries: int


FULL = Profile(
    reps=7,
    headline_reps=31,
    target=0.02,
    max_count=20_000,
    sizes=workload.SIZES,
    net_reps=3,
    net_seconds=4,
    lookups=20_000,
    memory_entries=100_000,
)
SMOKE = Profile(
    reps=2,
    headline_reps=3,
    target=0.001,
    max_count=20,
    sizes=(200,),
    net_reps=1,
    net_seconds=1,
    lookups=200,
    memory_entries=1_000,
)


class OutcomeError(AssertionError):
    """A variant answered a request other than the way the table claims it does."""


def _check(cell: inprocess.Cell) -> None:
    """Refuse to report timings of a variant that did not do its job."""
    kind = cell.request.kind
    for name, (status, word) in cell.outcomes.items():
        if status >= 500 or status == 0:
            raise OutcomeError(f"{cell.host} {name} answered {status} to {cell.request.label}")
        if name in ("ours", "ours-sql", "floor"):
            if kind == "oversize":
                expected: tuple[int, str | None] = (413, "body_too_large")
            elif kind == "hostile":
                expected = (400, "malformed_body")
            else:
                expected = (200, workload.EXPECTED_USER[kind])
            if (status, word) != expected:
                raise OutcomeError(
                    f"{cell.host} {name} answered {status} {word} to {cell.request.label}, "
                    f"expected {expected}"
                )


def _drivers(host: str) -> dict[str, inprocess.Driver]:
    names = variants.VARIANTS[host]
    if host == "asgi":
        return {name: ASGIDriver(variants.asgi_app(name)) for name in names}
    if host == "wsgi":
        return {name: WSGIDriver(variants.wsgi_app(name)) for name in names}
    if host == "django":
        return {name: WSGIDriver(variants.django_app(name)) for name in names}
    raise ValueError(f"unknown host {host!r}")


def _requests(profile: Profile) -> list[workload.Request]:
    requests = [workload.build(kind, size) for size in profile.sizes for kind in workload.KINDS]
    requests.append(workload.oversize())
    return requests


def run_inprocess(hosts: list[str], profile: Profile, log: list[str]) -> list[inprocess.Cell]:
    cells = []
    for host in hosts:
        drivers = _drivers(host)
        try:
            for request in _requests(profile):
                headline = request.kind == "verified" and request.size == 200
                started = time.perf_counter()
                cell = inprocess.measure(
                    host,
                    drivers,
                    request,
                    reps=profile.headline_reps if headline else profile.reps,
                    target=profile.target,
                    max_count=profile.max_count,
                )
                _check(cell)
                cells.append(cell)
                log.append(
                    f"{host} {request.label}: {cell.count} requests x {len(cell.series)} variants "
                    f"x reps in {time.perf_counter() - started:.1f} s"
                )
                print(log[-1], file=sys.stderr)
        finally:
            for driver in drivers.values():
                driver.close()
    return cells


def one_parse_us(profile: Profile) -> dict[int, float]:
    """Microseconds of one plain ``json.loads`` of each verified body (the growth table's unit)."""
    import statistics

    out = {}
    for size in profile.sizes:
        body = workload.body_for("verified", size)
        count = max(1, int(profile.target / max(_time_loads(body, 3) / 3, 1e-9)))
        out[size] = statistics.median(_time_loads(body, count) / count for _ in range(profile.reps))
        out[size] *= 1e6
    return out


def _time_loads(body: bytes, count: int) -> float:
    start = CLOCK()
    for _ in range(count):
        json.loads(body)
    return CLOCK() - start


def build_report(
    hosts: list[str],
    cells: list[inprocess.Cell],
    net: list[network.NetResult],
    resolver_rows: list[resolver_bench.Row],
    parse_us: dict[int, float],
    profile: Profile,
    notes: list[str],
) -> str:
    lines = [
        f"Run of {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC "
        f"(`python -m bench`, {'smoke' if profile is SMOKE else 'full'} profile).",
        "",
        *report.machine(),
        f"- In process: {profile.reps} interleaved repetitions per request "
        f"({profile.headline_reps} for verified 200 B), batches sized so the bare app takes "
        f"about {profile.target * 1000:.0f} ms.",
        f"- Network: {profile.net_reps} interleaved `wrk` runs of {profile.net_seconds:g} s per "
        "variant, 16 connections, one uvicorn worker per variant.",
        *(f"- {note}" for note in notes),
        "",
        "### Targets (verified 200-byte chat request)",
        "",
        *report.summary(cells, net, hosts),
    ]
    for host in hosts:
        lines += [
            "",
            f"### {host}: in process, microseconds per request",
            "",
            *report.inprocess(cells, host),
            "",
            f"### {host}: what each variant answered",
            "",
            *report.answers(cells, host),
            "",
            f"### {host}: cost against body size",
            "",
            *report.growth(cells, parse_us, host),
        ]
        if any(r.host == host for r in net):
            lines += [
                "",
                f"### {host}: uvicorn under wrk, verified 200-byte request",
                "",
                *report.network(net, host),
            ]
    lines += ["", "### Resolver", "", *report.resolver(resolver_rows)]
    return "\n".join(lines) + "\n"


def update_docs(path: Path, text: str) -> None:
    """Replace the generated block of ``path`` between the bench markers."""
    page = path.read_text(encoding="utf-8")
    start = page.index(MARK_START) + len(MARK_START)
    end = page.index(MARK_END)
    path.write_text(page[:start] + "\n" + text + page[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: check it runs")
    parser.add_argument(
        "--hosts", default="asgi,wsgi,django", help="comma-separated: asgi, wsgi, django"
    )
    parser.add_argument("--no-network", action="store_true", help="skip uvicorn under wrk")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", type=Path, help="also write the tables into this page")
    args = parser.parse_args(argv)
    with quieted():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    profile = SMOKE if args.smoke else FULL
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    started = time.perf_counter()
    log: list[str] = []
    notes: list[str] = []

    cells = run_inprocess(hosts, profile, log)
    parse_us = one_parse_us(profile)

    net: list[network.NetResult] = []
    if args.no_network:
        notes.append("Network runs skipped (--no-network).")
    elif network.wrk_path() is None:
        notes.append("Network runs skipped: `wrk` is not installed (`make bench` installs it).")
    else:
        verified = workload.build("verified", 200)
        for host in hosts:
            if host not in variants.NET_VARIANTS:
                continue
            names = variants.NET_VARIANTS[host]
            net += network.run(
                host, names, verified, reps=profile.net_reps, seconds=profile.net_seconds
            )
            print(f"{host} network done", file=sys.stderr)

    stores = {"StaticResolver": resolver_bench.static_store}
    resolver_rows = resolver_bench.lookup_costs(stores, count=profile.lookups, reps=profile.reps)
    resolver_rows += resolver_bench.flood(
        resolver_bench.static_store, requests=min(10_000, profile.lookups * 50)
    )
    resolver_rows += resolver_bench.sql_rows(
        count=profile.lookups, reps=profile.reps, requests=min(10_000, profile.lookups * 50)
    )
    resolver_rows += resolver_bench.memory(profile.memory_entries)

    notes.append(f"Whole run took {time.perf_counter() - started:.0f} s.")
    text = build_report(hosts, cells, net, resolver_rows, parse_us, profile, notes)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    name = "smoke" if args.smoke else "report"
    (args.out / f"{name}-{stamp}.md").write_text(text, encoding="utf-8")
    (args.out / f"{name}-latest.md").write_text(text, encoding="utf-8")
    if args.docs is not None:
        update_docs(args.docs, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
