from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from traces.like import fold_case
from traces.models import Experiment


class Dataset(models.Model):
    """A curated set of records (inputs and what is expected for them) to evaluate an application version on."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Bumped by every change to the dataset's records, so "changed since" is one comparison.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="dataset_name_unique_per_experiment")]

    def __str__(self) -> str:
        return self.name


class RecordSource(models.TextChoices):
    TRACE = "trace", "Trace"
    UPLOAD = "upload", "Upload"
    API = "api", "API"
    # Typed into the page (an edit never changes where a record came from; this is for records made there).
    UI = "ui", "Web page"


class DatasetRecord(models.Model):
    """One case: the inputs, what is expected (any keys: expected_response, expected_facts, guidelines, …), optional
    pre-generated outputs, tags, and where it came from.

    `key` (the SHA-256 of the inputs' canonical JSON, datasets.records.record_key) is unique per dataset: merging a
    record with the same inputs updates this one. Edits happen in place; `version` counts them and `content_hash`
    fingerprints what a run reads (inputs, expectations, outputs), so a run that copied a record's content can tell
    whether it still says the same (docs/design-notes.md, note 39)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="records")
    key = models.CharField(max_length=64)
    inputs = models.JSONField()
    expectations = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    source_type = models.CharField(max_length=10, choices=RecordSource.choices, default=RecordSource.API)
    # The trace a record was made from (not a foreign key: the record outlives the trace's retention).
    source_trace_id = models.CharField(max_length=128, blank=True)
    version = models.PositiveIntegerField(default=1)
    content_hash = models.CharField(max_length=64)
    # Case-folded text of the inputs and expectations, for the records search (datasets.records.search_text).
    search_text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "key"], name="record_inputs_unique_per_dataset")]
        indexes = [models.Index(fields=["dataset", "-created_at", "-id"], name="record_dataset_time")]

    def __str__(self) -> str:
        return f"record {self.pk} of {self.dataset_id}"


def search_records(dataset: Dataset, search: str) -> models.QuerySet[DatasetRecord]:
    """The dataset's records whose inputs or expectations hold `search`, in any case (datasets.records.search_text
    folds the stored text the same way)."""
    records = DatasetRecord.objects.filter(dataset=dataset)
    if search.strip():
        records = records.filter(search_text__contains=fold_case(search.strip()))
    return records
