"""A judge's align() page, reached from its Agreement page: what a run would do (the split, the corrections, the
calls and the estimated cost — or why it can't start, and how many more labels it needs), start it (editors), its
progress while a worker runs it (polled), the candidates' held-out agreement, and "use this candidate"."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import can_edit, editor_required
from evalapp.ui.agreement import figure
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.formatting import format_cost
from judges import align
from judges.errors import ConfigError
from judges.models import AlignRun, Judge, ModelEndpoint, Scope
from traces.models import Experiment
from traces.payload import whole_number

FIGURE_NAMES = {"kappa": "Cohen's κ", "mae": "MAE"}


def _judge(experiment: Experiment, judge_id: int) -> Judge:
    return get_object_or_404(Judge.objects.select_related("endpoint", "experiment"), pk=judge_id, experiment=experiment)


def _cost(text: str | None) -> str:
    return format_cost(Decimal(text)) if text is not None else "unknown (the model's price isn't known)"


def _choices(request: HttpRequest, judge: Judge) -> tuple[int, ModelEndpoint | None, str]:
    """min_labels and the rewrite endpoint as asked (GET preview or POST start), or a problem with them."""
    data = request.POST if request.method == "POST" else request.GET
    min_labels = whole_number(data.get("min_labels", "")) if data.get("min_labels") else align.DEFAULT_MIN_LABELS
    problem = ""
    if min_labels is None or not align.MIN_HELD_OUT <= min_labels <= 100_000:
        problem, min_labels = f"Minimum labels: a whole number from {align.MIN_HELD_OUT} to 100000.", align.DEFAULT_MIN_LABELS
    wanted = data.get("rewrite_endpoint")
    if wanted is None:
        return min_labels, judge.endpoint, problem
    if wanted == "":
        return min_labels, None, problem
    number = whole_number(wanted)
    endpoint = ModelEndpoint.objects.filter(pk=number).first() if number is not None and 0 < number < 2**63 else None
    if endpoint is None:
        problem = problem or "Rewrite endpoint: choose one of the model endpoints."
        endpoint = judge.endpoint
    return min_labels, endpoint, problem


@login_required
@require_http_methods(["GET", "POST"])
def align_page(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    min_labels, endpoint, problem = _choices(request, judge)
    if request.method == "POST":
        return _start(request, experiment, judge, min_labels, endpoint, problem)
    return _page(request, experiment, judge, min_labels, endpoint, problem)


def _page(request: HttpRequest, experiment: Experiment, judge: Judge, min_labels: int, endpoint: ModelEndpoint | None, problem: str) -> HttpResponse:
    plan = align.plan_align(judge, min_labels=min_labels, rewrite_endpoint=endpoint)
    runs = [align.run_json(run) for run in AlignRun.objects.filter(judge=judge).select_related("judge", "rewrite_endpoint")[:10]]
    for run in runs:
        run["url"] = reverse("judge-align-run", args=[experiment.pk, judge.pk, run["id"]])
    context = {
        "judge": judge,
        "plan": plan.as_json(),
        "problem": problem,
        "estimate_text": _cost(plan.as_json()["estimate_usd"]),
        "min_labels": min_labels,
        "endpoints": ModelEndpoint.objects.order_by("name"),
        "rewrite_endpoint": endpoint,
        "noun": "conversation" if judge.scope == Scope.SESSION else "trace",
        "runs": runs,
        "agreement_url": reverse("judge-agreement", args=[experiment.pk, judge.pk]),
        "page_url": reverse("judge-align", args=[experiment.pk, judge.pk]),
    }
    return render_tab(request, experiment, "judges", "evalapp/judges/align.html", context)


def _start(request: HttpRequest, experiment: Experiment, judge: Judge, min_labels: int, endpoint: ModelEndpoint | None, problem: str) -> HttpResponse:
    if not can_edit(request.user):
        raise PermissionDenied("Viewers can read but not start align runs; ask an editor or an admin.")
    if not problem:
        try:
            started = align.start_align(judge, min_labels=min_labels, rewrite_endpoint=endpoint, user=request.user)
        except ConfigError as error:
            problem = "; ".join(error.errors.values())
        else:
            return redirect("judge-align-run", experiment.pk, judge.pk, started.pk)
    return _page(request, experiment, judge, min_labels, endpoint, problem)


def _candidate_rows(judge: Judge, body: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for candidate in body["candidates"]:
        agreement = candidate["agreement"] or {}
        name = candidate["figure"] or "kappa"
        shown = agreement.get(name) if agreement.get("status") == "ok" else None
        improvement = candidate["improvement"]
        better = improvement is not None and ((improvement > 0) if name == "kappa" else (improvement < 0))
        rows.append(
            {
                **candidate,
                "figure_name": FIGURE_NAMES[name] + (" (quadratic weights)" if agreement.get("kappa_weights") else ""),
                "figure_text": figure(shown) if shown else (f"insufficient ({agreement.get('n', 0)} of {agreement.get('min_pairs', 20)})" if agreement else "—"),
                "accuracy_text": figure(agreement.get("accuracy")) if agreement.get("accuracy") else "",
                "improvement_text": "" if improvement is None else f"{improvement:+.2f}",
                "better": better,
                "cost_text": _cost(candidate["cost_usd"]) if candidate["cost_usd"] is not None else "—",
            }
        )
    return rows


@login_required
@require_GET
def align_run_page(request: HttpRequest, experiment_id: int, judge_id: int, run_id: uuid.UUID) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    aligned = get_object_or_404(AlignRun.objects.select_related("judge", "rewrite_endpoint"), pk=run_id, judge=judge)
    body = align.run_json(aligned)
    total = body["progress"]["total"]
    context = {
        "judge": judge,
        "run": body,
        "finished": aligned.finished,
        "stalled": align.stalled(aligned),
        "percent": round(100 * body["progress"]["done"] / total) if total else 0,
        "estimate_text": _cost(body["estimate_usd"]),
        "cost_text": _cost(body["cost_usd"]),
        "rows": _candidate_rows(judge, body),
        "judge_changed": judge.version != aligned.judge_version,
        "noun": "conversation" if judge.scope == Scope.SESSION else "trace",
        "align_url": reverse("judge-align", args=[experiment.pk, judge.pk]),
        "agreement_url": reverse("judge-agreement", args=[experiment.pk, judge.pk]),
        "poll_url": reverse("judge-align-run", args=[experiment.pk, judge.pk, aligned.pk]),
        "use_url": reverse("judge-align-use", args=[experiment.pk, judge.pk, aligned.pk]),
        "shadow_url": reverse("judge-shadow", args=[experiment.pk, judge.pk]),
    }
    if is_partial_request(request, "align-run"):
        return render_tab(request, experiment, "judges", "evalapp/judges/align_run.html#run", context)
    return render_tab(request, experiment, "judges", "evalapp/judges/align_run.html", context)


@editor_required
@require_POST
def align_use(request: HttpRequest, experiment_id: int, judge_id: int, run_id: uuid.UUID) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    aligned = get_object_or_404(AlignRun, pk=run_id, judge=judge)
    try:
        version = align.use_candidate(aligned, request.POST.get("candidate", ""), user=request.user)
    except ConfigError as error:
        messages.error(request, "; ".join(error.errors.values()))
    else:
        messages.success(request, f"The candidate is now the shadow version of {judge.name} (v{version}): it judges what the live version judges, counted nowhere, until you promote it.")
    return redirect("judge-align-run", experiment.pk, judge.pk, aligned.pk)


urlpatterns = [
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/align", align_page, name="judge-align"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/align/<uuid:run_id>", align_run_page, name="judge-align-run"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/align/<uuid:run_id>/use", align_use, name="judge-align-use"),
]
