"""Validation of the JSON batch API body into `TraceIn`s. Pure Python.

Every problem is reported with its path (`traces[3].spans[0].start_time`) and what to do about it; the whole
batch is refused if any item is wrong, so nothing is half-written.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from typing import Any

from traces.records import MAX_TOKEN_COUNT, SPAN_STATUSES, SPAN_TYPES, TRACE_STATUSES, UNSET, SpanIn, TraceIn, stringify

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
MAX_ID_LENGTH = {"trace_id": 128, "span_id": 64, "parent_span_id": 64}
MAX_ERRORS = 50
# Epoch milliseconds before 2001-09-09 are almost certainly seconds sent by mistake.
MIN_EPOCH_MS = 1_000_000_000_000
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01
# The times evalapp stores and queries: far enough for any trace, and clear of the calendar's ends, where an
# offset or a day added pushes a datetime past year 1 or 9999 (OverflowError).
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)

# The keys a client may send (documented by traces.api_schema's TraceInSerializer and friends; a test holds them equal).
TRACE_KEYS = (
    "trace_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "request",
    "response",
    "metadata",
    "tags",
    "session_id",
    "user_id",
    "token_usage",
    "spans",
)
SPAN_KEYS = (
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "start_time",
    "end_time",
    "status",
    "status_message",
    "inputs",
    "outputs",
    "attributes",
    "events",
)
EVENT_KEYS = ("name", "time", "attributes")
TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens")


class PayloadError(ValueError):
    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        first_path, first_message = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        super().__init__(f"{first_path}: {first_message}{more}")

    def as_json(self) -> dict[str, Any]:
        return {
            "detail": str(self),
            "errors": [{"field": path, "message": message} for path, message in self.errors],
        }


class _Collector:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((path, message))


def whole_number(raw: str) -> int | None:
    """`raw` as an int if it is up to 30 ASCII digits, else None ("²".isdigit() is True, but int("²") fails)."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 30:
        return int(raw)
    return None


def page_size(raw: str | None, *, default: int, most: int) -> int:
    """A `page_size` query parameter: `default` when absent, else a whole number from 1 to `most` (PayloadError)."""
    if raw is None:
        return default
    size = whole_number(raw)
    if size is None or not 1 <= size <= most:
        raise PayloadError([("page_size", f"must be a whole number from 1 to {most}")])
    return size


def supported_utc(moment: datetime, *, end: bool = False) -> datetime:
    """An aware datetime in UTC, if it lies in the years evalapp stores (1970–2099); else ValueError saying so.
    `end`: the exclusive end of a range, which may be the first moment after them (2100-01-01T00:00Z)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        utc = None
    if utc is None or not (EARLIEST_TIME <= utc < LATEST_TIME or (end and utc == LATEST_TIME)):
        raise ValueError(f"{moment.isoformat()} is outside the years 1970–2099 that evalapp stores")
    return utc


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 with a timezone, or epoch milliseconds. Raises ValueError with a readable reason."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 time with a timezone or epoch milliseconds, not a boolean")
    if isinstance(value, (int, float)):
        if value < MIN_EPOCH_MS:
            raise ValueError(
                f"{value} is not plausible epoch milliseconds (before 2001); did you send seconds? "
                "Multiply by 1000, or send an ISO 8601 time"
            )
        if value > MAX_EPOCH_MS:
            raise ValueError(f"{value} is after the year 2100; send epoch milliseconds, not micro- or nanoseconds")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time (e.g. 2026-11-22T10:15:00Z)") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no timezone; add 'Z' for UTC or an offset like +02:00")
        return supported_utc(parsed)
    raise ValueError("must be an ISO 8601 time with a timezone or epoch milliseconds")


def _unknown_keys(collector: _Collector, path: str, item: dict, allowed: tuple[str, ...]) -> None:
    for key in item:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(allowed)}"
            collector.add(f"{path}.{key}", f"unknown field{hint}")


def _string(collector: _Collector, path: str, value: Any, *, max_length: int, required: bool = False) -> str | None:
    if value is None:
        if required:
            collector.add(path, "is required")
        return None
    if not isinstance(value, str):
        collector.add(path, f"must be a string, not {type(value).__name__}")
        return None
    if required and not value:
        collector.add(path, "must not be empty")
        return None
    if len(value) > max_length:
        collector.add(path, f"is {len(value)} characters long; the limit is {max_length}")
        return None
    return value


def _identifier(collector: _Collector, path: str, value: Any, name: str, *, required: bool) -> str | None:
    text = _string(collector, path, value, max_length=MAX_ID_LENGTH[name], required=required)
    if text and not ID_PATTERN.match(text):
        collector.add(path, f"{text!r} may only contain letters, digits, '.', '_', ':' and '-'")
        return None
    return text


def _string_map(collector: _Collector, path: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        collector.add(path, f"must be an object of string keys to values, not {type(value).__name__}")
        return {}
    result = {}
    for key, item in value.items():
        if len(key) > 250:
            collector.add(f"{path}.{key[:20]}…", "keys are limited to 250 characters")
            continue
        if isinstance(item, (dict, list)):
            collector.add(f"{path}.{key}", "must be a string, number or boolean")
            continue
        result[key] = stringify(item)
    return result


def _time(collector: _Collector, path: str, value: Any, *, required: bool) -> datetime | None:
    if value is None:
        if required:
            collector.add(path, "is required (ISO 8601 time with a timezone, or epoch milliseconds)")
        return None
    try:
        return parse_timestamp(value)
    except ValueError as error:
        collector.add(path, str(error))
        return None


def _choice(collector: _Collector, path: str, value: Any, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in choices:
        collector.add(path, f"{value!r} is not one of {', '.join(choices)}")
        return None
    return value.upper()


def _parse_span(collector: _Collector, path: str, item: Any) -> SpanIn | None:
    if not isinstance(item, dict):
        collector.add(path, "each span must be an object")
        return None
    _unknown_keys(collector, path, item, SPAN_KEYS)
    span_id = _identifier(collector, f"{path}.span_id", item.get("span_id"), "span_id", required=True)
    parent = _identifier(collector, f"{path}.parent_span_id", item.get("parent_span_id"), "parent_span_id", required=False)
    name = _string(collector, f"{path}.name", item.get("name"), max_length=300)
    span_type = _choice(collector, f"{path}.span_type", item.get("span_type"), SPAN_TYPES)
    started_at = _time(collector, f"{path}.start_time", item.get("start_time"), required=True)
    ended_at = _time(collector, f"{path}.end_time", item.get("end_time"), required=False)
    if started_at and ended_at and ended_at < started_at:
        collector.add(f"{path}.end_time", "is before start_time")
    status = _choice(collector, f"{path}.status", item.get("status"), SPAN_STATUSES)
    status_message = _string(collector, f"{path}.status_message", item.get("status_message"), max_length=10_000)
    attributes = item.get("attributes") or {}
    if not isinstance(attributes, dict):
        collector.add(f"{path}.attributes", "must be an object")
        attributes = {}
    events = item.get("events") or []
    parsed_events: list[dict[str, Any]] = []
    if not isinstance(events, list):
        collector.add(f"{path}.events", "must be a list")
        events = []
    for index, event in enumerate(events):
        event_path = f"{path}.events[{index}]"
        if not isinstance(event, dict):
            collector.add(event_path, "each event must be an object")
            continue
        _unknown_keys(collector, event_path, event, EVENT_KEYS)
        event_name = _string(collector, f"{event_path}.name", event.get("name"), max_length=300, required=True)
        event_time = _time(collector, f"{event_path}.time", event.get("time"), required=False)
        event_attributes = event.get("attributes") or {}
        if not isinstance(event_attributes, dict):
            collector.add(f"{event_path}.attributes", "must be an object")
            event_attributes = {}
        parsed_events.append(
            {
                "name": event_name or "",
                "time": event_time.isoformat() if event_time else None,
                "attributes": event_attributes,
            }
        )
    if span_id is None or started_at is None:
        return None
    return SpanIn(
        span_id=span_id,
        parent_span_id=parent or "",
        name=name or "",
        span_type=span_type or "UNKNOWN",
        started_at=started_at,
        ended_at=ended_at,
        status=status or ("OK" if ended_at else "UNSET"),
        status_message=status_message or "",
        inputs=item.get("inputs"),
        outputs=item.get("outputs"),
        attributes=attributes,
        events=parsed_events,
    )


def _parse_trace(collector: _Collector, path: str, item: Any) -> TraceIn | None:
    if not isinstance(item, dict):
        collector.add(path, "each trace must be an object")
        return None
    _unknown_keys(collector, path, item, TRACE_KEYS)
    trace_id = _identifier(collector, f"{path}.trace_id", item.get("trace_id"), "trace_id", required=True)
    name = _string(collector, f"{path}.name", item.get("name"), max_length=300)
    status = _choice(collector, f"{path}.status", item.get("status"), TRACE_STATUSES)
    started_at = _time(collector, f"{path}.start_time", item.get("start_time"), required=False)
    ended_at = _time(collector, f"{path}.end_time", item.get("end_time"), required=False)
    if started_at and ended_at and ended_at < started_at:
        collector.add(f"{path}.end_time", "is before start_time")
    session_id = _string(collector, f"{path}.session_id", item.get("session_id"), max_length=200)
    user_id = _string(collector, f"{path}.user_id", item.get("user_id"), max_length=200)
    metadata = _string_map(collector, f"{path}.metadata", item.get("metadata"))
    tags = _string_map(collector, f"{path}.tags", item.get("tags"))

    tokens: dict[str, int] = {}
    usage = item.get("token_usage")
    if usage is not None:
        if not isinstance(usage, dict):
            collector.add(f"{path}.token_usage", "must be an object with input_tokens, output_tokens, total_tokens")
        else:
            _unknown_keys(collector, f"{path}.token_usage", usage, TOKEN_KEYS)
            for key in TOKEN_KEYS:
                count = usage.get(key)
                if count is None:
                    continue
                if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_TOKEN_COUNT:
                    collector.add(f"{path}.token_usage.{key}", f"must be a whole number from 0 to {MAX_TOKEN_COUNT:,}")
                else:
                    tokens[key] = count

    spans_raw = item.get("spans") or []
    spans: list[SpanIn] = []
    if not isinstance(spans_raw, list):
        collector.add(f"{path}.spans", "must be a list of spans")
        spans_raw = []
    seen: dict[str, int] = {}
    for index, span_item in enumerate(spans_raw):
        span = _parse_span(collector, f"{path}.spans[{index}]", span_item)
        if span is None:
            continue
        if span.span_id in seen:
            collector.add(
                f"{path}.spans[{index}].span_id",
                f"{span.span_id!r} is also the id of spans[{seen[span.span_id]}]; span ids must be unique in a trace",
            )
            continue
        seen[span.span_id] = index
        spans.append(span)
    if not spans_raw and item.get("start_time") is None:  # (an invalid one is reported as such)
        collector.add(f"{path}.start_time", "is required when a trace has no spans")
    if trace_id is None:
        return None
    return TraceIn(
        trace_id=trace_id,
        spans=spans,
        name=name,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        request=item["request"] if "request" in item else UNSET,
        response=item["response"] if "response" in item else UNSET,
        metadata=metadata,
        tags=tags,
        session_id=session_id,
        user_id=user_id,
        input_tokens=tokens.get("input_tokens"),
        output_tokens=tokens.get("output_tokens"),
        total_tokens=tokens.get("total_tokens"),
    )


def parse_trace_batch(data: Any, *, max_traces: int) -> list[TraceIn]:
    """`{"traces": [...]}` or a bare list → TraceIns. Raises PayloadError listing every problem found."""
    collector = _Collector()
    if isinstance(data, dict):
        _unknown_keys(collector, "body", data, ("traces",))
        items = data.get("traces")
        if items is None:
            collector.add("traces", "is required: send {\"traces\": [ ... ]}")
            raise PayloadError(collector.errors)
    else:
        items = data
    if not isinstance(items, list):
        collector.add("traces", "must be a list of traces")
        raise PayloadError(collector.errors)
    if not items:
        collector.add("traces", "is empty; send at least one trace")
        raise PayloadError(collector.errors)
    if len(items) > max_traces:
        collector.add("traces", f"has {len(items)} traces; the limit per request is {max_traces}, split the batch")
        raise PayloadError(collector.errors)
    traces: list[TraceIn] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        trace = _parse_trace(collector, f"traces[{index}]", item)
        if trace is None:
            continue
        if trace.trace_id in seen:
            collector.add(
                f"traces[{index}].trace_id",
                f"{trace.trace_id!r} is also the id of traces[{seen[trace.trace_id]}]; send each trace once per batch",
            )
            continue
        seen[trace.trace_id] = index
        traces.append(trace)
    if collector.errors:
        raise PayloadError(collector.errors)
    return traces
