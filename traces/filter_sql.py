"""The filter language's database back end: a syntax tree from traces.filters → a Django Q over Trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import CharField, Exists, F, FloatField, Func, OuterRef, Q
from django.db.models.functions import Cast
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, In, IRegex, IsNull, LessThan, LessThanOrEqual, Regex

from traces import filters
from traces.models import Span, Trace

_LOOKUPS = {"=": Exact, "<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual}
ONE_MS = timedelta(milliseconds=1)


def _ms(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)


def _timestamp(op: str, value) -> Q:
    """Whole-millisecond semantics, as in memory: timestamp_ms = floor(started_at in ms)."""
    if op == "=":
        return Q(started_at__gte=_ms(value), started_at__lt=_ms(value) + ONE_MS)
    if op == "!=":
        return ~_timestamp("=", value)
    if op == "<":
        return Q(started_at__lt=_ms(value))
    if op == "<=":
        return Q(started_at__lt=_ms(value) + ONE_MS)
    if op == ">":
        return Q(started_at__gte=_ms(value) + ONE_MS)
    if op == ">=":
        return Q(started_at__gte=_ms(value))
    if op == "IN":
        combined = Q(pk__in=[])
        for item in value:
            combined |= _timestamp("=", item)
        return combined
    if op == "NOT IN":
        return ~_timestamp("IN", value)
    if op == "IS NULL":
        return Q(pk__in=[])
    return Q(pk__isnull=False)  # IS NOT NULL: every trace has a start time


class JsonKeyText(Func):
    """A JSON object's value at `key`, as text. Django's key transforms read digit-only keys as array indices
    (metadata key "123"), so the path is built here, always as an object key."""

    output_field = CharField()

    def __init__(self, column: str, key: str):
        super().__init__(F(column))
        self.key = key

    def as_sql(self, compiler, connection, **extra_context):
        column_sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return f"({column_sql} ->> %s)", [*params, self.key]
        return f"JSON_EXTRACT({column_sql}, %s)", [*params, '$."' + self.key + '"']


def _atom(expression, op: str, value, *, empty_is_null: bool) -> Q:
    """A two-valued comparison: NULL (or '') never matches, except IS NULL."""
    values = value if isinstance(value, tuple) else (value,)
    if any(isinstance(item, float) for item in values):
        # Integer columns would otherwise round the literal (duration = 1.5 matching 1).
        expression = Cast(expression, FloatField())
    present = Q(IsNull(expression, False))
    if empty_is_null:
        present &= ~Q(Exact(expression, ""))
    if op == "IS NULL":
        return ~present
    if op == "IS NOT NULL":
        return present
    if op == "!=":
        condition = ~Q(Exact(expression, value))
    elif op == "IN":
        condition = Q(In(expression, list(value)))
    elif op == "NOT IN":
        condition = ~Q(In(expression, list(value)))
    elif op == "LIKE":
        condition = Q(Regex(expression, filters.like_regex(value)))
    elif op == "ILIKE":
        condition = Q(IRegex(expression, filters.like_regex(value)))
    else:
        condition = Q(_LOOKUPS[op](expression, value))
    return present & condition


def _comparison(node: filters.Comparison) -> Q:
    field = node.field
    if field.source == "trace":
        if field.name == "timestamp_ms":
            return _timestamp(node.op, node.value)
        column = field.info.column
        return _atom(Trace._meta.get_field(column).get_col(Trace._meta.db_table), node.op, node.value, empty_is_null=field.info.kind == "string")
    if field.source in ("metadata", "tags"):
        return _atom(JsonKeyText(field.source, field.name), node.op, node.value, empty_is_null=False)
    column = field.info.column
    spans = Span.objects.filter(trace=OuterRef("pk"))
    span_q = _atom(Span._meta.get_field(column).get_col(Span._meta.db_table), node.op, node.value, empty_is_null=True)
    return Q(Exists(spans.filter(span_q)))


def to_q(node) -> Q:
    if isinstance(node, filters.And):
        return to_q(node.left) & to_q(node.right)
    if isinstance(node, filters.Or):
        return to_q(node.left) | to_q(node.right)
    if isinstance(node, filters.Not):
        return ~to_q(node.operand)
    return _comparison(node)


def filter_traces(queryset, text: str):
    """`queryset` narrowed by a filter string; raises filters.FilterError for an invalid one."""
    if not text.strip():
        return queryset
    return queryset.filter(to_q(filters.parse(text)))
