"""The alert check: measure every rule (evalapp.alerts.figures), open an alert when one breaks, resolve it once
the rule holds again by the hysteresis margin, and queue the notifications (evalapp.alerts.notify).

One check per minute (evalapp.tasks.check_alerts). Below a rule's `min_samples` nothing opens or resolves: a
quiet hour is not a recovery, and 1 "no" of 2 is not a crash."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from evalapp.alerts import notify
from evalapp.alerts.figures import Figures, Tallies, changed_within, earliest_start, measure, versions_made, windows
from evalapp.models import DROP_KINDS, AlertEvent, AlertKind, AlertRule, AlertStatus

logger = logging.getLogger(__name__)

BELOW = {AlertKind.PASS_RATE_BELOW, AlertKind.MEAN_BELOW}
RATES = {AlertKind.PASS_RATE_BELOW, AlertKind.PASS_RATE_DROP, AlertKind.JUDGE_ERROR_RATE_ABOVE, AlertKind.TRACE_ERROR_RATE_ABOVE}
# The kinds that count samples; a cost is an amount, whatever the number of calls behind it.
SAMPLED = set(AlertKind) - {AlertKind.JUDGE_COST_ABOVE}

JUDGE_CHANGED, QUALITY_DROPPED, THRESHOLD_CROSSED = "judge changed", "quality dropped", "threshold crossed"


def default_hysteresis(kind: str, threshold: float) -> float:
    """The margin a figure must clear to resolve an alert, when the rule doesn't set one: 2 points for a rate, half
    the drop for a drop, 5% of the threshold otherwise."""
    if kind in DROP_KINDS:
        return abs(threshold) / 2
    if kind in RATES:
        return 0.02
    return abs(threshold) * 0.05


def _enough(rule: AlertRule, figures: Figures) -> bool:
    return figures.value is not None and (rule.kind not in SAMPLED or figures.n >= rule.min_samples)


def breached(rule: AlertRule, figures: Figures) -> bool:
    if not _enough(rule, figures):
        return False
    if rule.kind in DROP_KINDS:
        return (
            figures.previous is not None
            and figures.previous_n >= rule.min_samples
            and figures.previous - figures.value >= rule.threshold
            and figures.p_value is not None
            and figures.p_value < rule.significance
        )
    if rule.kind in RATES or rule.kind in BELOW:
        # Chance alone moves a small window's figure a lot: open only when the whole 95% interval is beyond the line.
        if figures.low is None or figures.high is None:
            return False
        return figures.high < rule.threshold if rule.kind in BELOW else figures.low > rule.threshold
    return figures.value > rule.threshold


def recovered(rule: AlertRule, figures: Figures, event: AlertEvent) -> bool:
    if not _enough(rule, figures):
        return False
    if rule.kind in DROP_KINDS:
        baseline = event.figures.get("previous")
        return baseline is None or figures.value >= baseline - rule.hysteresis
    if rule.kind in BELOW:
        return figures.value >= rule.threshold + rule.hysteresis
    return figures.value <= rule.threshold - rule.hysteresis


# --- words -------------------------------------------------------------------------------------------------------


def show(kind: str, value: float | None) -> str:
    """A rule's figure as a person reads it."""
    if value is None:
        return "—"
    if kind in RATES:
        return f"{value * 100:.1f}%"
    if kind == AlertKind.JUDGE_COST_ABOVE:
        return f"${value:,.4f}"
    if kind == AlertKind.LATENCY_P95_ABOVE:
        return f"{value:,.0f} ms"
    return f"{value:.3g}"


def describe(rule: AlertRule, figures: Figures) -> str:
    """One sentence: the figure, its n and interval (or test), and what the rule says."""
    subject = {
        AlertKind.PASS_RATE_BELOW: "pass rate", AlertKind.PASS_RATE_DROP: "pass rate", AlertKind.MEAN_BELOW: "mean score",
        AlertKind.MEAN_DROP: "mean score", AlertKind.JUDGE_ERROR_RATE_ABOVE: "error rate", AlertKind.JUDGE_COST_ABOVE: "cost per day",
        AlertKind.TRACE_ERROR_RATE_ABOVE: "trace error rate", AlertKind.LATENCY_P95_ABOVE: "trace latency p95",
    }[AlertKind(rule.kind)]
    who = f"{rule.judge.name} {subject}" if rule.judge_id else subject.capitalize()
    window = f"the last {rule.window_minutes} min"
    interval = f", 95% CI {show(rule.kind, figures.low)}–{show(rule.kind, figures.high)}" if figures.low is not None else ""
    if rule.kind in DROP_KINDS:
        test = "Fisher's exact test" if rule.kind == AlertKind.PASS_RATE_DROP else "Welch's t-test"
        p_value = f"{figures.p_value:.2g}" if figures.p_value is not None else "—"
        return (
            f"{who} {show(rule.kind, figures.value)} (n = {figures.n}{interval}) in {window} against "
            f"{show(rule.kind, figures.previous)} (n = {figures.previous_n}) in the {rule.window_minutes} min before "
            f"({test}, one-sided p = {p_value}; alert at a drop of {show(rule.kind, rule.threshold)} with p < {rule.significance:g})"
        )
    side = "below" if rule.kind in BELOW else "above"
    confidence = " (the whole interval)" if rule.kind in RATES | BELOW else ""
    return f"{who} {show(rule.kind, figures.value)} (n = {figures.n}{interval}) in {window}; alert {side} {show(rule.kind, rule.threshold)}{confidence}"


# --- the check ---------------------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    rules: int = 0
    opened: int = 0
    resolved: int = 0
    delivered: int = 0
    failed: int = 0


def check_rules(now: datetime | None = None) -> CheckReport:
    """Measure every rule, open and resolve alerts, then send the notifications that are due."""
    now = now or timezone.now()
    report = CheckReport()
    by_experiment: dict[int, list[AlertRule]] = defaultdict(list)
    for rule in AlertRule.objects.filter(experiment__deleting_since__isnull=True).select_related("experiment", "judge"):  # not one being deleted
        by_experiment[rule.experiment_id].append(rule)
    checked: list[AlertRule] = []
    active = {event.rule_id: event for event in AlertEvent.objects.exclude(status=AlertStatus.RESOLVED).order_by("opened_at")}
    for rules in by_experiment.values():
        tallies = Tallies(rules[0].experiment, rules)
        made = versions_made(rules[0].experiment, earliest_start(rules, now))
        for rule in rules:
            report.rules += 1
            figures = measure(tallies, rule, now)
            current, previous = windows(rule, now)
            figures.versions_changed = changed_within(made, rule, (previous or current)[0])
            event = active.get(rule.pk)
            if event is None and breached(rule, figures):
                _open(rule, figures, now)
                report.opened += 1
            elif event is not None and recovered(rule, figures, event):
                _resolve(event, figures, now)
                report.resolved += 1
            rule.last_checked_at, rule.last_figures = now, figures.as_json()
            checked.append(rule)
    AlertRule.objects.bulk_update(checked, ["last_checked_at", "last_figures"], batch_size=500)
    delivered, failed = notify.deliver_due(now)
    report.delivered, report.failed = delivered, failed
    return report


def _cause(rule: AlertRule, figures: Figures) -> str:
    if figures.versions_changed:
        return JUDGE_CHANGED
    return QUALITY_DROPPED if rule.kind in BELOW | DROP_KINDS else THRESHOLD_CROSSED


@transaction.atomic
def _open(rule: AlertRule, figures: Figures, now: datetime) -> AlertEvent:
    cause = _cause(rule, figures)
    summary = describe(rule, figures)
    if cause == JUDGE_CHANGED:
        summary += f". The judge changed in this period (version {', '.join(map(str, figures.versions_changed))}): the drop may be the new judge's, not the application's."
    current, _ = windows(rule, now)
    event = AlertEvent.objects.create(
        rule=rule, cause=cause, summary=summary, figures=figures.as_json(), window_start=current[0], window_end=current[1], opened_at=now
    )
    logger.info("alert opened: rule %s (%s): %s", rule.pk, cause, summary)
    notify.queue(event, "opened", now)
    return event


@transaction.atomic
def _resolve(event: AlertEvent, figures: Figures, now: datetime) -> None:
    event.status, event.resolved_at, event.resolved_figures = AlertStatus.RESOLVED, now, figures.as_json()
    event.save(update_fields=["status", "resolved_at", "resolved_figures"])
    logger.info("alert resolved: rule %s", event.rule_id)
    notify.queue(event, "resolved", now)
