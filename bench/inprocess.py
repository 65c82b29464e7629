"""Interleaved in-process timing: A B C A B C ... so machine drift hits every variant alike."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Protocol

from .drivers import Outcome
from .stats import Series
from .workload import Request


class Driver(Protocol):
    def run(self, request: Request, count: int) -> float: ...
    def outcome(self, request: Request) -> Outcome: ...
    def close(self) -> None: ...


@dataclass
class Cell:
    """One request on one host: every variant's timings and answers."""

    host: str
    request: Request
    count: int
    series: dict[str, Series] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def _calibrate(driver: Driver, request: Request, target: float, max_count: int) -> int:
    probe = 3
    elapsed = driver.run(request, probe) / probe
    return max(1, min(max_count, int(target / max(elapsed, 1e-9))))


def measure(
    host: str,
    drivers: dict[str, Driver],
    request: Request,
    *,
    reps: int,
    target: float,
    max_count: int = 20_000,
) -> Cell:
    """Time ``request`` on every driver, interleaved, ``reps`` times.

    ``target`` is the wall time a batch of the bare variant should take; every
    variant runs the same number of requests per batch.
    """
    for driver in drivers.values():
        driver.run(request, 2)  # warm caches (the resolver's included)
    count = _calibrate(drivers["bare"], request, target, max_count)
    cell = Cell(host=host, request=request, count=count)
    for name, driver in drivers.items():
        cell.outcomes[name] = driver.outcome(request)
        cell.series[name] = Series()
    # One full collection, then everything alive moves out of the collector's
    # reach: each batch pays only for the garbage it makes itself.
    gc.collect()
    gc.freeze()
    try:
        for _ in range(reps):
            for name, driver in drivers.items():
                cell.series[name].values.append(driver.run(request, count) / count)
    finally:
        gc.unfreeze()
    return cell
