"""Sums from the raw rows: one GROUP BY per scope over the assessments, one over the traces (raw_tallies), and
exact latency percentiles per bucket (PostgreSQL's percentile_cont; on SQLite, a window query that returns only
the rows around each percentile's position)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import Case, CharField, Count, Func, Q, QuerySet, Sum, Value, When

from evalapp.overview.ranges import TimeRange
from evalapp.overview.sql import BucketStart, DurationBin, PercentileCont
from evalapp.overview.tallies import PERCENTILES, Intervals, JudgeTally, Tally, add_durations, interpolate
from judges.models import Scope
from traces.json_sql import JSONBool, JSONNumber, JSONText
from traces.models import Assessment, AssessmentSource, Experiment, Trace, TraceStatus

NOT_APPLICABLE = "not_applicable"


def _within(experiment_field: str, experiment: Experiment, moment: str, intervals: Intervals) -> Q:
    """Rows of the experiment inside any of the intervals. The experiment is repeated in every OR term: that is
    what lets SQLite search the (experiment, time) index once per interval (MULTI-INDEX OR) instead of walking
    all of the experiment's entries from three intervals up (10 intervals at 100,000 traces: 2 ms instead of 93)."""
    condition = Q()
    for start, end in intervals:
        condition |= Q(**{experiment_field: experiment, f"{moment}__gte": start, f"{moment}__lt": end})
    return condition


def _judge_rows(experiment: Experiment, scope: str, intervals: Intervals, bucket: str, names: list[str] | None, categorical: list[str]) -> Iterable[dict[str, Any]]:
    """One row per (name, bucket, state, category) for one scope. `state` sorts each assessment once (judged,
    error, not_applicable, human, overridden) instead of a FILTER clause per aggregate (about a quarter faster on
    SQLite); `category` is only set on the `categorical` names' verdicts."""
    if names is not None and not names:
        return []
    if scope == Scope.TRACE:
        target, moment = "trace__experiment", "trace__started_at"
    else:
        target, moment = "session__experiment", "session__last_trace_at"
    condition = _within(target, experiment, moment, intervals) & Q(source_type__in=[AssessmentSource.LLM_JUDGE, AssessmentSource.HUMAN])
    if scope == Scope.TRACE:
        condition &= Q(trace__evaluation_run__isnull=True)  # evaluation runs' traces are not production (note 40)
    if names is not None:
        condition &= Q(name__in=names)
    state = Case(
        When(valid=False, then=Value("overridden")),
        When(source_type=AssessmentSource.HUMAN, then=Value("human")),
        When(error_code="", then=Value("judged")),
        When(error_code=NOT_APPLICABLE, then=Value("not_applicable")),
        default=Value("error"),
        output_field=CharField(),
    )
    verdict = Q(source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code="")
    category: Any = Value(None, output_field=CharField())
    if categorical:
        category = Case(When(verdict & Q(name__in=categorical), then=JSONText("value")), default=None, output_field=CharField())
    return (
        Assessment.objects.filter(condition)
        .annotate(bucket=BucketStart(moment, bucket), state=state, category=category)
        .values("name", "bucket", "state", "category")
        .annotate(
            count=Count("pk"),
            passes=Sum(JSONBool("value")),
            yes_no=Count(JSONBool("value")),
            number_sum=Sum(JSONNumber("value")),
            numbers=Count(JSONNumber("value")),
            cost=Sum("cost_usd"),
        )
        .order_by()
    )


def _add_judge_row(judge: JudgeTally, row: Mapping[str, Any]) -> None:
    counts, state = judge.counts, row["state"]
    judge.cost += row["cost"] or 0  # re-runs (overridden) cost money too
    if state == "judged":
        counts["judged"] += row["count"]
        for counter in ("passes", "yes_no", "number_sum", "numbers"):
            counts[counter] += row[counter] or 0
        if row["category"] is not None:
            judge.categories[row["category"]] = judge.categories.get(row["category"], 0) + row["count"]
    elif state in ("error", "not_applicable"):
        counts["errors" if state == "error" else "not_applicable"] += row["count"]
    elif state == "human":
        counts["human"] += row["count"]
        counts["human_passes"] += row["passes"] or 0
        counts["human_yes_no"] += row["yes_no"]


def raw_tallies(
    experiment: Experiment,
    intervals: Intervals,
    bucket: str,
    *,
    names: Mapping[str, list[str]] | None,
    categorical: Mapping[str, list[str]],
    histogram: bool,
    traces: bool = True,
) -> dict[datetime, Tally]:
    """Sum the experiment's rows inside `intervals` ([start, end) each) into a Tally per `bucket` start: three
    queries (trace verdicts, session verdicts, traces). `names` limits each scope to those assessment names
    (None: every name, which is what the rollups keep); category counts are kept for the `categorical` names
    of each scope; `histogram` adds latency histograms; `traces=False` leaves the trace counts out (judges only)."""
    if not intervals:
        return {}
    tallies: dict[datetime, Tally] = defaultdict(Tally)
    for scope in (Scope.TRACE, Scope.SESSION):
        scope_names = None if names is None else names.get(scope, [])
        for row in _judge_rows(experiment, scope, intervals, bucket, scope_names, categorical.get(scope, [])):
            _add_judge_row(tallies[row["bucket"]].judge(scope, row["name"]), row)
    if not traces:
        return dict(tallies)
    group: dict[str, Any] = {"bucket": BucketStart("started_at", bucket)}
    if histogram:
        group["duration_bin"] = DurationBin("duration_ms")
    rows = (
        Trace.objects.filter(_within("experiment", experiment, "started_at", intervals), evaluation_run__isnull=True)
        .annotate(**group)
        .values(*group)
        .annotate(traces=Count("pk"), errors=Count("pk", filter=Q(status=TraceStatus.ERROR)), tokens=Sum("total_tokens"), total_ms=Sum("duration_ms"))
        .order_by()
    )
    for row in rows:
        tally = tallies[row["bucket"]]
        tally.traces += row["traces"]
        tally.errors += row["errors"]
        tally.tokens += int(row["tokens"] or 0)
        if histogram and row["duration_bin"] is not None:
            add_durations(tally.durations, [(int(row["duration_bin"]), (row["traces"], int(row["total_ms"])))])
    return dict(tallies)


def exact_percentiles(experiment: Experiment, time_range: TimeRange) -> dict[datetime | None, dict[str, float | None]]:
    """Latency percentiles per bucket, and over the whole range under the key None."""
    traces = Trace.objects.filter(experiment=experiment, started_at__gte=time_range.start, started_at__lt=time_range.end, evaluation_run__isnull=True)
    trunc = BucketStart("started_at", time_range.bucket)
    if connection.vendor == "postgresql":
        fractions = {name: PercentileCont("duration_ms", fraction) for name, fraction in PERCENTILES.items()}
        found: dict[datetime | None, dict[str, float | None]] = {
            row["bucket"]: {name: row[name] for name in PERCENTILES} for row in traces.annotate(bucket=trunc).values("bucket").annotate(**fractions).order_by()
        }
        found[None] = traces.aggregate(**fractions)
        return found
    return _sqlite_percentiles(traces, trunc)


def _sqlite_percentiles(traces: QuerySet, trunc: Func) -> dict[datetime | None, dict[str, float | None]]:
    """Latency percentiles per bucket and overall (key None), as percentile_cont computes them, from the durations
    sorted here. The Overview asks for them over at most 48 hours (longer ranges use the rollups' histograms), an
    alert over its rule's window: at a million traces a month, a day is 33,000 durations, fetched and sorted in
    ~75 ms, where two window queries ranking them in SQLite (returning only the rows either side of each
    percentile) took ~300 ms."""
    by_bucket: dict[Any, list[float]] = defaultdict(list)
    # Through a plain cursor: the buckets stay text, one parse per bucket instead of Django's per row (two fifths of
    # the 24 h Overview's time went to converting 33,000 of them).
    sql, params = traces.filter(duration_ms__isnull=False).annotate(bucket=trunc).values_list("bucket", "duration_ms").order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for raw_bucket, duration in cursor.fetchall():
            by_bucket[raw_bucket].append(float(duration))
    everything = sorted(duration for durations in by_bucket.values() for duration in durations)
    result: dict[datetime | None, dict[str, float | None]] = {}
    for raw_bucket, durations in by_bucket.items():
        durations.sort()
        bucket = datetime.fromisoformat(raw_bucket).replace(tzinfo=UTC)  # SQLite's truncated date-time, as text
        result[bucket] = {name: interpolate(durations, len(durations), fraction) for name, fraction in PERCENTILES.items()}
    result[None] = {name: interpolate(everything, len(everything), fraction) for name, fraction in PERCENTILES.items()}
    return result
