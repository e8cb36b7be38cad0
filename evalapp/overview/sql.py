"""SQL building blocks for the Overview's aggregates, written for SQLite and PostgreSQL: JSON scalars, bucket
starts, percentile_cont, latency histogram bins, and the PostgreSQL planner settings for time-window queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Aggregate, DateTimeField, FloatField, Func, IntegerField
from django.db.models.functions import TruncDay, TruncHour, TruncMinute

from evalapp.overview.tallies import BIN_SCALE

TRUNCS = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}


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
        f" ELSE CAST(FLOOR(LN(CAST(%(expressions)s AS DOUBLE PRECISION)) * {BIN_SCALE!r}) AS INTEGER) END)"
    )


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
