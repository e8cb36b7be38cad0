"""The Overview's numbers: judge quality and application performance over a time range, bucketed in the database.

Time axis: everything sits at the time of the activity it is about — a trace's volume, latency, tokens and
verdicts at the trace's `started_at`, a conversation's verdicts at its session's `last_trace_at`, judge cost at
the time of what was judged. A quality dip then lines up with the traffic that caused it, and re-judging an old
trace changes that old bucket, not today's.

What counts for a judge: assessments named after it, from the experiment's traces (trace judges) or sessions
(session judges). Quality uses valid LLM_JUDGE assessments only: no error code → judged; "not_applicable" →
neither judged nor an error; any other error code → error. Cost counts every LLM_JUDGE assessment, overridden
ones too (that money was spent). People's feedback under the judge's name (HUMAN) is counted on its own.

Two routes, one aggregation. Ranges in minute and hour buckets (up to 48 h) are summed from the raw rows on each
request: judges, version changes, one GROUP BY (name, bucket, state, category) per scope, one GROUP BY bucket over
traces, and two for exact latency percentiles — PostgreSQL's `percentile_cont`; on SQLite a window query ranks
durations within each bucket (`ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY duration_ms)`) and returns only the
rows either side of each percentile's position, and Python interpolates exactly as `percentile_cont` does.
Ranges in day buckets add up hourly rollups (evalapp.rollups): each closed UTC hour is summed once by the same
`raw_tallies`, stored, and summed again only after a write touched it; the range's partial first hour and the
current hour are summed from the raw rows every time. Counts, rates, means, shares, tokens and costs come out
identical either way; latency percentiles over day buckets come from merged per-hour histograms (5%-wide log
bins, each taken at its mean), so they are within 5% and flagged `percentiles_approximate`.

Measured with bench/pages.py (100,000 traces over 30 days, 5 judges, ~420,000 assessments; the whole page):

                                              SQLite              PostgreSQL 15
    24 h (raw, as before), p50 / p95          62 / 64 ms          161 / 171 ms
    30 d raw, as it was                       1.5 s               0.8 s
    30 d first view (sums, stores all hours)  1.5 s               1.2 s
    30 d later views, p50 / p95               51 / 123 ms         61 / 127 ms
    30 d first view after 1,000 new traces    64 ms               76 ms

The p95 tail is Python's cyclic garbage collector (p95 50 ms with it off); a warm view's SQL takes a few ms.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, NotSupportedError, connection, transaction
from django.db.models import Aggregate, Case, CharField, Count, DateTimeField, FloatField, Func, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDay, TruncHour, TruncMinute
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from judges.models import Judge, JudgeVersion, OutputType, Scope
from traces.models import Assessment, AssessmentSource, Experiment, Trace, TraceStatus
from traces.payload import EARLIEST_TIME, LATEST_TIME, supported_utc

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
# Latency histograms (day buckets): bins 5% wide on a log scale, numbered floor(log_1.05(duration_ms)).
HISTOGRAM_BASE = 1.05
_BIN_SCALE = 1 / math.log(HISTOGRAM_BASE)
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
        if not EARLIEST_TIME.year <= day.year < LATEST_TIME.year:  # before adding a day to 9999-12-31
            raise RangeError([(field, f"{day.isoformat()} is outside the years 1970–2099 that evalapp stores")])
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), tzinfo=UTC)
    elif timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        return supported_utc(moment)
    except ValueError as error:
        raise RangeError([(field, str(error))]) from None


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


class DurationBin(Func):
    """A duration's latency histogram bin: floor(log_1.05(ms)); -1 for 0 ms; NULL for none. The same SQL on both
    back ends (SQLite 3.35+ has ln and floor built in; where not, Django adds them)."""

    arity = 1
    output_field = IntegerField()
    template = (
        "(CASE WHEN %(expressions)s < 1 THEN -1"
        f" ELSE CAST(FLOOR(LN(CAST(%(expressions)s AS DOUBLE PRECISION)) * {_BIN_SCALE!r}) AS INTEGER) END)"
    )


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


# --- tallies: sums that add up --------------------------------------------------------------------------------


_COUNTERS = ("judged", "errors", "not_applicable", "passes", "yes_no", "number_sum", "numbers", "human", "human_passes", "human_yes_no")
Intervals = Sequence[tuple[datetime, datetime]]


@dataclass
class JudgeTally:
    """One assessment name's sums, in one scope and one bucket."""

    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    categories: dict[str, int] = field(default_factory=dict)
    cost: Decimal = Decimal(0)

    def add(self, other: JudgeTally) -> None:
        for counter, value in other.counts.items():
            self.counts[counter] += value
        for name, count in other.categories.items():
            self.categories[name] = self.categories.get(name, 0) + count
        self.cost += other.cost


@dataclass
class Tally:
    """What one bucket holds (a minute, an hour, a day, or the part of an hour inside the range) as sums, so a
    day is the sum of its hours. `durations` is the latency histogram: bin (see DurationBin) → [traces, total ms];
    `judges` is keyed by (scope, assessment name)."""

    traces: int = 0
    errors: int = 0
    tokens: int = 0
    durations: dict[int, list[int]] = field(default_factory=dict)
    judges: dict[tuple[str, str], JudgeTally] = field(default_factory=dict)

    def judge(self, scope: str, name: str) -> JudgeTally:
        found = self.judges.get((scope, name))
        if found is None:
            found = self.judges[(scope, name)] = JudgeTally()
        return found

    def add(self, other: Tally) -> None:
        self.traces += other.traces
        self.errors += other.errors
        self.tokens += other.tokens
        add_durations(self.durations, other.durations.items())
        for (scope, name), judge in other.judges.items():
            self.judge(scope, name).add(judge)


def add_durations(into: dict[int, list[int]], bins: Iterable[tuple[int, Sequence[int]]]) -> None:
    for bin_, (count, total_ms) in bins:
        entry = into.get(bin_)
        if entry is None:
            into[bin_] = [count, total_ms]
        else:
            entry[0] += count
            entry[1] += total_ms


def duration_bin(duration_ms: float) -> int:
    """DurationBin in Python."""
    return -1 if duration_ms < 1 else math.floor(math.log(duration_ms) * _BIN_SCALE)


def histogram_percentiles(durations: Mapping[int, Sequence[int]]) -> dict[str, float | None]:
    """percentile_cont over a latency histogram, taking each bin's traces at the bin's mean duration: within
    the bin width (5%) of the exact figure, and exact where each bin holds a single duration."""
    ordered = sorted(durations.items())
    size = sum(count for _, (count, _total) in ordered)
    if not size:
        return dict.fromkeys(PERCENTILES)

    def value_at(rank: int) -> float:
        seen = 0
        for _, (count, total_ms) in ordered:
            seen += count
            if rank < seen:
                return total_ms / count
        raise AssertionError("rank beyond the histogram")

    result: dict[str, float | None] = {}
    for name, fraction in PERCENTILES.items():
        position = fraction * (size - 1)
        low, high = math.floor(position), math.ceil(position)
        result[name] = interpolate({low: value_at(low), high: value_at(high)}, size, fraction)
    return result


# --- from the raw rows ---------------------------------------------------------------------------------------------


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
) -> dict[datetime, Tally]:
    """Sum the experiment's rows inside `intervals` ([start, end) each) into a Tally per `bucket` start: three
    queries (trace verdicts, session verdicts, traces). `names` limits each scope to those assessment names
    (None: every name, which is what the rollups keep); category counts are kept for the `categorical` names
    of each scope; `histogram` adds latency histograms."""
    if not intervals:
        return {}
    tallies: dict[datetime, Tally] = defaultdict(Tally)
    for scope in (Scope.TRACE, Scope.SESSION):
        scope_names = None if names is None else names.get(scope, [])
        for row in _judge_rows(experiment, scope, intervals, bucket, scope_names, categorical.get(scope, [])):
            _add_judge_row(tallies[row["bucket"]].judge(scope, row["name"]), row)
    group: dict[str, Any] = {"bucket": BucketStart("started_at", bucket)}
    if histogram:
        group["duration_bin"] = DurationBin("duration_ms")
    rows = (
        Trace.objects.filter(_within("experiment", experiment, "started_at", intervals))
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


def _exact_percentiles(experiment: Experiment, time_range: TimeRange) -> dict[datetime | None, dict[str, float | None]]:
    """Latency percentiles per bucket, and over the whole range under the key None."""
    traces = Trace.objects.filter(experiment=experiment, started_at__gte=time_range.start, started_at__lt=time_range.end)
    trunc = BucketStart("started_at", time_range.bucket)
    if connection.vendor == "postgresql":
        fractions = {name: PercentileCont("duration_ms", fraction) for name, fraction in PERCENTILES.items()}
        found: dict[datetime | None, dict[str, float | None]] = {
            row["bucket"]: {name: row[name] for name in PERCENTILES} for row in traces.annotate(bucket=trunc).values("bucket").annotate(**fractions).order_by()
        }
        found[None] = traces.aggregate(**fractions)
        return found
    found = dict(_sqlite_percentiles(traces, trunc))
    found[None] = _sqlite_percentiles(traces, None).get(None, dict.fromkeys(PERCENTILES))
    return found


# --- the answer ------------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _money(amount: Decimal | float | None) -> float:
    return round(float(amount or 0), 6)


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


def _version_marks(experiment: Experiment, time_range: TimeRange) -> dict[int, list[dict[str, Any]]]:
    versions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in JudgeVersion.objects.filter(
        judge__experiment=experiment, created_at__gte=time_range.start, created_at__lt=time_range.end
    ).order_by("created_at", "version").values("judge_id", "version", "created_at"):
        versions[row["judge_id"]].append({"version": row["version"], "created_at": _iso(row["created_at"])})
    return versions


def _judge_summaries(
    judges: list[Judge], versions: Mapping[int, list[dict[str, Any]]], tallies: Mapping[datetime, Tally], buckets: list[datetime]
) -> tuple[list[dict[str, Any]], dict[datetime, float]]:
    summaries = []
    cost_by_bucket: dict[datetime, float] = defaultdict(float)
    nothing = JudgeTally()
    for judge in judges:
        key = (judge.scope, judge.name)
        per_bucket = [(bucket, tallies[bucket].judges.get(key, nothing) if bucket in tallies else nothing) for bucket in buckets]
        order = _category_order(judge, {name for _, found in per_bucket for name in found.categories})
        total = JudgeTally()
        series = []
        for bucket, found in per_bucket:
            total.add(found)
            cost_by_bucket[bucket] += float(found.cost)
            ordered = {name: found.categories.get(name, 0) for name in order}
            series.append({"bucket": _iso(bucket), "judged": found.counts["judged"], "errors": found.counts["errors"], **_quality(judge, found.counts, ordered)})
        overall = _quality(judge, total.counts, {name: total.categories.get(name, 0) for name in order})
        summaries.append(
            {
                "name": judge.name,
                "scope": judge.scope,
                "output_type": judge.output_type,
                "active": judge.active,
                "version": judge.version,
                "judged": total.counts["judged"],
                "errors": total.counts["errors"],
                "not_applicable": total.counts["not_applicable"],
                "pass_rate": overall.get("pass_rate"),
                "mean": overall.get("mean"),
                "categories": overall.get("shares") if judge.output_type == OutputType.CATEGORICAL else None,
                "cost_usd": _money(total.cost),
                "human": {"count": total.counts["human"], "pass_rate": _ratio(total.counts["human_passes"], total.counts["human_yes_no"])},
                "series": series,
                "versions": versions.get(judge.pk, []),
            }
        )
    return summaries, cost_by_bucket


def _performance(
    tallies: Mapping[datetime, Tally],
    buckets: list[datetime],
    judge_cost: Mapping[datetime, float],
    percentiles: Mapping[datetime | None, Mapping[str, float | None]],
    approximate: bool,
) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return round(value, 1) if value is not None else None

    series = []
    nothing = Tally()
    for bucket in buckets:
        tally = tallies.get(bucket, nothing)
        found = percentiles.get(bucket, {})
        series.append(
            {
                "bucket": _iso(bucket),
                "traces": tally.traces,
                "errors": tally.errors,
                "error_rate": _ratio(tally.errors, tally.traces),
                "p50_ms": rounded(found.get("p50_ms")),
                "p95_ms": rounded(found.get("p95_ms")),
                "tokens": tally.tokens,
                "judge_cost_usd": _money(judge_cost.get(bucket)),
            }
        )
    total, errors = sum(point["traces"] for point in series), sum(point["errors"] for point in series)
    overall = percentiles.get(None, {})
    return {
        "traces": total,
        "errors": errors,
        "error_rate": _ratio(errors, total),
        "p50_ms": rounded(overall.get("p50_ms")),
        "p95_ms": rounded(overall.get("p95_ms")),
        "percentiles_approximate": approximate,
        "tokens": sum(point["tokens"] for point in series),
        "judge_cost_usd": _money(sum(judge_cost.values())),
        "series": series,
    }


@contextmanager
def window_plans() -> Iterator[None]:
    """On PostgreSQL, plans that start from the time window's rows: no merge joins, no parallel workers (for the
    current transaction only). The traces and sessions of a recent window are the newest rows, but the planner
    assumes ids spread evenly, so it merge-joins the assessments by session id from the very first one (117 ms
    instead of 3 at 100,000 traces) and runs a parallel scan of the trace primary key instead of the
    (experiment, time) index (61 ms instead of 30). One query (two inside an outer transaction, which gets its
    settings back); nothing on SQLite."""
    if connection.vendor != "postgresql":
        yield
        return
    if not connection.in_atomic_block:
        with transaction.atomic():  # the settings end with this transaction
            _set_plan_settings("off", "0")
            yield
        return
    previous = _set_plan_settings("off", "0")
    try:
        yield
    except BaseException:
        with suppress(DatabaseError):  # after a database error the transaction is aborted: that error is the news
            _set_plan_settings(*previous)
        raise
    _set_plan_settings(*previous)


def _set_plan_settings(merge_joins: str, parallel_workers: str) -> tuple[str, str]:
    """Set both for the current transaction; returns the values they had."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_mergejoin'), current_setting('max_parallel_workers_per_gather'),"
            " set_config('enable_mergejoin', %s, true), set_config('max_parallel_workers_per_gather', %s, true)",
            [merge_joins, parallel_workers],
        )
        previous = cursor.fetchone()
    return previous[0], previous[1]


def compute_overview(experiment: Experiment, time_range: TimeRange, now: datetime | None = None, *, rollups: bool | None = None) -> dict[str, Any]:
    """The aggregates behind the Overview tab and GET /api/v1/experiments/<id>/overview (shape documented there).
    Day buckets come from the hourly rollups (refreshing stale hours on the way), shorter ones from the raw rows;
    `rollups` forces either route (the raw one gives exact percentiles at any bucket size)."""
    now = now or timezone.now()
    if rollups is None:
        rollups = time_range.bucket == "day"
    if rollups and time_range.bucket == "minute":
        raise ValueError("hourly rollups can't make minute buckets")
    with window_plans():
        return _compute_overview(experiment, time_range, now, rollups)


def _compute_overview(experiment: Experiment, time_range: TimeRange, now: datetime, rollups: bool) -> dict[str, Any]:
    buckets = time_range.buckets()
    judges = list(Judge.objects.filter(experiment=experiment).order_by("name"))
    scopes = (Scope.TRACE, Scope.SESSION)
    categorical = {scope: [judge.name for judge in judges if judge.scope == scope and judge.output_type == OutputType.CATEGORICAL] for scope in scopes}
    percentiles: dict[datetime | None, dict[str, float | None]]
    if rollups:
        from evalapp.rollups import rollup_tallies  # the rollups are built with this module's raw_tallies

        tallies = rollup_tallies(experiment, time_range, categorical, now)
        everything: dict[int, list[int]] = {}
        for tally in tallies.values():
            add_durations(everything, tally.durations.items())
        percentiles = {bucket: histogram_percentiles(tally.durations) for bucket, tally in tallies.items()}
        percentiles[None] = histogram_percentiles(everything)
    else:
        names = {scope: [judge.name for judge in judges if judge.scope == scope] for scope in scopes}
        tallies = raw_tallies(experiment, [(time_range.start, time_range.end)], time_range.bucket, names=names, categorical=categorical, histogram=False)
        percentiles = _exact_percentiles(experiment, time_range)
    summaries, judge_cost = _judge_summaries(judges, _version_marks(experiment, time_range), tallies, buckets)
    return {
        "range": {
            "from": _iso(time_range.start),
            "to": _iso(time_range.end),
            "bucket": time_range.bucket,
            "preset": time_range.preset,
        },
        "judges": summaries,
        "performance": _performance(tallies, buckets, judge_cost, percentiles, approximate=rollups),
    }


# --- the experiment list -----------------------------------------------------------------------------------------


def boolean_pass_rates(experiment_ids: list[int], since: datetime) -> dict[int, float | None]:
    """Per experiment id: the share of yes among valid yes/no judge verdicts on what was traced since `since`
    (traces by start, sessions by last turn). Two queries, whatever the number of experiments; naming the
    experiments lets both walk the (experiment, time) indexes instead of every assessment ever made."""
    verdict = Q(source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code="")
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    targets = (("trace__experiment_id", "trace__started_at"), ("session__experiment_id", "session__last_trace_at"))
    with window_plans():
        found = [
            list(
                Assessment.objects.filter(verdict, **{f"{experiment_field}__in": experiment_ids, f"{moment}__gte": since})
                .values(experiment_field)
                .annotate(passes=Sum(JSONBool("value")), yes_no=Count(JSONBool("value")))
                .order_by()
            )
            for experiment_field, moment in targets
        ]
    for (experiment_field, _), rows in zip(targets, found, strict=True):
        for row in rows:
            counts[row[experiment_field]][0] += row["passes"] or 0
            counts[row[experiment_field]][1] += row["yes_no"]
    return {experiment_id: _ratio(passes, yes_no) for experiment_id, (passes, yes_no) in counts.items() if yes_no}

