"""The filter language's in-memory back end: a syntax tree from traces.filters, decided on one trace's
FilterRecord (judges select traces with it as they arrive). Pure Python; traces.filter_sql is the database back
end, and a property test holds the two to the same answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from traces import verdicts
from traces.filters import EPOCH, And, Not, Or
from traces.like import like

ONE_MS = timedelta(milliseconds=1)


@dataclass
class FilterRecord:
    """What a filter can look at, for one trace."""

    status: str
    name: str
    duration_ms: int | None
    started_at: datetime
    session_id: str = ""
    user_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    spans: list[tuple[str, str]] = field(default_factory=list)  # (span_type, name)
    assessments: dict[str, Any] = field(default_factory=dict)  # judge name -> its latest valid verdict's value

    @property
    def timestamp_ms(self) -> int:
        # In whole numbers: through a float, x.999999 ms can round up to the next millisecond.
        return (self.started_at - EPOCH) // ONE_MS


def _compare(value: Any, op: str, target: Any) -> bool:
    if op == "IS NULL":
        return value is None
    if op == "IS NOT NULL":
        return value is not None
    if value is None:
        return False
    if op == "=":
        return value == target
    if op == "!=":
        return value != target
    if op == "<":
        return value < target
    if op == "<=":
        return value <= target
    if op == ">":
        return value > target
    if op == ">=":
        return value >= target
    if op == "IN":
        return value in target
    if op == "NOT IN":
        return value not in target
    if op == "LIKE":
        return like(value, target)
    if op == "ILIKE":
        return like(value, target, case_sensitive=False)
    raise ValueError(op)


def _trace_value(record: FilterRecord, name: str) -> Any:
    if name == "timestamp_ms":
        return record.timestamp_ms
    if name == "execution_time_ms":
        return record.duration_ms
    value = getattr(record, name)
    return value if value != "" else None  # an empty name/session/user is "not set"


def matches(node, record: FilterRecord) -> bool:
    """Recurses once per level of nesting, which the parser bounds (FilterLimits.max_depth)."""
    if isinstance(node, And):
        return all(matches(operand, record) for operand in node.operands)
    if isinstance(node, Or):
        return any(matches(operand, record) for operand in node.operands)
    if isinstance(node, Not):
        return not matches(node.operand, record)
    source = node.field.source
    if source == "trace":
        return _compare(_trace_value(record, node.field.name), node.op, node.value)
    if source == "metadata":
        return _compare(record.metadata.get(node.field.name), node.op, node.value)
    if source == "tags":
        return _compare(record.tags.get(node.field.name), node.op, node.value)
    if source == "assessment":
        return verdicts.compare(record.assessments.get(node.field.name), node.op, node.value)
    index = 0 if node.field.name == "type" else 1
    return any(_compare(span[index] if span[index] != "" else None, node.op, node.value) for span in record.spans)
