"""What a person does on the trace page: "Judge again" (editors) and feedback (anyone who can read the trace).
Each answers htmx with its own part of the page, re-rendered, and tells the judges section to refresh."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from accounts.roles import editor_required
from evalapp.ui.chips import format_value
from evalapp.ui.common import get_experiment, render_tab
from evalapp.ui.feedback import feedback_names, read_feedback_form
from evalapp.ui.trace_page import detail_context, trace_for
from evalapp.ui.traces import trace_judges
from judges.errors import ConfigError
from judges.manual import start_job
from traces.feedback import THUMBS, FeedbackError, add_feedback

ASSESSMENTS_CHANGED = "assessments-changed"


def _changed(response: HttpResponse) -> HttpResponse:
    """Tell the page's judges section to refresh (it shows pending chips and starts polling)."""
    return trigger_client_event(response, ASSESSMENTS_CHANGED)


@editor_required
@require_POST
def judge_again(request: HttpRequest, experiment_id: int, trace_id: str) -> HttpResponse:
    """Queue one chosen trace judge, or all of them, on this trace as a job the workers run."""
    experiment = get_experiment(experiment_id)
    trace = trace_for(experiment, trace_id)
    judges = trace_judges(experiment)
    chosen = request.POST.get("judge", "all")
    if chosen != "all":
        judges = [judge for judge in judges if str(judge.pk) == chosen]
    errors: list[str] = []
    queued: list[str] = []
    if not judges:
        errors.append("Choose a judge of this experiment that judges single traces (or all of them).")
    for judge in judges:
        try:
            start_job(judge, trace_ids=[trace.trace_id])
        except ConfigError as error:
            errors.append(f"{judge.name}: {'; '.join(error.errors.values())}")
        else:
            queued.append(judge.name)
    notice = f"Queued {', '.join(queued)}; the verdicts below fill in as they arrive." if queued else ""
    forms = {"judge_again_errors": errors, "judge_again_notice": notice, "judge_again_choice": chosen}
    if request.htmx:
        context = {"trace": trace, "judge_choices": trace_judges(experiment), **forms}
        response = render(request, "evalapp/traces/detail.html#judge-again", context)
        return _changed(response) if queued else response
    if not errors:
        return HttpResponseRedirect(reverse("trace-detail", args=[experiment.pk, trace.trace_id]))
    return render_tab(request, experiment, "traces", "evalapp/traces/detail.html", detail_context(experiment, trace, **forms))


@login_required
@require_POST
def trace_feedback(request: HttpRequest, experiment_id: int, trace_id: str) -> HttpResponse:
    """A person's verdict: thumbs up/down (with an optional comment), or a value about a judge or "thumbs".
    Viewers may give feedback too: it is their opinion, not a change to judges or endpoints."""
    experiment = get_experiment(experiment_id)
    trace = trace_for(experiment, trace_id)
    judges = trace_judges(experiment)
    submitted = {key: request.POST.get(key, "") for key in ("name", "value", "rationale")}
    thumb = request.POST.get("thumb", "")
    errors: dict[str, str] = {}
    value: Any
    if thumb in ("up", "down"):
        name, value = THUMBS, thumb == "up"
    else:
        name, value, errors = read_feedback_form(submitted["name"], submitted["value"], judges, scope="trace")
    saved = None
    if not errors:
        try:
            saved = add_feedback(user=request.user, name=name, value=value, rationale=submitted["rationale"], trace=trace)
        except FeedbackError as error:
            errors = dict(error.errors)
    forms: dict[str, Any] = {"feedback_errors": errors, "feedback": submitted if errors else {"name": name, "value": "", "rationale": ""}}
    if saved is not None:
        forms["feedback_notice"] = f"Saved your feedback: {name} = {format_value(saved.value)}."
    if request.htmx:
        context = {"trace": trace, "feedback_names": feedback_names(judges), **forms}
        response = render(request, "evalapp/traces/detail.html#feedback", context)
        return _changed(response) if saved is not None else response
    if saved is not None:
        return HttpResponseRedirect(reverse("trace-detail", args=[experiment.pk, trace.trace_id]))
    return render_tab(request, experiment, "traces", "evalapp/traces/detail.html", detail_context(experiment, trace, **forms))


urlpatterns = [
    path("experiments/<int:experiment_id>/traces/<str:trace_id>/judge-again", judge_again, name="trace-judge-again"),
    path("experiments/<int:experiment_id>/traces/<str:trace_id>/feedback", trace_feedback, name="trace-feedback"),
]
