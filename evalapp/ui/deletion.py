"""Deleting an experiment from the web UI: a page that says what goes and asks for the experiment's name (editors
only), and the progress rows the experiment list polls while a deletion runs (traces.deletion does the work)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from accounts.roles import editor_required
from evalapp.models import AlertRule
from evalapp.ui.common import get_experiment, render_tab
from judges.models import Judge
from traces import deletion
from traces.models import Experiment, Session


def deleting_now() -> list[deletion.Progress]:
    """Every experiment being deleted, with how far it is (the experiment list shows them)."""
    return [deletion.progress(experiment) for experiment in Experiment.all_objects.filter(deleting_since__isnull=False).order_by("deleting_since")]


@editor_required
@require_http_methods(["GET", "POST"])
def experiment_delete(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    error = None
    typed = ""
    if request.method == "POST":
        typed = request.POST.get("confirm_name", "")
        try:
            deletion.request_deletion(experiment, typed, by=request.user.get_username())
        except deletion.NameMismatch as mismatch:
            error = str(mismatch)
        else:
            messages.success(request, f"Deleting {experiment.name}: it is gone from the lists now, and its traces are deleted in the background.")
            return HttpResponseClientRedirect("/") if request.htmx else redirect("experiment-list")
    context = {
        "error": error,
        "typed": typed,
        "traces": experiment.traces.count(),
        "sessions": Session.objects.filter(experiment=experiment).count(),
        "judges": Judge.objects.filter(experiment=experiment).count(),
        "alert_rules": AlertRule.objects.filter(experiment=experiment).count(),
    }
    return render_tab(request, experiment, "delete", "evalapp/experiment_delete.html", context)


@login_required
@require_GET
def deletion_progress(request: HttpRequest) -> HttpResponse:
    """The list's "being deleted" rows: polled every few seconds while any deletion runs, then no more."""
    return render(request, "evalapp/experiment_list.html#deleting", {"deleting": deleting_now()})


urlpatterns = [
    path("experiments/<int:experiment_id>/delete", experiment_delete, name="experiment-delete"),
    path("experiments/deleting", deletion_progress, name="experiments-deleting"),
]
