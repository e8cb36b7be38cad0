from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, Count, F, Max, Min, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from traces.bulk import upsert
from traces.models import Experiment, Session, Span, Trace
from traces.payload import PayloadError
from traces.records import SpanIn, TraceFields, TraceIn, build_trace_fields
from traces.signals import traces_ingested, traces_written

logger = logging.getLogger(__name__)

TRACE_UPDATE_FIELDS = [
    "name",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "request",
    "response",
    "request_preview",
    "response_preview",
    "metadata",
    "tags",
    "session_id",
    "user_id",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "span_count",
    "updated_at",
]
SPAN_UPDATE_FIELDS = [
    "parent_span_id",
    "name",
    "span_type",
    "started_at",
    "ended_at",
    "status",
    "status_message",
    "inputs",
    "outputs",
    "attributes",
    "events",
]


@dataclass
class IngestResult:
    created: int = 0
    updated: int = 0
    spans: int = 0
    trace_ids: list[str] = field(default_factory=list)
    trace_pks: list[int] = field(default_factory=list)
    session_pks: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"created": self.created, "updated": self.updated, "spans": self.spans, "trace_ids": self.trace_ids}


def create_experiment(name: str, description: str = "") -> Experiment:
    return Experiment.objects.create(name=name.strip(), description=description.strip())


def _span_from_row(row: Span) -> SpanIn:
    return SpanIn(
        span_id=row.span_id,
        parent_span_id=row.parent_span_id,
        name=row.name,
        span_type=row.span_type,
        started_at=row.started_at,
        ended_at=row.ended_at,
        status=row.status,
        status_message=row.status_message,
        inputs=row.inputs,
        outputs=row.outputs,
        attributes=row.attributes,
        events=row.events,
    )


def _fields_from_row(row: Trace) -> TraceFields:
    return TraceFields(**{name: getattr(row, name) for name in TraceFields.__dataclass_fields__})


def ingest_traces(experiment: Experiment, batch: list[TraceIn]) -> IngestResult:
    """Write a validated batch: traces and spans upserted by id (a re-send updates, never duplicates), the
    sessions they belong to recounted, all in one transaction. Judging is triggered on commit, never awaited.

    Spans of one trace may arrive over several calls; the trace's fields are rebuilt from all spans known.
    Raises PayloadError (nothing written) if a trace id already belongs to another experiment.
    """
    result = IngestResult()
    if not batch:
        return result
    with transaction.atomic():
        trace_ids = [trace.trace_id for trace in batch]
        _lock_trace_ids(trace_ids)
        # After the locks (SQLite's write lock is taken at BEGIN): `created_at` is then as close to the commit as
        # it can be, which is what "logged since" questions (the Traces tab's new-traces notice) rely on.
        now = timezone.now()
        existing = {row.trace_id: row for row in Trace.objects.filter(trace_id__in=trace_ids)}
        conflicts = [
            (f"traces[{index}].trace_id", f"{trace.trace_id!r} already belongs to another experiment (id {existing[trace.trace_id].experiment_id})")
            for index, trace in enumerate(batch)
            if trace.trace_id in existing and existing[trace.trace_id].experiment_id != experiment.pk
        ]
        if conflicts:
            raise PayloadError(conflicts)

        known_spans: dict[int, dict[str, SpanIn]] = {}
        if existing:
            for row in Span.objects.filter(trace__in=[row.pk for row in existing.values()]):
                known_spans.setdefault(row.trace_id, {})[row.span_id] = _span_from_row(row)

        touched_sessions: set[str] = set()
        rows: list[dict] = []
        for trace in batch:
            old = existing.get(trace.trace_id)
            spans = dict(known_spans.get(old.pk, {})) if old else {}
            for span in trace.spans:
                spans[span.span_id] = span
            fields = build_trace_fields(trace, list(spans.values()), _fields_from_row(old) if old else None)
            if old and old.session_id and old.session_id != fields.session_id:
                touched_sessions.add(old.session_id)
            if fields.session_id:
                touched_sessions.add(fields.session_id)
            rows.append(
                {
                    "trace_id": trace.trace_id,
                    "experiment_id": experiment.pk,
                    "created_at": old.created_at if old else now,
                    "updated_at": now,
                    **fields.__dict__,
                }
            )
        pk_by_trace_id = {
            trace_id: pk
            for pk, trace_id in upsert(
                Trace, rows, conflict=["trace_id"], update=TRACE_UPDATE_FIELDS, returning=["id", "trace_id"]
            )
        }
        span_rows = [
            {
                "trace_id": pk_by_trace_id[trace.trace_id],
                "span_id": span.span_id,
                "parent_span_id": span.parent_span_id,
                "name": span.name,
                "span_type": span.span_type,
                "started_at": span.started_at,
                "ended_at": span.ended_at,
                "status": span.status,
                "status_message": span.status_message,
                "inputs": span.inputs,
                "outputs": span.outputs,
                "attributes": span.attributes,
                "events": span.events,
            }
            for trace in batch
            for span in trace.spans
        ]
        upsert(Span, span_rows, conflict=["trace_id", "span_id"], update=SPAN_UPDATE_FIELDS)
        fresh_sessions = {row["session_id"] for row in rows if row["session_id"]}
        session_pks = _recount_sessions(experiment, touched_sessions, fresh_sessions, now)

        result.created = len(batch) - len(existing)
        result.updated = len(existing)
        result.spans = len(span_rows)
        result.trace_ids = trace_ids
        result.trace_pks = list(pk_by_trace_id.values())
        result.session_pks = session_pks
        experiment_id = experiment.pk
        traces_written.send(sender=Trace, experiment_id=experiment_id, trace_pks=result.trace_pks, session_pks=session_pks)
        transaction.on_commit(
            lambda: traces_ingested.send(
                sender=Trace, experiment_id=experiment_id, trace_pks=result.trace_pks, session_pks=session_pks
            )
        )
    logger.debug(
        "ingested %d traces (%d new, %d updated, %d spans) into experiment %s",
        len(batch),
        result.created,
        result.updated,
        result.spans,
        experiment.pk,
    )
    return result


def _lock_trace_ids(trace_ids: list[str]) -> None:
    """Serialize concurrent ingests of the same trace (spans of one trace sent by two requests at once), so each
    builds the trace from the other's committed spans. SQLite's IMMEDIATE transactions already serialize all
    writers; PostgreSQL gets a transaction-scoped advisory lock per trace id, taken in a fixed order."""
    if connection.vendor != "postgresql" or not trace_ids:
        return
    keys = sorted({int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:8], "big", signed=True) for trace_id in trace_ids})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(key) FROM unnest(%s::bigint[]) AS key ORDER BY key", [keys])


def _recount_sessions(experiment: Experiment, touched: set[str], fresh: set[str], now: datetime) -> list[int]:
    """Bring the touched sessions' first/last time and trace count in line with the traces table.

    Counting (rather than incrementing) keeps re-sends from double counting. The session rows are created if
    missing and locked first, so two concurrent ingests into one session serialize on PostgreSQL too.
    """
    if not touched:
        return []
    ordered = sorted(touched)
    Session.objects.bulk_create(
        [
            Session(experiment=experiment, session_id=session_id, first_trace_at=now, last_trace_at=now, last_ingested_at=now)
            for session_id in ordered
        ],
        ignore_conflicts=True,
    )
    sessions = list(
        Session.objects.select_for_update().filter(experiment=experiment, session_id__in=ordered).order_by("session_id")
    )
    # One UPDATE with correlated aggregates (served by the experiment+session+time index): much cheaper than
    # reading the aggregates back and writing each row.
    of_session = Trace.objects.filter(experiment_id=OuterRef("experiment_id"), session_id=OuterRef("session_id"))

    def aggregate(function, column: str):
        return Subquery(of_session.values("session_id").annotate(result=function(column)).values("result")[:1])

    Session.objects.filter(pk__in=[session.pk for session in sessions]).update(
        first_trace_at=Coalesce(aggregate(Min, "started_at"), F("first_trace_at")),
        last_trace_at=Coalesce(aggregate(Max, "started_at"), F("last_trace_at")),
        trace_count=Coalesce(aggregate(Count, "id"), Value(0)),
        user_id=Coalesce(aggregate(Max, "user_id"), Value("")),
        last_ingested_at=Case(When(session_id__in=sorted(fresh), then=Value(now)), default=F("last_ingested_at")),
    )
    empty = set(
        Session.objects.filter(pk__in=[session.pk for session in sessions], trace_count=0).values_list("pk", flat=True)
    )
    if empty:
        # A session whose traces all moved to another session id; kept if something was said about it.
        Session.objects.filter(pk__in=empty, assessments__isnull=True).delete()
    return [session.pk for session in sessions if session.pk not in empty]
