"""Hourly rollups behind the Overview's day buckets: per experiment and closed UTC hour, the hour's sums (a
tallies.Tally) in an OverviewHour row, computed from the raw rows (aggregates.raw_tallies) the first time a range
needs the hour and again only after a write touched it.

Freshness: `version` counts the writes that touched the hour, `computed_version` is the version `data` was
computed at; equal means fresh. Writers bump `version` with one INSERT … ON CONFLICT DO UPDATE SET version =
version + 1 (SQL that SQLite and PostgreSQL share):

- inside an ingest's transaction (traces.signals.traces_written): the hours of the batch's traces (their volume,
  latency and trace verdicts), of their sessions' last turn (where session verdicts sit), of each session's
  previous last turn (its verdicts move away from there with a new turn), and, for traces that existed before,
  of their spans' starts (a root span arriving late moves a trace's start; the old start was one of those);
- when an LLM_JUDGE or HUMAN assessment is saved (post_save, inside the writer's transaction), or a drain's round
  of them is written together (traces.signals.assessments_written, the same transaction): each target's
  hour. Superseding flips the older assessment's `valid` with .update() in that transaction, on the same target
  — the same hour.

A reader stores what it computed with `... WHERE version = <the version it read before computing>` (0 for a
row that was missing), so a write landing during the computation leaves the hour stale, never wrongly fresh;
the bumps commit with the writes they announce, never before.

Retention (traces.retention) stores the hours it is about to empty first (traces.signals.traces_expiring), and
deletes without bumping; hours before `Experiment.retained_from` are history, read as stored.

Not covered (such hours keep old numbers until touched again): a trace re-sent with an explicit start_time in
another hour, or with its earliest span's start corrected (its old hour still counts it); assessments deleted,
or changed with QuerySet.update() other than the superseding above (nothing in the project does either today).

Never stored: the current hour and later ones (they change with every ingest) and the partial hours at a
range's edges; those are summed from the raw rows on every request, in the same query as the stale hours.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, transaction

from evalapp.models import OverviewHour
from evalapp.overview.aggregates import raw_tallies
from evalapp.overview.ranges import TimeRange, truncate
from evalapp.overview.tallies import Intervals, Tally
from traces.models import Assessment, AssessmentSource, Session, Span, Trace

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# Bumped when `data`'s layout or meaning changes: rows of another format count as stale and are recomputed.
FORMAT = 1
# Stale hours are summed in one query over their runs; past this many runs, over one span from the first to the
# last (re-summing fresh hours in between is cheaper than a huge OR).
MAX_RAW_INTERVALS = 24
MAX_PARAMETERS = 20_000  # per statement; SQLite allows 32,766
COUNTED_SOURCES = (AssessmentSource.LLM_JUDGE, AssessmentSource.HUMAN)


# --- reading: sums per bucket, refreshing stale hours ----------------------------------------------------------------


def rollup_tallies(experiment: Any, time_range: TimeRange, categorical: Mapping[str, list[str]], now: datetime) -> dict[datetime, Tally]:
    """The range's Tally per bucket: stored fresh hours, plus one raw aggregation over the stale and missing
    hours, the partial hours at the edges and the current hour. Stale and missing hours are then stored.
    Queries: one read, three raw, and one write when anything was stale."""
    start, end = time_range.start, time_range.end
    first = truncate(start, "hour")
    if first < start:
        first += HOUR
    stop = min(truncate(end, "hour"), truncate(now, "hour"))
    if stop <= first:  # not one closed hour inside the range
        first = stop = start
    edges = [(start, first)] if start < first else []
    if stop < end:
        edges.append((stop, end))

    wanted = sorted(f"{scope}:{name}" for scope, names in categorical.items() for name in names)
    fresh: dict[datetime, dict[str, Any]] = {}
    read_versions: dict[datetime, int] = {}
    if first < stop:
        rows = OverviewHour.objects.filter(experiment=experiment, hour__gte=first, hour__lt=stop).values_list("hour", "version", "computed_version", "data")
        # Hours before `retained_from` lost their rows to retention (traces.retention): what was stored for them is
        # all there is, even without the counts of a categorical judge made since (it has no verdicts there).
        retained_from = getattr(experiment, "retained_from", None)
        for hour, version, computed_version, data in rows:
            history = retained_from is not None and hour < retained_from
            if computed_version == version and _usable(data, [] if history else wanted):
                fresh[hour] = data
            else:
                read_versions[hour] = version
    stale = [hour for hour in _hours(first, stop) if hour not in fresh]

    runs = _merge(edges + [(hour, hour + HOUR) for hour in stale])
    if len(runs) > MAX_RAW_INTERVALS:
        runs = _merge(edges + ([(stale[0], stale[-1] + HOUR)] if stale else []))
    raw = raw_tallies(experiment, runs, "hour", names=None, categorical=categorical, histogram=True)
    # Empty hours from before the experiment existed aren't stored (a range back to 1970 would write thousands of
    # rows); summing them from the raw rows is an index lookup that finds nothing.
    born = truncate(experiment.created_at, "hour")
    kept = [hour for hour in stale if hour >= born or hour in raw]
    if kept:
        _store(experiment.pk, [(hour, read_versions.get(hour, 0), encode(raw.get(hour) or Tally(), wanted)) for hour in kept])

    summed: dict[datetime, Tally] = defaultdict(Tally)
    for hour, data in fresh.items():
        add_encoded(summed[truncate(hour, time_range.bucket)], data)
    for hour, tally in raw.items():
        if hour not in fresh:  # with the fallback span, raw also re-summed some fresh hours
            summed[truncate(hour, time_range.bucket)].add(tally)
    return dict(summed)


def _hours(first: datetime, stop: datetime) -> list[datetime]:
    found, hour = [], first
    while hour < stop:
        found.append(hour)
        hour += HOUR
    return found


def _merge(intervals: Iterable[tuple[datetime, datetime]]) -> Intervals:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _usable(data: dict[str, Any] | None, categorical: list[str]) -> bool:
    """Computed in this format, with category counts for every judge that is categorical now."""
    if not data or data.get("format") != FORMAT:
        return False
    return all(key in data["categorical"] for key in categorical)


# --- the stored form ----------------------------------------------------------------------------------------------------


def encode(tally: Tally, categorical: list[str]) -> dict[str, Any]:
    """An hour's Tally as OverviewHour.data. `categorical`: "scope:name" of the judges whose categories were
    counted. `durations` is flat — bin, traces, total ms, bin, … — which reads back markedly faster than pairs."""
    return {
        "format": FORMAT,
        "categorical": categorical,
        "traces": tally.traces,
        "errors": tally.errors,
        "tokens": tally.tokens,
        "durations": [number for bin_, (count, total_ms) in sorted(tally.durations.items()) for number in (bin_, count, total_ms)],
        "judges": [
            [scope, name, {counter: value for counter, value in judge.counts.items() if value}, judge.categories, str(judge.cost)]
            for (scope, name), judge in sorted(tally.judges.items())
        ],
    }


def add_encoded(into: Tally, data: Mapping[str, Any]) -> None:
    """Add a stored hour to `into` (without building a Tally for it: 720 of them per 30-day view)."""
    into.traces += data["traces"]
    into.errors += data["errors"]
    into.tokens += data["tokens"]
    durations, flat = into.durations, data["durations"]
    for index in range(0, len(flat), 3):
        entry = durations.get(flat[index])
        if entry is None:
            durations[flat[index]] = [flat[index + 1], flat[index + 2]]
        else:
            entry[0] += flat[index + 1]
            entry[1] += flat[index + 2]
    for scope, name, counts, categories, cost in data["judges"]:
        judge = into.judge(scope, name)
        for counter, value in counts.items():
            judge.counts[counter] += value
        for category, count in categories.items():
            judge.categories[category] = judge.categories.get(category, 0) + count
        if cost != "0":
            judge.cost += Decimal(cost)


def _store(experiment_id: int, computed: list[tuple[datetime, int, dict[str, Any]]]) -> None:
    """Write computed hours, each only if its version is still the one read before computing (0: no row then).
    A failure only costs a recomputation next time, so it is logged, not raised."""
    ops = connection.ops
    table = ops.quote_name(OverviewHour._meta.db_table)
    encoder = OverviewHour._meta.get_field("data").encoder
    per_statement = MAX_PARAMETERS // 5
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for offset in range(0, len(computed), per_statement):
                chunk = computed[offset : offset + per_statement]
                params: list[Any] = []
                for hour, version, data in chunk:
                    params += [experiment_id, ops.adapt_datetimefield_value(hour), version, version, ops.adapt_json_value(data, encoder)]
                cursor.execute(
                    f"INSERT INTO {table} (experiment_id, hour, version, computed_version, data) VALUES "
                    + ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
                    + " ON CONFLICT (experiment_id, hour) DO UPDATE SET data = excluded.data, computed_version = excluded.computed_version"
                    f" WHERE {table}.version = excluded.version",
                    params,
                )
    except DatabaseError:
        logger.warning("could not store %d overview hours of experiment %s; they will be recomputed", len(computed), experiment_id, exc_info=True)


# --- invalidation -------------------------------------------------------------------------------------------------------


def _hour_of(column: str) -> str:
    """SQL for the UTC hour `column` (a date-time) falls in, as the back end stores OverviewHour.hour."""
    if connection.vendor == "postgresql":
        return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return f"strftime('%%Y-%%m-%%d %%H:00:00', {column})"  # Django's text form of a UTC date-time on SQLite


def _ids(values: Iterable[int]) -> tuple[str, list[Any]]:
    """A subquery over a list of ids with one parameter, however long the list."""
    if connection.vendor == "postgresql":
        return "SELECT unnest(%s::bigint[])", [list(values)]
    return "SELECT value FROM json_each(%s)", [json.dumps(list(values))]


def _bump_sql(select: str) -> str:
    """INSERT the (experiment_id, hour) rows `select` yields as stale, or bump the version of those that exist.
    Rows are taken in hour order, so concurrent bumps and stores lock them in the same order (PostgreSQL)."""
    table = connection.ops.quote_name(OverviewHour._meta.db_table)
    return (
        f"INSERT INTO {table} (experiment_id, hour, version, computed_version) "
        f"SELECT experiment_id, touched_hour, 1, 0 FROM ({select}) AS touched WHERE touched_hour IS NOT NULL ORDER BY touched_hour "
        f"ON CONFLICT (experiment_id, hour) DO UPDATE SET version = {table}.version + 1"
    )


def touch_ingested_hours(trace_pks: list[int], session_pks: list[int]) -> None:
    """Mark stale every hour an ingest changed (see the module docstring): one statement."""
    if not trace_pks and not session_pks:
        return
    traces, trace_ids = _ids(trace_pks)
    sessions, session_ids = _ids(session_pks)
    trace_table, session_table, span_table = (connection.ops.quote_name(model._meta.db_table) for model in (Trace, Session, Span))
    select = (
        f"SELECT t.experiment_id, {_hour_of('t.started_at')} AS touched_hour FROM {trace_table} t WHERE t.id IN ({traces})"
        f" UNION SELECT s.experiment_id, {_hour_of('s.last_trace_at')} FROM {session_table} s WHERE s.id IN ({sessions})"
        f" UNION SELECT s.experiment_id, {_hour_of('MAX(t.started_at)')} FROM {session_table} s JOIN {trace_table} t"
        " ON t.experiment_id = s.experiment_id AND t.session_id = s.session_id"
        f" WHERE s.id IN ({sessions}) AND t.id NOT IN ({traces}) GROUP BY s.id"
        f" UNION SELECT t.experiment_id, {_hour_of('sp.started_at')} FROM {span_table} sp JOIN {trace_table} t ON sp.trace_id = t.id"
        f" WHERE t.id IN ({traces}) AND t.created_at < t.updated_at"
    )
    params = [*trace_ids, *session_ids, *session_ids, *trace_ids, *trace_ids]
    with connection.cursor() as cursor:
        cursor.execute(_bump_sql(select), params)


def touch_assessments_hours(assessments: Iterable[Assessment]) -> None:
    """Mark stale the hour each assessment counts in (its trace's start or its session's last turn; shadow verdicts
    and sources the Overview doesn't count mark nothing): one statement however many."""
    counted = [assessment for assessment in assessments if assessment.source_type in COUNTED_SOURCES and not assessment.shadow]
    trace_pks = sorted({assessment.trace_id for assessment in counted if assessment.trace_id is not None})
    session_pks = sorted({assessment.session_id for assessment in counted if assessment.trace_id is None})
    if not trace_pks and not session_pks:
        return
    traces, trace_ids = _ids(trace_pks)
    sessions, session_ids = _ids(session_pks)
    trace_table, session_table = (connection.ops.quote_name(model._meta.db_table) for model in (Trace, Session))
    select = (
        f"SELECT experiment_id, {_hour_of('started_at')} AS touched_hour FROM {trace_table} WHERE id IN ({traces})"
        f" UNION SELECT experiment_id, {_hour_of('last_trace_at')} FROM {session_table} WHERE id IN ({sessions})"
    )
    with connection.cursor() as cursor:
        cursor.execute(_bump_sql(select), [*trace_ids, *session_ids])


def traces_written_receiver(sender: Any, *, experiment_id: int, trace_pks: list[int], session_pks: list[int], **kwargs: Any) -> None:
    # Inside the ingest's transaction: the traces and their hours' stale marks commit (or roll back) together. A
    # mark lost after the commit would leave the old numbers looking fresh for good.
    touch_ingested_hours(trace_pks, session_pks)


def assessments_written_receiver(sender: Any, *, assessments: list[Assessment], **kwargs: Any) -> None:
    # Inside the writer's transaction, as above: one statement for a batch written with bulk_create.
    touch_assessments_hours(assessments)


def assessment_saved_receiver(sender: Any, instance: Assessment, **kwargs: Any) -> None:
    # Inside the writer's transaction, so the assessment and the stale mark commit (or roll back) together.
    touch_assessments_hours([instance])
