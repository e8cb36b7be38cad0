"""Offline evaluation runs (issue 12): an application version evaluated on a dataset, a list of records or
existing traces, judged by the same judges, engine and limits as automatic evaluation.

Layers: `evaluations` sits above `traces`, `judges` and `datasets` and imports them; none of them imports it.
A run's judging is a job of manual evaluations whose job id is the run's id (`Evaluation.job == run.id`), so
progress, limits and retries are the job's (judges.manual)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from datasets.models import Dataset, DatasetRecord
from traces.models import Experiment, Trace


class RunStatus(models.TextChoices):
    # The client is calling its predict function and logging one trace per row.
    PREDICTING = "predicting", "Predicting"
    # Every row has its trace (or its error); the judges are at work.
    JUDGING = "judging", "Judging"
    DONE = "done", "Done"
    # Stopped by a person, or given up (the client went away before logging every row).
    CANCELLED = "cancelled", "Cancelled"


class EvaluationRun(models.Model):
    """One evaluation of an application version. `judges` and every row's content are copied when it starts, so
    it stays reproducible after the dataset or the judges change (design note 39)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="evaluation_runs")
    # The dataset it read, if any (records given inline or existing traces have none). Kept when the dataset goes.
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    dataset_name = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.PREDICTING)
    # Which judges, pinned: [{"judge_id": 3, "name": "correctness", "version": 2, "output_type": "yes_no"}, ...]
    judges = models.JSONField(default=list)
    # Free-form description of what was evaluated (agent version, git commit, model...), shown on the run page.
    params = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    judging_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["experiment", "-created_at"], name="run_exp_time")]

    def __str__(self) -> str:
        return f"run {self.name} ({self.status})"


class GateMetric(models.TextChoices):
    PASS_RATE = "pass_rate", "pass rate"
    MEAN = "mean", "mean"


class GateOperator(models.TextChoices):
    AT_LEAST = ">=", "at least"
    AT_MOST = "<=", "at most"


class RunGate(models.Model):
    """A quality gate stored with its run: the judge's metric must be at least (or at most) the threshold."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="gates")
    judge_name = models.CharField(max_length=200)
    metric = models.CharField(max_length=10, choices=GateMetric.choices, default=GateMetric.PASS_RATE)
    operator = models.CharField(max_length=2, choices=GateOperator.choices, default=GateOperator.AT_LEAST)
    threshold = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "judge_name", "metric"], name="gate_once_per_run_metric")]


class RunRow(models.Model):
    """One record of a run: a copy of what was evaluated, its trace (the prediction, or the historical trace
    judged) and, when the predict function raised, its error. Verdicts are the evaluations of the run's job on
    the row's trace."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="rows")
    position = models.PositiveIntegerField()
    # The dataset record it copied (null for inline records and traces, or once the record is deleted).
    record = models.ForeignKey(DatasetRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="run_rows")
    record_version = models.PositiveIntegerField(null=True, blank=True)
    record_hash = models.CharField(max_length=64, blank=True)
    # What the run read, as it was when the run started.
    inputs = models.JSONField(default=dict)
    expectations = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    trace = models.ForeignKey(Trace, null=True, blank=True, on_delete=models.SET_NULL, related_name="run_rows")
    # The historical trace this row was read from, when the run evaluated existing traces (its trace is a copy).
    source_trace_id = models.CharField(max_length=128, blank=True)
    # The predict function raised or timed out: recorded, and the run goes on.
    error = models.TextField(blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="run_row_position_unique")]
        indexes = [models.Index(fields=["run", "record"], name="run_row_record")]

    def __str__(self) -> str:
        return f"row {self.position} of {self.run_id}"
