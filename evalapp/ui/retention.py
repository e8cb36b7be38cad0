"""An experiment's retention page: how many days its traces are kept, with a dry run — how many traces and
conversations a value would delete now — before a value that deletes anything can be saved (traces.retention)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.roles import editor_required
from evalapp.ui.common import get_experiment, render_tab
from traces import retention

MAX_DAYS = 36500


def _days(raw: str) -> tuple[int | None, str | None]:
    """(days or None for "as the server's default", error)."""
    text = raw.strip()
    if not text:
        return None, None
    if not text.isascii() or not text.isdigit() or int(text) > MAX_DAYS:
        return None, f"{text[:20]!r} is not a number of days from 0 to {MAX_DAYS}; leave it empty to follow the server's default."
    return int(text), None


@editor_required
@require_http_methods(["GET", "POST"])
def retention_page(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    raw = request.POST.get("days", "") if request.method == "POST" else ("" if experiment.retention_days is None else str(experiment.retention_days))
    context = {"value": raw, "error": None, "dry_run": None, "default_days": settings.EVALAPP_RETENTION_DAYS}
    if request.method == "POST":
        days, context["error"] = _days(raw)
        if context["error"] is None:
            effective = settings.EVALAPP_RETENTION_DAYS if days is None else days
            dry_run = retention.count_expiring(experiment, effective) if effective else None
            # Anything that deletes is saved only after its count was shown for this very value.
            if request.POST.get("confirm") == "save" and (dry_run is None or request.POST.get("counted") == raw.strip()):
                retention.set_retention(experiment, days)
                messages.success(request, f"Retention saved: {_describe(days)}.")
                return redirect("experiment-retention", experiment.pk)
            context["dry_run"] = dry_run
            context["counted"] = raw.strip()
    context["current"] = _describe(experiment.retention_days)
    return render_tab(request, experiment, "retention", "evalapp/retention.html", context)


def _describe(days: int | None) -> str:
    if days is None:
        default = settings.EVALAPP_RETENTION_DAYS
        return f"the server's default ({f'{default} days' if default else 'kept for good'})"
    return "kept for good" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


urlpatterns = [
    path("experiments/<int:experiment_id>/retention", retention_page, name="experiment-retention"),
]
