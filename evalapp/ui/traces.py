"""The Traces tab: newest first, with keyset pagination."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from traces.models import Trace
from traces.pagination import CursorError, decode_cursor, page


@login_required
def traces_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    cursor = request.GET.get("cursor")
    try:
        decode_cursor(cursor or "")
    except CursorError:
        cursor = None  # a stale or hand-edited link: start from the newest
    traces, next_cursor = page(Trace.objects.filter(experiment=experiment), time_field="started_at", cursor=cursor, size=50)
    context = {"traces": traces, "next_cursor": next_cursor}
    if is_partial_request(request, "more-row"):
        return render_tab(request, experiment, "traces", "evalapp/traces/tab.html#trace-rows", context)
    return render_tab(request, experiment, "traces", "evalapp/traces/tab.html", context)


urlpatterns = [
    path("experiments/<int:experiment_id>/traces", traces_tab, name="experiment-traces"),
]
