from __future__ import annotations

import json
import zlib
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from judges import secrets
from judges.sampling import is_sampled
from traces.feedback import ValueKind, ValueRule
from traces.models import Assessment, Experiment, Session, Trace

# A judge created or switched on also judges what was logged up to this long before.
LOOKBACK = timedelta(hours=1)


class OutputMode(models.TextChoices):
    AUTO = "auto", "Automatic (structured output, falling back)"
    JSON_SCHEMA = "json_schema", "Structured output (JSON schema)"
    JSON_OBJECT = "json_object", "JSON mode"
    TEXT = "text", "Plain text"


# Evaluation.priority: live work, a judge's look-back, backfills, shadow versions', evaluation runs (notes 24, 40).
LIVE_PRIORITY, LOOKBACK_PRIORITY, BACKFILL_PRIORITY, SHADOW_PRIORITY, RUN_PRIORITY = 0, 1, 2, 3, 4
# Calls in flight an endpoint starts with before its provider has answered (at most its max_concurrency); it then
# adapts. 64, the default ceiling: an exporter's first burst (~50 traces) on a fresh endpoint is judged in one
# round (32 took two: p95 1.7–1.9 s against ≤ 1.5 s, note 52); a provider that can't take it answers 429 and the
# limit halves at once (note 24).
ADAPTIVE_START = 64

# Sent when an endpoint has no key of its own, so litellm doesn't fall back to the server's environment variables.
NO_KEY = "no-key"


class ModelEndpoint(models.Model):
    """A model judges can call (our "AI Gateway endpoint"): any litellm model string, optionally at an api_base."""

    name = models.CharField(max_length=100, unique=True)
    model = models.CharField(max_length=200, help_text="litellm model string, e.g. openai/gpt-4.1-mini")
    api_base = models.URLField(max_length=500, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    inference_params = models.JSONField(default=dict, blank=True)
    # The ceiling of calls in flight at once; the working limit adapts below it (judges.limits: raised while the
    # provider answers fast without 429s, halved on a 429 or a latency jump), as TCP's congestion window does.
    max_concurrency = models.PositiveIntegerField(default=64)
    adaptive_limit = models.FloatField(null=True, blank=True)
    latency_floor_ms = models.FloatField(null=True, blank=True)  # the fastest answers lately (drifts up slowly)
    limit_lowered_at = models.DateTimeField(null=True, blank=True)
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
    # Without a stored key, calls carry no key at all, never the server's own (OPENAI_API_KEY…), unless an admin set
    # this on an endpoint at the provider's own address (no api_base): the server's keys go nowhere else.
    use_server_key = models.BooleanField(default=False)
    # A provider outage (5xx, 429, timeouts, refused connections): its work is retried later, not recorded as an
    # error; after `outage_retry_seconds` of nothing but such failures the endpoint pauses itself, and the sweep
    # checks it every minute and resumes it when it answers again (judges.outages).
    outage_retry_seconds = models.PositiveIntegerField(default=600)
    failing_since = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
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

    def key_for_call(self) -> str:
        """The key a call sends: the stored one; "" (litellm then reads the server's environment) only for an
        admin's `use_server_key` endpoint at the provider's own address; otherwise a placeholder that is no key."""
        if self.api_key_encrypted:
            return self.get_api_key()
        if self.use_server_key and not self.api_base:
            return ""
        return NO_KEY

    @property
    def is_paused(self) -> bool:
        return bool(self.paused_reason)

    @property
    def working_limit(self) -> int:
        """Calls in flight at once as the adaptive limit stands (as loaded; judges.limits reads it fresh)."""
        limit = self.adaptive_limit if self.adaptive_limit is not None else ADAPTIVE_START
        return max(1, min(self.max_concurrency, int(limit)))


class Scope(models.TextChoices):
    TRACE = "trace", "Traces"
    SESSION = "session", "Sessions"


class OutputType(models.TextChoices):
    BOOLEAN = "boolean", "Yes / no"
    CATEGORICAL = "categorical", "Categorical"
    INTEGER = "integer", "Integer"
    FLOAT = "float", "Float"
    STRING = "string", "Text"


FEEDBACK_KINDS = {
    OutputType.BOOLEAN: ValueKind.YES_NO,
    OutputType.INTEGER: ValueKind.WHOLE_NUMBER,
    OutputType.FLOAT: ValueKind.NUMBER,
    OutputType.CATEGORICAL: ValueKind.TEXT,
    OutputType.STRING: ValueKind.TEXT,
}


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
    # When what it asks or judges last changed while it was on: older traffic is left as it was judged.
    changed_at = models.DateTimeField(null=True, blank=True)
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
    def is_paused(self) -> bool:
        return bool(self.paused_reason)

    def describe_value(self, value) -> str:
        """A verdict as this judge's output type reads it: Yes/No, the category, the number with its range, the
        text (quoted, shortened) — for sentences on pages, never Python's repr."""
        if value is None:
            return "no value"
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, (int, float)):
            number = f"{value:g}"
            if self.output_type in (OutputType.INTEGER, OutputType.FLOAT) and self.min_value is not None and self.max_value is not None:
                return f"{number} (on {self.min_value:g}–{self.max_value:g})"
            return number
        text = str(value)
        if self.output_type == OutputType.STRING:
            return f"“{text[:57]}…”" if len(text) > 60 else f"“{text}”"
        return text

    def should_sample(self, target_id: str) -> bool:
        return is_sampled(target_id, self.name, self.sample_rate)

    @property
    def value_rule(self) -> ValueRule:
        """What people's feedback under this judge's name must be: a value the judge itself could give."""
        categories = tuple(self.categories or ()) if self.output_type == OutputType.CATEGORICAL else ()
        return ValueRule(self.name, FEEDBACK_KINDS[self.output_type], categories)

    def lookback_start(self):
        """Traces and sessions logged before this are "too old" for automatic evaluation: an hour before it was
        switched on, or — when it was changed since while on — the change (an edit judges new traffic only)."""
        if not self.enabled_at:
            return None
        start = self.enabled_at - LOOKBACK
        return max(start, self.changed_at) if self.changed_at else start

    def too_old_reason(self, what: str) -> str:
        if self.changed_at and self.enabled_at and self.changed_at > self.enabled_at - LOOKBACK:
            return f"{what} before the judge's settings last changed (v{self.version}): an edit judges new traffic only"
        return f"{what} more than an hour before the judge was switched on"

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


class VersionRole(models.TextChoices):
    LIVE = "live", "Live"
    SHADOW = "shadow", "Shadow"  # a candidate judging the live version's items, counted nowhere (judges.shadow)
    PROMOTED, DISCARDED = ("promoted", "Shadow, promoted"), ("discarded", "Shadow, discarded")  # ended shadows


class LiveVersions(models.Manager):
    """What was live when. Shadow versions are left out (no version mark, no version list); `all_objects` sees them."""
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(role=VersionRole.LIVE)


class JudgeVersion(models.Model):
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    config = models.JSONField()
    role = models.CharField(max_length=10, choices=VersionRole.choices, default=VersionRole.LIVE)
    ended_at = models.DateTimeField(null=True, blank=True)  # a shadow's promotion or discarding
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    objects, all_objects = LiveVersions(), models.Manager()

    class Meta:
        ordering = ["judge", "-version"]
        base_manager_name = "all_objects"
        constraints = [  # numbers unique per judge; one shadow at a time
            models.UniqueConstraint(fields=["judge", "version"], name="judge_version_unique"),
            models.UniqueConstraint(fields=["judge"], condition=Q(role="shadow"), name="judge_one_shadow"),
        ]


class EvaluationStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    # A session generation the judge decided not to judge (filtered or sampled out); recorded so sweeps
    # don't reconsider it every minute. Traces are not recorded this way: there are far more of them.
    SKIPPED = "skipped"


class VerdictState(models.TextChoices):
    """Where one judge's verdict on one trace or session stands — the one ladder the trace page, the tables, the
    API and the worker's selection share (judges.states)."""

    JUDGED = "judged", "Judged"
    ERROR = "error", "Error"
    PENDING = "pending", "Queued"
    RUNNING = "running", "Being judged"
    PAUSED = "paused", "Judge paused"
    JUDGE_OFF = "judge_off", "Automatic evaluation off"
    IN_PROGRESS = "in_progress", "Trace in progress"
    TOO_OLD = "too_old", "Too old"
    FILTERED_OUT = "filtered_out", "Filtered out"
    SAMPLED_OUT = "sampled_out", "Sampled out"
    WAITING_FOR_IDLE = "waiting_for_idle", "Waiting for the conversation to go idle"


class AuditEvent(models.Model):
    """Who changed a judge or a model endpoint, when, and what changed (judges.audit). Endpoint changes belong to
    no experiment (an endpoint serves several) and are shown in every experiment's log."""

    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=40)
    subject = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["experiment", "created_at"], name="audit_experiment_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.subject}"


class JudgeExchange(models.Model):
    """The judge's own words for one LLM assessment: the exact messages sent and the raw answer, zlib-compressed
    JSON/text (a prompt is a few KB and compresses ~5x). Kept EVALAPP_PROMPT_RETENTION_DAYS, then the sweep drops
    it; the assessment stays. Never holds the API key: keys travel in headers, not in messages."""

    assessment = models.OneToOneField(Assessment, on_delete=models.CASCADE, related_name="exchange", primary_key=True)
    messages_z = models.BinaryField()
    answer_z = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"exchange of assessment {self.assessment_id}"

    @classmethod
    def of(cls, assessment: Assessment, messages: list[dict[str, str]], answer: str) -> JudgeExchange:
        return cls(
            assessment=assessment,
            messages_z=zlib.compress(json.dumps(messages, ensure_ascii=False).encode()),
            answer_z=zlib.compress((answer or "").encode()),
        )

    @property
    def messages(self) -> list[dict[str, str]]:
        return json.loads(zlib.decompress(bytes(self.messages_z)))

    @property
    def answer(self) -> str:
        return zlib.decompress(bytes(self.answer_z)).decode()


class JudgeSpend(models.Model):
    """What a capped judge has spent today (UTC) and what calls in flight have reserved, shared by every worker, so
    its daily cap holds across processes and machines (judges.spend)."""

    judge = models.ForeignKey("Judge", on_delete=models.CASCADE, related_name="spend")
    day = models.DateField()
    spent_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["judge", "day"], name="judge_spend_once_a_day")]

    def __str__(self) -> str:
        return f"{self.judge_id} {self.day}: ${self.spent_usd} (+${self.reserved_usd} reserved)"


class SweepState(models.Model):
    """How far the sweep has looked at traces (by their last write), so it resumes after downtime."""

    name = models.CharField(max_length=50, primary_key=True)
    watermark = models.DateTimeField()
    # Set when the last run stopped at its size cap: resume right after this row instead of re-reading the overlap.
    cursor_pk = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.watermark.isoformat()}"


class JudgingBell(models.Model):
    """When a judging task was last queued for a broker queue and not yet started (judges.bell): ingest queues one
    only when none is waiting, instead of a task per request that a running drain has made redundant."""

    queue = models.CharField(max_length=100, primary_key=True)
    rung_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.queue}: {self.rung_at.isoformat() if self.rung_at else 'answered'}"


class Evaluation(models.Model):
    """One unit of judging work: a judge on one trace, or on one session at one generation (its trace count
    when selected, so new turns make a new generation). Rows are the source of truth; tasks carry ids."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="evaluations")
    judge_version = models.PositiveIntegerField()
    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations")
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations")
    session_generation = models.PositiveIntegerField(default=0)
    # A shadow version's work (judges.shadow), recorded as a shadow assessment; null for the live version's.
    shadow = models.ForeignKey(JudgeVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="shadow_evaluations")
    status = models.CharField(max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    manual = models.BooleanField(default=False)
    # Set on evaluations asked for by hand as one job (judges.manual), so the caller can poll their progress.
    job = models.UUIDField(null=True, blank=True, db_index=True)
    assessment = models.OneToOneField(
        Assessment, null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluation"
    )
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    # Live work (a trace arriving now, a session going idle, a person's "judge again") goes before look-back and
    # backfill work, so switching judges on never delays verdicts on new traffic.
    priority = models.PositiveSmallIntegerField(default=0)
    # After a transient provider failure: not claimed again before this (judges.outages).
    not_before = models.DateTimeField(null=True, blank=True)
    # Transient failures of this evaluation while its endpoint answered others: past a few, it is an error.
    transient_failures = models.PositiveIntegerField(default=0)
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
            models.UniqueConstraint(fields=["judge", "trace"], condition=Q(trace__isnull=False, manual=False, shadow__isnull=True), name="evaluation_once_per_trace"),
            models.UniqueConstraint(
                fields=["judge", "session", "session_generation"], condition=Q(session__isnull=False, manual=False, shadow__isnull=True), name="evaluation_once_per_session_generation"
            ),
            models.UniqueConstraint(fields=["shadow", "trace"], condition=Q(shadow__isnull=False, trace__isnull=False), name="shadow_once_per_trace"),
            models.UniqueConstraint(fields=["shadow", "session", "session_generation"], condition=Q(shadow__isnull=False, session__isnull=False), name="shadow_once_per_session_generation"),
        ]
        indexes = [
            models.Index(fields=["status", "priority", "created_at"], name="evaluation_status_priority"),
            models.Index(fields=["judge", "status", "finished_at"], name="evaluation_judge_status_time"),  # + the Judges tab's outages
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


class TryRun(models.Model):
    """One "Try it" of the judge form: the unsaved definition, called once by a worker (judges.try_runs) while the
    page polls this row; the web request that asked only writes it. Nothing else is recorded; the sweep drops
    runs after a day."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    id = models.UUIDField(primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    # The unsaved judge as Django's JSON serializer writes it (its pk when an existing judge is being edited).
    definition = models.JSONField()
    shown_name = models.CharField(max_length=200, blank=True)
    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    outcome = models.JSONField(null=True, blank=True)  # judges.try_runs.outcome_json
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"try {self.id}: {self.status}"


class LabelClaim(models.Model):
    """Who is labelling an item of a judge's labelling queue right now (judges.labelling): a short lease, taken
    by a conditional update, so two people labelling one queue never get the same item at once."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="label_claims")
    target_pk = models.BigIntegerField()  # a Trace's or Session's pk, as the judge's scope says
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["judge", "target_pk"], name="label_claim_unique")]

    def __str__(self) -> str:
        return f"{self.judge_id}:{self.target_pk} by {self.user_id}"


class AlignRun(models.Model):
    """One align() of a judge version (judges.align): its labelled pairs split by a hash of the item id into train
    and held-out, candidate instructions made from the train pairs, each candidate and the current instructions
    judged on the held-out items by the judge's endpoint in a worker, and how well each agrees with people there.
    The page and the API poll this row."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True)
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="align_runs")
    judge_version = models.PositiveIntegerField()
    rewrite_endpoint = models.ForeignKey(ModelEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    min_labels = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Target pks (traces or sessions, as the judge's scope says), fixed when the run starts.
    train = models.JSONField(default=list)
    held_out = models.JSONField(default=list)
    calls_done = models.PositiveIntegerField(default=0)
    calls_total = models.PositiveIntegerField(default=0)
    estimate_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    cost_unknown_calls = models.PositiveIntegerField(default=0)  # calls whose model has no known price
    candidates = models.JSONField(default=list, blank=True)  # judges.align: one entry per candidate, "current" first
    # Each call's answer so far, by candidate key and item pk: a run longer than one task goes on where it stopped.
    results = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    picked = models.CharField(max_length=20, blank=True)  # the candidate someone chose ("use this candidate")
    picked_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)  # the last call's answer (a stalled run stops moving)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["judge", "created_at"], name="align_run_judge_time")]

    def __str__(self) -> str:
        return f"align {self.judge_id} v{self.judge_version}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
