"""The spans a predict function makes through the OpenTelemetry API, caught and nested under one root span per call,
in the JSON trace API's shape — so an evaluation run's trace shows the function's retriever, tool and model calls.

Needs `opentelemetry-sdk`; without it only the root span is logged (the server makes it from the timing). When the
process has no tracer provider yet, an SDK one is installed (a predict function's `trace.get_tracer(...)` calls
then record); when it has an SDK provider, a span processor is added to it, and its own exporters keep working."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

try:
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.trace import Status, StatusCode
except ImportError:  # pragma: no cover - the client works without OpenTelemetry
    otel_trace = None

SPAN_TYPES = {"LLM", "CHAT_MODEL", "CHAIN", "AGENT", "TOOL", "RETRIEVER", "EMBEDDING", "RERANKER", "PARSER"}
INPUT_KEYS = ("mlflow.spanInputs", "input.value")
OUTPUT_KEYS = ("mlflow.spanOutputs", "output.value")
TYPE_KEYS = ("mlflow.spanType", "openinference.span.kind")
_lock = threading.Lock()
_collector: Any = None


if otel_trace is not None:

    class _Collector(SpanProcessor):
        """Keeps the finished spans of the traces being watched (one per predict call); ignores every other."""

        def __init__(self) -> None:
            self.watched: dict[int, list[ReadableSpan]] = {}
            self.lock = threading.Lock()

        def watch(self, trace_id: int) -> None:
            with self.lock:
                self.watched[trace_id] = []

        def take(self, trace_id: int) -> list[ReadableSpan]:
            with self.lock:
                return self.watched.pop(trace_id, [])

        def on_start(self, span, parent_context=None) -> None:
            pass

        def on_end(self, span: ReadableSpan) -> None:
            with self.lock:
                found = self.watched.get(span.context.trace_id)
                if found is not None:
                    found.append(span)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True


def _install():
    """The collector, attached to the process's SDK tracer provider (installing one if there is none); None when
    OpenTelemetry's SDK is missing or another implementation of the API is in charge."""
    global _collector
    if otel_trace is None:
        return None
    with _lock:
        if _collector is not None:
            return _collector
        provider = otel_trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            if type(provider).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider"):
                return None
            otel_trace.set_tracer_provider(TracerProvider())
            provider = otel_trace.get_tracer_provider()
            if not isinstance(provider, TracerProvider):
                return None
        collector = _Collector()
        provider.add_span_processor(collector)
        _collector = collector
        return collector


def _moment(nanoseconds: int | None) -> str | None:
    if nanoseconds is None:
        return None
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=timezone.utc).isoformat()


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _span_type(attributes: dict[str, Any], is_root: bool) -> str:
    for key in TYPE_KEYS:
        kind = str(attributes.get(key, "")).upper()
        if kind in SPAN_TYPES:
            return kind
    if attributes.get("gen_ai.operation.name") == "chat":
        return "CHAT_MODEL"
    return "AGENT" if is_root else "UNKNOWN"


def span_json(span: ReadableSpan, *, root: bool, inputs: Any = None, outputs: Any = None) -> dict[str, Any]:
    attributes = {key: _decoded(value) if key in INPUT_KEYS + OUTPUT_KEYS else (list(value) if isinstance(value, tuple) else value) for key, value in (span.attributes or {}).items()}
    span_inputs = next((attributes.pop(key) for key in INPUT_KEYS if key in attributes), None)
    span_outputs = next((attributes.pop(key) for key in OUTPUT_KEYS if key in attributes), None)
    code = span.status.status_code
    return {
        "span_id": format(span.context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent is not None and not root else "",
        "name": span.name[:300],
        "span_type": _span_type(attributes, root),
        "start_time": _moment(span.start_time),
        "end_time": _moment(span.end_time),
        "status": "ERROR" if code == StatusCode.ERROR else "OK" if code == StatusCode.OK or root else "UNSET",
        "status_message": span.status.description or "",
        "inputs": inputs if root else span_inputs,
        "outputs": outputs if root else span_outputs,
        "attributes": attributes,
        "events": [
            {"name": event.name, "time": _moment(event.timestamp), "attributes": {key: list(value) if isinstance(value, tuple) else value for key, value in (event.attributes or {}).items()}}
            for event in span.events
        ],
    }


class Capture:
    """One predict call's spans: `root()` opens the root span in the calling thread (so the function's spans nest
    under it), `answered`/`failed` record how it ended, `spans()` returns them all as JSON ([] without the SDK)."""

    def __init__(self, inputs: dict[str, Any]):
        self.inputs = inputs
        self.collector = _install()
        self.trace_id: int | None = None
        self.span = None
        self.outputs: Any = None

    @classmethod
    def start(cls, inputs: dict[str, Any]) -> Capture:
        return cls(inputs)

    @contextlib.contextmanager
    def root(self) -> Iterator[None]:
        if self.collector is None:
            yield
            return
        tracer = otel_trace.get_tracer("evalapp_client.evaluate")
        # A root of its own, whatever span the caller has open: each row is a trace.
        with tracer.start_as_current_span("predict", context=otel_trace.set_span_in_context(otel_trace.INVALID_SPAN), record_exception=False, set_status_on_exception=False) as span:
            self.span = span
            self.trace_id = span.get_span_context().trace_id
            self.collector.watch(self.trace_id)
            yield

    def answered(self, outputs: Any) -> None:
        self.outputs = outputs
        if self.span is not None:
            self.span.set_status(Status(StatusCode.OK))

    def failed(self, error: BaseException) -> None:
        if self.span is not None:
            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def spans(self) -> list[dict[str, Any]]:
        if self.collector is None or self.trace_id is None:
            return []
        found = self.collector.take(self.trace_id)
        root_id = self.span.get_span_context().span_id if self.span is not None else None
        if not any(span.context.span_id == root_id for span in found):
            return []  # the call timed out: its spans are incomplete, the server makes the root span
        return [
            span_json(span, root=span.context.span_id == root_id, inputs=self.inputs, outputs=_jsonable_or_text(self.outputs))
            for span in sorted(found, key=lambda span: span.start_time or 0)
        ]


def _jsonable_or_text(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)
