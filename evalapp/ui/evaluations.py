"""The Evaluations tab: an experiment's evaluation runs (status, progress, per-judge pass rate or mean with its 95%
interval and n, cost, duration, gates), a run's page (header, gates, per-row verdicts, polled while judging) and the
comparison of two runs on one dataset. Every figure comes from evaluations.results; these views only read."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from evalapp.ui.chips import NOT_APPLICABLE, Chip, chip_for_error, chip_for_state, chip_for_value
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.formatting import format_cost
from evaluations.inputs import MAX_ROWS
from evaluations.models import EvaluationRun
from evaluations.results import (
    ROW_FILTERS,
    CompareError,
    JudgeChange,
    JudgeMetric,
    RowResult,
    RunSummary,
    Verdict,
    comparable_runs,
    compare,
    row_results,
    summarize,
    summarize_many,
)
from traces.models import Experiment
from traces.payload import whole_number

RUNS_PER_PAGE = 20
ROWS_PER_PAGE = 25
# Changes listed per section on the compare page unless ?all=1 (the API lists every one).
CHANGES_SHOWN = 200
POLL_SECONDS = 3


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def metric_figure(metric: JudgeMetric) -> str:
    """"81.6% (72.9–88.0%)" or "4.12 (3.94–4.30)"; the n is shown beside it."""
    if metric.kind == "yes_no":
        if metric.pass_rate is None:
            return "no verdicts"
        interval = f" ({metric.pass_rate_low * 100:.1f}–{metric.pass_rate_high * 100:.1f}%)" if metric.pass_rate_low is not None else ""
        return f"{percent(metric.pass_rate)}{interval}"
    if metric.kind == "number":
        if metric.mean is None:
            return "no verdicts"
        interval = f" ({metric.mean_low:.3g}–{metric.mean_high:.3g})" if metric.mean_low is not None else ""
        return f"mean {metric.mean:.3g}{interval}"
    return f"{metric.judged} judged"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _gate_view(gate) -> dict[str, Any]:
    shown = percent(gate.value) if gate.metric == "pass_rate" else number(gate.value)
    wanted = percent(gate.threshold) if gate.metric == "pass_rate" else f"{gate.threshold:g}"
    return {"gate": gate, "value": shown, "threshold": wanted, "label": "pass rate" if gate.metric == "pass_rate" else "mean"}


def summary_view(summary: RunSummary) -> dict[str, Any]:
    """What the pages show of a summary: each judge's figure as text, gates, progress and cost."""
    return {
        "summary": summary,
        "run": summary.run,
        "judges": [{"metric": metric, "figure": metric_figure(metric), "cost": format_cost(metric.cost_usd)} for metric in summary.judges],
        "gates": [_gate_view(gate) for gate in summary.gates],
        "percent_done": int(round((summary.progress or 0) * 100)),
        "cost": format_cost(summary.cost_usd),
        "duration": duration(summary.duration_seconds),
    }


def _page_number(request: HttpRequest) -> int:
    # At most the page past a run's largest size (evaluations.inputs.MAX_ROWS), so the offset stays a small number.
    return min(max(1, whole_number(request.GET.get("page", "1") or "1") or 1), MAX_ROWS // ROWS_PER_PAGE + 2)


def _run_url(experiment: Experiment, run: EvaluationRun, **query: Any) -> str:
    url = reverse("evaluation-run", args=[experiment.pk, run.pk])
    query = {key: value for key, value in query.items() if value not in ("", None, 1)}
    return url + ("?" + urlencode(query) if query else "")


@login_required
@require_GET
def evaluations_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    runs = EvaluationRun.objects.filter(experiment=experiment).select_related("created_by").order_by("-created_at", "-pk")
    total = runs.count()
    page_number = min(_page_number(request), max(1, -(-total // RUNS_PER_PAGE)))
    shown = list(runs[(page_number - 1) * RUNS_PER_PAGE : page_number * RUNS_PER_PAGE])
    summaries = summarize_many(shown)
    tab_url = reverse("experiment-evaluations", args=[experiment.pk])
    context = {
        "runs": [summary_view(summaries[run.pk]) for run in shown],
        "total": total,
        "page_number": page_number,
        "previous_url": f"{tab_url}?page={page_number - 1}" if page_number > 1 else "",
        "next_url": f"{tab_url}?page={page_number + 1}" if page_number * RUNS_PER_PAGE < total else "",
        "poll_url": f"{tab_url}?page={page_number}" if page_number > 1 else tab_url,
        "moving": any(summaries[run.pk].judging for run in shown),
        "poll_seconds": POLL_SECONDS,
    }
    if is_partial_request(request, "runs-results"):
        return render_tab(request, experiment, "evaluations", "evalapp/evaluations/tab.html#runs-results", context)
    return render_tab(request, experiment, "evaluations", "evalapp/evaluations/tab.html", context)


def run_for(experiment: Experiment, run_id: uuid.UUID) -> EvaluationRun:
    return get_object_or_404(EvaluationRun.objects.select_related("created_by", "dataset"), pk=run_id, experiment=experiment)


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def verdict_chip(verdict: Verdict) -> Chip:
    if verdict.state == "judged":
        return chip_for_value(verdict.value, title=verdict.rationale[:300])
    if verdict.state == "not_applicable":
        return chip_for_error(NOT_APPLICABLE, verdict.error_message)
    if verdict.state == "error":
        return chip_for_error(verdict.error_code, verdict.error_message)
    if verdict.state in ("pending", "running"):
        return chip_for_state(verdict.state, "queued" if verdict.state == "pending" else "being judged")
    return Chip("none", "—", "no verdict: the row has no trace, or its evaluation is not queued yet")


@dataclass(frozen=True)
class RowView:
    result: RowResult
    inputs: str
    expectations: str
    outputs: str
    verdicts: list[tuple[Verdict, Chip]]


def _row_view(result: RowResult) -> RowView:
    row = result.row
    return RowView(
        result=result,
        inputs=_pretty(row.inputs),
        expectations=_pretty(row.expectations) if row.expectations else "",
        outputs=_pretty(row.outputs),
        verdicts=[(verdict, verdict_chip(verdict)) for verdict in result.verdicts],
    )


def _dataset_runs(experiment: Experiment, run: EvaluationRun) -> list[EvaluationRun]:
    return list(comparable_runs(run).only("pk", "name", "created_at", "status")[:50])


@login_required
@require_GET
def run_detail(request: HttpRequest, experiment_id: int, run_id: uuid.UUID) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    run = run_for(experiment, run_id)
    only = request.GET.get("only", "")
    if only not in ROW_FILTERS:
        only = ""
    page_number = _page_number(request)
    summary = summarize(run)
    rows = row_results(run, offset=(page_number - 1) * ROWS_PER_PAGE, limit=ROWS_PER_PAGE, only=only)
    if rows.total and rows.offset >= rows.total:  # a page past the end (the filter shrank the rows): the last one
        page_number = -(-rows.total // ROWS_PER_PAGE)
        rows = row_results(run, offset=(page_number - 1) * ROWS_PER_PAGE, limit=ROWS_PER_PAGE, only=only)
    context = {
        **summary_view(summary),
        "rows": [_row_view(result) for result in rows.rows],
        "row_page": rows,
        "shown_from": rows.offset + 1,
        "shown_to": rows.offset + len(rows.rows),
        "page_number": page_number,
        "only": only,
        "filters": [(key, label, _run_url(experiment, run, only=key)) for key, label in ROW_FILTERS.items()],
        "self_url": _run_url(experiment, run, only=only, page=page_number),
        "previous_url": _run_url(experiment, run, only=only, page=page_number - 1) if rows.has_previous else "",
        "next_url": _run_url(experiment, run, only=only, page=page_number + 1) if rows.has_next else "",
        "judge_names": [verdict.judge_name for verdict in rows.rows[0].verdicts] if rows.rows else [j.name for j in summary.judges],
        "others": _dataset_runs(experiment, run),
        "compare_url": reverse("evaluation-compare", args=[experiment.pk, run.pk]),
        "params": sorted((run.params or {}).items()),
        "poll_seconds": POLL_SECONDS,
    }
    if is_partial_request(request, "run-live"):
        return render_tab(request, experiment, "evaluations", "evalapp/evaluations/run.html#run-live", context)
    return render_tab(request, experiment, "evaluations", "evalapp/evaluations/run.html", context)


def _change_view(change: JudgeChange) -> dict[str, Any]:
    if change.kind == "yes_no":
        base, new = percent(change.base_value), percent(change.new_value)
        delta = "—" if change.change is None else f"{change.change * 100:+.1f} pts"
    elif change.kind == "number":
        base, new = number(change.base_value), number(change.new_value)
        delta = "—" if change.change is None else f"{change.change:+.3g}"
    else:
        base = new = delta = "—"
    test = {"mcnemar": "McNemar (exact)", "wilcoxon": "Wilcoxon signed-rank"}.get(change.test or "", "—")
    p_value = "—" if change.p_value is None else (f"{change.p_value:.3f}" if change.p_value >= 0.001 else "< 0.001")
    return {"change": change, "base": base, "new": new, "delta": delta, "test": test, "p_value": p_value}


def _side_chip(value: Any, rationale: str) -> Chip:
    return chip_for_value(value, title=rationale[:300])


@login_required
@require_GET
def run_compare(request: HttpRequest, experiment_id: int, run_id: uuid.UUID) -> HttpResponse:
    """The run (new) against `?with=` another run on the same dataset (base). Without `with`, or with a run that
    can't be compared: the picker, with the reason, at 400."""
    experiment = get_experiment(experiment_id)
    new = run_for(experiment, run_id)
    others = _dataset_runs(experiment, new)
    raw = request.GET.get("with", "")
    context: dict[str, Any] = {"new": new, "others": others, "compare_url": reverse("evaluation-compare", args=[experiment.pk, new.pk])}
    try:
        base_id = uuid.UUID(raw)
    except ValueError:
        context["error"] = "Pick the run to compare with." if not raw else f"{raw[:40]!r} is not a run id."
        return render_tab(request, experiment, "evaluations", "evalapp/evaluations/compare.html", context, status=400 if raw else 200)
    base = get_object_or_404(EvaluationRun.objects.select_related("dataset"), pk=base_id, experiment=experiment)
    context["base"] = base
    try:
        comparison = compare(base, new)
    except CompareError as error:
        context["error"] = f"These runs cannot be compared: {error}."
        return render_tab(request, experiment, "evaluations", "evalapp/evaluations/compare.html", context, status=400)

    show_all = request.GET.get("all") == "1"

    def changes(items):
        items = items if show_all else items[:CHANGES_SHOWN]
        return [
            {
                "change": item,
                "inputs": _pretty(item.inputs),
                "expectations": _pretty(item.expectations) if item.expectations else "",
                "base_outputs": _pretty(item.base.outputs),
                "new_outputs": _pretty(item.new.outputs),
                "base_chip": _side_chip(item.base.value, item.base.rationale),
                "new_chip": _side_chip(item.new.value, item.new.rationale),
            }
            for item in items
        ]

    context.update(
        comparison=comparison,
        judges=[_change_view(change) for change in comparison.judges],
        regressions=changes(comparison.regressions),
        improvements=changes(comparison.improvements),
        swap_url=reverse("evaluation-compare", args=[experiment.pk, base.pk]) + "?" + urlencode({"with": str(new.pk)}),
        all_url=""
        if show_all or max(len(comparison.regressions), len(comparison.improvements)) <= CHANGES_SHOWN
        else reverse("evaluation-compare", args=[experiment.pk, new.pk]) + "?" + urlencode({"with": str(base.pk), "all": "1"}),
        changes_shown=CHANGES_SHOWN,
    )
    return render_tab(request, experiment, "evaluations", "evalapp/evaluations/compare.html", context)


urlpatterns = [
    path("experiments/<int:experiment_id>/evaluations", evaluations_tab, name="experiment-evaluations"),
    path("experiments/<int:experiment_id>/evaluations/<uuid:run_id>", run_detail, name="evaluation-run"),
    path("experiments/<int:experiment_id>/evaluations/<uuid:run_id>/compare", run_compare, name="evaluation-compare"),
]
