"""The judge form's "Try it": the unsaved definition, once, on a recent matching trace or session. The request only
checks the form and queues the call (judges.manual.start_try); a worker makes it, and the result area polls every
few seconds until the answer is there — a slow or hanging model holds no web worker."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import editor_required
from evalapp.ui.chips import chip_for_error, chip_for_value
from evalapp.ui.common import get_experiment
from evalapp.ui.formatting import format_cost
from evalapp.ui.judge_forms import JudgeForm
from evalapp.ui.judges import _judge_or_404, matching
from judges import try_runs
from judges.actions import clean_judge
from judges.errors import ConfigError
from judges.manual import start_try
from judges.models import Judge, Scope, TryRun
from traces.models import Experiment, Session, Trace

POLL_SECONDS = 2
TEMPLATE = "evalapp/judges/_try_result.html"


def _partial(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    response = render(request, TEMPLATE, context)
    response["Vary"] = "HX-Request, HX-Target"
    return response


def _try_target(experiment: Experiment, scope: str, filter_string: str, wanted: str) -> Trace | Session | None:
    if scope == Scope.SESSION:
        sessions = Session.objects.filter(experiment=experiment, session_id=wanted) if wanted else matching(experiment, scope, filter_string)
        return sessions.first()
    if wanted:
        return Trace.objects.filter(experiment=experiment, trace_id=wanted).first()
    return matching(experiment, scope, filter_string).first()


@editor_required
@require_POST
def judge_try(request: HttpRequest, experiment_id: int, judge_id: int | None = None) -> HttpResponse:
    """Check the form's unsaved definition and queue one call of it on a recent matching trace or session; answers
    the polling result area. Writes nothing but the run."""
    experiment = get_experiment(experiment_id)
    judge = _judge_or_404(experiment, judge_id) if judge_id is not None else None
    form = JudgeForm(request.POST)
    form.is_valid()
    wanted_settings = form.action_data(judge=judge)
    shown_name = judge.name if judge is not None else (wanted_settings["name"].strip() or "this judge")
    if judge is None:
        # The name doesn't change the verdict; a unique stand-in lets a judge be tried before it is named.
        wanted_settings["name"] = f"try-it-{uuid.uuid4().hex}"
    try:
        # The actions' own validation, without saving: no rule is written twice.
        clean = clean_judge(experiment, wanted_settings, instance=judge)
    except ConfigError as error:
        problems = [(JudgeForm.FIELD_FOR_SETTING.get(field, field).replace("_", " "), message) for field, message in error.errors.items()]
        return _partial(request, {"problems": problems})
    unsaved = Judge(experiment=experiment, **clean)
    unsaved.pk = judge.pk if judge is not None else None  # an edited judge's spend cap still applies
    wanted = request.POST.get("try_target", "").strip()
    target = _try_target(experiment, unsaved.scope, unsaved.filter_string, wanted)
    noun = "session" if unsaved.scope == Scope.SESSION else "trace"
    if target is None:
        if wanted:
            missing = f"There is no {noun} {wanted!r} in this experiment."
        elif unsaved.filter_string:
            missing = f"No recent {noun} matches the filter, so there is nothing to try it on."
        else:
            missing = f"This experiment has no {noun}s yet to try it on."
        return _partial(request, {"missing": missing})
    tried = start_try(unsaved, target, shown_name=shown_name)
    return _partial(request, _run_context(experiment, tried))


def _run_context(experiment: Experiment, tried: TryRun) -> dict[str, Any]:
    target = tried.trace or tried.session
    noun = "session" if tried.session_id else "trace"
    context: dict[str, Any] = {"target": target, "noun": noun, "endpoint": try_runs.judge_from(tried.definition).endpoint}
    outcome = try_runs.outcome_of(tried)
    if outcome is None:
        if try_runs.expired(tried):
            return {**context, "expired": True}
        return {**context, "waiting": True, "poll_url": reverse("judge-try-result", args=[experiment.pk, tried.pk]), "poll_seconds": POLL_SECONDS}
    result = outcome.result
    return {
        **context,
        "result": result,
        "chip": chip_for_value(result.value) if result.ok else chip_for_error(result.error_code, result.error_message),
        "cost_text": format_cost(result.cost_usd),
        "truncated": outcome.truncated,
        "messages": outcome.messages or [],
        "answer": result.raw_content,
    }


@editor_required
@require_GET
def judge_try_result(request: HttpRequest, experiment_id: int, run_id: uuid.UUID) -> HttpResponse:
    """The result area, polled: still waiting (it polls again), the answer, or that no worker took it."""
    experiment = get_experiment(experiment_id)
    tried = TryRun.objects.select_related("trace", "session").filter(pk=run_id, experiment=experiment).first()
    if tried is None:  # dropped (a day old) or its trace deleted: say so, which also ends the polling
        return _partial(request, {"missing": "This try is no longer there (its trace or session was deleted); press Try it again."})
    return _partial(request, _run_context(experiment, tried))


urlpatterns = [
    path("experiments/<int:experiment_id>/judges/new/try", judge_try, name="judge-try-new"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/try", judge_try, name="judge-try"),
    path("experiments/<int:experiment_id>/judges/try/<uuid:run_id>", judge_try_result, name="judge-try-result"),
]
