"""What an alert rule measures over a window, with its sample size and an interval or a test (scipy.stats).

Counted the Overview's way (evalapp.overview): a judge's verdicts on what was traced in the window (traces by their
start, conversations by their last turn), so an alert and the chart it points at agree. An experiment's rules
share their tallies: one raw tally per distinct window, whatever the number of rules."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q

from evalapp.models import DROP_KINDS, JUDGE_KINDS, AlertKind, AlertRule
from evalapp.overview.aggregates import exact_percentiles, raw_tallies
from evalapp.overview.compute import wilson_interval
from evalapp.overview.ranges import TimeRange
from evalapp.overview.sql import window_plans
from evalapp.overview.tallies import JudgeTally, Tally
from judges.models import JudgeVersion, Scope
from traces.json_sql import JSONNumber
from traces.models import Assessment, AssessmentSource, Experiment

Window = tuple[datetime, datetime]


@dataclass
class Figures:
    """One check of one rule. `value` is None when the window held nothing to measure."""

    value: float | None = None
    n: int = 0
    low: float | None = None  # the 95% interval of `value` (Wilson for rates, t for means)
    high: float | None = None
    previous: float | None = None  # drop kinds: the window before
    previous_n: int = 0
    p_value: float | None = None  # drop kinds: the one-sided test's
    versions_changed: list[int] = field(default_factory=list)  # judge versions made within the compared windows
    window_start: str = ""
    window_end: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def windows(rule: AlertRule, now: datetime) -> tuple[Window, Window | None]:
    """The rule's window ending now, and for a drop rule the window before it."""
    length = timedelta(minutes=rule.window_minutes)
    current = (now - length, now)
    return current, ((now - 2 * length, now - length) if rule.kind in DROP_KINDS else None)


class Tallies:
    """Tallies of one experiment, computed once per distinct window and reused by every rule that asks."""

    def __init__(self, experiment: Experiment, rules: list[AlertRule]):
        self.experiment = experiment
        judges = {rule.judge for rule in rules if rule.judge_id}
        self.names = {scope: sorted({judge.name for judge in judges if judge.scope == scope}) for scope in (Scope.TRACE, Scope.SESSION)}
        self.traces = any(rule.kind not in JUDGE_KINDS for rule in rules)
        self._cache: dict[Window, Tally] = {}

    def total(self, window: Window) -> Tally:
        if window not in self._cache:
            total = Tally()
            with window_plans():
                found = raw_tallies(self.experiment, [window], "day", names=self.names, categorical={}, histogram=False, traces=self.traces)
            for tally in found.values():
                total.add(tally)
            self._cache[window] = total
        return self._cache[window]

    def judge(self, rule: AlertRule, window: Window) -> JudgeTally:
        return self.total(window).judges.get((rule.judge.scope, rule.judge.name)) or JudgeTally()


def _rate(part: float, whole: float) -> Figures:
    figures = Figures(value=(part / whole) if whole else None, n=int(whole))
    if interval := wilson_interval(int(part), int(whole)):
        figures.low, figures.high = interval
    return figures


def _numbers(rule: AlertRule, window: Window) -> list[float]:
    """The judge's valid numeric verdicts in the window (a mean's interval and test need the values, not a sum)."""
    judge = rule.judge
    target, moment = ("trace__experiment", "trace__started_at") if judge.scope == Scope.TRACE else ("session__experiment", "session__last_trace_at")
    production = Q(trace__evaluation_run__isnull=True) if judge.scope == Scope.TRACE else Q()  # runs' traces: note 40
    rows = (
        Assessment.objects.filter(
            Q(**{target: rule.experiment_id, f"{moment}__gte": window[0], f"{moment}__lt": window[1]}),
            production,
            name=judge.name, source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code="",
        )
        .annotate(number=JSONNumber("value"))
        .values_list("number", flat=True)
    )
    return [float(value) for value in rows if value is not None]


def _mean(values: list[float]) -> Figures:
    from scipy import stats  # loaded by the worker's alert check, not by web processes at start

    figures = Figures(value=(sum(values) / len(values)) if values else None, n=len(values))
    if len(values) >= 2 and len(set(values)) > 1:
        low, high = stats.t.interval(0.95, len(values) - 1, loc=figures.value, scale=stats.sem(values))
        figures.low, figures.high = round(float(low), 4), round(float(high), 4)
    return figures


def _pass_rate_drop(tallies: Tallies, rule: AlertRule, current: Window, previous: Window) -> Figures:
    from scipy import stats

    now_counts, before_counts = tallies.judge(rule, current).counts, tallies.judge(rule, previous).counts
    figures = _rate(now_counts["passes"], now_counts["yes_no"])
    figures.previous = (before_counts["passes"] / before_counts["yes_no"]) if before_counts["yes_no"] else None
    figures.previous_n = int(before_counts["yes_no"])
    if figures.n and figures.previous_n:
        table = [
            [int(before_counts["passes"]), int(before_counts["yes_no"] - before_counts["passes"])],
            [int(now_counts["passes"]), int(now_counts["yes_no"] - now_counts["passes"])],
        ]
        # One-sided: were passes likelier before than now?
        figures.p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    return figures


def _mean_drop(rule: AlertRule, current: Window, previous: Window) -> Figures:
    from scipy import stats

    now_values, before_values = _numbers(rule, current), _numbers(rule, previous)
    figures = _mean(now_values)
    figures.previous = (sum(before_values) / len(before_values)) if before_values else None
    figures.previous_n = len(before_values)
    if len(now_values) >= 2 and len(before_values) >= 2:
        result = stats.ttest_ind(now_values, before_values, equal_var=False, alternative="less")  # Welch, one-sided
        figures.p_value = None if math.isnan(result.pvalue) else float(result.pvalue)
    return figures


def measure(tallies: Tallies, rule: AlertRule, now: datetime) -> Figures:
    current, previous = windows(rule, now)
    kind = rule.kind
    if kind == AlertKind.PASS_RATE_BELOW:
        counts = tallies.judge(rule, current).counts
        figures = _rate(counts["passes"], counts["yes_no"])
    elif kind == AlertKind.MEAN_BELOW:
        figures = _mean(_numbers(rule, current))
    elif kind == AlertKind.PASS_RATE_DROP:
        figures = _pass_rate_drop(tallies, rule, current, previous)
    elif kind == AlertKind.MEAN_DROP:
        figures = _mean_drop(rule, current, previous)
    elif kind == AlertKind.JUDGE_ERROR_RATE_ABOVE:
        counts = tallies.judge(rule, current).counts
        figures = _rate(counts["errors"], counts["judged"] + counts["errors"])
    elif kind == AlertKind.JUDGE_COST_ABOVE:
        tally = tallies.judge(rule, current)
        per_day = float(tally.cost) * (24 * 60 / rule.window_minutes)
        figures = Figures(value=round(per_day, 6), n=int(tally.counts["judged"] + tally.counts["errors"]))
    elif kind == AlertKind.TRACE_ERROR_RATE_ABOVE:
        total = tallies.total(current)
        figures = _rate(total.errors, total.traces)
    elif kind == AlertKind.LATENCY_P95_ABOVE:
        p95 = exact_percentiles(rule.experiment, TimeRange(current[0], current[1], "day"))[None]["p95_ms"]
        figures = Figures(value=p95, n=tallies.total(current).traces)
    else:  # pragma: no cover - the model's choices are the kinds above
        raise ValueError(f"unknown alert kind {kind!r}")
    figures.window_start, figures.window_end = current[0].isoformat(), current[1].isoformat()
    return figures


def versions_made(experiment: Experiment, since: datetime) -> dict[int, list[tuple[datetime, int]]]:
    """Per judge id: the versions (after the first) made since `since`, for the "judge changed" label."""
    found: dict[int, list[tuple[datetime, int]]] = {}
    for judge_id, created_at, version in JudgeVersion.objects.filter(
        judge__experiment=experiment, version__gt=1, created_at__gte=since
    ).values_list("judge_id", "created_at", "version"):
        found.setdefault(judge_id, []).append((created_at, version))
    return found


def changed_within(made: dict[int, list[tuple[datetime, int]]], rule: AlertRule, start: datetime) -> list[int]:
    return sorted(version for created_at, version in made.get(rule.judge_id, []) if created_at >= start) if rule.judge_id else []


def earliest_start(rules: Iterable[AlertRule], now: datetime) -> datetime:
    return min((windows(rule, now)[1] or windows(rule, now)[0])[0] for rule in rules)
