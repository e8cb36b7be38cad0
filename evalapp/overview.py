"""The Overview's numbers: judge quality and application performance over a time range, bucketed in the database.

Time axis: everything sits at the time of the activity it is about — a trace's volume, latency, tokens and
verdicts at the trace's `started_at`, a conversation's verdicts at its session's `last_trace_at`, judge cost at
the time of what was judged. A quality dip then lines up with the traffic that caused it, and re-judging an old
trace changes that old bucket, not today's.

What counts for a judge: assessments named after it, from the experiment's traces (trace judges) or sessions
(session judges). Quality uses valid LLM_JUDGE assessments only: no error code → judged; "not_applicable" →
neither judged nor an error; any other error code → error. Cost counts every LLM_JUDGE assessment, overridden
ones too (that money was spent). People's feedback under the judge's name (HUMAN) is counted on its own.

Queries: a fixed number whatever the number of judges, traces or buckets — judges, version changes, one
GROUP BY (judge, bucket, state, category) per scope, one GROUP BY bucket over traces, and the latency percentiles.
Percentiles are PostgreSQL's `percentile_cont`. SQLite has none, so a window query ranks durations within
each bucket (`ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY duration_ms)`) and returns only the one or two
rows either side of each percentile's position; Python interpolates between them exactly as `percentile_cont`
does, so both back ends give the same numbers. That is one sort of the range's durations inside SQLite and a
handful of rows back per bucket.

Measured (every trace judged by 5 judges; whole computation, warm cache): 20,000 traces on SQLite — 24 h 24 ms,
7 d 0.14 s, 30 d 0.56 s; 100,000 traces — SQLite 0.08 / 0.74 / 3.3 s, PostgreSQL 15 (default settings)
0.14 / 0.26 / 0.76 s. The cost is the join from traces in range to their assessments; going much further would
take a rollup table kept up to date as assessments are written.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import NotSupportedError, connection
from django.db.models import Aggregate, Case, CharField, Count, DateTimeField, FloatField, Func, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDay, TruncHour, TruncMinute
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from judges.models import Judge, JudgeVersion, OutputType, Scope
from traces.models import Assessment, AssessmentSource, Experiment, Trace, TraceStatus

NOT_APPLICABLE = "not_applicable"
PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PRESET_LABELS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
DEFAULT_PRESET = "7d"
MAX_RANGE = timedelta(days=366)
# Minute buckets for short ranges (an hour in hour buckets is one point), hours up to 48 h, days beyond.
BUCKETS: tuple[tuple[timedelta, str], ...] = ((timedelta(hours=2), "minute"), (timedelta(hours=48), "hour"))
BUCKET_STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
TRUNCS = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}
PERCENTILES = {"p50_ms": 0.5, "p95_ms": 0.95}
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- the time range -------------------------------------------------------------------------------------------


class RangeError(ValueError):
    """A bad `range`/`from`/`to`: each problem with the parameter it is about."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors

    def as_json(self) -> dict[str, Any]:
        return {"detail": str(self), "errors": [{"field": field, "message": message} for field, message in self.errors]}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime  # exclusive
    bucket: str  # "minute" | "hour" | "day"
    preset: str | None = None  # "1h", "24h", "7d", "30d"; None for a custom from/to

    @property
    def label(self) -> str:
        if self.preset:
            return PRESET_LABELS[self.preset]
        return f"{self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC"

    def buckets(self) -> list[datetime]:
        """Every bucket start in the range, oldest first (the first may begin before `start`)."""
        current = truncate(self.start, self.bucket)
        step = BUCKET_STEPS[self.bucket]
        found = []
        while current < self.end:
            found.append(current)
            current += step
        return found


def truncate(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "minute":
        return moment.replace(second=0, microsecond=0)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_for(span: timedelta) -> str:
    for longest, bucket in BUCKETS:
        if span <= longest:
            return bucket
    return "day"


def _parse_moment(field: str, raw: str, *, end_of_day: bool) -> datetime:
    """An ISO date (a whole UTC day: `to` includes it) or an ISO date-time (without an offset it is UTC)."""
    raw = raw.strip()
    moment = day = None
    try:
        if DATE_ONLY.fullmatch(raw):
            day = parse_date(raw)
        else:
            moment = parse_datetime(raw)
    except ValueError:  # well-formed but impossible, like 2026-02-30
        pass
    if moment is None and day is None:
        raise RangeError([(field, f"{raw!r} is not a date; use YYYY-MM-DD or an ISO date-time like 2026-11-20T09:30Z")])
    if moment is None:
        assert isinstance(day, date)
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), tzinfo=UTC)
    elif timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_range(params: Mapping[str, str], now: datetime | None = None) -> TimeRange:
    """From query parameters: `range=1h|24h|7d|30d` (default 7d), or `from` (and optionally `to`, default now)
    as ISO dates or date-times, which win over `range`. Raises RangeError."""
    now = now or timezone.now()
    raw_from, raw_to = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    if raw_from or raw_to:
        if not raw_from:
            raise RangeError([("from", "is required with 'to': give the start of the range, e.g. 2026-11-01")])
        start = _parse_moment("from", raw_from, end_of_day=False)
        end = _parse_moment("to", raw_to, end_of_day=True) if raw_to else now
        if end <= start:
            raise RangeError([("to", "must be after 'from'")])
        if end - start > MAX_RANGE:
            raise RangeError([("to", f"the range can span at most {MAX_RANGE.days} days; narrow it")])
        return TimeRange(start, end, bucket_for(end - start))
    preset = (params.get("range") or DEFAULT_PRESET).strip()
    if preset not in PRESETS:
        raise RangeError([("range", f"{preset!r} is not a range; use one of {', '.join(PRESETS)}, or give 'from' and 'to'")])
    return TimeRange(now - PRESETS[preset], now, bucket_for(PRESETS[preset]), preset)


# --- SQL building blocks (SQLite and PostgreSQL) ------------------------------------------------------------------


class _JSONScalar(Func):
    """A JSON column's scalar as plain SQL, or NULL when the JSON holds another type. Written out per back end
    because the two store JSON differently (text vs jsonb) and Django's `value=True` on SQLite also matches 1."""

    arity = 1
    sqlite = postgresql = ""  # templates; {x} is the JSON expression

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError(f"{type(self).__name__} is written for SQLite and PostgreSQL only")

    def _render(self, compiler, template: str):
        sql, params = compiler.compile(self.source_expressions[0])
        return template.replace("{x}", sql), list(params) * template.count("{x}")

    def as_sqlite(self, compiler, connection, **extra):
        return self._render(compiler, self.sqlite)

    def as_postgresql(self, compiler, connection, **extra):
        return self._render(compiler, self.postgresql)


class JSONBool(_JSONScalar):
    """1 for JSON true, 0 for JSON false, else NULL: Sum() counts passes, Count() counts yes/no verdicts."""

    output_field = IntegerField()
    sqlite = "(CASE json_type({x}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
    postgresql = "(CASE {x} WHEN 'true'::jsonb THEN 1 WHEN 'false'::jsonb THEN 0 END)"


class JSONNumber(_JSONScalar):
    output_field = FloatField()
    sqlite = "(CASE WHEN json_type({x}) IN ('integer', 'real') THEN CAST({x} AS REAL) END)"
    postgresql = "(CASE WHEN jsonb_typeof({x}) = 'number' THEN ({x} #>> '{}')::double precision END)"


class JSONText(_JSONScalar):
    output_field = CharField()
    sqlite = "(CASE WHEN json_type({x}) = 'text' THEN json_extract({x}, '$') END)"
    postgresql = "(CASE WHEN jsonb_typeof({x}) = 'string' THEN {x} #>> '{}' END)"


class BucketStart(Func):
    """The start of the UTC minute, hour or day a date-time falls in. Django's Trunc on SQLite calls a Python
    function for every row; SQLite's own strftime (the stored text is already UTC) made the assessments' GROUP BY
    about a third faster. Elsewhere it is Django's Trunc."""

    arity = 1
    output_field = DateTimeField()
    SQLITE_FORMATS = {"minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}

    def __init__(self, expression: Any, bucket: str):
        super().__init__(TRUNCS[bucket](expression, tzinfo=UTC))
        self.bucket = bucket

    def as_sql(self, compiler, connection, **extra):
        return compiler.compile(self.source_expressions[0])

    def convert_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # PostgreSQL hands back the truncated local (UTC) time without a zone; SQLite's text is parsed by Django.
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0].source_expressions[0])
        return f"strftime(%s, {sql})", [self.SQLITE_FORMATS[self.bucket], *params]


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression): NULLs are ignored."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any):
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def interpolate(ranked: Mapping[int, float], size: int, fraction: float) -> float | None:
    """percentile_cont over `size` sorted values, given (at least) those at the two positions around it."""
    if size == 0:
        return None
    position = fraction * (size - 1)
    low, high = math.floor(position), math.ceil(position)
    return ranked[low] + (ranked[high] - ranked[low]) * (position - low)


def _sqlite_percentiles(traces: QuerySet, trunc: Func | None) -> dict[datetime | None, dict[str, float | None]]:
    """Latency percentiles per bucket (or over everything when `trunc` is None) without sending the rows to Python."""
    inner = traces.filter(duration_ms__isnull=False).annotate(bucket=trunc if trunc is not None else Value(None, output_field=CharField()))
    inner_sql, params = inner.values("bucket", "duration_ms").query.sql_with_params()
    near = " OR ".join(f"(position > {fraction!r} * (size - 1) - 1 AND position < {fraction!r} * (size - 1) + 1)" for fraction in PERCENTILES.values())
    sql = (
        "SELECT bucket, position, size, duration_ms FROM ("
        "  SELECT bucket, duration_ms,"
        "         ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY duration_ms) - 1 AS position,"
        "         COUNT(*) OVER (PARTITION BY bucket) AS size"
        f"  FROM ({inner_sql}) AS ranged"
        f") AS ranked WHERE {near}"
    )
    ranked: dict[Any, dict[int, float]] = defaultdict(dict)
    sizes: dict[Any, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for bucket, position, size, duration in cursor.fetchall():
            ranked[bucket][position] = float(duration)
            sizes[bucket] = size
    result = {}
    for raw_bucket, values in ranked.items():
        # The SQLite back end returns truncated date-times as text.
        bucket = datetime.fromisoformat(raw_bucket).replace(tzinfo=UTC) if raw_bucket is not None else None
        result[bucket] = {name: interpolate(values, sizes[raw_bucket], fraction) for name, fraction in PERCENTILES.items()}
    return result


# --- the aggregates ----------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _money(amount: Decimal | float | None) -> float:
    return round(float(amount or 0), 6)


def _judge_rows(experiment: Experiment, judges: list[Judge], scope: str, time_range: TimeRange) -> Iterable[dict[str, Any]]:
    """One row per (judge name, bucket, state, category) for one scope. `state` sorts each assessment once
    (judged, error, not_applicable, human, overridden) instead of a FILTER clause per aggregate (about a quarter
    faster on SQLite); `category` is only set on categorical judges' verdicts."""
    names = [judge.name for judge in judges if judge.scope == scope]
    if not names:
        return []
    if scope == Scope.TRACE:
        target, moment = Q(trace__experiment=experiment), "trace__started_at"
    else:
        target, moment = Q(session__experiment=experiment), "session__last_trace_at"
    categorical = [judge.name for judge in judges if judge.scope == scope and judge.output_type == OutputType.CATEGORICAL]
    state = Case(
        When(valid=False, then=Value("overridden")),
        When(source_type=AssessmentSource.HUMAN, then=Value("human")),
        When(error_code="", then=Value("judged")),
        When(error_code=NOT_APPLICABLE, then=Value("not_applicable")),
        default=Value("error"),
        output_field=CharField(),
    )
    verdict = Q(source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code="")
    return (
        Assessment.objects.filter(
            target,
            name__in=names,
            source_type__in=[AssessmentSource.LLM_JUDGE, AssessmentSource.HUMAN],
            **{f"{moment}__gte": time_range.start, f"{moment}__lt": time_range.end},
        )
        .annotate(
            bucket=BucketStart(moment, time_range.bucket),
            state=state,
            category=Case(When(verdict & Q(name__in=categorical), then=JSONText("value")), default=None, output_field=CharField()),
        )
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


_COUNTERS = ("judged", "errors", "not_applicable", "passes", "yes_no", "number_sum", "numbers", "human", "human_passes", "human_yes_no")


def _quality(judge: Judge, counts: Mapping[str, float], categories: Mapping[str, int]) -> dict[str, Any]:
    """pass_rate / mean / shares for one judge over one set of counts (a bucket or the whole range)."""
    if judge.output_type == OutputType.BOOLEAN:
        return {"pass_rate": _ratio(counts["passes"], counts["yes_no"])}
    if judge.output_type in (OutputType.INTEGER, OutputType.FLOAT):
        return {"mean": round(counts["number_sum"] / counts["numbers"], 4) if counts["numbers"] else None}
    if judge.output_type == OutputType.CATEGORICAL:
        total = sum(categories.values())
        return {"shares": {name: _ratio(count, total) for name, count in categories.items()} if total else {}}
    return {}


def _category_order(judge: Judge, seen: Iterable[str]) -> list[str]:
    declared = [str(category) for category in judge.categories or []]
    return declared + sorted(set(seen) - set(declared))


def _judge_summaries(experiment: Experiment, time_range: TimeRange, buckets: list[datetime]) -> tuple[list[dict[str, Any]], dict[datetime, float]]:
    judges = list(Judge.objects.filter(experiment=experiment).order_by("name"))
    versions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in JudgeVersion.objects.filter(
        judge__experiment=experiment, created_at__gte=time_range.start, created_at__lt=time_range.end
    ).order_by("created_at", "version").values("judge_id", "version", "created_at"):
        versions[row["judge_id"]].append({"version": row["version"], "created_at": _iso(row["created_at"])})

    per_bucket: dict[tuple[str, datetime], dict[str, float]] = defaultdict(lambda: dict.fromkeys(_COUNTERS, 0))
    categories: dict[tuple[str, datetime], dict[str, int]] = defaultdict(dict)
    cost: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
    for scope in (Scope.TRACE, Scope.SESSION):
        for row in _judge_rows(experiment, judges, scope, time_range):
            key = (row["name"], row["bucket"])
            counts, state = per_bucket[key], row["state"]
            cost[key] += row["cost"] or 0  # re-runs (overridden) cost money too
            if state == "judged":
                counts["judged"] += row["count"]
                for counter in ("passes", "yes_no", "number_sum", "numbers"):
                    counts[counter] += row[counter] or 0
                if row["category"] is not None:
                    categories[key][row["category"]] = categories[key].get(row["category"], 0) + row["count"]
            elif state in ("error", "not_applicable"):
                counts["errors" if state == "error" else "not_applicable"] += row["count"]
            elif state == "human":
                counts["human"] += row["count"]
                counts["human_passes"] += row["passes"] or 0
                counts["human_yes_no"] += row["yes_no"]

    summaries = []
    cost_by_bucket: dict[datetime, float] = defaultdict(float)
    for judge in judges:
        total = dict.fromkeys(_COUNTERS, 0)
        total_categories: dict[str, int] = defaultdict(int)
        total_cost = Decimal(0)
        series = []
        order = _category_order(judge, {name for (judge_name, _), found in categories.items() if judge_name == judge.name for name in found})
        for bucket in buckets:
            key = (judge.name, bucket)
            counts = per_bucket.get(key) or dict.fromkeys(_COUNTERS, 0)
            found = categories.get(key, {})
            for counter in _COUNTERS:
                total[counter] += counts[counter]
            for name, count in found.items():
                total_categories[name] += count
            total_cost += cost.get(key, 0)
            cost_by_bucket[bucket] += float(cost.get(key, 0))
            ordered = {name: found.get(name, 0) for name in order}
            series.append({"bucket": _iso(bucket), "judged": counts["judged"], "errors": counts["errors"], **_quality(judge, counts, ordered)})
        overall = _quality(judge, total, {name: total_categories.get(name, 0) for name in order})
        summaries.append(
            {
                "name": judge.name,
                "scope": judge.scope,
                "output_type": judge.output_type,
                "active": judge.active,
                "version": judge.version,
                "judged": total["judged"],
                "errors": total["errors"],
                "not_applicable": total["not_applicable"],
                "pass_rate": overall.get("pass_rate"),
                "mean": overall.get("mean"),
                "categories": overall.get("shares") if judge.output_type == OutputType.CATEGORICAL else None,
                "cost_usd": _money(total_cost),
                "human": {"count": total["human"], "pass_rate": _ratio(total["human_passes"], total["human_yes_no"])},
                "series": series,
                "versions": versions.get(judge.pk, []),
            }
        )
    return summaries, cost_by_bucket


def _performance(experiment: Experiment, time_range: TimeRange, buckets: list[datetime], judge_cost: Mapping[datetime, float]) -> dict[str, Any]:
    traces = Trace.objects.filter(experiment=experiment, started_at__gte=time_range.start, started_at__lt=time_range.end)
    trunc = BucketStart("started_at", time_range.bucket)
    postgres = connection.vendor == "postgresql"
    per_bucket = {
        "traces": Count("pk"),
        "errors": Count("pk", filter=Q(status=TraceStatus.ERROR)),
        "tokens": Sum("total_tokens"),
    }
    if postgres:
        per_bucket |= {name: PercentileCont("duration_ms", fraction) for name, fraction in PERCENTILES.items()}
    rows = {row["bucket"]: row for row in traces.annotate(bucket=trunc).values("bucket").annotate(**per_bucket).order_by()}
    if postgres:
        percentiles = {bucket: {name: row[name] for name in PERCENTILES} for bucket, row in rows.items()}
        overall = traces.aggregate(**{name: PercentileCont("duration_ms", fraction) for name, fraction in PERCENTILES.items()})
    else:
        percentiles = _sqlite_percentiles(traces, trunc)
        overall = _sqlite_percentiles(traces, None).get(None, {})

    def rounded(value: float | None) -> float | None:
        return round(value, 1) if value is not None else None

    series = []
    for bucket in buckets:
        row = rows.get(bucket, {})
        count, errors = row.get("traces", 0), row.get("errors", 0)
        series.append(
            {
                "bucket": _iso(bucket),
                "traces": count,
                "errors": errors,
                "error_rate": _ratio(errors, count),
                "p50_ms": rounded(percentiles.get(bucket, {}).get("p50_ms")),
                "p95_ms": rounded(percentiles.get(bucket, {}).get("p95_ms")),
                "tokens": row.get("tokens") or 0,
                "judge_cost_usd": _money(judge_cost.get(bucket)),
            }
        )
    total, errors = sum(point["traces"] for point in series), sum(point["errors"] for point in series)
    return {
        "traces": total,
        "errors": errors,
        "error_rate": _ratio(errors, total),
        "p50_ms": rounded(overall.get("p50_ms")),
        "p95_ms": rounded(overall.get("p95_ms")),
        "tokens": sum(point["tokens"] for point in series),
        "judge_cost_usd": _money(sum(judge_cost.values())),
        "series": series,
    }


def compute_overview(experiment: Experiment, time_range: TimeRange) -> dict[str, Any]:
    """The aggregates behind the Overview tab and GET /api/v1/experiments/<id>/overview (shape documented there)."""
    buckets = time_range.buckets()
    judges, judge_cost = _judge_summaries(experiment, time_range, buckets)
    return {
        "range": {
            "from": _iso(time_range.start),
            "to": _iso(time_range.end),
            "bucket": time_range.bucket,
            "preset": time_range.preset,
        },
        "judges": judges,
        "performance": _performance(experiment, time_range, buckets, judge_cost),
    }


# --- the experiment list -----------------------------------------------------------------------------------------


def boolean_pass_rates(experiment_ids: list[int], since: datetime) -> dict[int, float | None]:
    """Per experiment id: the share of yes among valid yes/no judge verdicts on what was traced since `since`
    (traces by start, sessions by last turn). Two queries, whatever the number of experiments; naming the
    experiments lets both walk the (experiment, time) indexes instead of every assessment ever made."""
    verdict = Q(source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code="")
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for experiment_field, moment in (("trace__experiment_id", "trace__started_at"), ("session__experiment_id", "session__last_trace_at")):
        rows = (
            Assessment.objects.filter(verdict, **{f"{experiment_field}__in": experiment_ids, f"{moment}__gte": since})
            .values(experiment_field)
            .annotate(passes=Sum(JSONBool("value")), yes_no=Count(JSONBool("value")))
            .order_by()
        )
        for row in rows:
            counts[row[experiment_field]][0] += row["passes"] or 0
            counts[row[experiment_field]][1] += row["yes_no"]
    return {experiment_id: _ratio(passes, yes_no) for experiment_id, (passes, yes_no) in counts.items() if yes_no}

