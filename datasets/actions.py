"""Every change to datasets and their records: the API, the pages and the client all come through here.

Each function is all or nothing (one transaction); bad input raises `PayloadError` (traces.payload) naming each
field or row at fault, and nothing is written."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from datasets.models import Dataset, DatasetRecord, RecordSource
from datasets.records import (
    MAX_RECORDS_PER_MERGE,
    UNSET,
    Errors,
    RecordIn,
    check_expectations,
    check_inputs,
    check_storable,
    check_tags,
    content_hash,
    record_key,
    search_text,
)
from traces.bulk import update_each
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.models import Experiment, Trace, TraceStatus
from traces.payload import PayloadError

logger = logging.getLogger(__name__)

LOOKUP_CHUNK = 500  # keys per IN (...) (SQLite's bound variables)


class DatasetNameTaken(ValueError):
    def __init__(self, name: str):
        super().__init__(f"This experiment already has a dataset named {name!r}; pick another name.")
        self.name = name


@dataclass
class MergeResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    record_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "record_ids": self.record_ids}


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise PayloadError([("name", "must not be blank")])
    if len(name.strip()) > 200:
        raise PayloadError([("name", "is longer than 200 characters")])
    if "\x00" in name:
        raise PayloadError([("name", "holds the NUL character, which can't be stored")])
    return name.strip()


def create_dataset(experiment: Experiment, name: str, description: str = "", *, user: Any = None) -> Dataset:
    """A new, empty dataset. Raises DatasetNameTaken if the experiment has one by that name (also when another
    request took it between the check and the insert)."""
    name = _name(name)
    if not isinstance(description, str) or "\x00" in description:
        raise PayloadError([("description", "must be text")])
    if Dataset.objects.filter(experiment=experiment, name=name).exists():
        raise DatasetNameTaken(name)
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                experiment=experiment, name=name, description=description.strip(), created_by=user if getattr(user, "pk", None) else None
            )
    except IntegrityError:
        raise DatasetNameTaken(name) from None


def delete_dataset(dataset: Dataset) -> None:
    dataset.delete()


def _locked(dataset: Dataset) -> Dataset:
    """The dataset's row, locked until the transaction ends: merges into one dataset take turns (on PostgreSQL; a
    SQLite write transaction already excludes every other writer), so two adding the same inputs can't both insert."""
    return Dataset.objects.select_for_update().get(pk=dataset.pk)


def _existing(dataset: Dataset, keys: list[str]) -> dict[str, DatasetRecord]:
    found: dict[str, DatasetRecord] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        for row in DatasetRecord.objects.filter(dataset=dataset, key__in=keys[start : start + LOOKUP_CHUNK]):
            found[row.key] = row
    return found


def _refresh_derived(row: DatasetRecord) -> None:
    row.content_hash = content_hash(row.inputs, row.expectations, row.outputs)
    row.search_text = search_text(row.inputs, row.expectations)


def _fold(row: DatasetRecord, record: RecordIn) -> bool:
    """Merge `record` into `row` (same inputs): expectations and tags key by key (given keys replace, others stay),
    outputs replaced when given. True if anything changed."""
    before = (row.expectations, row.outputs, row.tags)
    row.expectations = {**(row.expectations or {}), **record.expectations}
    row.tags = {**(row.tags or {}), **record.tags}
    if record.outputs is not UNSET:
        row.outputs = record.outputs
    return (row.expectations, row.outputs, row.tags) != before


UPDATED_FIELDS = ["expectations", "outputs", "tags", "source_trace_id", "version", "content_hash", "search_text", "updated_at"]


def _write_changed(rows: list[DatasetRecord]) -> None:
    update_each(DatasetRecord, rows, UPDATED_FIELDS)


def merge_records(dataset: Dataset, records: list[RecordIn], *, source: str = RecordSource.API) -> MergeResult:
    """Add records, or update the ones with the same inputs: MLflow's `merge_records`. Re-merging the same records
    changes nothing (`unchanged`); one that says more or other expectations, outputs or tags updates the stored
    record (its version goes up). Records are validated before this (datasets.records / uploads)."""
    result = MergeResult()
    if not records:
        return result
    if len(records) > MAX_RECORDS_PER_MERGE:
        raise PayloadError([("records", f"holds {len(records):,} records; merge at most {MAX_RECORDS_PER_MERGE:,} at a time")])
    now = timezone.now()
    with transaction.atomic():
        dataset = _locked(dataset)
        keys = list(dict.fromkeys(record.key for record in records))
        existing = _existing(dataset, keys)
        fresh: dict[str, DatasetRecord] = {}
        changed: dict[str, DatasetRecord] = {}
        touched: dict[str, bool] = {}
        for record in records:
            key = record.key
            row = existing.get(key) or fresh.get(key)
            if row is None:
                row = DatasetRecord(
                    dataset=dataset,
                    key=key,
                    inputs=record.inputs,
                    expectations=dict(record.expectations),
                    outputs=None if record.outputs is UNSET else record.outputs,
                    tags=dict(record.tags),
                    source_type=source,
                    source_trace_id=record.source_trace_id,
                    created_at=now,
                    updated_at=now,
                )
                fresh[key] = row
            elif _fold(row, record):
                if key in existing:
                    changed[key] = row
                if record.source_trace_id and not row.source_trace_id:
                    row.source_trace_id = record.source_trace_id
            touched[key] = True
        for row in [*fresh.values(), *changed.values()]:
            _refresh_derived(row)
        for row in changed.values():
            row.version += 1
            row.updated_at = now
        DatasetRecord.objects.bulk_create(list(fresh.values()), batch_size=500)
        _write_changed(list(changed.values()))
        if fresh or changed:
            Dataset.objects.filter(pk=dataset.pk).update(updated_at=now)
        result.created, result.updated = len(fresh), len(changed)
        result.unchanged = len(touched) - result.created - result.updated
        if any(row.pk is None for row in fresh.values()):  # bulk_create returns ids on PostgreSQL and SQLite 3.35+
            fresh = _existing(dataset, list(fresh))
        ids = {key: row.pk for key, row in {**existing, **fresh}.items()}
        result.record_ids = [ids[key] for key in touched]
    logger.info("dataset %s: %d records merged (%d new, %d updated)", dataset.pk, len(records), result.created, result.updated)
    return result


# --- records from traces ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceSelection:
    """Which of an experiment's traces to add: by id, or by what the Traces tab's filters say (the filter language,
    a status, a start time); `logged_before` pins the set to what was counted before a person confirmed it."""

    trace_ids: tuple[str, ...] = ()
    filter_string: str = ""
    status: str = ""
    since: datetime | None = None
    logged_before: datetime | None = None


def select_traces(experiment: Experiment, selection: TraceSelection) -> QuerySet[Trace]:
    """The traces the selection names; PayloadError for a bad filter or ids not in the experiment."""
    traces = Trace.objects.filter(experiment=experiment)
    if selection.trace_ids:
        ids = list(dict.fromkeys(selection.trace_ids))
        if len(ids) > MAX_RECORDS_PER_MERGE:
            raise PayloadError([("trace_ids", f"holds {len(ids):,} ids; add at most {MAX_RECORDS_PER_MERGE:,} at a time")])
        found = set(traces.filter(trace_id__in=ids).values_list("trace_id", flat=True))
        missing = [trace_id for trace_id in ids if trace_id not in found]
        if missing:
            raise PayloadError([("trace_ids", f"no trace {trace_id!r} in this experiment") for trace_id in missing[:20]])
        traces = traces.filter(trace_id__in=ids)
    if selection.status:
        if selection.status not in TraceStatus.values:
            raise PayloadError([("status", f"must be one of {', '.join(TraceStatus.values)}")])
        traces = traces.filter(status=selection.status)
    if selection.since is not None:
        traces = traces.filter(started_at__gte=selection.since)
    if selection.logged_before is not None:
        traces = traces.filter(created_at__lte=selection.logged_before)
    if selection.filter_string.strip():
        try:
            traces = filter_traces(traces, selection.filter_string)
        except FilterError as error:
            raise PayloadError([("filter_string", str(error))]) from None
    return traces


def record_from_trace(trace: Trace) -> RecordIn | None:
    """A trace as a record: its request as the inputs (a request that is not a JSON object goes under "request"), its
    response as the outputs. None for a trace with no request."""
    if trace.request is None:
        return None
    inputs = trace.request if isinstance(trace.request, dict) and trace.request else {"request": trace.request}
    return RecordIn(inputs=inputs, outputs=trace.response, source_trace_id=trace.trace_id)


@dataclass
class AddTracesResult:
    matched: int
    skipped: int  # traces without a request
    merged: MergeResult

    def as_json(self) -> dict[str, Any]:
        return {"matched": self.matched, "skipped": self.skipped, **self.merged.as_json()}


def add_traces_to_dataset(dataset: Dataset, selection: TraceSelection) -> AddTracesResult:
    """Make a record of each selected trace of the dataset's experiment (merged: a trace whose request is already a
    record's inputs updates that record's outputs). At most MAX_RECORDS_PER_MERGE traces at a time."""
    traces = select_traces(dataset.experiment, selection)
    count = traces.count()
    if count > MAX_RECORDS_PER_MERGE:
        raise PayloadError(
            [("filter_string", f"matches {count:,} traces; add at most {MAX_RECORDS_PER_MERGE:,} at a time (narrow the filter)")]
        )
    records: list[RecordIn] = []
    skipped = 0
    errors = Errors()
    for trace in traces.order_by("started_at", "pk").only("trace_id", "request", "response").iterator(chunk_size=500):
        record = record_from_trace(trace)
        if record is None:
            skipped += 1
        elif check_storable(errors, f"trace {trace.trace_id}", record):
            records.append(record)
    errors.raise_any()
    return AddTracesResult(matched=count, skipped=skipped, merged=merge_records(dataset, records, source=RecordSource.TRACE))


# --- one record -------------------------------------------------------------------------------------------------


def update_record(
    record: DatasetRecord, *, inputs: Any = UNSET, expectations: Any = UNSET, outputs: Any = UNSET, tags: Any = UNSET
) -> DatasetRecord:
    """Replace the given parts of one record (unlike a merge, `expectations={...}` is the whole new set). New inputs
    must not be another record's. The version goes up when anything changed."""
    errors = Errors()
    new = {
        "inputs": record.inputs if inputs is UNSET else check_inputs(errors, "inputs", inputs),
        "expectations": record.expectations if expectations is UNSET else check_expectations(errors, "expectations", expectations),
        "outputs": record.outputs if outputs is UNSET else outputs,
        "tags": record.tags if tags is UNSET else check_tags(errors, "tags", tags),
    }
    errors.raise_any()
    if not check_storable(errors, "", RecordIn(**new)):
        errors.raise_any()
    if all(new[name] == getattr(record, name) for name in new):
        return record
    key = record_key(new["inputs"])
    with transaction.atomic():
        _locked(record.dataset)
        if key != record.key and DatasetRecord.objects.filter(dataset_id=record.dataset_id, key=key).exclude(pk=record.pk).exists():
            other = DatasetRecord.objects.filter(dataset_id=record.dataset_id, key=key).values_list("pk", flat=True).first()
            raise PayloadError([("inputs", f"are record {other}'s inputs already; edit that record instead")])
        for name, value in new.items():
            setattr(record, name, value)
        record.key = key
        record.version += 1
        record.updated_at = timezone.now()
        _refresh_derived(record)
        record.save(update_fields=["inputs", "key", *UPDATED_FIELDS])
        Dataset.objects.filter(pk=record.dataset_id).update(updated_at=record.updated_at)
    return record


def delete_record(record: DatasetRecord) -> None:
    with transaction.atomic():
        Dataset.objects.filter(pk=record.dataset_id).update(updated_at=timezone.now())
        record.delete()
