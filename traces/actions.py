from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from traces.bulk import upsert
from traces.models import Experiment, Session, Span, Trace
from traces.payload import PayloadError
from traces.records import STORED_SPAN_FIELDS, STORED_TRACE_FIELDS, SpanIn, TraceFields, TraceIn, build_trace_fields
from traces.signals import traces_ingested, traces_written

logger = logging.getLogger(__name__)

# Re-sending a trace or a span updates everything stored about it but its identity (and a trace's created_at).
TRACE_UPDATE_FIELDS = [*STORED_TRACE_FIELDS, "updated_at"]
SPAN_UPDATE_FIELDS = [name for name in STORED_SPAN_FIELDS if name != "span_id"]


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


class ExperimentNameTaken(ValueError):
    """The name is already an experiment's; the message says so in words a form or an API error can show."""

    def __init__(self, name: str, *, deleting: bool = False):
        if deleting:
            super().__init__(f"An experiment named {name!r} is being deleted; pick another name, or use this one once it is gone.")
        else:
            super().__init__(f"An experiment named {name!r} already exists; pick another name.")
        self.name = name


def create_experiment(name: str, description: str = "") -> Experiment:
    """A new experiment, name and description trimmed. Raises ExperimentNameTaken if the name is in use, also when
    another request took it between the check and the insert."""
    name = name.strip()
    if (taken := Experiment.all_objects.filter(name=name).first()) is not None:
        raise ExperimentNameTaken(name, deleting=taken.deleting_since is not None)
    try:
        with transaction.atomic():
            return Experiment.objects.create(name=name, description=description.strip())
    except IntegrityError:  # the unique constraint on the name: created by someone else since the check
        raise ExperimentNameTaken(name) from None


def _span_from_row(row: Span) -> SpanIn:
    return SpanIn(**{name: getattr(row, name) for name in STORED_SPAN_FIELDS})


def _fields_from_row(row: Trace) -> TraceFields:
    return TraceFields(**{name: getattr(row, name) for name in STORED_TRACE_FIELDS})


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

        rows, touched_sessions = _trace_rows(experiment, batch, existing, now)
        pk_by_trace_id = {
            trace_id: pk
            for pk, trace_id in upsert(
                Trace, rows, conflict=["trace_id"], update=TRACE_UPDATE_FIELDS, returning=["id", "trace_id"]
            )
        }
        span_rows = [
            {"trace_id": pk_by_trace_id[trace.trace_id], **{name: getattr(span, name) for name in STORED_SPAN_FIELDS}}
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


def _trace_rows(experiment: Experiment, batch: list[TraceIn], existing: dict[str, Trace], now: datetime) -> tuple[list[dict], set[str]]:
    """The batch's trace rows, each rebuilt from all its spans known (stored and new), and the session ids they
    touch (a trace that moved to another session touches its old one too)."""
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
    return rows, touched_sessions


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
    missing and locked first, so two concurrent ingests into one session serialize on PostgreSQL too; the counts
    are taken after the lock (a statement of its own: a snapshot that sees the other ingest's commit).

    Three statements in SQL both databases share (the ORM built and compiled the same ones in about as long as the
    database took to run them, on every request).
    """
    if not touched:
        return []
    ordered = sorted(touched)
    quote = connection.ops.quote_name
    sessions, traces = quote(Session._meta.db_table), quote(Trace._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    names = ", ".join(["%s"] * len(ordered))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {sessions} (experiment_id, session_id, user_id, first_trace_at, last_trace_at, trace_count, last_ingested_at)"
            f" VALUES {', '.join(['(%s, %s, %s, %s, %s, %s, %s)'] * len(ordered))}"
            " ON CONFLICT (experiment_id, session_id) DO NOTHING",
            [value for session_id in ordered for value in (experiment.pk, session_id, "", at, at, 0, at)],
        )
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        cursor.execute(f"SELECT id FROM {sessions} WHERE experiment_id = %s AND session_id IN ({names}) ORDER BY session_id{lock}", [experiment.pk, *ordered])
        pks = [pk for (pk,) in cursor.fetchall()]
        # Correlated aggregates, served by the experiment+session+time index: far cheaper than reading the
        # aggregates back and writing each row.
        of_session = f"FROM {traces} t WHERE t.experiment_id = {sessions}.experiment_id AND t.session_id = {sessions}.session_id"
        fresh_names = sorted(fresh) or [""]
        cursor.execute(
            f"UPDATE {sessions} SET"
            f" first_trace_at = COALESCE((SELECT MIN(t.started_at) {of_session}), first_trace_at),"
            f" last_trace_at = COALESCE((SELECT MAX(t.started_at) {of_session}), last_trace_at),"
            f" trace_count = (SELECT COUNT(*) {of_session}),"
            f" user_id = COALESCE((SELECT MAX(t.user_id) {of_session}), ''),"
            f" last_ingested_at = CASE WHEN session_id IN ({', '.join(['%s'] * len(fresh_names))}) THEN %s ELSE last_ingested_at END"
            f" WHERE id IN ({', '.join(['%s'] * len(pks))}) RETURNING id, trace_count",
            [*fresh_names, at, *pks],
        )
        counted = cursor.fetchall()
    empty = {pk for pk, count in counted if count == 0}
    if empty:
        # A session whose traces all moved to another session id; kept if something was said about it.
        Session.objects.filter(pk__in=empty, assessments__isnull=True).delete()
    return [pk for pk in pks if pk not in empty]
