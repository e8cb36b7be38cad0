"""A run's rows, a page at a time, each with every pinned judge's verdict on it (the job's evaluation of the row's
trace and its assessment), and whether the dataset record it copied has changed since. Design note 41."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from evaluations.kinds import kind_of, pinned
from evaluations.models import EvaluationRun, RunRow
from judges.llm import NOT_APPLICABLE
from judges.models import Evaluation, EvaluationStatus
from traces.json_sql import JSONBool


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
    entries = pinned(run)
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
