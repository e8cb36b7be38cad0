from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from evalapp.overview import boolean_pass_rates
from evalapp.roles import can_edit
from judges.models import Judge
from traces.actions import create_experiment
from traces.models import Experiment, Trace


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=Experiment._meta.get_field("name").max_length, strip=True)
    description = forms.CharField(required=False, strip=True, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Experiment.objects.filter(name=name).exists():
            raise forms.ValidationError(f"An experiment named {name!r} already exists; pick another name.")
        return name


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
    return {"experiments": experiments, "form": form}


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
            with transaction.atomic():
                experiment = create_experiment(form.cleaned_data["name"], form.cleaned_data["description"])
        except IntegrityError:  # created by someone else since the form was checked
            form.add_error("name", f"An experiment named {form.cleaned_data['name']!r} already exists; pick another name.")
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
