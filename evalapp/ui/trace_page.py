"""The trace page: span tree, readable inputs and outputs, metadata and tags, every assessment and why a judge
did not judge. The judges section polls itself while a verdict is pending; "Judge again" and feedback are posted
to evalapp.ui.trace_actions, which re-render parts of this page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from evalapp.ui.chips import Chip, chip_for_assessment, chip_for_judge_state
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.feedback import feedback_names
from evalapp.ui.formatting import format_cost
from evalapp.ui.readable import key_values, readable, span_rows
from evalapp.ui.traces import trace_judges
from judges.llm import ERROR_TITLES
from judges.models import Judge, JudgeExchange
from judges.shadow import shadow_verdicts
from judges.states import JudgeState, trace_states
from traces.feedback import THUMBS
from traces.models import Assessment, AssessmentSource, Experiment, Trace

MAX_SPANS_SHOWN = 1000


@dataclass
class AssessmentView:
    assessment: Assessment
    chip: Chip
    source: str
    error_title: str
    cost: str
    words_url: str = ""  # the judge's own words (prompt sent, raw answer), while they are kept


@dataclass
class JudgeView:
    judge: Judge
    state: JudgeState
    chip: Chip
    assessments: list[AssessmentView]
    why_not: str = ""
    shadow: list[AssessmentView] = field(default_factory=list)  # its shadow versions' verdicts: shown, counted nowhere


def _assessment_view(assessment: Assessment) -> AssessmentView:
    if assessment.shadow:
        source = f"judge {assessment.judge_name or assessment.name}, shadow version v{assessment.judge_version}"
    elif assessment.source_type == AssessmentSource.LLM_JUDGE:
        source = f"judge {assessment.judge_name or assessment.name}"
    elif assessment.source_type == AssessmentSource.HUMAN:
        source = f"person {assessment.source_id}" if assessment.source_id else "a person"
    else:
        source = f"code {assessment.source_id}".strip()
    title = ERROR_TITLES.get(assessment.error_code, assessment.error_code) if assessment.error_code else ""
    return AssessmentView(assessment, chip_for_assessment(assessment), source, title, format_cost(assessment.cost_usd))


def judges_context(trace: Trace) -> dict[str, Any]:
    """Each trace judge's current state and assessments, then everything else said about the trace (people,
    code, judges since deleted), newest first, superseded ones included and marked."""
    judges = trace_judges(trace.experiment)
    states = trace_states(judges, [trace])
    by_name: dict[str, list[AssessmentView]] = {}
    assessments = list(trace.assessments.order_by("-created_at", "-pk"))
    shadows = shadow_verdicts(trace=trace)
    kept = set(JudgeExchange.objects.filter(assessment_id__in=[a.pk for a in assessments + shadows]).values_list("assessment_id", flat=True))
    shadow_by_name: dict[str, list[AssessmentView]] = {}
    for assessment in shadows:
        view = _assessment_view(assessment)
        if assessment.pk in kept:
            view.words_url = reverse("assessment-words", args=[trace.experiment_id, assessment.pk])
        shadow_by_name.setdefault(assessment.name, []).append(view)
    for assessment in assessments:
        view = _assessment_view(assessment)
        if assessment.pk in kept:
            view.words_url = reverse("assessment-words", args=[trace.experiment_id, assessment.pk])
        by_name.setdefault(assessment.name, []).append(view)
    judge_views = []
    others: list[AssessmentView] = []
    for judge in judges:
        named = by_name.pop(judge.name, [])
        views = [view for view in named if view.assessment.source_type == AssessmentSource.LLM_JUDGE]
        others.extend(view for view in named if view.assessment.source_type != AssessmentSource.LLM_JUDGE)
        state = states[(trace.pk, judge.pk)]
        view = JudgeView(judge, state, chip_for_judge_state(state), views, shadow=shadow_by_name.get(judge.name, []))
        if not views and not state.is_pending:
            view.why_not = state.text
        judge_views.append(view)
    others.extend(view for views in by_name.values() for view in views)
    others.sort(key=lambda view: (view.assessment.created_at, view.assessment.pk), reverse=True)
    return {
        "detail_url": reverse("trace-detail", args=[trace.experiment_id, trace.trace_id]),
        "judge_views": judge_views,
        "other_assessments": others,
        "judges_pending": any(view.state.is_pending for view in judge_views),
    }


def trace_for(experiment: Experiment, trace_id: str) -> Trace:
    return get_object_or_404(Trace.objects.select_related("experiment"), experiment=experiment, trace_id=trace_id)


def detail_context(experiment: Experiment, trace: Trace, **forms: Any) -> dict[str, Any]:
    spans = list(trace.spans.order_by("started_at", "pk")[: MAX_SPANS_SHOWN + 1])
    judges_ctx = judges_context(trace)
    judges = [view.judge for view in judges_ctx["judge_views"]]
    return {
        "trace": trace,
        "traces_url": reverse("experiment-traces", args=[experiment.pk]),
        "request_view": readable(trace.request),
        "response_view": readable(trace.response),
        "spans": span_rows(trace, spans[:MAX_SPANS_SHOWN]),
        "spans_cut": len(spans) > MAX_SPANS_SHOWN,
        "metadata": key_values(trace.metadata),
        "tags": key_values(trace.tags),
        **judges_ctx,
        "judge_choices": judges,
        "feedback_names": feedback_names(judges),
        "feedback": {"name": THUMBS, "value": "", "rationale": ""},
        "feedback_errors": {},
        "judge_again_errors": [],
        **forms,
    }


@login_required
@require_GET
def trace_detail(request: HttpRequest, experiment_id: int, trace_id: str) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    trace = trace_for(experiment, trace_id)
    if is_partial_request(request, "trace-judges"):
        return render(request, "evalapp/traces/detail.html#trace-judges", {"trace": trace, **judges_context(trace)})
    return render_tab(request, experiment, "traces", "evalapp/traces/detail.html", detail_context(experiment, trace))


@login_required
@require_GET
def assessment_words(request: HttpRequest, experiment_id: int, assessment_id: int) -> HttpResponse:
    """The judge's own words for one verdict: the exact messages sent and the raw answer (a partial, loaded when
    the reader opens it). The API key was never part of them."""
    experiment = get_experiment(experiment_id)
    in_experiment = Q(trace__experiment=experiment) | Q(session__experiment=experiment)
    assessment = get_object_or_404(Assessment.all_objects.filter(in_experiment), pk=assessment_id)  # shadow verdicts too
    exchange = get_object_or_404(JudgeExchange, assessment=assessment)
    return render(request, "evalapp/traces/_judge_words.html", {"messages": exchange.messages, "answer": exchange.answer})


urlpatterns = [
    path("experiments/<int:experiment_id>/traces/<str:trace_id>", trace_detail, name="trace-detail"),
    path("experiments/<int:experiment_id>/assessments/<int:assessment_id>/words", assessment_words, name="assessment-words"),
]
