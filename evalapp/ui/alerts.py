"""The Alerts tab: what is firing now (acknowledge it), the rules with their latest figures (mute, delete, add),
the alerts of the past with their deliveries; and the badge the tab bar loads."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import editor_required
from evalapp.alerts.evaluate import describe, show
from evalapp.alerts.figures import Figures
from evalapp.alerts.links import traces_link
from evalapp.alerts.rules import UNITS, AlertRuleForm
from evalapp.models import AlertEvent, AlertRule, AlertStatus
from evalapp.ui.common import get_experiment, render_tab
from traces.payload import whole_number

PAST_PAGE = 20
MUTE_HOURS = (1, 8, 24, 168)


def _rule_row(rule: AlertRule, now) -> dict:
    figures = Figures(**rule.last_figures) if rule.last_figures else None
    return {
        "rule": rule,
        "unit": UNITS[rule.kind],
        "threshold": show(rule.kind, rule.threshold),
        "now": describe(rule, figures) if figures else "Not checked yet (the check runs every minute).",
        "muted": rule.is_muted(now),
    }


def _events(experiment, statuses, before: int | None = None):
    events = AlertEvent.objects.filter(rule__experiment=experiment, status__in=statuses).select_related("rule__judge").prefetch_related("deliveries")
    if before is not None:
        events = events.filter(pk__lt=before)
    return events.order_by("-opened_at", "-pk")


def _tab(request: HttpRequest, experiment, form: AlertRuleForm | None = None, status: int = 200) -> HttpResponse:
    now = timezone.now()
    before = whole_number(request.GET.get("before", ""))
    past = list(_events(experiment, [AlertStatus.RESOLVED], before)[: PAST_PAGE + 1])
    older = past[PAST_PAGE - 1].pk if len(past) > PAST_PAGE else None
    rules = AlertRule.objects.filter(experiment=experiment).select_related("judge")
    context = {
        "active": [{"event": event, "link": traces_link(event.rule, event.window_start, event.window_end)} for event in _events(experiment, [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])],
        "past": [{"event": event, "link": traces_link(event.rule, event.window_start, event.window_end)} for event in past[:PAST_PAGE]],
        "older_url": f"{reverse('experiment-alerts', args=[experiment.pk])}?before={older}" if older else "",
        "rules": [_rule_row(rule, now) for rule in rules],
        "form": form or AlertRuleForm(experiment=experiment),
        "mute_hours": MUTE_HOURS,
    }
    return render_tab(request, experiment, "alerts", "evalapp/alerts/tab.html", context, status=status)


@login_required
@require_GET
def alerts_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    return _tab(request, get_experiment(experiment_id))


@editor_required
@require_POST
def rule_create(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    form = AlertRuleForm(request.POST, experiment=experiment)
    if not form.is_valid():
        return _tab(request, experiment, form, status=400)
    rule = form.save(created_by=request.user.get_username())
    messages.success(request, f"Alert rule added: {rule}. It is checked every minute.")
    return redirect("experiment-alerts", experiment.pk)


def _rule(experiment_id: int, rule_id: int) -> AlertRule:
    return get_object_or_404(AlertRule.objects.select_related("judge"), pk=rule_id, experiment_id=experiment_id)


@editor_required
@require_POST
def rule_mute(request: HttpRequest, experiment_id: int, rule_id: int) -> HttpResponse:
    rule = _rule(experiment_id, rule_id)
    hours = whole_number(request.POST.get("hours", ""))
    if hours not in (0, *MUTE_HOURS):
        return HttpResponse(f"hours must be one of 0, {', '.join(map(str, MUTE_HOURS))}", status=400, content_type="text/plain")
    rule.muted_until = timezone.now() + timedelta(hours=hours) if hours else None
    rule.save(update_fields=["muted_until"])
    messages.success(request, f"Muted {rule} for {hours} h: its alerts are recorded but not sent." if hours else f"{rule} is no longer muted.")
    return redirect("experiment-alerts", experiment_id)


@editor_required
@require_POST
def rule_delete(request: HttpRequest, experiment_id: int, rule_id: int) -> HttpResponse:
    rule = _rule(experiment_id, rule_id)
    name = str(rule)
    rule.delete()
    messages.success(request, f"Deleted the alert rule {name} and its alerts.")
    return redirect("experiment-alerts", experiment_id)


@editor_required
@require_POST
def event_acknowledge(request: HttpRequest, experiment_id: int, event_id: int) -> HttpResponse:
    event = get_object_or_404(AlertEvent, pk=event_id, rule__experiment_id=experiment_id)
    updated = AlertEvent.objects.filter(pk=event.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=request.user.get_username()
    )
    if not updated:
        messages.info(request, "That alert was already acknowledged or has resolved.")
    return redirect("experiment-alerts", experiment_id)


@login_required
@require_GET
def alerts_badge(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The tab bar's count of alerts not yet resolved (loaded after the page, so no tab waits on it)."""
    count = AlertEvent.objects.filter(rule__experiment_id=experiment_id).exclude(status=AlertStatus.RESOLVED).count()
    if not count:
        return HttpResponse("")
    return HttpResponse(f'<span class="badge bad" title="{count} alert{"s" if count != 1 else ""} not resolved">{count}</span>')


urlpatterns = [
    path("experiments/<int:experiment_id>/alerts", alerts_tab, name="experiment-alerts"),
    path("experiments/<int:experiment_id>/alerts/badge", alerts_badge, name="alerts-badge"),
    path("experiments/<int:experiment_id>/alerts/rules", rule_create, name="alert-rule-create"),
    path("experiments/<int:experiment_id>/alerts/rules/<int:rule_id>/mute", rule_mute, name="alert-rule-mute"),
    path("experiments/<int:experiment_id>/alerts/rules/<int:rule_id>/delete", rule_delete, name="alert-rule-delete"),
    path("experiments/<int:experiment_id>/alerts/<int:event_id>/acknowledge", event_acknowledge, name="alert-acknowledge"),
]
