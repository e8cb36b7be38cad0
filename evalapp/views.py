from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from traces.models import Experiment


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    since = timezone.now() - timedelta(hours=24)
    experiments = Experiment.objects.annotate(
        traces_24h=Count("traces", filter=Q(traces__started_at__gte=since))
    ).order_by("name")
    return render(request, "evalapp/experiment_list.html", {"experiments": experiments})


@login_required
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """An experiment opens on its Traces tab."""
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    return redirect("experiment-traces", experiment.pk)
