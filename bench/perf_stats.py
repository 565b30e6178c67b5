"""Numbers of the performance run: percentiles, and medians across repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

NAN = float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), interpolated between the two nearest ranks.

    NaN for no values, so an empty sample shows as missing instead of as a fast zero.
    """
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    if not values:
        return NAN
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_metrics(
    prefix: str, seconds: Sequence[float], scale: float = 1000.0
) -> dict[str, float]:
    """`{prefix}_p50`, `_p95`, `_p99`, `_max` (seconds times `scale`) and `_count`."""
    out = {f"{prefix}_p{p}": percentile(seconds, p) * scale for p in (50, 95, 99)}
    out[f"{prefix}_max"] = max(seconds) * scale if seconds else NAN
    out[f"{prefix}_count"] = float(len(seconds))
    return out


def rate(count: int, seconds: float) -> float:
    """Per second; NaN when no time passed, which only a run that did nothing has."""
    return count / seconds if seconds > 0 else NAN


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when either is missing or the denominator is zero."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return NAN
    return numerator / denominator


def median_metrics(runs: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per metric, the median over the runs that have it; runs where it is NaN are left out,
    so one failed repeat does not hide the others."""
    collected: dict[str, list[float]] = {}
    for run in runs:
        for key, value in run.items():
            collected.setdefault(key, [])
            if not math.isnan(value):
                collected[key].append(value)
    return {k: statistics.median(v) if v else NAN for k, v in collected.items()}


@dataclass
class Outcome:
    """What one run of one item measured, and what went wrong on the way."""

    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text:
            self.notes.append(text)
