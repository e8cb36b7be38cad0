from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from traces.models import Experiment, Trace
from traces.pagination import CursorError, decode_cursor, page


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
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    cursor = request.GET.get("cursor")
    try:
        decode_cursor(cursor or "")
    except CursorError:
        cursor = None  # a stale or hand-edited link: start from the newest
    traces, next_cursor = page(Trace.objects.filter(experiment=experiment), time_field="started_at", cursor=cursor, size=50)
    context = {"experiment": experiment, "traces": traces, "next_cursor": next_cursor}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "evalapp/experiment_detail.html#trace-rows", context)
    return render(request, "evalapp/experiment_detail.html", context)
