"""Two runs on one dataset compared row by row: rows joined by dataset record id (else by the inputs' key), per
judge a paired test (McNemar's exact test for yes/no, Wilcoxon's signed-rank test for numbers, scipy.stats) with
its p-value and n pairs, and every regression and improvement with both runs' outputs and rationales. Note 41."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from datasets.records import record_key
from evaluations.kinds import kind_of, pinned
from evaluations.models import EvaluationRun, RunRow
from judges.models import Evaluation, EvaluationStatus
from traces.models import Assessment


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
    rows = RunRow.objects.filter(run=run).values("pk", "position", "record_id", "trace_id", "error").order_by("position")
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
    return {entry["name"]: str(entry.get("output_type") or "") for entry in pinned(run)}


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


@dataclass(frozen=True)
class _Flip:
    """One judge's verdict on one record that differs between the runs, before its rows' contents are read."""

    judge_name: str
    kind: str
    delta: float | None
    base_row: dict[str, Any]
    new_row: dict[str, Any]
    base_verdict: tuple[Any, int | None]
    new_verdict: tuple[Any, int | None]

    @property
    def worse(self) -> bool:
        return self.kind in ("pass → fail", "score drop")


def _comparable(kind: str, before: Any, after: Any) -> bool:
    if kind == "yes_no":
        return isinstance(before, bool) and isinstance(after, bool)
    if kind == "number":
        return _is_number(before) and _is_number(after)
    return True


def _flip(name: str, kind: str, base_row: dict[str, Any], new_row: dict[str, Any], before: tuple, after: tuple) -> _Flip | None:
    if kind == "yes_no" and before[0] != after[0]:
        return _Flip(name, "pass → fail" if before[0] else "fail → pass", None, base_row, new_row, before, after)
    if kind == "number" and float(after[0]) != float(before[0]):
        delta = round(float(after[0]) - float(before[0]), 6)
        return _Flip(name, "score drop" if delta < 0 else "score rise", delta, base_row, new_row, before, after)
    return None


def _levels(kind: str, pairs: list[tuple[Any, Any]]) -> tuple[float | None, float | None]:
    """Both runs' pass rate (yes/no) or mean (numbers) over the paired rows."""
    if not pairs or kind == "other":
        return None, None
    if kind == "yes_no":
        return round(sum(1 for b, _ in pairs if b) / len(pairs), 4), round(sum(1 for _, a in pairs if a) / len(pairs), 4)
    return _mean(float(b) for b, _ in pairs), _mean(float(a) for _, a in pairs)


@dataclass
class _Joined:
    """Both runs' rows by join key, the keys they share, and each run's verdicts by (trace pk, judge name)."""

    base_rows: dict[str, dict[str, Any]]
    new_rows: dict[str, dict[str, Any]]
    shared: list[str]
    base_verdicts: dict[tuple[int, str], tuple[Any, int | None]]
    new_verdicts: dict[tuple[int, str], tuple[Any, int | None]]

    def verdicts(self, key: str, name: str) -> tuple[tuple | None, tuple | None]:
        base_row, new_row = self.base_rows[key], self.new_rows[key]
        before = self.base_verdicts.get((base_row["trace_id"], name)) if base_row["trace_id"] else None
        after = self.new_verdicts.get((new_row["trace_id"], name)) if new_row["trace_id"] else None
        return before, after


def _judge_change(name: str, output_type: str, kind: str, joined: _Joined) -> tuple[JudgeChange, list[_Flip]]:
    pairs: list[tuple[Any, Any]] = []
    flips: list[_Flip] = []
    for key in joined.shared:
        before, after = joined.verdicts(key, name)
        if before is None or after is None or not _comparable(kind, before[0], after[0]):
            continue
        pairs.append((before[0], after[0]))
        if found := _flip(name, kind, joined.base_rows[key], joined.new_rows[key], before, after):
            flips.append(found)
    test, p_value, note = _paired_test(kind, pairs)
    base_value, new_value = _levels(kind, pairs)
    change = JudgeChange(
        name=name,
        output_type=output_type,
        n_pairs=len(pairs),
        test=test,
        base_value=base_value,
        new_value=new_value,
        change=round(new_value - base_value, 4) if base_value is not None and new_value is not None else None,
        p_value=p_value,
        regressions=sum(1 for flip in flips if flip.worse),
        improvements=sum(1 for flip in flips if not flip.worse),
        note=note,
    )
    return change, flips


def _row_changes(flips: list[_Flip]) -> list[RowChange]:
    """The flips with both rows' contents and both rationales: two queries, for the changed rows only."""
    row_ids = {flip.base_row["pk"] for flip in flips} | {flip.new_row["pk"] for flip in flips}
    details = {
        row["pk"]: row
        for row in RunRow.objects.filter(pk__in=row_ids).values("pk", "position", "inputs", "expectations", "outputs", "error", "trace__trace_id")
    }
    assessment_ids = {flip.base_verdict[1] for flip in flips} | {flip.new_verdict[1] for flip in flips}
    assessment_ids.discard(None)
    rationales = dict(Assessment.objects.filter(pk__in=assessment_ids).values_list("pk", "rationale")) if assessment_ids else {}

    def side(row: dict[str, Any], verdict: tuple[Any, int | None]) -> Side:
        found = details[row["pk"]]
        return Side(
            row_id=row["pk"],
            position=found["position"],
            outputs=found["outputs"],
            error=found["error"],
            trace_ref=found["trace__trace_id"],
            value=verdict[0],
            rationale=rationales.get(verdict[1], ""),
        )

    return [
        RowChange(
            judge_name=flip.judge_name,
            kind=flip.kind,
            inputs=details[flip.new_row["pk"]]["inputs"],
            expectations=details[flip.new_row["pk"]]["expectations"],
            base=side(flip.base_row, flip.base_verdict),
            new=side(flip.new_row, flip.new_verdict),
            delta=flip.delta,
        )
        for flip in flips
    ]


def compare(base: EvaluationRun, new: EvaluationRun) -> Comparison:
    """`new` against `base`, row by row (joined by dataset record id, else by the inputs' record key): per judge
    the change over the paired rows with its paired test and p-value, and every regression (pass → fail, score
    drop) and improvement with both runs' outputs and rationales. Raises CompareError for runs that cannot be
    compared. A fixed number of queries whatever the runs' size."""
    check_comparable(base, new)
    base_rows, base_repeats = _row_keys(base)
    new_rows, new_repeats = _row_keys(new)
    joined = _Joined(
        base_rows=base_rows,
        new_rows=new_rows,
        shared=[key for key in base_rows if key in new_rows],
        base_verdicts=_verdicts_by_trace(base),
        new_verdicts=_verdicts_by_trace(new),
    )
    base_types, new_types = _types(base), _types(new)
    notes = []
    if base_repeats or new_repeats:
        notes.append(f"rows with the same record more than once were compared once ({base_repeats} in the base run, {new_repeats} in the new)")
    if skipped := sorted(set(base_types) ^ set(new_types)):
        notes.append("judges in only one of the runs are not compared: " + ", ".join(skipped))
    # A row whose predict function raised has no verdicts, so no pair: say how many, as they are not in the tests.
    newly_broken = sum(1 for key in joined.shared if joined.new_rows[key]["error"] and not joined.base_rows[key]["error"])
    fixed = sum(1 for key in joined.shared if joined.base_rows[key]["error"] and not joined.new_rows[key]["error"])
    if newly_broken or fixed:
        notes.append(f"{newly_broken} row(s) raised in the new run's predict function but not in the base run's, {fixed} the other way round; they have no pair")

    judges, flips = [], []
    for name in (name for name in base_types if name in new_types):
        kind = kind_of(new_types[name]) if kind_of(new_types[name]) == kind_of(base_types[name]) else "other"
        change, found = _judge_change(name, new_types[name], kind, joined)
        judges.append(change)
        flips += found
    changes = sorted(_row_changes(flips), key=lambda change: (change.new.position, change.judge_name))
    return Comparison(
        base=base,
        new=new,
        judges=judges,
        regressions=[change for change in changes if change.kind in ("pass → fail", "score drop")],
        improvements=[change for change in changes if change.kind in ("fail → pass", "score rise")],
        matched=len(joined.shared),
        only_base=len(base_rows) - len(joined.shared),
        only_new=len(new_rows) - len(joined.shared),
        notes=notes,
    )


def comparable_runs(run: EvaluationRun) -> QuerySet[EvaluationRun]:
    """Other runs of the same experiment on the same dataset, newest first: what the run page offers to compare."""
    others = EvaluationRun.objects.filter(experiment_id=run.experiment_id).exclude(pk=run.pk)
    others = others.filter(dataset_id=run.dataset_id) if run.dataset_id else others.filter(dataset__isnull=True, dataset_name=run.dataset_name)
    return others.order_by("-created_at")
