"""OTLP/HTTP trace export requests (protobuf or JSON) → `TraceIn`s. No Django.

Maps the common conventions onto our fields: OpenTelemetry GenAI (`gen_ai.*`), OpenInference (`input.value`,
`openinference.span.kind`, `session.id`, ...) and MLflow (`mlflow.spanInputs`, `mlflow.spanType`, ...).
Trace-level fields (name, status, request/response) come from the root span in `records.build_trace_fields`.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from traces import strict_json
from traces.payload import LATEST_TIME, PayloadError, whole_number
from traces.records import SPAN_TYPES, SpanIn, TraceIn, stringify

EXPERIMENT_ATTRIBUTE = "evalapp.experiment.id"
MAX_ERRORS = 50

OPENINFERENCE_KINDS = {
    "LLM": "LLM",
    "CHAIN": "CHAIN",
    "RETRIEVER": "RETRIEVER",
    "TOOL": "TOOL",
    "AGENT": "AGENT",
    "EMBEDDING": "EMBEDDING",
    "RERANKER": "RERANKER",
}
GENAI_OPERATIONS = {
    "chat": "CHAT_MODEL",
    "generate_content": "CHAT_MODEL",
    "text_completion": "LLM",
    "embeddings": "EMBEDDING",
    "execute_tool": "TOOL",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
}
SPAN_TYPE_NAMES = set(SPAN_TYPES)
# Attribute → is it JSON-encoded? Consumed into inputs/outputs and not stored again as attributes.
INPUT_KEYS = ("mlflow.spanInputs", "input.value", "gen_ai.input.messages", "gen_ai.prompt", "gen_ai.tool.call.arguments")
OUTPUT_KEYS = (
    "mlflow.spanOutputs",
    "output.value",
    "gen_ai.output.messages",
    "gen_ai.completion",
    "gen_ai.tool.call.result",
)
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR", "STATUS_CODE_UNSET": "UNSET", "STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR"}
# Span and event times: nanoseconds since 1970, up to the end of the years evalapp stores (2099).
MAX_NANOS = int(LATEST_TIME.timestamp()) * 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NANOS_HINT = "nanoseconds since 1970 (an integer or a string of digits) up to the year 2099"


@dataclass
class OtlpBatch:
    traces: list[TraceIn]
    # Experiment ids named by resource attributes (the header takes precedence in the view).
    experiment_ids: set[str] = field(default_factory=set)
    span_count: int = 0


def _maybe_json(value: Any) -> Any:
    """A JSON-encoded attribute's value; the text itself if it isn't JSON a database can store (e.g. "[NaN]")."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[", '"') or stripped in ("null", "true", "false"):
            try:
                return strict_json.loads(stripped, replace_unstorable_text=True)
            except ValueError:
                return value
    return value


def span_type_from(attributes: dict[str, Any]) -> str:
    raw = attributes.get("mlflow.spanType")
    if raw is not None:
        value = _maybe_json(raw)
        if isinstance(value, str) and value.upper() in SPAN_TYPE_NAMES:
            return value.upper()
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in OPENINFERENCE_KINDS:
        return OPENINFERENCE_KINDS[kind.upper()]
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[operation]
    return "UNKNOWN"


def _take(attributes: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in attributes:
            return _maybe_json(attributes.pop(key))
    return None


def _nanos_to_datetime(nanos: int) -> datetime | None:
    """None for 0 (unset); callers have checked 0 ≤ nanos < MAX_NANOS."""
    if not nanos:
        return None
    return EPOCH + timedelta(microseconds=nanos // 1_000)  # half the time of fromtimestamp() + timedelta


def _valid_nanos(nanos: int | None) -> bool:
    return nanos is not None and 0 <= nanos < MAX_NANOS


def _resource_metadata(resource: dict[str, Any]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    environment = resource.get("deployment.environment.name") or resource.get("deployment.environment")
    if environment:
        metadata["environment"] = stringify(environment)
    if resource.get("service.name"):
        metadata["service.name"] = stringify(resource["service.name"])
    if resource.get("service.version"):
        metadata["service.version"] = stringify(resource["service.version"])
    for key, value in resource.items():
        if key.startswith("evalapp.metadata.") and len(key) > len("evalapp.metadata."):
            metadata[key[len("evalapp.metadata.") :]] = stringify(value)
    return metadata


class _Builder:
    """Groups decoded spans into traces; both wire formats feed it the same plain values."""

    def __init__(self) -> None:
        self.traces: dict[str, TraceIn] = {}
        self.span_ids: dict[tuple[str, str], str] = {}
        self.experiment_ids: set[str] = set()
        self.errors: list[tuple[str, str]] = []
        self.span_count = 0

    def error(self, path: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((path, message))

    def resource(self, path: str, attributes: dict[str, Any]) -> dict[str, str]:
        strict_json.replace_unstorable(attributes)  # see add_span
        experiment = attributes.get(EXPERIMENT_ATTRIBUTE)
        if experiment not in (None, ""):
            self.experiment_ids.add(stringify(experiment))
        return _resource_metadata(attributes)

    def _checked(
        self,
        path: str,
        trace_id: str,
        span_id: str,
        parent_span_id: str,
        start_nanos: int | None,
        end_nanos: int | None,
        status_code: Any,
        events: list[dict[str, Any]],
    ) -> str | None:
        """The span's status, or None when anything about its ids, times, status or events is wrong (each problem
        recorded as an error at its path)."""
        ok = True
        if len(trace_id) != 32 or trace_id == "0" * 32:
            self.error(f"{path}.traceId", "must be 16 bytes (32 hex characters) and not all zero")
            ok = False
        if len(span_id) != 16 or span_id == "0" * 16:
            self.error(f"{path}.spanId", "must be 8 bytes (16 hex characters) and not all zero")
            ok = False
        if parent_span_id and len(parent_span_id) != 16:
            self.error(f"{path}.parentSpanId", "must be empty or 8 bytes (16 hex characters)")
            ok = False
        if not start_nanos:
            self.error(f"{path}.startTimeUnixNano", "is required" if start_nanos == 0 else f"must be {NANOS_HINT}")
            ok = False
        elif not _valid_nanos(start_nanos):
            self.error(f"{path}.startTimeUnixNano", f"must be {NANOS_HINT}")
            ok = False
        elif not _valid_nanos(end_nanos):
            self.error(f"{path}.endTimeUnixNano", f"must be {NANOS_HINT}")
            ok = False
        elif end_nanos and end_nanos < start_nanos:
            self.error(f"{path}.endTimeUnixNano", "is before startTimeUnixNano")
            ok = False
        hashable = isinstance(status_code, (int, str)) and not isinstance(status_code, bool)
        status = STATUS_CODES.get(status_code) if hashable else None
        if status is None:
            self.error(f"{path}.status.code", f"{status_code!r} is not 0 (unset), 1 (ok) or 2 (error)")
            ok = False
        for index, event in enumerate(events):
            if not _valid_nanos(event["time_nanos"]):
                self.error(f"{path}.events[{index}].timeUnixNano", f"must be {NANOS_HINT}")
                ok = False
        return status if ok else None

    def add_span(
        self,
        path: str,
        *,
        trace_id: str,
        span_id: str,
        parent_span_id: str,
        name: str,
        start_nanos: int | None,
        end_nanos: int | None,
        status_code: Any,
        status_message: str,
        attributes: dict[str, Any],
        events: list[dict[str, Any]],
        resource_metadata: dict[str, str],
    ) -> None:
        status = self._checked(path, trace_id, span_id, parent_span_id, start_nanos, end_nanos, status_code, events)
        ok = status is not None
        # Text no database stores (a NUL, which protobuf strings may hold, or a lone surrogate) is kept with U+FFFD
        # in its place: refusing the span would lose it, as exporters don't resend after a 400.
        name, status_message = strict_json.replace_unstorable(name), strict_json.replace_unstorable(status_message)
        strict_json.replace_unstorable(attributes)
        strict_json.replace_unstorable(events)
        if (trace_id, span_id) in self.span_ids:
            self.error(f"{path}.spanId", f"{span_id} appears twice for trace {trace_id} (also at {self.span_ids[(trace_id, span_id)]})")
            ok = False
        if not ok:
            return
        self.span_ids[(trace_id, span_id)] = path
        self.span_count += 1
        span_type = span_type_from(attributes)
        inputs = _take(attributes, INPUT_KEYS)
        outputs = _take(attributes, OUTPUT_KEYS)
        for consumed in ("mlflow.spanType", "input.mime_type", "output.mime_type"):
            attributes.pop(consumed, None)
        span = SpanIn(
            span_id=span_id,
            parent_span_id=parent_span_id,
            name=name[:300],
            span_type=span_type,
            started_at=_nanos_to_datetime(start_nanos),  # type: ignore[arg-type]
            ended_at=_nanos_to_datetime(end_nanos),
            status=status,
            status_message=status_message,
            inputs=inputs,
            outputs=outputs,
            attributes=attributes,
            events=[
                {"name": event["name"], "time": _iso(event["time_nanos"]), "attributes": event["attributes"]} for event in events
            ],
        )
        trace = self.traces.get(trace_id)
        if trace is None:
            trace = self.traces[trace_id] = TraceIn(trace_id=trace_id)
        trace.spans.append(span)
        if resource_metadata:
            trace.metadata.update(resource_metadata)

    def result(self) -> OtlpBatch:
        if self.errors:
            raise PayloadError(self.errors)
        return OtlpBatch(list(self.traces.values()), self.experiment_ids, self.span_count)


# --- protobuf -------------------------------------------------------------------------------------------


def _proto_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        if not math.isfinite(number):  # no JSON column stores NaN or infinity; keep them as OTLP/JSON writes them
            return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
        return number
    if kind == "array_value":
        return [_proto_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _proto_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _proto_attributes(attributes: Any) -> dict[str, Any]:
    return {item.key: _proto_value(item.value) for item in attributes}


def decode_protobuf(body: bytes) -> OtlpBatch:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as error:
        raise PayloadError([("body", f"is not a valid OTLP ExportTraceServiceRequest protobuf message ({error})")]) from None
    builder = _Builder()
    for r_index, resource_spans in enumerate(request.resource_spans):
        resource_metadata = builder.resource(f"resourceSpans[{r_index}].resource", _proto_attributes(resource_spans.resource.attributes))
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            for index, span in enumerate(scope_spans.spans):
                builder.add_span(
                    f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{index}]",
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    start_nanos=span.start_time_unix_nano,
                    end_nanos=span.end_time_unix_nano,
                    status_code=span.status.code,
                    status_message=span.status.message,
                    attributes=_proto_attributes(span.attributes),
                    events=[
                        {"name": event.name, "time_nanos": event.time_unix_nano, "attributes": _proto_attributes(event.attributes)}
                        for event in span.events
                    ],
                    resource_metadata=resource_metadata,
                )
    return builder.result()


def _iso(nanos: int) -> str | None:
    moment = _nanos_to_datetime(nanos)
    return moment.isoformat() if moment else None


# --- JSON -----------------------------------------------------------------------------------------------
# The JSON body is whatever a client sent: every level is type-checked. A wrong shape where spans are expected is
# an error with its path; an odd attribute is stored as best we can (or as null), like any other attribute.


def _get(item: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    if camel in item:
        return item[camel]
    return item.get(snake, default)


def _json_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for camel, snake in (("stringValue", "string_value"), ("boolValue", "bool_value"), ("doubleValue", "double_value")):
        if camel in value or snake in value:
            return _get(value, camel, snake)
    if "intValue" in value or "int_value" in value:
        raw = _get(value, "intValue", "int_value")
        if isinstance(raw, str):  # proto3 JSON writes int64 as a string
            number = whole_number(raw.removeprefix("-"))
            return raw if number is None else (-number if raw.startswith("-") else number)
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        return raw
    if "arrayValue" in value or "array_value" in value:
        array = _get(value, "arrayValue", "array_value")
        return [_json_value(item) for item in _json_list(array.get("values"))] if isinstance(array, dict) else None
    if "kvlistValue" in value or "kvlist_value" in value:
        kvlist = _get(value, "kvlistValue", "kvlist_value")
        return _json_attributes(kvlist.get("values")) if isinstance(kvlist, dict) else None
    if "bytesValue" in value or "bytes_value" in value:
        return _get(value, "bytesValue", "bytes_value")
    return None


def _json_attributes(items: Any) -> dict[str, Any]:
    """OTLP's [{"key": ..., "value": {...}}]; items without a string key are skipped."""
    return {
        item["key"]: _json_value(item.get("value"))
        for item in _json_list(items)
        if isinstance(item, dict) and isinstance(item.get("key"), str)
    }


def _json_id(value: Any) -> str:
    """OTLP/JSON ids are hex strings (not base64, unlike protobuf's generic JSON mapping)."""
    if not isinstance(value, str):
        return ""
    text = value.strip().lower()
    if all(char in "0123456789abcdef" for char in text):
        return text
    return "!" + text  # fails the length/hex checks with a clear message


def _json_nanos(value: Any) -> int | None:
    """Nanoseconds as an integer, a whole float or a string of ASCII digits (proto3 JSON); 0 when absent, None
    when it is none of those (the range is checked with the span)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        return whole_number(value.strip())
    return None


def _json_text(builder: _Builder, path: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        builder.error(path, f"must be a string, not {type(value).__name__}")
        return ""
    return value


def _json_events(builder: _Builder, path: str, raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        builder.error(f"{path}.events", "must be a list")
        return []
    events = []
    for index, event in enumerate(raw):
        if not isinstance(event, dict):
            builder.error(f"{path}.events[{index}]", "must be an object")
            continue
        events.append(
            {
                "name": _json_text(builder, f"{path}.events[{index}].name", event.get("name")),
                "time_nanos": _json_nanos(_get(event, "timeUnixNano", "time_unix_nano")),
                "attributes": _json_attributes(event.get("attributes")),
            }
        )
    return events


def _json_span(builder: _Builder, path: str, span: Any, resource_metadata: dict[str, str]) -> None:
    if not isinstance(span, dict):
        builder.error(path, "must be an object")
        return
    status = span.get("status") or {}
    if not isinstance(status, dict):
        builder.error(f"{path}.status", 'must be an object like {"code": 1, "message": ""}')
        return
    errors_before = len(builder.errors)
    name = _json_text(builder, f"{path}.name", span.get("name"))
    status_message = _json_text(builder, f"{path}.status.message", status.get("message"))
    events = _json_events(builder, path, span.get("events"))
    if len(builder.errors) > errors_before:
        return
    builder.add_span(
        path,
        trace_id=_json_id(_get(span, "traceId", "trace_id")),
        span_id=_json_id(_get(span, "spanId", "span_id")),
        parent_span_id=_json_id(_get(span, "parentSpanId", "parent_span_id", "")),
        name=name,
        start_nanos=_json_nanos(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
        end_nanos=_json_nanos(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
        status_code=status.get("code", 0),
        status_message=status_message,
        attributes=_json_attributes(span.get("attributes")),
        events=events,
        resource_metadata=resource_metadata,
    )


def _json_list_at(builder: _Builder, path: str, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        builder.error(path, "must be a list")
        return []
    return value


def decode_json(data: Any) -> OtlpBatch:
    if not isinstance(data, dict):
        raise PayloadError([("body", "must be a JSON object with resourceSpans")])
    builder = _Builder()
    resource_spans_list = _get(data, "resourceSpans", "resource_spans", [])
    if not isinstance(resource_spans_list, list):
        raise PayloadError([("resourceSpans", "must be a list")])
    for r_index, resource_spans in enumerate(resource_spans_list):
        r_path = f"resourceSpans[{r_index}]"
        if not isinstance(resource_spans, dict):
            builder.error(r_path, "must be an object")
            continue
        resource = resource_spans.get("resource") or {}
        if not isinstance(resource, dict):
            builder.error(f"{r_path}.resource", 'must be an object like {"attributes": [...]}')
            continue
        resource_metadata = builder.resource(f"{r_path}.resource", _json_attributes(resource.get("attributes")))
        if "scopeSpans" in resource_spans or "scope_spans" in resource_spans:
            scope_list = _json_list_at(builder, f"{r_path}.scopeSpans", _get(resource_spans, "scopeSpans", "scope_spans"))
        else:  # OTLP before 0.15
            scope_list = _json_list_at(builder, f"{r_path}.instrumentationLibrarySpans", resource_spans.get("instrumentationLibrarySpans"))
        for s_index, scope_spans in enumerate(scope_list):
            s_path = f"{r_path}.scopeSpans[{s_index}]"
            if scope_spans is None:
                continue
            if not isinstance(scope_spans, dict):
                builder.error(s_path, 'must be an object like {"spans": [...]}')
                continue
            for index, span in enumerate(_json_list_at(builder, f"{s_path}.spans", scope_spans.get("spans"))):
                _json_span(builder, f"{s_path}.spans[{index}]", span, resource_metadata)
    return builder.result()
