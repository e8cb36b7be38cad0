"""A judge's backfill page: pick a time range (and a filter), see how many traces and what it will cost, confirm;
then a progress bar that fills by polling, and Cancel (judges.backfill does the work)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import editor_required
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.formatting import format_cost
from judges import backfill
from judges.errors import ConfigError
from judges.manual import job_json
from judges.models import Evaluation, Judge
from traces.payload import parse_timestamp

STAMP = "%Y-%m-%dT%H:%M"


def _judge(experiment_id: int, judge_id: int) -> Judge:
    return get_object_or_404(Judge.objects.select_related("endpoint", "experiment"), pk=judge_id, experiment_id=experiment_id)


def _moment(value: str, field: str) -> datetime:
    try:
        return parse_timestamp(value if value.endswith("Z") or "+" in value[10:] else value + "Z")
    except ValueError as error:
        raise ConfigError({field: str(error)}) from None


def _cost_text(forecast: backfill.Forecast) -> str:
    if forecast.cost is None:
        return f"cost unknown ({forecast.basis})"
    return f"≈ {format_cost(forecast.cost)} ({format_cost(forecast.cost_low)}–{format_cost(forecast.cost_high)}, from {forecast.basis})"


@editor_required
@require_http_methods(["GET", "POST"])
def backfill_page(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment_id, judge_id)
    now = timezone.now()
    values = {
        "since": request.POST.get("since") or (now - timedelta(days=7)).strftime(STAMP),
        "until": request.POST.get("until") or now.strftime(STAMP),
        "filter_string": request.POST.get("filter_string", "").strip(),
    }
    context = {"judge": judge, "values": values, "errors": {}, "forecast": None}
    if request.method == "POST":
        try:
            since, until = _moment(values["since"], "since"), _moment(values["until"], "until")
            if request.POST.get("confirm") == "start":
                job = backfill.start(judge, since, until, values["filter_string"], user=request.user)
                messages.success(request, f"Backfill of {judge.name} started.")
                return redirect("judge-backfill-progress", experiment.pk, judge.pk, job)
            forecast = backfill.forecast(judge, since, until, values["filter_string"])
            context["forecast"] = {"count": forecast.count, "cost": _cost_text(forecast)}
        except ConfigError as error:
            context["errors"] = error.errors
    return render_tab(request, experiment, "judges", "evalapp/judges/backfill.html", context)


@login_required
@require_GET
def backfill_progress(request: HttpRequest, experiment_id: int, judge_id: int, job: uuid.UUID) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment_id, judge_id)
    progress = job_json(job)
    if progress is None or progress["judge"] != judge.name:
        raise Http404("no such backfill")
    cancelled = Evaluation.objects.filter(job=job, status="cancelled").count()
    context = {"judge": judge, "job": job, "progress": progress, "cancelled": cancelled,
               "percent": round(100 * progress["done"] / progress["total"]) if progress["total"] else 100}
    if is_partial_request(request, "backfill-progress"):
        return render_tab(request, experiment, "judges", "evalapp/judges/backfill_progress.html#progress", context)
    return render_tab(request, experiment, "judges", "evalapp/judges/backfill_progress.html", context)


@editor_required
@require_POST
def backfill_cancel(request: HttpRequest, experiment_id: int, judge_id: int, job: uuid.UUID) -> HttpResponse:
    _judge(experiment_id, judge_id)
    cancelled = backfill.cancel(job, user=request.user)
    messages.success(request, f"Cancelled {cancelled} traces not yet judged; what was running finishes.")
    return redirect("judge-backfill-progress", experiment_id, judge_id, job)


urlpatterns = [
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/backfill", backfill_page, name="judge-backfill"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/backfill/<uuid:job>", backfill_progress, name="judge-backfill-progress"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/backfill/<uuid:job>/cancel", backfill_cancel, name="judge-backfill-cancel"),
]
