"""The filter language's database back end: a syntax tree from traces.filters → a Django Q over Trace."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import NotSupportedError
from django.db.models import CharField, Exists, F, FloatField, Func, Lookup, OuterRef, Q
from django.db.models.functions import Cast
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, In, IsNull, LessThan, LessThanOrEqual

from traces import filters, verdicts
from traces.json_sql import JSONBool, JSONNumber, JSONText
from traces.like import fold_case
from traces.models import Assessment, AssessmentSource, Span, Trace

_LOOKUPS = {"=": Exact, "<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual}
NOTHING = Q(pk__in=[])
EVERYTHING = Q(pk__isnull=False)


def _ms(value: int) -> datetime:
    return filters.EPOCH + timedelta(milliseconds=value)


def _timestamp(op: str, value) -> Q:
    """Whole-millisecond semantics, as in memory: timestamp_ms = floor(started_at in ms). The millisecond after
    the last one the parser accepts (year 9999) is past what a datetime can hold: nothing starts that late."""
    if op in ("IS NULL", "IS NOT NULL"):
        return NOTHING if op == "IS NULL" else EVERYTHING  # every trace has a start time
    if op in ("IN", "NOT IN"):
        either = Q(*[_timestamp("=", item) for item in value], _connector=Q.OR)
        return either if op == "IN" else ~either
    at_or_after, before = Q(started_at__gte=_ms(value)), Q(started_at__lt=_ms(value))
    if value < filters.MAX_TIMESTAMP_MS:
        after, up_to = Q(started_at__gte=_ms(value + 1)), Q(started_at__lt=_ms(value + 1))
    else:
        after, up_to = NOTHING, EVERYTHING
    return {"=": at_or_after & up_to, "!=": before | after, "<": before, "<=": up_to, ">": after, ">=": at_or_after}[op]


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


class Like(Lookup):
    """The filter language's LIKE as the database's own pattern matching, which never backtracks: PostgreSQL's
    LIKE ... ESCAPE (a pg_trgm index can serve it), and SQLite's GLOB, which is case-sensitive where SQLite's LIKE
    is not. Only `%` and `_` are wildcards, as in memory (traces.like)."""

    lookup_name = "filter_like"  # built directly, not registered on any field
    prepare_rhs = False
    case_sensitive = True

    def as_sql(self, compiler, connection):
        lhs_sql, params = self.process_lhs(compiler, connection)
        pattern: str = self.rhs
        if connection.vendor == "postgresql":
            operator = "LIKE" if self.case_sensitive else "ILIKE"
            return f"{lhs_sql} {operator} %s ESCAPE '\\'", [*params, pattern.replace("\\", "\\\\")]
        if connection.vendor == "sqlite":
            if not self.case_sensitive:
                # The same case folding as in memory, registered on each SQLite connection by traces.apps.
                lhs_sql, pattern = f"{FOLD_CASE_FUNCTION}({lhs_sql})", fold_case(pattern)
            return f"{lhs_sql} GLOB %s", [*params, glob_pattern(pattern)]
        raise NotSupportedError(f"the filter language's LIKE is not implemented for {connection.vendor}")


class ILike(Like):
    lookup_name = "filter_ilike"
    case_sensitive = False


FOLD_CASE_FUNCTION = "evalapp_fold_case"
_GLOB = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}


def glob_pattern(like_pattern: str) -> str:
    """A LIKE pattern as an SQLite GLOB pattern: % → *, _ → ?, and GLOB's own *, ? and [ made literal."""
    return "".join(_GLOB.get(char, char) for char in like_pattern)


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
        condition = Q(Like(expression, value))
    elif op == "ILIKE":
        condition = Q(ILike(expression, value))
    else:
        condition = Q(_LOOKUPS[op](expression, value))
    return present & condition


def _present(expression) -> Q:
    return Q(IsNull(expression, False))


def _verdict_compares(target, *, equal: bool) -> Q:
    """The verdict (an Assessment row's JSON `value`) is of a kind `target` compares with (traces.verdicts) and
    equals it (or, with equal=False, differs from it). Every branch says its kind is present, so no NULL ever
    reaches a NOT: SQL's three values then give what memory's two do."""
    def compared(expression, value) -> Q:
        same = Q(Exact(expression, value))
        return _present(expression) & (same if equal else ~same)

    if isinstance(target, (int, float)):
        return compared(JSONNumber("value"), float(target))
    as_bool = verdicts.as_bool(target)
    text = compared(JSONText("value"), target)
    return text if as_bool is None else text | compared(JSONBool("value"), int(as_bool))


def _verdict(node: filters.Comparison) -> Q:
    """Exists a judge's latest valid verdict (no error) on the trace that compares as asked; IS NULL: none exists."""
    verdict = Assessment.objects.filter(
        trace=OuterRef("pk"), name=node.field.name, source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code=""
    )
    if node.op in ("IS NULL", "IS NOT NULL"):
        return ~Q(Exists(verdict)) if node.op == "IS NULL" else Q(Exists(verdict))
    if node.op in ("=", "!="):
        condition = _verdict_compares(node.value, equal=node.op == "=")
    elif node.op == "IN":
        condition = Q(*[_verdict_compares(item, equal=True) for item in node.value], _connector=Q.OR)
    elif node.op == "NOT IN":
        condition = Q(*[_verdict_compares(item, equal=False) for item in node.value])
    elif isinstance(node.value, (int, float)):
        condition = _present(JSONNumber("value")) & Q(_LOOKUPS[node.op](JSONNumber("value"), float(node.value)))
    else:
        return NOTHING  # text ordered with < or >: no verdict compares so (as in memory)
    return Q(Exists(verdict.filter(condition)))


def _comparison(node: filters.Comparison) -> Q:
    field = node.field
    if field.source == "assessment":
        return _verdict(node)
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
    """One Q per node: a chain of 200 ORs is one Q with 200 children, not 200 nested ones."""
    if isinstance(node, filters.And):
        return Q(*[to_q(operand) for operand in node.operands])
    if isinstance(node, filters.Or):
        return Q(*[to_q(operand) for operand in node.operands], _connector=Q.OR)
    if isinstance(node, filters.Not):
        return ~to_q(node.operand)
    return _comparison(node)


def filter_traces(queryset, text: str):
    """`queryset` narrowed by a filter string; raises filters.FilterError for an invalid one."""
    if not text.strip():
        return queryset
    return queryset.filter(to_q(filters.parse(text)))
