"""Markdown tables from one run: every figure a median over interleaved repetitions."""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata

from .inprocess import Cell
from .network import NetResult
from .resolver_bench import Row
from .stats import added_ratio, paired_added_us, paired_ratio

PEERS = ("ours", "ours-sql", "floor", "naive")


def _fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> list[str]:
    packages = ", ".join(
        f"{name} {_version(name)}"
        for name in ("starlette", "uvicorn", "uvloop", "httptools", "werkzeug", "django")
    )
    return [
        f"- Machine: {os.cpu_count()} cores, {_cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"- Python {sys.version.split()[0]} ({platform.python_implementation()}); {packages}",
    ]


def variants_of(cells: Sequence[Cell]) -> list[str]:
    return [name for name in PEERS if cells and name in cells[0].series]


def summary(cells: Sequence[Cell], net: Sequence[NetResult], hosts: Sequence[str]) -> list[str]:
    rows = []
    for host in hosts:
        cell = next(
            (c for c in cells if c.host == host and c.request.label == "verified 200 B"), None
        )
        ratio = ours_added = floor_added = float("nan")
        if cell is not None and "floor" in cell.series:
            bare = cell.series["bare"]
            ours_added = paired_added_us(cell.series["ours"], bare)
            floor_added = paired_added_us(cell.series["floor"], bare)
            ratio = added_ratio(cell.series["ours"], cell.series["floor"], bare)
        by_name = {r.variant: r for r in net if r.host == host}
        rps = float("nan")
        floor_rps = float("nan")
        if "bare" in by_name and "ours" in by_name:
            rps = by_name["ours"].median_rps / by_name["bare"].median_rps
        if "bare" in by_name and "floor" in by_name:
            floor_rps = by_name["floor"].median_rps / by_name["bare"].median_rps
        rows.append(
            [
                host,
                _fmt(ours_added),
                _fmt(floor_added),
                _fmt(ratio, 2) + ("" if math.isnan(ratio) else (" ✓" if ratio <= 1.3 else " ✗")),
                _fmt(100 * rps, 0) + ("" if math.isnan(rps) else (" ✓" if rps >= 0.85 else " ✗")),
                _fmt(100 * floor_rps, 0),
            ]
        )
    return _table(
        [
            "host",
            "ours: us added",
            "floor: us added",
            "ours / floor (target <= 1.3)",
            "ours, % of bare rps (target >= 85)",
            "floor, % of bare rps",
        ],
        rows,
    )


def inprocess(cells: Sequence[Cell], host: str) -> list[str]:
    mine = [c for c in cells if c.host == host]
    names = variants_of(mine)
    header = ["request", "bare us"]
    header += [f"{n} us" for n in names]
    header += [f"{n} +us" for n in names]
    header += [f"{n} x bare" for n in names]
    rows = []
    for cell in mine:
        bare = cell.series["bare"]
        row = [cell.request.label, _fmt(bare.median_us)]
        row += [_fmt(cell.series[n].median_us) for n in names]
        row += [_fmt(paired_added_us(cell.series[n], bare)) for n in names]
        row += [_fmt(paired_ratio(cell.series[n], bare), 2) for n in names]
        rows.append(row)
    return _table(header, rows)


def answers(cells: Sequence[Cell], host: str) -> list[str]:
    mine = [
        c
        for c in cells
        if c.host == host and (c.request.size <= 200 or c.request.kind == "oversize")
    ]
    names = ["bare", *variants_of(mine)]
    rows = [
        [c.request.label, *(f"{c.outcomes[n][0]} {c.outcomes[n][1] or ''}".strip() for n in names)]
        for c in mine
    ]
    return _table(["request", *names], rows)


def network(net: Sequence[NetResult], host: str) -> list[str]:
    mine = [r for r in net if r.host == host]
    bare = next((r for r in mine if r.variant == "bare"), None)
    rows = []
    for result in mine:
        ratio = result.median_rps / bare.median_rps if bare else float("nan")
        runs = ", ".join(f"{v:,.0f}" for v in result.rps)
        rows.append(
            [
                result.variant,
                _fmt(result.median_rps, 0),
                _fmt(100 * ratio, 0) + " %",
                runs,
                str(result.errors),
                result.answer,
            ]
        )
    return _table(
        ["variant", "median req/s", "of bare", "runs", "non-2xx or socket errors", "answer"],
        rows,
    )


def resolver(rows: Sequence[Row]) -> list[str]:
    return _table(
        ["what", "median", "unit", "note"],
        [[r.what, _fmt(r.value, 2), r.unit, r.note] for r in rows],
    )


def growth(cells: Sequence[Cell], parse_us: dict[int, float], host: str) -> list[str]:
    rows = []
    for cell in cells:
        if cell.host != host or cell.request.kind != "verified":
            continue
        added = paired_added_us(cell.series["ours"], cell.series["bare"])
        one = parse_us.get(cell.request.size, float("nan"))
        rows.append(
            [
                cell.request.label,
                _fmt(added),
                _fmt(one),
                _fmt(added / one, 2) if one else "n/a",
            ]
        )
    return _table(
        ["request", "ours +us", "one json.loads of the body, us", "ours added / one parse"],
        rows,
    )
