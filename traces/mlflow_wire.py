"""What MLflow's tracing client sends and expects, as plain values. No Django.

The drop-in (traces/mlflow_api.py) takes an MLflow `TraceInfoV3` (the trace's metadata, tags and assessments) and
its span data (the `traces.json` the client uploads) and turns them into the `TraceIn` records every ingest path
produces; the span data goes through the OTLP/JSON decoder (traces/otlp.py), so MLflow's span conventions are read
in one place. Going the other way, it writes a stored trace as MLflow's `TraceInfoV3` JSON and its spans as
MLflow's span dictionaries, which `mlflow.search_traces` and `mlflow.get_trace` read.

Ids: MLflow names a trace `tr-` + the 32 hex digits of its OpenTelemetry trace id; we store the 32 hex digits (as
the OTLP receiver does), so a trace logged both ways is one trace.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from traces import otlp
from traces.payload import PayloadError, parse_timestamp
from traces.records import MAX_TOKEN_COUNT, TraceIn

MLFLOW_PREFIX = "tr-"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
MAX_TRACE_ID = 128
# Metadata MLflow's client writes that we keep elsewhere (request/response, span count), or that would only bloat
# every row: dropped on the way in, and what a reader needs of it is written back on the way out.
DROPPED_METADATA = ("mlflow.traceInputs", "mlflow.traceOutputs", "mlflow.trace.sizeBytes", "mlflow.trace.sizeStats")
TOKEN_USAGE_KEY = "mlflow.trace.tokenUsage"
ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"
SCHEMA_VERSION_KEY = "mlflow.trace_schema.version"
# The span attributes MLflow writes as JSON and our OTLP decoder reads as JSON (passed through as text, so a string
# that looks like JSON stays a string).
JSON_TEXT_ATTRIBUTES = ("mlflow.spanInputs", "mlflow.spanOutputs", "mlflow.spanType")
SOURCE_TYPES = ("HUMAN", "CODE", "LLM_JUDGE")
MAX_ASSESSMENTS = 100
MAX_VALUE_BYTES = 64_000
OTLP_STATUS_NAMES = {"OK": "STATUS_CODE_OK", "ERROR": "STATUS_CODE_ERROR", "UNSET": "STATUS_CODE_UNSET"}


def our_trace_id(mlflow_id: str) -> str:
    """The id we store for an MLflow trace id: `tr-<32 hex>` → the hex; any other id as it is."""
    text = mlflow_id.strip()
    rest = text[len(MLFLOW_PREFIX) :].lower() if text.startswith(MLFLOW_PREFIX) else ""
    return rest if HEX32.fullmatch(rest) else text


def mlflow_trace_id(trace_id: str) -> str:
    return MLFLOW_PREFIX + trace_id if HEX32.fullmatch(trace_id) else trace_id


def check_trace_id(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TRACE_ID or "\x00" in value:
        raise PayloadError([(path, f"must be a trace id like 'tr-' and 32 hex digits (at most {MAX_TRACE_ID} characters)")])
    return our_trace_id(value)


# --- times ----------------------------------------------------------------------------------------------


def parse_proto_time(value: Any, path: str) -> datetime:
    """A protobuf Timestamp in JSON ("2026-12-06T15:40:45.607Z", up to nine decimals)."""
    if not isinstance(value, str):
        raise PayloadError([(path, "must be an RFC 3339 time like '2026-12-06T15:40:45.607Z'")])
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # Python reads microseconds at most
    try:
        return parse_timestamp(text)
    except ValueError as error:
        raise PayloadError([(path, str(error))]) from None


def parse_proto_duration(value: Any, path: str) -> timedelta:
    """A protobuf Duration in JSON ("1.250s")."""
    match = re.fullmatch(r"(\d{1,12})(\.\d{1,9})?s", value.strip()) if isinstance(value, str) else None
    if match is None:
        raise PayloadError([(path, "must be a duration like '1.250s'")])
    return timedelta(seconds=float(match.group(0)[:-1]))


def proto_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def proto_duration(milliseconds: int) -> str:
    return f"{milliseconds / 1000:.3f}s"


def nanos(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    delta = moment - otlp.EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


# --- trace info in --------------------------------------------------------------------------------------


@dataclass
class AssessmentIn:
    """An MLflow assessment (feedback or expectation) as the client sent it."""

    name: str
    value: Any
    expectation: bool
    rationale: str = ""
    source_type: str = "CODE"
    source_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    overrides: str = ""
    span_id: str = ""  # the span it is about, if one


@dataclass
class TraceInfoIn:
    trace: TraceIn
    experiment_id: str
    assessments: list[AssessmentIn]


def _string_map(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):  # the v2 shape: [{"key": ..., "value": ...}]
        if not all(isinstance(item, dict) for item in value):
            raise PayloadError([(path, "must be an object of text values")])
        value = {item.get("key"): item.get("value", "") for item in value}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError([(path, "must be an object of text values")])
    if any("\x00" in k or "\x00" in v for k, v in value.items()):
        raise PayloadError([(path, "holds a NUL character, which no database stores")])
    return dict(value)


def _token_usage(metadata: dict[str, str]) -> tuple[int | None, int | None, int | None]:
    try:
        usage = json.loads(metadata.get(TOKEN_USAGE_KEY, "null"))
    except ValueError:
        return None, None, None
    if not isinstance(usage, dict):
        return None, None, None

    def count(key: str) -> int | None:
        value = usage.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT
        return value if ok else None

    return count("input_tokens"), count("output_tokens"), count("total_tokens")


def parse_trace_info(info: Any) -> TraceInfoIn:
    """A `TraceInfoV3` (StartTraceV3's `trace.trace_info`) → the trace's explicit fields. Its state and end are
    left to the spans (a trace is in progress until its root span arrives), so a judge never reads a trace whose
    spans are still on their way."""
    if not isinstance(info, dict):
        raise PayloadError([("trace.trace_info", "must be an object")])
    trace_id = check_trace_id(info.get("trace_id"), "trace.trace_info.trace_id")
    location = info.get("trace_location") or {}
    experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
    experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
    if not isinstance(experiment_id, str) or not experiment_id.strip():
        raise PayloadError([("trace.trace_info.trace_location", "must name an MLflow experiment (mlflow_experiment.experiment_id)")])
    started_at = parse_proto_time(info.get("request_time"), "trace.trace_info.request_time")
    metadata = _string_map(info.get("trace_metadata"), "trace.trace_info.trace_metadata")
    tags = _string_map(info.get("tags"), "trace.trace_info.tags")
    tags.pop(ARTIFACT_LOCATION_TAG, None)  # ours to say
    input_tokens, output_tokens, total_tokens = _token_usage(metadata)
    for key in DROPPED_METADATA:
        metadata.pop(key, None)
    raw_assessments = info.get("assessments") or []
    if not isinstance(raw_assessments, list) or len(raw_assessments) > MAX_ASSESSMENTS:
        raise PayloadError([("trace.trace_info.assessments", f"must be a list of at most {MAX_ASSESSMENTS} assessments")])
    assessments = [parse_assessment(item, f"trace.trace_info.assessments[{index}]") for index, item in enumerate(raw_assessments)]
    trace = TraceIn(
        trace_id=trace_id,
        started_at=started_at,
        metadata=metadata,
        tags=tags,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens,
    )
    return TraceInfoIn(trace=trace, experiment_id=experiment_id.strip(), assessments=assessments)


def _plain_json(value: Any, path: str) -> Any:
    """A google.protobuf.Value as JSON (any JSON value), within size."""
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError([(path, "must be a finite number")])
    if len(json.dumps(value, default=str)) > MAX_VALUE_BYTES:
        raise PayloadError([(path, f"is over {MAX_VALUE_BYTES:,} bytes as JSON")])
    return value


def parse_assessment(data: Any, path: str) -> AssessmentIn:
    if not isinstance(data, dict):
        raise PayloadError([(path, "must be an object")])
    name = data.get("assessment_name")
    if not isinstance(name, str) or not name.strip():
        raise PayloadError([(f"{path}.assessment_name", "is required")])
    feedback, expectation = data.get("feedback"), data.get("expectation")
    body = feedback if feedback is not None else expectation
    if (feedback is None) == (expectation is None) or not isinstance(body, dict):
        raise PayloadError([(path, "must hold either a feedback or an expectation object")])
    value = body.get("value")
    serialized = body.get("serialized_value")
    if value is None and expectation is not None and isinstance(serialized, dict):
        value = serialized.get("value")  # what is not a plain value, as JSON text (JSON_FORMAT)
        if serialized.get("serialization_format") == "JSON_FORMAT" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise PayloadError([(f"{path}.expectation.serialized_value.value", "is not JSON")]) from None
    error = (feedback or {}).get("error") or data.get("error") or {}
    if not isinstance(error, dict):
        raise PayloadError([(f"{path}.feedback.error", "must be an object")])
    source = data.get("source") or {}
    source_type = source.get("source_type", "CODE") if isinstance(source, dict) else None
    if source_type not in SOURCE_TYPES:
        raise PayloadError([(f"{path}.source.source_type", f"must be one of {', '.join(SOURCE_TYPES)}")])
    source_id = source.get("source_id") or ""
    rationale = data.get("rationale") or ""
    overrides = data.get("overrides") or ""
    span_id = data.get("span_id") or ""
    texts = {"source.source_id": source_id, "rationale": rationale, "overrides": overrides, "span_id": span_id}
    for key, text in texts.items():
        if not isinstance(text, str) or "\x00" in text:
            raise PayloadError([(f"{path}.{key}", "must be text without NUL characters")])
    return AssessmentIn(
        name=name.strip(),
        value=_plain_json(value, f"{path}.{'feedback' if feedback is not None else 'expectation'}.value"),
        expectation=expectation is not None,
        rationale=rationale,
        source_type=source_type,
        source_id=source_id[:200],
        metadata=_string_map(data.get("metadata"), f"{path}.metadata"),
        error_code=str(error.get("error_code") or "")[:40],
        error_message=str(error.get("error_message") or ""),
        overrides=overrides,
        span_id=span_id[:64],
    )


# --- span data in ---------------------------------------------------------------------------------------


def _b64_hex(value: Any) -> str:
    """MLflow writes span ids base64-encoded; anything else is passed on for the decoder to refuse with a path."""
    if not isinstance(value, str) or not value:
        return ""
    if HEX32.fullmatch(value.lower()) or HEX16.fullmatch(value.lower()):
        return value.lower()
    try:
        return base64.b64decode(value, validate=True).hex()
    except ValueError:
        return "!" + value


def _any_value(value: Any) -> dict[str, Any]:
    """A plain value as an OTLP/JSON AnyValue."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": str(k), "value": _any_value(v)} for k, v in value.items()]}}
    return {}


def _attribute(key: str, value: Any) -> dict[str, Any]:
    if key not in JSON_TEXT_ATTRIBUTES and isinstance(value, str):
        try:  # MLflow writes every attribute's value as JSON
            value = json.loads(value)
        except ValueError:
            pass
    return {"key": key, "value": _any_value(value)}


def _otlp_span(span: Any) -> Any:
    if not isinstance(span, dict):
        return span  # the decoder says what is wrong, with its path
    attributes = span.get("attributes") if isinstance(span.get("attributes"), dict) else {}
    events = span.get("events") if isinstance(span.get("events"), list) else []
    status = span.get("status") if isinstance(span.get("status"), dict) else {}
    return {
        "traceId": _b64_hex(span.get("trace_id")),
        "spanId": _b64_hex(span.get("span_id")),
        "parentSpanId": _b64_hex(span.get("parent_span_id")),
        "name": span.get("name"),
        "startTimeUnixNano": span.get("start_time_unix_nano"),
        "endTimeUnixNano": span.get("end_time_unix_nano"),
        "status": {"code": status.get("code") or "STATUS_CODE_UNSET", "message": status.get("message") or ""},
        "attributes": [_attribute(key, value) for key, value in attributes.items()],
        "events": [
            {
                "name": event.get("name"),
                "timeUnixNano": event.get("time_unix_nano"),
                "attributes": [{"key": k, "value": _any_value(v)} for k, v in (event.get("attributes") or {}).items()],
            }
            for event in events
            if isinstance(event, dict)
        ],
    }


def parse_trace_data(data: Any, trace_id: str) -> TraceIn:
    """MLflow's trace data (`{"spans": [span.to_dict(), ...]}`) → one trace of spans, decoded as OTLP/JSON is. The
    spans belong to the trace the upload is for, whatever trace id they carry."""
    spans = data.get("spans") if isinstance(data, dict) else None
    if not isinstance(spans, list):
        raise PayloadError([("spans", 'must be a list: send MLflow trace data, {"spans": [...]}')])
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [_otlp_span(span) for span in spans]}]}]}
    try:
        batch = otlp.decode_json(request)
    except PayloadError as error:
        prefix = "resourceSpans[0].scopeSpans[0]."
        raise PayloadError([(path.removeprefix(prefix), message) for path, message in error.errors]) from None
    trace = TraceIn(trace_id=trace_id)
    for decoded in batch.traces:
        trace.spans.extend(decoded.spans)
    return trace


# --- out ------------------------------------------------------------------------------------------------


def _id_bytes(text: str, size: int) -> bytes:
    """An id as the bytes MLflow's span dictionaries hold: the hex itself, or a stable hash of any other id."""
    if len(text) == size * 2 and all(char in "0123456789abcdef" for char in text):
        return bytes.fromhex(text)
    return hashlib.sha256(text.encode()).digest()[:size]


def span_dict(span: Any, trace_id: str) -> dict[str, Any]:
    """A stored span (a Span row or anything with its fields) as MLflow's span dictionary."""
    attributes = {key: json.dumps(value, default=str) for key, value in (span.attributes or {}).items()}
    attributes.update(
        {
            "mlflow.traceRequestId": json.dumps(mlflow_trace_id(trace_id)),
            "mlflow.spanType": json.dumps(span.span_type),
            "mlflow.spanInputs": json.dumps(span.inputs, default=str),
            "mlflow.spanOutputs": json.dumps(span.outputs, default=str),
        }
    )
    events = []
    for event in span.events or []:
        when = event.get("time") if isinstance(event, dict) else None
        try:
            at = nanos(datetime.fromisoformat(when)) if isinstance(when, str) else nanos(span.started_at)
        except ValueError:
            at = nanos(span.started_at)
        events.append({"name": event.get("name", ""), "time_unix_nano": at, "attributes": event.get("attributes") or {}})
    return {
        "trace_id": base64.b64encode(_id_bytes(trace_id, 16)).decode(),
        "span_id": base64.b64encode(_id_bytes(span.span_id, 8)).decode(),
        "parent_span_id": base64.b64encode(_id_bytes(span.parent_span_id, 8)).decode() if span.parent_span_id else None,
        "name": span.name,
        "start_time_unix_nano": nanos(span.started_at),
        "end_time_unix_nano": nanos(span.ended_at),
        "events": events,
        "status": {"code": OTLP_STATUS_NAMES.get(span.status, "STATUS_CODE_UNSET"), "message": span.status_message},
        "attributes": attributes,
        "links": [],
    }


EXPECTATION_KEY = "mlflow.assessmentType"  # kept in an assessment's metadata: "expectation" (else it is feedback)
SOURCE_TYPE_KEY = "mlflow.sourceType"  # the client's source type, when we store it as another
SPAN_ID_KEY = "mlflow.spanId"  # the span an assessment is about (we store assessments by trace)


def artifact_location(trace_id: str) -> str:
    """Where the client uploads a trace's spans and reads them back (resolved against its tracking URI)."""
    return f"mlflow-artifacts:/traces/{mlflow_trace_id(trace_id)}"


def trace_info_json(trace: Any, assessments: list[Any] = ()) -> dict[str, Any]:
    """A stored trace (a Trace row) as MLflow's TraceInfoV3 JSON."""
    metadata = {SCHEMA_VERSION_KEY: "3", **(trace.metadata or {})}
    if trace.session_id:
        metadata["mlflow.trace.session"] = trace.session_id
    if trace.user_id:
        metadata["mlflow.trace.user"] = trace.user_id
    counts = {"input_tokens": trace.input_tokens, "output_tokens": trace.output_tokens, "total_tokens": trace.total_tokens}
    if any(value is not None for value in counts.values()):
        metadata[TOKEN_USAGE_KEY] = json.dumps({key: value or 0 for key, value in counts.items()})
    info: dict[str, Any] = {
        "trace_id": mlflow_trace_id(trace.trace_id),
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(trace.experiment_id)}},
        "request_preview": trace.request_preview,
        "response_preview": trace.response_preview,
        "request_time": proto_time(trace.started_at),
        "state": trace.status,
        "trace_metadata": metadata,
        "tags": {"mlflow.traceName": trace.name, **(trace.tags or {}), ARTIFACT_LOCATION_TAG: artifact_location(trace.trace_id)},
        "assessments": [assessment_json(item, trace.trace_id) for item in assessments],
    }
    if trace.duration_ms is not None:
        info["execution_duration"] = proto_duration(trace.duration_ms)
    return info


def assessment_json(assessment: Any, trace_id: str) -> dict[str, Any]:
    """A stored assessment (an Assessment row) as MLflow's Assessment JSON."""
    metadata = {key: str(value) for key, value in (assessment.metadata or {}).items()}
    kind = "expectation" if metadata.pop(EXPECTATION_KEY, "") == "expectation" else "feedback"
    source_type = metadata.pop(SOURCE_TYPE_KEY, "") or assessment.source_type
    span_id = metadata.pop(SPAN_ID_KEY, "")
    body: dict[str, Any] = {"value": assessment.value}
    if kind == "expectation" and isinstance(assessment.value, (dict, list)):
        body = {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": json.dumps(assessment.value)}}
    if assessment.error_code:
        body["error"] = {"error_code": assessment.error_code, "error_message": assessment.error_message}
    data: dict[str, Any] = {
        "assessment_id": str(assessment.pk),
        "assessment_name": assessment.name,
        "trace_id": mlflow_trace_id(trace_id),
        "source": {"source_type": source_type, "source_id": assessment.judge_name or assessment.source_id},
        "create_time": proto_time(assessment.created_at),
        "last_update_time": proto_time(assessment.created_at),
        kind: body,
        "rationale": assessment.rationale,
        "metadata": metadata,
        "valid": assessment.valid,
    }
    if assessment.overrides_id:
        data["overrides"] = str(assessment.overrides_id)
    if span_id:
        data["span_id"] = span_id
    return data
