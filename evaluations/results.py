"""What an evaluation run found: per-judge metrics with their 95% intervals and n, the quality gates' outcome,
judging progress (`summarize`); each row with its verdicts (`row_results`); and two runs compared row by row with
a paired test per judge and every regression and improvement listed (`compare`). Design note 41.

A run's verdicts are the evaluations of its job (`Evaluation.job == run.id`, judges.manual) and their assessments.
Counts, sums and progress are aggregated in SQL, one query for any number of runs and judges; only the numbers
of numeric judges are read back, for the mean's t interval. Pass rates carry a Wilson interval
(judges.agreement.wilson_interval: scipy.stats.binomtest).

Yes/no verdicts pass when true; numeric verdicts have a mean; categorical and text verdicts are counted only. A
verdict that is "not applicable" (a built-in that needs expectations the row lacks) is neither judged nor an error.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

# The rows and the comparison live in their own modules; this one is the interface the pages, the API and the
# runs' code import (`from evaluations.results import summarize, row_results, compare`).
from evaluations.comparison import (
    CompareError,
    Comparison,
    JudgeChange,
    RowChange,
    Side,
    check_comparable,
    comparable_runs,
    compare,
)
from evaluations.kinds import FINISHED, NUMBER_TYPES, YES_NO_TYPES, kind_of, pinned
from evaluations.models import EvaluationRun, GateMetric, GateOperator, RunGate, RunRow, RunStatus
from evaluations.rows import ROW_FILTERS, RowPage, RowResult, Verdict, filtered_rows, row_results
from judges.agreement import wilson_interval
from judges.llm import NOT_APPLICABLE
from judges.models import Evaluation, EvaluationStatus
from traces.json_sql import JSONBool, JSONNumber

__all__ = [
    "CONFIDENCE", "FINISHED", "NUMBER_TYPES", "ROW_FILTERS", "YES_NO_TYPES",
    "CompareError", "Comparison", "GateOutcome", "JudgeChange", "JudgeMetric", "RowChange", "RowPage", "RowResult", "RunSummary", "Side", "Verdict",
    "check_comparable", "comparable_runs", "compare", "filtered_rows", "kind_of", "row_results", "summarize", "summarize_many", "t_interval", "wilson",
]

CONFIDENCE = 0.95


def wilson(passes: int, n: int) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of a pass rate (judges.agreement.wilson_interval: scipy.stats.binomtest),
    (None, None) without verdicts."""
    interval = wilson_interval(int(passes), int(n), CONFIDENCE)
    return (None, None) if interval is None else (round(interval[0], 4), round(interval[1], 4))


def t_interval(values: list[float]) -> tuple[float | None, float | None]:
    """The 95% Student t interval of a mean (scipy.stats.ttest_1samp(...).confidence_interval), (None, None) below
    two values. Identical values give a zero-width interval."""
    if len(values) < 2:
        return None, None
    from scipy.stats import ttest_1samp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical values: scipy warns, the interval is the value
        interval = ttest_1samp(values, 0.0).confidence_interval(confidence_level=CONFIDENCE)
    low, high = float(interval.low), float(interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None, None
    return round(low, 4), round(high, 4)


@dataclass(frozen=True)
class JudgeMetric:
    """One judge's result over a run. `n` is the verdicts behind the figure (yes/no or numbers; for other kinds
    every judged verdict); `errors` excludes "not applicable"; `pending` is queued or being judged."""

    name: str
    output_type: str
    n: int
    errors: int
    pending: int
    pass_rate: float | None = None
    pass_rate_low: float | None = None
    pass_rate_high: float | None = None
    mean: float | None = None
    mean_low: float | None = None
    mean_high: float | None = None
    cost_usd: float = 0.0
    judge_id: int | None = None
    version: int | None = None
    passes: int = 0
    not_applicable: int = 0
    judged: int = 0
    # The mean before rounding: a gate compares exact figures (pass_rate and mean are rounded for display).
    exact_mean: float | None = None

    @property
    def kind(self) -> str:
        return kind_of(self.output_type)

    def figure(self, metric: str) -> float | None:
        return self.pass_rate if metric == GateMetric.PASS_RATE else self.mean

    def exact_figure(self, metric: str) -> float | None:
        if metric == GateMetric.PASS_RATE:
            return self.passes / self.n if self.n and self.pass_rate is not None else None
        return self.exact_mean


@dataclass(frozen=True)
class GateOutcome:
    judge_name: str
    metric: str
    operator: str
    threshold: float
    value: float | None
    n: int
    passed: bool
    # Why it failed when the figure could not be compared ("no verdicts", "judge not in this run"), else "".
    reason: str = ""

    def describe(self) -> str:
        shown = "—" if self.value is None else f"{self.value:.4g}"
        return f"{self.judge_name} {GateMetric(self.metric).label} {shown} {self.operator} {self.threshold:g} (n={self.n})"


@dataclass(frozen=True)
class RunSummary:
    run: EvaluationRun
    judges: list[JudgeMetric]
    gates: list[GateOutcome]
    # Judging progress: the job's evaluations settled (done, error, cancelled, skipped) out of all of them.
    done: int
    total: int
    # Rows whose predict function raised or timed out (they have no trace, so no verdicts).
    row_errors: int = 0
    cost_usd: float = 0.0

    @property
    def passed(self) -> bool:
        """The run finished and every gate passed (a finished run without gates passes; a gate with no verdicts
        fails; a cancelled or unfinished run never passes, so a CI job can't go green on half a run)."""
        return self.run.status == RunStatus.DONE and all(gate.passed for gate in self.gates)

    @property
    def judging(self) -> bool:
        """Still moving: predictions being logged, or evaluations not settled yet — what the pages poll for."""
        return self.run.status in ("predicting", "judging") or self.done < self.total

    @property
    def progress(self) -> float | None:
        return round(self.done / self.total, 4) if self.total else None

    @property
    def duration_seconds(self) -> float:
        """From the run's start to its end (or to now while it goes on)."""
        end = self.run.finished_at or timezone.now()
        return max(0.0, (end - self.run.created_at).total_seconds())

    def judge(self, name: str) -> JudgeMetric | None:
        return next((metric for metric in self.judges if metric.name == name), None)


_COUNTS = dict(
    total=Count("pk"),
    settled=Count("pk", filter=Q(status__in=FINISHED)),
    unsettled=Count("pk", filter=~Q(status__in=FINISHED)),
    judged=Count("pk", filter=Q(status=EvaluationStatus.DONE)),
    errors=Count("pk", filter=Q(status__in=(EvaluationStatus.ERROR, EvaluationStatus.CANCELLED)) & ~Q(error_code=NOT_APPLICABLE)),
    not_applicable=Count("pk", filter=Q(error_code=NOT_APPLICABLE)),
    passes=Sum(JSONBool("assessment__value"), filter=Q(status=EvaluationStatus.DONE)),
    yes_no=Count(JSONBool("assessment__value"), filter=Q(status=EvaluationStatus.DONE)),
    numbers=Count(JSONNumber("assessment__value"), filter=Q(status=EvaluationStatus.DONE)),
    number_sum=Sum(JSONNumber("assessment__value"), filter=Q(status=EvaluationStatus.DONE)),
    cost=Sum("cost_usd"),
)


def _metric(entry: dict[str, Any], counts: dict[str, Any] | None, numbers: list[float]) -> JudgeMetric:
    counts = counts or {}
    output_type = str(entry.get("output_type") or counts.get("judge__output_type") or "")
    kind = kind_of(output_type)
    judged = int(counts.get("judged") or 0)
    common = dict(
        name=str(entry["name"]),
        output_type=output_type,
        errors=int(counts.get("errors") or 0),
        pending=int(counts.get("unsettled") or 0),
        cost_usd=round(float(counts.get("cost") or Decimal(0)), 6),
        judge_id=entry.get("judge_id") or counts.get("judge_id"),
        version=entry.get("version"),
        not_applicable=int(counts.get("not_applicable") or 0),
        judged=judged,
    )
    if kind == "yes_no":
        n, passes = int(counts.get("yes_no") or 0), int(counts.get("passes") or 0)
        low, high = wilson(passes, n)
        return JudgeMetric(n=n, passes=passes, pass_rate=round(passes / n, 4) if n else None, pass_rate_low=low, pass_rate_high=high, **common)
    if kind == "number":
        n = int(counts.get("numbers") or 0)
        low, high = t_interval(numbers)
        exact = float(counts["number_sum"]) / n if n else None
        mean = round(exact, 4) if exact is not None else None
        return JudgeMetric(n=n, mean=mean, mean_low=low, mean_high=high, exact_mean=exact, **common)
    return JudgeMetric(n=judged, **common)


def _gate(gate: RunGate, metric: JudgeMetric | None) -> GateOutcome:
    shape = dict(judge_name=gate.judge_name, metric=gate.metric, operator=gate.operator, threshold=gate.threshold)
    if metric is None:
        return GateOutcome(value=None, n=0, passed=False, reason="the judge is not in this run", **shape)
    value = metric.figure(gate.metric)
    if value is None:
        what = "no yes/no verdicts" if gate.metric == GateMetric.PASS_RATE else "no numeric verdicts"
        return GateOutcome(value=None, n=metric.n, passed=False, reason=what, **shape)
    exact = metric.exact_figure(gate.metric)  # 8,999 of 9,999 shows as 0.9 and is still below a 0.9 gate
    passed = exact >= gate.threshold if gate.operator == GateOperator.AT_LEAST else exact <= gate.threshold
    return GateOutcome(value=value, n=metric.n, passed=passed, **shape)


def summarize_many(runs: Iterable[EvaluationRun]) -> dict[Any, RunSummary]:
    """`summarize` for several runs at once (the runs list) in four queries whatever their size: the jobs'
    counts per judge, numeric judges' values, the gates, and the rows' predict errors."""
    runs = list(runs)
    if not runs:
        return {}
    ids = [run.pk for run in runs]
    counts: dict[Any, dict[Any, dict[str, Any]]] = defaultdict(dict)
    for row in Evaluation.objects.filter(job__in=ids).values("job", "judge_id", "judge__name", "judge__output_type").annotate(**_COUNTS).order_by():
        counts[row["job"]][row["judge_id"]] = row
    numeric = {
        (run.pk, entry.get("judge_id"))
        for run in runs
        for entry in pinned(run)
        if kind_of(str(entry.get("output_type") or "")) == "number"
    }
    for job, per_judge in counts.items():
        numeric |= {(job, judge_id) for judge_id, row in per_judge.items() if kind_of(row["judge__output_type"]) == "number"}
    values: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    if numeric:
        wanted = {judge_id for _, judge_id in numeric if judge_id is not None}
        found = (
            Evaluation.objects.filter(job__in=ids, judge_id__in=wanted, status=EvaluationStatus.DONE)
            .annotate(number=JSONNumber("assessment__value"))
            .filter(number__isnull=False)
            .values_list("job", "judge_id", "number")
        )
        for job, judge_id, number in found:
            values[(job, judge_id)].append(float(number))
    gates: dict[Any, list[RunGate]] = defaultdict(list)
    for gate in RunGate.objects.filter(run_id__in=ids).order_by("judge_name", "metric", "pk"):
        gates[gate.run_id].append(gate)
    row_errors = dict(RunRow.objects.filter(run_id__in=ids).exclude(error="").values("run_id").annotate(n=Count("pk")).values_list("run_id", "n").order_by())

    summaries: dict[Any, RunSummary] = {}
    for run in runs:
        per_judge = counts.get(run.pk, {})
        entries = pinned(run)
        pinned_ids = {entry.get("judge_id") for entry in entries}
        pinned_names = {entry["name"] for entry in entries}
        # Judges that judged the job without being pinned (a run made before pinning) are shown too.
        entries += [
            {"name": row["judge__name"], "judge_id": judge_id, "output_type": row["judge__output_type"]}
            for judge_id, row in per_judge.items()
            if judge_id not in pinned_ids and row["judge__name"] not in pinned_names
        ]
        by_name = {row["judge__name"]: row for row in per_judge.values()}
        metrics = []
        for entry in entries:
            found = per_judge.get(entry.get("judge_id")) or by_name.get(entry["name"])
            judge_id = entry.get("judge_id") or (found or {}).get("judge_id")
            metrics.append(_metric(entry, found, values.get((run.pk, judge_id), [])))
        by_metric_name = {metric.name: metric for metric in metrics}
        outcomes = [_gate(gate, by_metric_name.get(gate.judge_name)) for gate in gates.get(run.pk, [])]
        summaries[run.pk] = RunSummary(
            run=run,
            judges=metrics,
            gates=outcomes,
            done=sum(int(row["settled"]) for row in per_judge.values()),
            total=sum(int(row["total"]) for row in per_judge.values()),
            row_errors=int(row_errors.get(run.pk, 0)),
            cost_usd=round(sum(metric.cost_usd for metric in metrics), 6),
        )
    return summaries


def summarize(run: EvaluationRun) -> RunSummary:
    """The run's per-judge metrics (pass rate with its 95% Wilson interval, or mean with its 95% t interval, each
    with n), its gates' outcome and its judging progress — in four queries whatever the run's size."""
    return summarize_many([run])[run.pk]
