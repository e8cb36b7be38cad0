"""The Judges tab: a card per judge, and the New / Edit LLM judge form with its live filter check ("Try it" is in
evalapp.ui.try_it).

Every change goes through judges.actions (create_judge, update_judge); the form only collects text
(evalapp.ui.judge_forms) and shows the actions' errors next to the fields they concern."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.roles import can_edit, editor_required
from evalapp.overview.compute import judge_totals
from evalapp.ui.agreement import attach_agreement
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.formatting import format_cost
from evalapp.ui.judge_forms import JudgeForm, rate_to_percent
from evalapp.ui.shadow import shadow_card_line, start_from_form
from judges.actions import create_judge, delete_judge, update_judge
from judges.backfill import daily_forecast
from judges.catalog import BUILTIN_JUDGES, builtins_for
from judges.errors import ConfigError
from judges.llm import TRANSIENT
from judges.manual import rejudge_provider_errors
from judges.models import AuditEvent, Evaluation, EvaluationStatus, Judge, ModelEndpoint, OutputType, Scope
from judges.shadow import current_shadow, shadow_stats
from judges.sweep import sweep_health
from judges.templating import VARIABLES, allowed_variables
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.models import Experiment, Session, Trace, TraceStatus
from traces.payload import whole_number

# The live filter check counts matches among this many of the newest traces (or sessions).
FILTER_CHECK_WINDOW = 1000
VARY = "HX-Request, HX-Target"


def _partial(request: HttpRequest, template: str, context: dict[str, Any], **kwargs) -> HttpResponse:
    response = render(request, template, context, **kwargs)
    response["Vary"] = VARY
    return response


def _judge_or_404(experiment: Experiment, judge_id: int) -> Judge:
    return get_object_or_404(Judge.objects.select_related("endpoint"), pk=judge_id, experiment=experiment)


# --- the tab --------------------------------------------------------------------------------------------


@dataclass
class JudgeStats:
    """A judge's last 24 hours, plus what is queued for it now."""

    judged: int = 0
    errors: int = 0
    not_applicable: int = 0
    cost_usd: Decimal | None = None
    queued: int = 0
    provider_errors: int = 0  # errors a provider outage left (5xx, 429, timeouts): "Re-judge" queues them again

    @property
    def cost_text(self) -> str:
        return format_cost(self.cost_usd or 0)  # no judgement with a cost in 24 hours: nothing spent


WAITING = [EvaluationStatus.PENDING, EvaluationStatus.RUNNING]


def _queued_and_outages(judge_pks: list[int], since) -> tuple[dict[int, int], dict[int, int]]:
    """Per judge: its live evaluations waiting or running, and those a provider outage failed since `since`. Two
    queries, each on the (judge, status, finished_at) index, with the live versions picked here: one `waiting OR
    outage` query, or `shadow_id IS NULL` in SQL, made SQLite without statistics read every evaluation of the
    judges (seconds at a million traces)."""
    queued: dict[int, int] = defaultdict(int)
    provider_errors: dict[int, int] = defaultdict(int)
    waiting = Evaluation.objects.filter(status__in=WAITING, judge_id__in=judge_pks)
    # (judge, status, finished_at): the day's failures only (SQLite took (judge, status) alone and read every failed
    # evaluation of the judges; through (judge, finished_at) the day's evaluations, 133,000 at a million traces).
    outage = Evaluation.objects.filter(judge_id__in=judge_pks, status=EvaluationStatus.ERROR, finished_at__gte=since, error_code__in=TRANSIENT)
    for counts, rows in ((queued, waiting), (provider_errors, outage)):
        for row in rows.values("judge_id", "shadow_id").annotate(count=Count("pk")).order_by():
            if row["shadow_id"] is None:
                counts[row["judge_id"]] += row["count"]
    return queued, provider_errors


def attach_stats(judges: list[Judge]) -> None:
    """Sets `judge.stats` (and the agreement line) on each judge of one experiment. The last 24 hours are counted
    the Overview's way (evalapp.overview.compute.judge_totals), so the card and the Overview agree."""
    by_judge: dict[int, JudgeStats] = {}
    if judges:
        now = timezone.now()
        totals = judge_totals(judges[0].experiment, judges, now - timedelta(hours=24), now)
        queued, provider_errors = _queued_and_outages([judge.pk for judge in judges], now - timedelta(hours=24))
        for judge in judges:
            total = totals[judge.pk]
            by_judge[judge.pk] = JudgeStats(
                judged=total.counts["judged"],
                errors=total.counts["errors"],
                not_applicable=total.counts["not_applicable"],
                cost_usd=total.cost,
                queued=queued.get(judge.pk, 0),
                provider_errors=provider_errors.get(judge.pk, 0),
            )
    attach_agreement(judges)  # two queries, whatever the number of judges
    running = shadow_stats(judges)  # the shadows' figures, kept apart from the live versions'
    for judge in judges:
        judge.stats = by_judge.get(judge.pk, JudgeStats())
        judge.shadow_stats = running.get(judge.pk)
        judge.shadow_text = shadow_card_line(judge.shadow_stats) if judge.shadow_stats else ""
        builtin = BUILTIN_JUDGES.get(judge.builtin_key)
        judge.builtin_label = builtin.label if builtin else ""
        judge.sample_percent = rate_to_percent(judge.sample_rate)


@login_required
@require_GET
def judges_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judges = list(Judge.objects.filter(experiment=experiment).select_related("endpoint").order_by("name"))
    attach_stats(judges)
    has_endpoints = bool(judges) or ModelEndpoint.objects.exists()
    context = {"judges": judges, "has_endpoints": has_endpoints, "sweep": sweep_health()}
    return render_tab(request, experiment, "judges", "evalapp/judges/tab.html", context)


def _card(request: HttpRequest, judge: Judge, error: str = "") -> HttpResponse:
    attach_stats([judge])
    return _partial(request, "evalapp/judges/_card.html", {"judge": judge, "experiment": judge.experiment, "card_error": error})


@editor_required
@require_POST
def judge_toggle(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    """Automatic evaluation on or off. The wanted state is sent (not "flip"), so a double click is harmless."""
    experiment = get_experiment(experiment_id)
    judge = _judge_or_404(experiment, judge_id)
    error = ""
    try:
        judge = update_judge(judge, user=request.user, active=request.POST.get("active") == "on")
    except ConfigError as config_error:
        # The saved settings no longer pass (say, the filter language changed): say so on the card.
        error = f"Couldn't switch it: {config_error}. Edit the judge to fix it."
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("experiment-judges", experiment.pk)
    judge.experiment = experiment
    return _card(request, judge, error)


@editor_required
@require_POST
def judge_rejudge_errors(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    """Judge again what a provider outage left as errors in the last 24 hours (as jobs, with the usual limits)."""
    experiment = get_experiment(experiment_id)
    judge = _judge_or_404(experiment, judge_id)
    error = ""
    try:
        queued = rejudge_provider_errors(judge, since=timezone.now() - timedelta(hours=24))
    except ConfigError as config_error:  # e.g. the judge is paused
        error = f"Couldn't queue them: {config_error}"
    else:
        messages.success(request, f"Queued {queued} {'session' if judge.scope == Scope.SESSION else 'trace'}{'s' if queued != 1 else ''} to be judged again by {judge.name}.")
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("experiment-judges", experiment.pk)
    judge.experiment = experiment
    return _card(request, judge, error)


@editor_required
@require_http_methods(["GET", "POST"])
def judge_delete(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge_or_404(experiment, judge_id)
    if request.method == "POST":
        delete_judge(judge, user=request.user)
        messages.success(request, f"Deleted the judge {judge.name}. Its results stay on the traces and sessions it judged.")
        return _to_tab(request, experiment)
    return render_tab(request, experiment, "judges", "evalapp/judges/delete.html", {"judge": judge})


AUDIT_PAGE = 50


@login_required
@require_GET
def judges_audit(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """Who changed this experiment's judges (and any model endpoint), when, and what changed; newest first."""
    experiment = get_experiment(experiment_id)
    events = AuditEvent.objects.filter(Q(experiment=experiment) | Q(experiment__isnull=True)).select_related("user").order_by("-created_at", "-pk")
    before = whole_number(request.GET.get("before", ""))
    if before is not None:
        events = events.filter(pk__lt=before)
    shown = list(events[: AUDIT_PAGE + 1])
    more = shown[AUDIT_PAGE - 1].pk if len(shown) > AUDIT_PAGE else None
    context = {"events": shown[:AUDIT_PAGE], "older_url": f"{reverse('judges-audit', args=[experiment.pk])}?before={more}" if more else ""}
    return render_tab(request, experiment, "judges", "evalapp/judges/audit.html", context)


def _to_tab(request: HttpRequest, experiment: Experiment) -> HttpResponse:
    url = reverse("experiment-judges", args=[experiment.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- the filter check -----------------------------------------------------------------------------------


@dataclass
class FilterCheck:
    ok: bool
    message: str
    warning: bool = False


def recent_traces(experiment: Experiment):
    return Trace.objects.filter(experiment=experiment).exclude(status=TraceStatus.IN_PROGRESS).order_by("-started_at", "-pk")


def recent_sessions(experiment: Experiment):
    """Newest first, each with the pk of its first trace (the one a session judge's filter looks at)."""
    first_trace = Trace.objects.filter(experiment=experiment, session_id=OuterRef("session_id")).order_by("started_at", "pk").values("pk")[:1]
    return Session.objects.filter(experiment=experiment).annotate(first_trace_pk=Subquery(first_trace)).order_by("-last_trace_at", "-pk")


def matching(experiment: Experiment, scope: str, filter_string: str):
    """The experiment's recent traces (or sessions, by their first trace) that the filter selects, newest first.
    Raises FilterError for a filter that doesn't parse."""
    if scope == Scope.SESSION:
        sessions = recent_sessions(experiment)
        if not filter_string.strip():
            return sessions
        return sessions.filter(first_trace_pk__in=filter_traces(Trace.objects.filter(experiment=experiment), filter_string).values("pk"))
    return filter_traces(recent_traces(experiment), filter_string)


def check_filter(experiment: Experiment, scope: str, filter_string: str) -> FilterCheck:
    plural = "sessions" if scope == Scope.SESSION else "traces"
    if not filter_string.strip():
        return FilterCheck(True, f"No filter: every {plural[:-1]} is considered.")
    base = recent_sessions(experiment) if scope == Scope.SESSION else recent_traces(experiment)
    window = base.model.objects.filter(pk__in=base.values("pk")[:FILTER_CHECK_WINDOW])
    try:
        selected = matching(experiment, scope, filter_string).filter(pk__in=window.values("pk"))
    except FilterError as error:
        return FilterCheck(False, str(error))
    total = window.count()
    if total == 0:
        return FilterCheck(True, f"The filter is valid. There are no {plural} in this experiment yet to check it against.")
    matched = selected.count()
    if total >= FILTER_CHECK_WINDOW:
        among = f"the last {total:,} {plural}"
    else:
        among = f"the {total:,} {plural if total > 1 else plural[:-1]} so far"
    if matched == 0:
        return FilterCheck(True, f"Matches none of {among}: with this filter the judge would not run on them.", warning=True)
    return FilterCheck(True, f"Matches {matched:,} of {among}.")


@login_required
@require_GET
def filter_check(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """As you type (debounced): how many recent traces or sessions the filter selects, or why it doesn't parse."""
    experiment = get_experiment(experiment_id)
    scope = request.GET.get("scope") if request.GET.get("scope") in Scope.values else Scope.TRACE
    check = check_filter(experiment, scope, request.GET.get("filter_string", ""))
    return _partial(request, "evalapp/judges/_filter_check.html", {"check": check})


def forecast_for(experiment: Experiment, scope: str, filter_string: str, sample_percent: str, endpoint_ref: str, judge: Judge | None) -> dict[str, Any] | None:
    """What the form's settings would judge a day and cost a day on the last 7 days' traffic; None without an
    endpoint to price the calls."""
    endpoint = ModelEndpoint.objects.filter(pk=whole_number(endpoint_ref or "") or 0).first() if endpoint_ref else (judge.endpoint if judge else None)
    if endpoint is None:
        return None
    try:
        rate = min(1.0, max(0.0, float(sample_percent) / 100)) if sample_percent not in ("", None) else 1.0
    except ValueError:
        rate = 1.0
    unsaved = Judge(experiment=experiment, scope=scope, filter_string=filter_string, sample_rate=rate, endpoint=endpoint, name=judge.name if judge else "")
    unsaved.pk = judge.pk if judge else None  # an existing judge's own calls price it best
    forecast = daily_forecast(unsaved)
    cost = "cost unknown" if forecast.cost is None else f"≈ {format_cost(forecast.cost)} a day ({format_cost(forecast.cost_low)}–{format_cost(forecast.cost_high)})"
    return {"count": forecast.count, "cost": cost, "basis": forecast.basis}


@login_required
@require_GET
def judge_forecast(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """As the sample rate, filter or model change: what the judge would judge and cost a day if switched on."""
    experiment = get_experiment(experiment_id)
    scope = request.GET.get("scope") if request.GET.get("scope") in Scope.values else Scope.TRACE
    judge = Judge.objects.filter(experiment=experiment, pk=whole_number(request.GET.get("judge", "")) or 0).select_related("endpoint").first()
    forecast = forecast_for(experiment, scope, request.GET.get("filter_string", ""), request.GET.get("sample_rate_percent", ""), request.GET.get("endpoint", ""), judge)
    return _partial(request, "evalapp/judges/_forecast.html", {"forecast": forecast, "scope": scope})


# --- the form -------------------------------------------------------------------------------------------


def _variables(scope: str) -> list[dict[str, str]]:
    return [{"name": name, "token": "{{ " + name + " }}", "description": VARIABLES[name].description} for name in allowed_variables(scope)]


def _form_context(request: HttpRequest, experiment: Experiment, form: JudgeForm, judge: Judge | None) -> dict[str, Any]:
    endpoints = list(ModelEndpoint.objects.order_by("name"))
    scope = judge.scope if judge is not None else form.scope_value
    builtin = BUILTIN_JUDGES.get(judge.builtin_key) if judge is not None else form.builtin
    selected = next((endpoint for endpoint in endpoints if str(endpoint.pk) == form.text("endpoint")), None)
    output_type = builtin.output_type if builtin else form.output_type_value
    if judge is None:
        form_url = reverse("judge-new", args=[experiment.pk])
        try_url = reverse("judge-try-new", args=[experiment.pk])
    else:
        form_url = reverse("judge-edit", args=[experiment.pk, judge.pk])
        try_url = reverse("judge-try", args=[experiment.pk, judge.pk])
    return {
        "form": form,
        "judge": judge,
        "versions": list(judge.versions.select_related("created_by").order_by("-version")[:10]) if judge else [],
        "shadow": current_shadow(judge) if judge else None,
        "readonly": not can_edit(request.user),
        "scope": scope,
        "scope_choices": Scope.choices,
        "builtin": builtin,
        "builtins": builtins_for(scope),
        "variables": _variables(scope),
        "output_type": output_type,
        "output_type_label": OutputType(output_type).label,
        "output_types": OutputType.choices,
        "show_categories": output_type == OutputType.CATEGORICAL and builtin is None,
        "show_range": output_type in (OutputType.INTEGER, OutputType.FLOAT) and builtin is None,
        "endpoints": endpoints,
        "selected_endpoint": selected,
        "filter_check": check_filter(experiment, scope, form.text("filter_string")),
        "default_idle_seconds": settings.EVALAPP_SESSION_IDLE_SECONDS,
        "form_url": form_url,
        "try_url": try_url,
        "filter_check_url": reverse("judge-filter-check", args=[experiment.pk]),
        "forecast_url": reverse("judge-forecast", args=[experiment.pk]),
        "forecast": forecast_for(experiment, scope, form.text("filter_string"), form.text("sample_rate_percent"), form.text("endpoint"), judge),
    }


def _render_form(request: HttpRequest, experiment: Experiment, form: JudgeForm, judge: Judge | None) -> HttpResponse:
    context = _form_context(request, experiment, form, judge)
    if is_partial_request(request, "judge-form"):
        return render_tab(request, experiment, "judges", "evalapp/judges/form.html#judge-form", context)
    return render_tab(request, experiment, "judges", "evalapp/judges/form.html", context)


def _refreshed(form_data, previous_builtin_key: str) -> Any:
    """After the scope or the built-in judge changed: drop a built-in of the other scope, and follow the
    built-in's suggested name unless the person typed a name of their own."""
    data = form_data.copy()
    scope = data.get("scope") if data.get("scope") in Scope.values else Scope.TRACE
    builtin = BUILTIN_JUDGES.get(data.get("builtin_key", ""))
    if builtin is not None and builtin.scope != scope:
        builtin, data["builtin_key"] = None, ""
    suggested = {candidate.default_name for candidate in BUILTIN_JUDGES.values()}
    if data.get("builtin_key", "") != previous_builtin_key and (not data.get("name", "").strip() or data.get("name") in suggested):
        data["name"] = builtin.default_name if builtin else ""
    return data


@editor_required
@require_http_methods(["GET", "POST"])
def judge_new(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    if request.method == "GET":
        return _render_form(request, experiment, JudgeForm.blank(list(ModelEndpoint.objects.order_by("name"))), None)
    if request.POST.get("_refresh"):
        form = JudgeForm(_refreshed(request.POST, request.POST.get("_builtin_before", "")))
        return _render_form(request, experiment, form, None)
    form = JudgeForm(request.POST)
    form.is_valid()  # every field is optional text: this only fills cleaned_data
    try:
        judge = create_judge(experiment, user=request.user, **form.action_data(judge=None))
    except ConfigError as error:
        form.add_config_errors(error)
        return _render_form(request, experiment, form, None)
    if judge.active:
        state = "automatically evaluating new " + ("sessions" if judge.scope == Scope.SESSION else "traces")
    else:
        state = "automatic evaluation off"
    messages.success(request, f"Created the judge {judge.name} ({state}).")
    return _to_tab(request, experiment)


@login_required
@require_http_methods(["GET", "POST"])
def judge_edit(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    """Everyone may look; editors may save (a change to what it asks or judges makes a new version)."""
    if request.method == "POST":
        return _save_judge(request, experiment_id, judge_id)
    experiment = get_experiment(experiment_id)
    judge = _judge_or_404(experiment, judge_id)
    return _render_form(request, experiment, JudgeForm.of(judge), judge)


@editor_required
def _save_judge(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge_or_404(experiment, judge_id)
    form = JudgeForm(request.POST)
    form.is_valid()
    if request.POST.get("_refresh"):
        return _render_form(request, experiment, form, judge)
    if request.POST.get("_as_shadow"):
        try:
            started = start_from_form(judge, form.action_data(judge=judge), request.user)
        except ConfigError as error:
            form.add_config_errors(error)
            return _render_form(request, experiment, form, judge)
        messages.success(
            request, f"Started shadow v{started.version} of {judge.name}: it judges what the live version (v{judge.version}) judges, counted nowhere until promoted."
        )
        return _to_tab(request, experiment)
    before = judge.version
    try:
        judge = update_judge(judge, user=request.user, **form.action_data(judge=judge))
    except ConfigError as error:
        form.add_config_errors(error)
        return _render_form(request, experiment, form, judge)
    if judge.version != before:
        messages.success(request, f"Saved {judge.name}: now version {judge.version}.")
    else:
        messages.success(request, f"Saved {judge.name} (still version {judge.version}: what it asks and judges is unchanged).")
    return _to_tab(request, experiment)


urlpatterns = [
    path("experiments/<int:experiment_id>/judges", judges_tab, name="experiment-judges"),
    path("experiments/<int:experiment_id>/judges/new", judge_new, name="judge-new"),
    path("experiments/<int:experiment_id>/judges/audit", judges_audit, name="judges-audit"),
    path("experiments/<int:experiment_id>/judges/filter-check", filter_check, name="judge-filter-check"),
    path("experiments/<int:experiment_id>/judges/forecast", judge_forecast, name="judge-forecast"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>", judge_edit, name="judge-edit"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/toggle", judge_toggle, name="judge-toggle"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/delete", judge_delete, name="judge-delete"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/rejudge-errors", judge_rejudge_errors, name="judge-rejudge-errors"),
]
