from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class LiveExperiments(models.Manager):
    """Experiments not being deleted: what every list, page and API lookup sees (traces.deletion)."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(deleting_since__isnull=True)


class Experiment(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Traces older than this many days are deleted by the sweep (traces.retention); None follows
    # EVALAPP_RETENTION_DAYS, 0 keeps everything whatever that says.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    # Everything that started before this was deleted by retention: the Overview's stored hours before it are
    # history that can no longer be recounted from the raw rows (evalapp.overview.rollups).
    retained_from = models.DateTimeField(null=True, blank=True)
    # Set when someone asked to delete the experiment (traces.deletion): from then on it is hidden and refuses
    # traces, and a background task deletes what hangs off it in batches, the row itself last.
    deleting_since = models.DateTimeField(null=True, blank=True)
    deleting_traces_total = models.PositiveIntegerField(null=True, blank=True)  # traces it had then (progress)

    objects = LiveExperiments()
    all_objects = models.Manager()  # also those being deleted

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# Labels written out: Django's automatic ones title-case the names ("Ok", "Llm").
class TraceStatus(models.TextChoices):
    OK = "OK", "OK"
    ERROR = "ERROR", "Error"
    IN_PROGRESS = "IN_PROGRESS", "In progress"


class SpanType(models.TextChoices):
    AGENT = "AGENT", "Agent"
    CHAIN = "CHAIN", "Chain"
    CHAT_MODEL = "CHAT_MODEL", "Chat model"
    LLM = "LLM", "LLM"
    RETRIEVER = "RETRIEVER", "Retriever"
    TOOL = "TOOL", "Tool"
    EMBEDDING = "EMBEDDING", "Embedding"
    RERANKER = "RERANKER", "Reranker"
    PARSER = "PARSER", "Parser"
    UNKNOWN = "UNKNOWN", "Unknown"


class SpanStatus(models.TextChoices):
    OK = "OK", "OK"
    ERROR = "ERROR", "Error"
    UNSET = "UNSET", "Unset"


class Trace(models.Model):
    trace_id = models.CharField(max_length=128, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="traces")
    name = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=12, choices=TraceStatus.choices, default=TraceStatus.OK)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    request = models.JSONField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    request_preview = models.CharField(max_length=300, blank=True)
    response_preview = models.CharField(max_length=300, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=200, blank=True)
    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)
    span_count = models.IntegerField(default=0)
    # Set on the traces an offline evaluation run made (its id; design note 40): automatic evaluation, the Overview
    # and alerts leave them out, so a run never counts as production traffic. Null for everything logged.
    evaluation_run = models.UUIDField(null=True, blank=True)
    # What the run's record expects of this trace (expected_response, expected_facts, guidelines, any key), read
    # by judges as {{ expectations }}; null on logged traces.
    expectations = models.JSONField(null=True, blank=True)
    # When the trace was first and last written here (wall clock), for sweeps that catch what an enqueue missed.
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["experiment", "-started_at", "-id"], name="trace_exp_time"),
            models.Index(fields=["experiment", "status", "-started_at"], name="trace_exp_status_time"),
            models.Index(fields=["experiment", "session_id", "started_at"], name="trace_exp_session_time"),
            models.Index(fields=["experiment", "updated_at"], name="trace_exp_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id} ({self.name})"


class Span(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans")
    span_id = models.CharField(max_length=64)
    parent_span_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=300, blank=True)
    span_type = models.CharField(max_length=12, choices=SpanType.choices, default=SpanType.UNKNOWN)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=6, choices=SpanStatus.choices, default=SpanStatus.UNSET)
    status_message = models.TextField(blank=True)
    inputs = models.JSONField(null=True, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trace", "span_id"], name="span_unique_per_trace")]
        indexes = [models.Index(fields=["trace", "started_at"], name="span_trace_time")]

    def __str__(self) -> str:
        return f"{self.name} ({self.span_type})"

    @property
    def duration_ms(self) -> int | None:
        if self.ended_at is None:
            return None
        return int((self.ended_at - self.started_at).total_seconds() * 1000)


class Session(models.Model):
    """A multi-turn conversation: the traces of one experiment that share a session id."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="sessions")
    session_id = models.CharField(max_length=200)
    user_id = models.CharField(max_length=200, blank=True)
    first_trace_at = models.DateTimeField()
    last_trace_at = models.DateTimeField()
    trace_count = models.IntegerField(default=0)
    # Wall-clock time of the last ingest that touched this session: idleness is measured from here, so a
    # client that logs old timestamps late does not make a live conversation look finished.
    last_ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "session_id"], name="session_unique_per_experiment")
        ]
        indexes = [
            models.Index(fields=["experiment", "-last_trace_at"], name="session_exp_last"),
            models.Index(fields=["last_ingested_at"], name="session_last_ingest"),
        ]

    def __str__(self) -> str:
        return self.session_id


class CountedAssessments(models.Manager):
    """Assessments that count: everything but a shadow judge version's verdicts, which are a candidate's trial
    (judges.shadow) and appear in no chart, chip, filter, alert or agreement. `Assessment.all_objects` sees them."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(shadow=False)


class AssessmentSource(models.TextChoices):
    LLM_JUDGE = "LLM_JUDGE", "LLM judge"
    HUMAN = "HUMAN", "Human"
    CODE = "CODE", "Code"


class Assessment(models.Model):
    """A verdict on one trace or one session, by a judge, a person or code. Never deleted when superseded:
    a newer assessment points at the one it `overrides`, which is marked not `valid`."""

    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="assessments")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="assessments"
    )
    name = models.CharField(max_length=200)
    # The verdict as JSON: true/false, a number, a category or free text. Null when `error_code` is set.
    value = models.JSONField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    source_type = models.CharField(max_length=10, choices=AssessmentSource.choices)
    source_id = models.CharField(max_length=200, blank=True)
    judge_name = models.CharField(max_length=200, blank=True)
    judge_version = models.IntegerField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    input_tokens = models.IntegerField(null=True, blank=True)
    output_tokens = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    valid = models.BooleanField(default=True)
    overrides = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="overridden_by"
    )
    metadata = models.JSONField(default=dict, blank=True)
    # Said by a judge's shadow version (a candidate tried beside the live one): shown marked "shadow" on the trace
    # and session pages and the judge's diff page, counted nowhere else (the default manager leaves it out).
    shadow = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = CountedAssessments()
    all_objects = models.Manager()  # also shadow verdicts

    class Meta:
        base_manager_name = "all_objects"
        constraints = [
            models.CheckConstraint(
                condition=(Q(trace__isnull=False) & Q(session__isnull=True))
                | (Q(trace__isnull=True) & Q(session__isnull=False)),
                name="assessment_on_trace_xor_session",
            )
        ]
        indexes = [
            models.Index(fields=["trace", "name"], name="assessment_trace_name"),
            models.Index(fields=["session", "name"], name="assessment_session_name"),
            models.Index(fields=["judge_name", "created_at"], name="assessment_judge_time"),
            # People's labels for a judge (judges.labels): few rows among the judges' many, so only theirs are
            # indexed. Over every verdict, SQLite (no statistics) took this index for the Traces tab's verdicts of
            # 50 traces (name IN … AND source_type = …: more equal columns than trace_id IN …) and read all of them:
            # seconds at a million traces (design note 48).
            models.Index(fields=["name", "valid"], condition=Q(source_type="HUMAN"), name="assessment_human_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value!r}"
