from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from accounts.roles import can_edit
from evalapp.overview.compute import boolean_pass_rates
from evalapp.ui.deletion import deleting_now
from judges.models import Judge
from judges.queue import broker_problem
from judges.sweep import sweep_health
from traces.actions import ExperimentNameTaken, create_experiment
from traces.database import check_database
from traces.models import Experiment, Trace


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and operators: which dependency is down. The database down is "down" and a 503 (nothing
    can be stored or shown); the broker (Redis, when REDIS_URL is set) down or the background sweep stopped (no
    worker serves its queue) is "degraded" and a 200: the web side still serves and stores, and the sweep queues
    what was missed once they are back."""
    database_problem = check_database()
    if database_problem:
        body = {"status": "down", "database": "down", "problems": [f"database: {database_problem}"]}
        if settings.REDIS_URL:
            broker = broker_problem()
            body["broker"] = "down" if broker else "ok"
            body["problems"] += [f"broker: {broker}"] if broker else []
        body["sweep"] = {"ok": None, "message": "unknown while the database is down"}
        response = JsonResponse(body, status=503)
        response["Retry-After"] = str(settings.EVALAPP_RETRY_AFTER_SECONDS)
        response._has_been_logged = True  # the outage is what /healthz reports, not an error of its own
        return response
    body: dict = {"status": "ok", "database": "ok", "problems": []}
    if settings.REDIS_URL:
        broker = broker_problem()
        body["broker"] = "down" if broker else "ok"
        if broker:
            body["problems"].append(f"broker: {broker}; ingest still stores, and the sweep queues the judging once it is back")
    health = sweep_health()
    sweep = {"ok": health.ok, "last_run": health.last_run.isoformat() if health.last_run else None}
    if health.message:
        sweep["message"] = health.message
        if not health.ok:
            body["problems"].append(f"sweep: {health.message}")
    body["sweep"] = sweep
    if body["problems"]:
        body["status"] = "degraded"
    return JsonResponse(body)


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=Experiment._meta.get_field("name").max_length, strip=True)
    description = forms.CharField(required=False, strip=True, widget=forms.Textarea(attrs={"rows": 2}))


def _list_context(form: ExperimentForm | None) -> dict:
    """The experiment list with its columns, in three queries whatever the number of experiments."""
    since = timezone.now() - timedelta(hours=24)
    recent_traces = Trace.objects.filter(experiment=OuterRef("pk"), started_at__gte=since).order_by().values("experiment")
    active_judges = Judge.objects.filter(experiment=OuterRef("pk"), active=True).order_by().values("experiment")
    experiments = list(
        Experiment.objects.annotate(
            traces_24h=Coalesce(Subquery(recent_traces.annotate(count=Count("pk")).values("count")), 0),
            active_judges=Coalesce(Subquery(active_judges.annotate(count=Count("pk")).values("count")), 0),
        ).order_by("name")
    )
    pass_rates = boolean_pass_rates([experiment.pk for experiment in experiments], since)
    for experiment in experiments:
        experiment.pass_rate_24h = pass_rates.get(experiment.pk)
    return {"experiments": experiments, "form": form, "deleting": deleting_now()}


@login_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evalapp/experiment_list.html", _list_context(None))


@login_required
@require_http_methods(["GET", "POST"])
def experiment_create(request: HttpRequest) -> HttpResponse:
    """The "New experiment" form: GET shows it (the htmx partial, or the list page with it open), POST creates."""
    if not can_edit(request.user):
        raise PermissionDenied("Viewers can read but not create experiments; ask an editor or an admin.")
    form = ExperimentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            experiment = create_experiment(form.cleaned_data["name"], form.cleaned_data["description"])
        except ExperimentNameTaken as error:
            form.add_error("name", str(error))
        else:
            target = reverse("experiment-overview", args=[experiment.pk])
            return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    if request.htmx:
        return render(request, "evalapp/experiment_list.html#create-form", {"form": form})
    return render(request, "evalapp/experiment_list.html", _list_context(form))


@login_required
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """An experiment opens on its Traces tab."""
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    return redirect("experiment-traces", experiment.pk)
