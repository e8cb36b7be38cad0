"""Read API of evaluation runs (token or session auth; any logged-in user or token reads): a run with its summary,
its rows with their verdicts (paged), and the comparison of two runs. Creating, logging and judging runs is
another module's; these views only read (evaluations.results computes every figure, as the pages do)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluations import api_read_schema as schema
from evaluations.inputs import MAX_ROWS
from evaluations.models import EvaluationRun
from evaluations.results import (
    ROW_FILTERS,
    CompareError,
    Comparison,
    RowChange,
    RowPage,
    RunSummary,
    Side,
    compare,
    row_results,
    summarize,
)
from traces.payload import PayloadError, whole_number

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def summary_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "done": summary.done,
        "total": summary.total,
        "progress": summary.progress,
        "judging": summary.judging,
        "row_errors": summary.row_errors,
        "cost_usd": summary.cost_usd,
        "duration_seconds": round(summary.duration_seconds, 3),
        "passed": summary.passed,
        "judges": [
            {
                "name": metric.name,
                "version": metric.version,
                "output_type": metric.output_type,
                "n": metric.n,
                "judged": metric.judged,
                "errors": metric.errors,
                "not_applicable": metric.not_applicable,
                "pending": metric.pending,
                "pass_rate": metric.pass_rate,
                "pass_rate_low": metric.pass_rate_low,
                "pass_rate_high": metric.pass_rate_high,
                "mean": metric.mean,
                "mean_low": metric.mean_low,
                "mean_high": metric.mean_high,
                "cost_usd": metric.cost_usd,
            }
            for metric in summary.judges
        ],
        "gates": [
            {
                "judge_name": gate.judge_name,
                "metric": gate.metric,
                "operator": gate.operator,
                "threshold": gate.threshold,
                "value": gate.value,
                "n": gate.n,
                "passed": gate.passed,
                "reason": gate.reason,
            }
            for gate in summary.gates
        ],
    }


def run_json(run: EvaluationRun, summary: RunSummary | None = None) -> dict[str, Any]:
    """A run as the API shows it, with its summary (evaluations.results.summarize)."""
    summary = summary or summarize(run)
    return {
        "id": str(run.pk),
        "experiment_id": run.experiment_id,
        "name": run.name,
        "status": run.status,
        "dataset_id": run.dataset_id,
        "dataset_name": run.dataset_name,
        "judges": [
            {"name": entry.get("name"), "version": entry.get("version"), "output_type": entry.get("output_type")}
            for entry in run.judges or []
            if isinstance(entry, dict)
        ],
        "params": run.params or {},
        "row_count": run.row_count,
        "created_by": run.created_by.get_username() if run.created_by_id else None,
        "created_at": _iso(run.created_at),
        "judging_started_at": _iso(run.judging_started_at),
        "finished_at": _iso(run.finished_at),
        "summary": summary_json(summary),
    }


def rows_json(page: RowPage) -> dict[str, Any]:
    return {
        "rows": [
            {
                "position": result.row.position,
                "record_id": result.row.record_id,
                "record_version": result.row.record_version,
                "record_change": result.record_change,
                "inputs": result.row.inputs,
                "expectations": result.row.expectations,
                "outputs": result.row.outputs,
                "trace_id": result.trace_ref,
                "error": result.row.error,
                "latency_ms": result.row.latency_ms,
                "verdicts": {
                    verdict.judge_name: {
                        "state": verdict.state,
                        "value": verdict.value,
                        "passed": verdict.passed,
                        "rationale": verdict.rationale,
                        "error_code": verdict.error_code,
                        "error_message": verdict.error_message,
                    }
                    for verdict in result.verdicts
                },
            }
            for result in page.rows
        ],
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "next_offset": page.offset + page.limit if page.has_next else None,
    }


def _side(side: Side) -> dict[str, Any]:
    return {
        "position": side.position,
        "outputs": side.outputs,
        "error": side.error,
        "trace_id": side.trace_ref,
        "value": side.value,
        "rationale": side.rationale,
    }


def _change(change: RowChange) -> dict[str, Any]:
    return {
        "judge_name": change.judge_name,
        "kind": change.kind,
        "delta": change.delta,
        "inputs": change.inputs,
        "expectations": change.expectations,
        "base": _side(change.base),
        "new": _side(change.new),
    }


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "base_run_id": str(comparison.base.pk),
        "new_run_id": str(comparison.new.pk),
        "matched": comparison.matched,
        "only_base": comparison.only_base,
        "only_new": comparison.only_new,
        "notes": comparison.notes,
        "judges": [
            {
                "name": change.name,
                "output_type": change.output_type,
                "test": change.test,
                "n_pairs": change.n_pairs,
                "base_value": change.base_value,
                "new_value": change.new_value,
                "change": change.change,
                "p_value": change.p_value,
                "regressions": change.regressions,
                "improvements": change.improvements,
                "note": change.note,
            }
            for change in comparison.judges
        ],
        "regressions": [_change(change) for change in comparison.regressions],
        "improvements": [_change(change) for change in comparison.improvements],
    }


def run_for(run_id) -> EvaluationRun:
    return get_object_or_404(EvaluationRun.objects.select_related("created_by"), pk=run_id)


def _bad(errors: list[tuple[str, str]]) -> JsonResponse:
    return JsonResponse(PayloadError(errors).as_json(), status=400)


def _whole(request: Request, name: str, default: int, *, least: int, most: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = whole_number(raw)
    if value is None or value < least or (most is not None and value > most):
        bounds = f"{least}–{most}" if most is not None else f"{least} or more"
        raise PayloadError([(name, f"must be a whole number, {bounds} (got {raw[:40]!r})")])
    return value


class ReadOnlyRunView(APIView):
    permission_classes = [IsAuthenticated]


@schema.run_detail
class RunDetailView(ReadOnlyRunView):
    def get(self, request: Request, run_id) -> Response:
        return Response(run_json(run_for(run_id)))


@schema.run_rows
class RunRowsView(ReadOnlyRunView):
    def get(self, request: Request, run_id) -> Response | JsonResponse:
        run = run_for(run_id)
        only = request.query_params.get("only", "")
        try:
            size = _whole(request, "page_size", DEFAULT_PAGE_SIZE, least=1, most=MAX_PAGE_SIZE)
            offset = _whole(request, "offset", 0, least=0, most=MAX_ROWS)  # a run has at most MAX_ROWS rows
            if only not in ROW_FILTERS:
                raise PayloadError([("only", f"must be one of {', '.join(repr(key) for key in ROW_FILTERS if key)} (or empty), not {only[:40]!r}")])
        except PayloadError as error:
            return JsonResponse(error.as_json(), status=400)
        return Response(rows_json(row_results(run, offset=offset, limit=size, only=only)))


@schema.run_compare
class RunCompareView(ReadOnlyRunView):
    def get(self, request: Request, run_id, other_id) -> Response | JsonResponse:
        """`run_id` is the base (before), `other_id` the new run (after)."""
        base, new = run_for(run_id), run_for(other_id)
        try:
            comparison = compare(base, new)
        except CompareError as error:
            return _bad([("other_id", str(error))])
        return Response(comparison_json(comparison))
