from __future__ import annotations

from django.db import models
from django.utils import timezone


class OverviewHour(models.Model):
    """One UTC hour of an experiment's Overview numbers, summed from the raw rows (evalapp.overview.rollups).

    `version` goes up with every write that changes what the hour holds (ingest, a verdict, feedback);
    `computed_version` is the version `data` was computed at, so the hour is fresh while the two are equal.
    A row made by a computation starts at version 0, one made by a write at 1 (then `data` is None)."""

    experiment = models.ForeignKey("traces.Experiment", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()  # the hour's start, UTC
    version = models.PositiveIntegerField(default=1)
    computed_version = models.PositiveIntegerField(default=0)
    data = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "hour"], name="overview_hour_unique")]

    def __str__(self) -> str:
        state = "fresh" if self.computed_version == self.version else "stale"
        return f"{self.hour:%Y-%m-%d %H:00} UTC of experiment {self.experiment_id} ({state})"


class AlertKind(models.TextChoices):
    """What a rule watches. The judge kinds name a judge; the trace kinds watch the experiment's traffic."""

    PASS_RATE_BELOW = "pass_rate_below", "Pass rate below"
    MEAN_BELOW = "mean_below", "Mean score below"
    PASS_RATE_DROP = "pass_rate_drop", "Pass rate dropped (against the previous window)"
    MEAN_DROP = "mean_drop", "Mean score dropped (against the previous window)"
    JUDGE_ERROR_RATE_ABOVE = "judge_error_rate_above", "Judge error rate above"
    JUDGE_COST_ABOVE = "judge_cost_above", "Judge cost per day above (USD)"
    TRACE_ERROR_RATE_ABOVE = "trace_error_rate_above", "Trace error rate above"
    LATENCY_P95_ABOVE = "latency_p95_above", "Trace latency p95 above (ms)"


JUDGE_KINDS = {
    AlertKind.PASS_RATE_BELOW, AlertKind.MEAN_BELOW, AlertKind.PASS_RATE_DROP, AlertKind.MEAN_DROP,
    AlertKind.JUDGE_ERROR_RATE_ABOVE, AlertKind.JUDGE_COST_ABOVE,
}
DROP_KINDS = {AlertKind.PASS_RATE_DROP, AlertKind.MEAN_DROP}


class AlertRule(models.Model):
    """A condition the every-minute alert check evaluates (evalapp.alerts.evaluate) over a sliding window.

    Threshold kinds open an alert when the window's figure is on the wrong side of `threshold` — for a rate or a
    mean, its whole 95% interval — and resolve it once the figure is back beyond the threshold by `hysteresis` (so a figure hovering at the line doesn't flap). Drop kinds
    compare the window with the one before it: they open when a one-sided test (Fisher's exact for a pass rate,
    Welch's t for a mean; scipy.stats) finds a drop of at least `threshold` with p < `significance`, and resolve
    once the figure is back within `hysteresis` of the earlier window's. Below `min_samples` nothing changes."""

    experiment = models.ForeignKey("traces.Experiment", on_delete=models.CASCADE, related_name="alert_rules")
    judge = models.ForeignKey("judges.Judge", null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    threshold = models.FloatField()
    hysteresis = models.FloatField(default=0)
    window_minutes = models.PositiveIntegerField(default=60)
    min_samples = models.PositiveIntegerField(default=20)
    significance = models.FloatField(default=0.001)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret_encrypted = models.TextField(blank=True)  # judges.secrets; never shown back
    email_to = models.CharField(max_length=500, blank=True)  # comma-separated addresses
    muted_until = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_figures = models.JSONField(default=dict, blank=True)  # the last check's figures, for the Alerts page
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        target = f"{self.judge.name}: " if self.judge_id else ""
        return f"{target}{self.get_kind_display()} {self.threshold:g}"

    def is_muted(self, now=None) -> bool:
        return self.muted_until is not None and self.muted_until > (now or timezone.now())

    def recipients(self) -> list[str]:
        return [address.strip() for address in self.email_to.split(",") if address.strip()]


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class AlertEvent(models.Model):
    """One firing of a rule: opened with the figures that broke it, maybe acknowledged, resolved when the rule
    holds again. `cause` says "judge changed" when the judge's version changed within the compared windows."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    cause = models.CharField(max_length=40, default="")
    summary = models.TextField()
    figures = models.JSONField(default=dict)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_figures = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["rule", "status"], name="alert_event_rule_status")]

    def __str__(self) -> str:
        return f"{self.rule}: {self.status} since {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status != AlertStatus.RESOLVED


class AlertDelivery(models.Model):
    """A notification of an event's opening or resolution on one channel, with every attempt's outcome. Failed
    webhook deliveries are retried with backoff by the alert check until MAX_ATTEMPTS (evalapp.alerts.notify)."""

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10)  # "webhook" or "email"
    what = models.CharField(max_length=10)  # "opened" or "resolved"
    target = models.CharField(max_length=500)
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # null once delivered or given up
    last_error = models.TextField(blank=True)
    log = models.JSONField(default=list, blank=True)  # [{"at": iso, "outcome": "..."}], one per attempt
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["next_attempt_at"], name="alert_delivery_due")]

    def __str__(self) -> str:
        return f"{self.channel} {self.what} → {self.target}"
