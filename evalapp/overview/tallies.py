"""Tallies: what a bucket holds, as sums that add up (a day is the sum of its hours), and latency percentiles
from those sums. Plain Python: the database fills them (evalapp.overview.aggregates), the rollups store and add
them (evalapp.overview.rollups)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

PERCENTILES = {"p50_ms": 0.5, "p95_ms": 0.95}
# Latency histograms (day buckets): bins 5% wide on a log scale, numbered floor(log_1.05(duration_ms)).
HISTOGRAM_BASE = 1.05
BIN_SCALE = 1 / math.log(HISTOGRAM_BASE)
_COUNTERS = ("judged", "errors", "not_applicable", "passes", "yes_no", "number_sum", "numbers", "human", "human_passes", "human_yes_no")
Intervals = Sequence[tuple[datetime, datetime]]


@dataclass
class JudgeTally:
    """One assessment name's sums, in one scope and one bucket."""

    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    categories: dict[str, int] = field(default_factory=dict)
    cost: Decimal = Decimal(0)

    def add(self, other: JudgeTally) -> None:
        for counter, value in other.counts.items():
            self.counts[counter] += value
        for name, count in other.categories.items():
            self.categories[name] = self.categories.get(name, 0) + count
        self.cost += other.cost


@dataclass
class Tally:
    """What one bucket holds (a minute, an hour, a day, or the part of an hour inside the range) as sums, so a
    day is the sum of its hours. `durations` is the latency histogram: bin (see DurationBin) → [traces, total ms];
    `judges` is keyed by (scope, assessment name)."""

    traces: int = 0
    errors: int = 0
    tokens: int = 0
    durations: dict[int, list[int]] = field(default_factory=dict)
    judges: dict[tuple[str, str], JudgeTally] = field(default_factory=dict)

    def judge(self, scope: str, name: str) -> JudgeTally:
        found = self.judges.get((scope, name))
        if found is None:
            found = self.judges[(scope, name)] = JudgeTally()
        return found

    def add(self, other: Tally) -> None:
        self.traces += other.traces
        self.errors += other.errors
        self.tokens += other.tokens
        add_durations(self.durations, other.durations.items())
        for (scope, name), judge in other.judges.items():
            self.judge(scope, name).add(judge)


def add_durations(into: dict[int, list[int]], bins: Iterable[tuple[int, Sequence[int]]]) -> None:
    for bin_, (count, total_ms) in bins:
        entry = into.get(bin_)
        if entry is None:
            into[bin_] = [count, total_ms]
        else:
            entry[0] += count
            entry[1] += total_ms


def duration_bin(duration_ms: float) -> int:
    """DurationBin in Python."""
    return -1 if duration_ms < 1 else math.floor(math.log(duration_ms) * BIN_SCALE)


def histogram_percentiles(durations: Mapping[int, Sequence[int]]) -> dict[str, float | None]:
    """percentile_cont over a latency histogram, taking each bin's traces at the bin's mean duration: within
    the bin width (5%) of the exact figure, and exact where each bin holds a single duration."""
    ordered = sorted(durations.items())
    size = sum(count for _, (count, _total) in ordered)
    if not size:
        return dict.fromkeys(PERCENTILES)

    def value_at(rank: int) -> float:
        seen = 0
        for _, (count, total_ms) in ordered:
            seen += count
            if rank < seen:
                return total_ms / count
        raise AssertionError("rank beyond the histogram")

    result: dict[str, float | None] = {}
    for name, fraction in PERCENTILES.items():
        position = fraction * (size - 1)
        low, high = math.floor(position), math.ceil(position)
        result[name] = interpolate({low: value_at(low), high: value_at(high)}, size, fraction)
    return result


def interpolate(ranked: Mapping[int, float] | Sequence[float], size: int, fraction: float) -> float | None:
    """percentile_cont over `size` sorted values, given (at least) those at the two positions around it."""
    if size == 0:
        return None
    position = fraction * (size - 1)
    low, high = math.floor(position), math.ceil(position)
    return ranked[low] + (ranked[high] - ranked[low]) * (position - low)
