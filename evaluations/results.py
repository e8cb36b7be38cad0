"""What an evaluation run found: per-judge metrics with their 95% intervals and n, the quality gates' outcome,
judging progress (`summarize`); each row with its verdicts (`row_results`); and two runs compared row by row with
a paired test per judge and every regression and improvement listed (`compare`). Design note 41.

A run's verdicts are the evaluations of its job (`Evaluation.job == run.id`, judges.manual) and their assessments.
Counts, sums and progress are aggregated in SQL, one query for any number of runs and judges; only the numbers
of numeric judges are read back, for the mean's t interval. Pass rates carry a Wilson interval (scipy.stats).

Yes/no verdicts pass when true; numeric verdicts have a mean; categorical and text verdicts are counted only. A
verdict that is "not applicable" (a built-in that needs expectations the row lacks) is neither judged nor an error.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from datasets.records import record_key
from evaluations.models import EvaluationRun, GateMetric, GateOperator, RunGate, RunRow
from judges.llm import NOT_APPLICABLE
from judges.models import Evaluation, EvaluationStatus
from traces.json_sql import JSONBool, JSONNumber
from traces.models import Assessment

YES_NO_TYPES = frozenset({"boolean", "yes_no"})
NUMBER_TYPES = frozenset({"integer", "float", "number"})
FINISHED = (EvaluationStatus.DONE, EvaluationStatus.ERROR, EvaluationStatus.CANCELLED, EvaluationStatus.SKIPPED)
CONFIDENCE = 0.95


def kind_of(output_type: str) -> str:
    """"yes_no", "number" or "other": what can be said of a judge's verdicts (pass rate, mean, or counts only)."""
    if output_type in YES_NO_TYPES:
        return "yes_no"
    if output_type in NUMBER_TYPES:
        return "number"
    return "other"


def wilson(passes: int, n: int) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of a pass rate (scipy.stats.binomtest), (None, None) without verdicts."""
    if n <= 0:
        return None, None
    from scipy.stats import binomtest  # web processes load scipy only when a rate is shown

    interval = binomtest(int(passes), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return round(float(interval.low), 4), round(float(interval.high), 4)


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

    @property
    def kind(self) -> str:
        return kind_of(self.output_type)

    def figure(self, metric: str) -> float | None:
        return self.pass_rate if metric == GateMetric.PASS_RATE else self.mean


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
        """Every gate passed (a run without gates passes; a gate with no verdicts fails)."""
        return all(gate.passed for gate in self.gates)

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


def _pinned(run: EvaluationRun) -> list[dict[str, Any]]:
    return [entry for entry in (run.judges or []) if isinstance(entry, dict) and entry.get("name")]


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
        mean = round(float(counts["number_sum"]) / n, 4) if n else None
        return JudgeMetric(n=n, mean=mean, mean_low=low, mean_high=high, **common)
    return JudgeMetric(n=judged, **common)


def _gate(gate: RunGate, metric: JudgeMetric | None) -> GateOutcome:
    shape = dict(judge_name=gate.judge_name, metric=gate.metric, operator=gate.operator, threshold=gate.threshold)
    if metric is None:
        return GateOutcome(value=None, n=0, passed=False, reason="the judge is not in this run", **shape)
    value = metric.figure(gate.metric)
    if value is None:
        what = "no yes/no verdicts" if gate.metric == GateMetric.PASS_RATE else "no numeric verdicts"
        return GateOutcome(value=None, n=metric.n, passed=False, reason=what, **shape)
    passed = value >= gate.threshold if gate.operator == GateOperator.AT_LEAST else value <= gate.threshold
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
        for entry in _pinned(run)
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
        entries = _pinned(run)
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


# Rows -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    judge_name: str
    # judged | error | not_applicable | pending | running | missing (no evaluation: a predict error, or not queued yet)
    state: str
    value: Any = None
    rationale: str = ""
    error_code: str = ""
    error_message: str = ""
    # True/False for yes/no verdicts, else None.
    passed: bool | None = None


@dataclass(frozen=True)
class RowResult:
    row: RunRow
    verdicts: list[Verdict]
    trace_ref: str | None
    # "changed" (the record says something else now), "deleted" (the record is gone), or "" (same, or no record).
    record_change: str = ""

    @property
    def failed(self) -> bool:
        return any(verdict.passed is False for verdict in self.verdicts)

    @property
    def has_error(self) -> bool:
        return bool(self.row.error) or any(verdict.state == "error" for verdict in self.verdicts)


@dataclass(frozen=True)
class RowPage:
    rows: list[RowResult]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


ROW_FILTERS = {"": "All rows", "failed": "Failed a judge", "errors": "Errors", "changed": "Record changed since"}


def _state(status: str, error_code: str) -> str:
    if status == EvaluationStatus.DONE:
        return "judged"
    if status in (EvaluationStatus.PENDING, EvaluationStatus.RUNNING):
        return str(status)
    return "not_applicable" if error_code == NOT_APPLICABLE else "error"


def _verdict(name: str, kind: str, found: dict[str, Any] | None) -> Verdict:
    if found is None:
        return Verdict(judge_name=name, state="missing")
    state = _state(found["status"], found["error_code"])
    value = found["assessment__value"] if state == "judged" else None
    passed = value if kind == "yes_no" and isinstance(value, bool) else None
    return Verdict(
        judge_name=name,
        state=state,
        value=value,
        rationale=found["assessment__rationale"] or "",
        error_code=found["error_code"] or found["assessment__error_code"] or "",
        error_message=found["error_message"] or found["assessment__error_message"] or "",
        passed=passed,
    )


def filtered_rows(run: EvaluationRun, only: str = "") -> QuerySet[RunRow]:
    """The run's rows, all or only those that failed a yes/no judge, had an error, or whose record changed since."""
    rows = RunRow.objects.filter(run=run)
    job = Evaluation.objects.filter(job=run.pk, trace_id=OuterRef("trace_id"))
    if only == "failed":
        rows = rows.filter(Exists(job.filter(status=EvaluationStatus.DONE).annotate(ok=JSONBool("assessment__value")).filter(ok=0)))
    elif only == "errors":
        judge_errors = job.filter(status__in=(EvaluationStatus.ERROR, EvaluationStatus.CANCELLED)).exclude(error_code=NOT_APPLICABLE)
        rows = rows.filter(~Q(error="") | Exists(judge_errors))
    elif only == "changed":
        rows = rows.filter(
            (Q(record__isnull=False) & ~Q(record__content_hash=F("record_hash")) & ~Q(record_hash=""))
            | (Q(record__isnull=False) & Q(record_hash="") & ~Q(record__version=F("record_version")))
            | (Q(record__isnull=True) & Q(record_version__isnull=False))
        )
    return rows


def row_results(run: EvaluationRun, *, offset: int = 0, limit: int = 50, only: str = "") -> RowPage:
    """One page of the run's rows (by position) with each pinned judge's verdict on it; three queries."""
    offset, limit = max(0, int(offset)), max(1, int(limit))
    rows_query = filtered_rows(run, only)
    total = rows_query.count()
    rows = list(
        rows_query.annotate(trace_ref=F("trace__trace_id"), record_now_hash=F("record__content_hash"), record_now_version=F("record__version"))
        .order_by("position")[offset : offset + limit]
    )
    entries = _pinned(run)
    trace_pks = [row.trace_id for row in rows if row.trace_id]
    found: dict[tuple[int, str], dict[str, Any]] = {}
    seen_names: list[str] = []
    if trace_pks:
        evaluations = (
            Evaluation.objects.filter(job=run.pk, trace_id__in=trace_pks)
            .values(
                "trace_id", "judge_id", "judge__name", "judge__output_type", "status", "error_code", "error_message",
                "assessment__value", "assessment__rationale", "assessment__error_code", "assessment__error_message",
            )
            .order_by("pk")
        )
        for evaluation in evaluations:  # by pk: a later evaluation of the same judge on the same trace wins
            found[(evaluation["trace_id"], evaluation["judge__name"])] = evaluation
            if evaluation["judge__name"] not in seen_names:
                seen_names.append(evaluation["judge__name"])
    pinned_names = [entry["name"] for entry in entries]
    kinds = {entry["name"]: kind_of(str(entry.get("output_type") or "")) for entry in entries}
    for key, evaluation in found.items():
        kinds.setdefault(key[1], kind_of(evaluation["judge__output_type"]))
    names = pinned_names + [name for name in seen_names if name not in pinned_names]
    results = []
    for row in rows:
        verdicts = [_verdict(name, kinds[name], found.get((row.trace_id, name))) if row.trace_id else Verdict(judge_name=name, state="missing") for name in names]
        results.append(RowResult(row=row, verdicts=verdicts, trace_ref=row.trace_ref, record_change=_record_change(row)))
    return RowPage(rows=results, total=total, offset=offset, limit=limit)


def _record_change(row: RunRow) -> str:
    if row.record_id is None:
        return "deleted" if row.record_version is not None else ""
    if row.record_hash:
        return "changed" if row.record_now_hash != row.record_hash else ""
    if row.record_version is not None and row.record_now_version != row.record_version:
        return "changed"
    return ""


# Compare ----------------------------------------------------------------------------------------------------------


class CompareError(ValueError):
    """The two runs cannot be compared (another experiment, another dataset); the message says why."""


@dataclass(frozen=True)
class Side:
    """One run's side of a changed row: what it answered and what the judge said."""

    row_id: int
    position: int
    outputs: Any
    error: str
    trace_ref: str | None
    value: Any
    rationale: str


@dataclass(frozen=True)
class RowChange:
    judge_name: str
    # "pass → fail", "fail → pass", "score drop", "score rise"
    kind: str
    inputs: Any
    expectations: Any
    base: Side
    new: Side
    # new − base for numbers, else None.
    delta: float | None = None


@dataclass(frozen=True)
class JudgeChange:
    """One judge across the paired rows (rows of both runs with a verdict of this judge in both).

    Yes/no: pass rates over the pairs and McNemar's exact test (scipy.stats.binomtest on the discordant pairs);
    numbers: means over the pairs and the Wilcoxon signed-rank test (scipy.stats.wilcoxon, zero differences
    dropped). `p_value` is None when the test has nothing to work on (no discordant pairs, no differences)."""

    name: str
    output_type: str
    n_pairs: int
    test: str | None
    base_value: float | None
    new_value: float | None
    change: float | None
    p_value: float | None
    regressions: int
    improvements: int
    note: str = ""

    @property
    def kind(self) -> str:
        return kind_of(self.output_type)

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value is not None and self.p_value < alpha


@dataclass
class Comparison:
    base: EvaluationRun
    new: EvaluationRun
    judges: list[JudgeChange]
    regressions: list[RowChange]
    improvements: list[RowChange]
    # Rows joined between the runs, and rows of each run with no partner in the other.
    matched: int = 0
    only_base: int = 0
    only_new: int = 0
    notes: list[str] = field(default_factory=list)


def _dataset_label(run: EvaluationRun) -> str:
    return run.dataset_name or (f"dataset {run.dataset_id}" if run.dataset_id else "inline records")


def check_comparable(base: EvaluationRun, new: EvaluationRun) -> None:
    """Refuse runs of different experiments or datasets with a reason a person can act on."""
    if base.pk == new.pk:
        raise CompareError("pick another run: a run compared with itself has no changes")
    if base.experiment_id != new.experiment_id:
        raise CompareError("the runs belong to different experiments")
    same = base.dataset_id == new.dataset_id if base.dataset_id and new.dataset_id else base.dataset_name == new.dataset_name
    if not same:
        raise CompareError(f"the runs read different datasets ({_dataset_label(base)} and {_dataset_label(new)}); compare runs on the same dataset")


def _row_keys(run: EvaluationRun) -> tuple[dict[str, dict[str, Any]], int]:
    """Each row by its join key: its dataset record's id, or — for inline records and deleted ones — its inputs'
    key (datasets.records.record_key). A repeated key keeps its first row; the count of repeats is returned."""
    keyed: dict[str, dict[str, Any]] = {}
    repeats = 0
    rows = RunRow.objects.filter(run=run).values("pk", "position", "record_id", "trace_id").order_by("position")
    unkeyed = []
    for row in rows:
        if row["record_id"] is None:
            unkeyed.append(row)
            continue
        key = f"record:{row['record_id']}"
        if key in keyed:
            repeats += 1
        else:
            keyed[key] = row
    if unkeyed:
        inputs = dict(RunRow.objects.filter(pk__in=[row["pk"] for row in unkeyed]).values_list("pk", "inputs"))
        for row in unkeyed:
            key = f"inputs:{record_key(inputs[row['pk']] if isinstance(inputs[row['pk']], dict) else {'value': inputs[row['pk']]})}"
            if key in keyed:
                repeats += 1
            else:
                keyed[key] = row
    return keyed, repeats


def _verdicts_by_trace(run: EvaluationRun) -> dict[tuple[int, str], tuple[Any, int | None]]:
    """(trace pk, judge name) → (value, assessment id) for the job's judged evaluations, the latest winning."""
    found: dict[tuple[int, str], tuple[Any, int | None]] = {}
    evaluations = (
        Evaluation.objects.filter(job=run.pk, status=EvaluationStatus.DONE, trace__isnull=False)
        .values_list("trace_id", "judge__name", "assessment__value", "assessment_id")
        .order_by("pk")
    )
    for trace_id, name, value, assessment_id in evaluations:
        found[(trace_id, name)] = (value, assessment_id)
    return found


def _types(run: EvaluationRun) -> dict[str, str]:
    return {entry["name"]: str(entry.get("output_type") or "") for entry in _pinned(run)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _paired_test(kind: str, pairs: list[tuple[Any, Any]]) -> tuple[str | None, float | None, str]:
    """(test name, p-value, note) for the pairs (base value, new value) of one judge."""
    if kind == "yes_no":
        worse = sum(1 for base, new in pairs if base is True and new is False)
        better = sum(1 for base, new in pairs if base is False and new is True)
        if worse + better == 0:
            return "mcnemar", None, "no row changed its verdict"
        from scipy.stats import binomtest

        return "mcnemar", float(binomtest(worse, worse + better, 0.5).pvalue), ""
    if kind == "number":
        differences = [float(new) - float(base) for base, new in pairs]
        if not any(differences):
            return "wilcoxon", None, "no row changed its score" if pairs else "no paired scores"
        from scipy.stats import wilcoxon

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # few pairs: scipy warns about the normal approximation
            result = wilcoxon([float(new) for _, new in pairs], [float(base) for base, _ in pairs])
        return "wilcoxon", float(result.pvalue), ""
    return None, None, "categorical and text verdicts have no paired test"


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def compare(base: EvaluationRun, new: EvaluationRun) -> Comparison:
    """`new` against `base`, row by row (joined by dataset record id, else by the inputs' record key): per judge
    the change over the paired rows with its paired test and p-value, and every regression (pass → fail, score
    drop) and improvement with both runs' outputs and rationales. Raises CompareError for runs that cannot be
    compared. A fixed number of queries whatever the runs' size."""
    check_comparable(base, new)
    base_rows, base_repeats = _row_keys(base)
    new_rows, new_repeats = _row_keys(new)
    shared = [key for key in base_rows if key in new_rows]
    base_verdicts, new_verdicts = _verdicts_by_trace(base), _verdicts_by_trace(new)
    base_types, new_types = _types(base), _types(new)
    names = [name for name in base_types if name in new_types]
    notes = []
    if base_repeats or new_repeats:
        notes.append(f"rows with the same record more than once were compared once ({base_repeats} in the base run, {new_repeats} in the new)")
    skipped = sorted(set(base_types) ^ set(new_types))
    if skipped:
        notes.append("judges in only one of the runs are not compared: " + ", ".join(skipped))

    changes: list[tuple[str, str, str, float | None, dict[str, Any], dict[str, Any], int | None, int | None]] = []
    judges = []
    for name in names:
        kind = kind_of(new_types[name]) if kind_of(new_types[name]) == kind_of(base_types[name]) else "other"
        pairs = []
        for key in shared:
            base_row, new_row = base_rows[key], new_rows[key]
            before = base_verdicts.get((base_row["trace_id"], name)) if base_row["trace_id"] else None
            after = new_verdicts.get((new_row["trace_id"], name)) if new_row["trace_id"] else None
            if before is None or after is None:
                continue
            if kind == "yes_no" and not (isinstance(before[0], bool) and isinstance(after[0], bool)):
                continue
            if kind == "number" and not (_is_number(before[0]) and _is_number(after[0])):
                continue
            pairs.append((before[0], after[0]))
            if kind == "yes_no" and before[0] != after[0]:
                changes.append((name, "pass → fail" if before[0] else "fail → pass", key, None, base_row, new_row, before[1], after[1]))
            elif kind == "number" and float(after[0]) != float(before[0]):
                delta = round(float(after[0]) - float(before[0]), 6)
                changes.append((name, "score drop" if delta < 0 else "score rise", key, delta, base_row, new_row, before[1], after[1]))
        test, p_value, note = _paired_test(kind, pairs)
        if kind == "yes_no":
            base_value = round(sum(1 for b, _ in pairs if b) / len(pairs), 4) if pairs else None
            new_value = round(sum(1 for _, a in pairs if a) / len(pairs), 4) if pairs else None
        elif kind == "number":
            base_value, new_value = _mean(float(b) for b, _ in pairs), _mean(float(a) for _, a in pairs)
        else:
            base_value = new_value = None
        worse = sum(1 for change in changes if change[0] == name and change[1] in ("pass → fail", "score drop"))
        better = sum(1 for change in changes if change[0] == name and change[1] in ("fail → pass", "score rise"))
        judges.append(
            JudgeChange(
                name=name,
                output_type=new_types[name],
                n_pairs=len(pairs),
                test=test,
                base_value=base_value,
                new_value=new_value,
                change=round(new_value - base_value, 4) if base_value is not None and new_value is not None else None,
                p_value=p_value,
                regressions=worse,
                improvements=better,
                note=note,
            )
        )

    # The changed rows' contents and rationales: two more queries, for those rows only.
    row_ids = {change[4]["pk"] for change in changes} | {change[5]["pk"] for change in changes}
    details = {
        row["pk"]: row
        for row in RunRow.objects.filter(pk__in=row_ids).values("pk", "position", "inputs", "expectations", "outputs", "error", "trace__trace_id")
    }
    assessment_ids = {change[6] for change in changes} | {change[7] for change in changes}
    assessment_ids.discard(None)
    rationales = dict(Assessment.objects.filter(pk__in=assessment_ids).values_list("pk", "rationale"))

    def side(row: dict[str, Any], verdict: tuple[Any, int | None] | None) -> Side:
        found = details[row["pk"]]
        return Side(
            row_id=row["pk"],
            position=found["position"],
            outputs=found["outputs"],
            error=found["error"],
            trace_ref=found["trace__trace_id"],
            value=verdict[0] if verdict else None,
            rationale=rationales.get(verdict[1], "") if verdict else "",
        )

    regressions, improvements = [], []
    for name, kind, _key, delta, base_row, new_row, _, _ in changes:
        change = RowChange(
            judge_name=name,
            kind=kind,
            inputs=details[new_row["pk"]]["inputs"],
            expectations=details[new_row["pk"]]["expectations"],
            base=side(base_row, base_verdicts.get((base_row["trace_id"], name))),
            new=side(new_row, new_verdicts.get((new_row["trace_id"], name))),
            delta=delta,
        )
        (regressions if kind in ("pass → fail", "score drop") else improvements).append(change)
    regressions.sort(key=lambda change: (change.new.position, change.judge_name))
    improvements.sort(key=lambda change: (change.new.position, change.judge_name))
    return Comparison(
        base=base,
        new=new,
        judges=judges,
        regressions=regressions,
        improvements=improvements,
        matched=len(shared),
        only_base=len(base_rows) - len(shared),
        only_new=len(new_rows) - len(shared),
        notes=notes,
    )


def comparable_runs(run: EvaluationRun) -> QuerySet[EvaluationRun]:
    """Other runs of the same experiment on the same dataset, newest first: what the run page offers to compare."""
    others = EvaluationRun.objects.filter(experiment_id=run.experiment_id).exclude(pk=run.pk)
    others = others.filter(dataset_id=run.dataset_id) if run.dataset_id else others.filter(dataset__isnull=True, dataset_name=run.dataset_name)
    return others.order_by("-created_at")
