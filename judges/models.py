from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from judges import secrets
from judges.sampling import is_sampled
from traces.models import Assessment, Experiment, Session, Trace

# A judge created or switched on also judges what was logged up to this long before.
LOOKBACK = timedelta(hours=1)


class OutputMode(models.TextChoices):
    AUTO = "auto", "Automatic (structured output, falling back)"
    JSON_SCHEMA = "json_schema", "Structured output (JSON schema)"
    JSON_OBJECT = "json_object", "JSON mode"
    TEXT = "text", "Plain text"


class ModelEndpoint(models.Model):
    """A model judges can call (our "AI Gateway endpoint"): any litellm model string, optionally at an api_base."""

    name = models.CharField(max_length=100, unique=True)
    model = models.CharField(max_length=200, help_text="litellm model string, e.g. openai/gpt-4.1-mini")
    api_base = models.URLField(max_length=500, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    inference_params = models.JSONField(default=dict, blank=True)
    max_concurrency = models.PositiveIntegerField(default=8)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=60)
    max_retries = models.PositiveIntegerField(default=4)
    # For models litellm's price map doesn't know; USD per million tokens.
    input_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    output_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    context_window = models.PositiveIntegerField(null=True, blank=True, help_text="tokens; default from litellm")
    output_mode = models.CharField(max_length=12, choices=OutputMode.choices, default=OutputMode.AUTO)
    # What "auto" found works with this model, so the fallback is not rediscovered on every call.
    detected_output_mode = models.CharField(max_length=12, choices=OutputMode.choices, blank=True)
    is_standin = models.BooleanField(default=False, help_text="the project's scripted stand-in, not a real model")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def set_api_key(self, raw: str) -> None:
        self.api_key_encrypted = secrets.encrypt(raw)

    def get_api_key(self) -> str:
        return secrets.decrypt(self.api_key_encrypted)

    def effective_output_mode(self) -> str:
        if self.output_mode != OutputMode.AUTO:
            return self.output_mode
        return self.detected_output_mode or OutputMode.JSON_SCHEMA


class Scope(models.TextChoices):
    TRACE = "trace", "Traces"
    SESSION = "session", "Sessions"


class OutputType(models.TextChoices):
    BOOLEAN = "boolean", "Yes / no"
    CATEGORICAL = "categorical", "Categorical"
    INTEGER = "integer", "Integer"
    FLOAT = "float", "Float"
    STRING = "string", "Text"


class Judge(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="judges")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.TRACE)
    builtin_key = models.CharField(max_length=60, blank=True)
    instructions = models.TextField(blank=True)
    output_type = models.CharField(max_length=12, choices=OutputType.choices, default=OutputType.BOOLEAN)
    categories = models.JSONField(default=list, blank=True)
    min_value = models.FloatField(null=True, blank=True)
    max_value = models.FloatField(null=True, blank=True)
    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.PROTECT, related_name="judges")
    sample_rate = models.FloatField(default=1.0)
    filter_string = models.TextField(blank=True)
    active = models.BooleanField(default=False)
    # When "automatically evaluate" was last switched on: it judges what is at most an hour older than this.
    enabled_at = models.DateTimeField(null=True, blank=True)
    session_idle_seconds = models.PositiveIntegerField(null=True, blank=True)
    daily_cost_cap_usd = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    paused_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="judge_name_unique_per_experiment")]
        indexes = [models.Index(fields=["experiment", "active"], name="judge_exp_active")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return bool(self.builtin_key)

    @property
    def is_paused(self) -> bool:
        return bool(self.paused_reason)

    def should_sample(self, target_id: str) -> bool:
        return is_sampled(target_id, self.name, self.sample_rate)

    def lookback_start(self):
        """Traces and sessions logged before this are "too old" for automatic evaluation."""
        return self.enabled_at - LOOKBACK if self.enabled_at else None

    def idle_seconds(self) -> int:
        return self.session_idle_seconds or settings.EVALAPP_SESSION_IDLE_SECONDS

    def behaviour(self) -> dict:
        """What a JudgeVersion records: everything that changes what the judge says or what it judges."""
        return {
            "scope": self.scope,
            "builtin_key": self.builtin_key,
            "instructions": self.instructions,
            "output_type": self.output_type,
            "categories": list(self.categories or []),
            "min_value": self.min_value,
            "max_value": self.max_value,
            "endpoint_id": self.endpoint_id,
            "model": self.endpoint.model if self.endpoint_id else "",
            "sample_rate": self.sample_rate,
            "filter_string": self.filter_string,
            "session_idle_seconds": self.session_idle_seconds,
        }


class JudgeVersion(models.Model):
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    config = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["judge", "-version"]
        constraints = [models.UniqueConstraint(fields=["judge", "version"], name="judge_version_unique")]

    def __str__(self) -> str:
        return f"{self.judge.name} v{self.version}"


class EvaluationStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    # A session generation the judge decided not to judge (filtered or sampled out); recorded so sweeps
    # don't reconsider it every minute. Traces are not recorded this way: there are far more of them.
    SKIPPED = "skipped"


class SweepState(models.Model):
    """How far the sweep has looked at traces (by their last write), so it resumes after downtime."""

    name = models.CharField(max_length=50, primary_key=True)
    watermark = models.DateTimeField()
    # Set when the last run stopped at its size cap: resume right after this row instead of re-reading the overlap.
    cursor_pk = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.watermark.isoformat()}"


class Evaluation(models.Model):
    """One unit of judging work: a judge on one trace, or on one session at one generation (its trace count
    when selected, so new turns make a new generation). Rows are the source of truth; tasks carry ids."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="evaluations")
    judge_version = models.PositiveIntegerField()
    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations")
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations")
    session_generation = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    manual = models.BooleanField(default=False)
    # Set on evaluations asked for by hand as one job (judges.jobs), so the caller can poll their progress.
    job = models.UUIDField(null=True, blank=True, db_index=True)
    assessment = models.OneToOneField(
        Assessment, null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluation"
    )
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(trace__isnull=False) & Q(session__isnull=True))
                | (Q(trace__isnull=True) & Q(session__isnull=False)),
                name="evaluation_on_trace_xor_session",
            ),
            models.UniqueConstraint(
                fields=["judge", "trace"], condition=Q(trace__isnull=False, manual=False), name="evaluation_once_per_trace"
            ),
            models.UniqueConstraint(
                fields=["judge", "session", "session_generation"],
                condition=Q(session__isnull=False, manual=False),
                name="evaluation_once_per_session_generation",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="evaluation_status_time"),
            models.Index(fields=["judge", "status"], name="evaluation_judge_status"),
            models.Index(fields=["judge", "finished_at"], name="evaluation_judge_finished"),  # the Judges tab's 24 h
            models.Index(fields=["status", "lease_expires_at"], name="evaluation_lease"),
        ]

    def __str__(self) -> str:
        target = f"trace {self.trace_id}" if self.trace_id else f"session {self.session_id}#{self.session_generation}"
        return f"{self.judge_id} on {target}: {self.status}"



class EndpointSlot(models.Model):
    """One of an endpoint's `max_concurrency` call slots, leased by whichever worker process is using it, so
    the limit holds across every qcluster on every machine."""

    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.CASCADE, related_name="slots")
    slot = models.PositiveIntegerField()
    holder = models.CharField(max_length=120, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "slot"], name="endpoint_slot_unique")]

    def __str__(self) -> str:
        return f"{self.endpoint_id}#{self.slot}: {self.holder or 'free'}"


class EndpointMinute(models.Model):
    """Calls made to an endpoint in one clock minute, for its requests-per-minute limit across all workers."""

    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.CASCADE, related_name="minutes")
    minute = models.DateTimeField()
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "minute"], name="endpoint_minute_unique")]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.minute:%H:%M}: {self.calls}"
