"""Medians over interleaved repetitions, and the ratios the report quotes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Series:
    """Per-request seconds of one variant, one value per repetition, in run order."""

    values: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.values) * 1e6


def paired_added_us(variant: Series, bare: Series) -> float:
    """Median over repetitions of (variant - bare): drift between repetitions cancels."""
    return statistics.median(v - b for v, b in zip(variant.values, bare.values, strict=True)) * 1e6


def paired_ratio(variant: Series, bare: Series) -> float:
    """Median over repetitions of variant / bare."""
    return statistics.median(v / b for v, b in zip(variant.values, bare.values, strict=True))


def added_ratio(ours: Series, floor: Series, bare: Series) -> float:
    """Median over repetitions of (ours - bare) / (floor - bare): the 1.3x target."""
    ratios = []
    for o, f, b in zip(ours.values, floor.values, bare.values, strict=True):
        if f - b > 0:
            ratios.append((o - b) / (f - b))
    return statistics.median(ratios) if ratios else float("nan")
