"""What a judge sees of a trace or a session: the values of the template variables. Pure Python.

The inputs are plain dicts (see `TraceData`), built from the ORM in judges/preparation.py, so this can be unit tested
and reused by "try it" without a database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from traces.chat import message_text

FIELD_PREVIEW_CHARS = 1500


@dataclass
class SpanData:
    span_id: str
    parent_span_id: str
    name: str
    span_type: str
    status: str
    status_message: str
    duration_ms: int | None
    inputs: Any
    outputs: Any
    started_at: str = ""


@dataclass
class TraceData:
    trace_id: str
    request: Any
    response: Any
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "OK"
    spans: list[SpanData] = field(default_factory=list)
    # An evaluation run's record expectations (Trace.expectations); None on logged traces.
    expectations: dict[str, Any] | None = None


def _compact(value: Any, limit: int = FIELD_PREVIEW_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        return text[:limit] + f"… [{len(text) - limit} more characters]"
    return text


def render_spans(spans: list[SpanData]) -> str:
    """The span tree, one span per line with its inputs and outputs indented below it."""
    children: dict[str, list[SpanData]] = {}
    ids = {span.span_id for span in spans}
    roots: list[SpanData] = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in ids:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    lines: list[str] = []
    # Depth first, in start order, with a stack rather than a recursive inner function: that function referred to
    # itself, a reference cycle per prompt holding the span tree until the cyclic collector's slow full pass came
    # (design note 55).
    stack = [(root, 0) for root in reversed(_by_start(roots))]
    while stack:
        span, depth = stack.pop()
        indent = "  " * depth
        timing = f", {span.duration_ms} ms" if span.duration_ms is not None else ""
        status = f", ERROR: {span.status_message}" if span.status == "ERROR" else ""
        lines.append(f"{indent}- {span.name} [{span.span_type}{timing}{status}]")
        if span.inputs is not None:
            lines.append(f"{indent}  inputs: {_compact(span.inputs)}")
        if span.outputs is not None:
            lines.append(f"{indent}  outputs: {_compact(span.outputs)}")
        if depth < 50:
            stack.extend((child, depth + 1) for child in reversed(_by_start(children.get(span.span_id, []))))
    return "\n".join(lines)


def _by_start(spans: list[SpanData]) -> list[SpanData]:
    return sorted(spans, key=lambda item: item.started_at)


def _documents(outputs: Any) -> list[tuple[str, str]]:
    """(source, text) of each retrieved document, whatever shape the retriever logged."""
    if isinstance(outputs, dict):
        for key in ("documents", "docs", "results", "chunks"):
            if isinstance(outputs.get(key), list):
                outputs = outputs[key]
                break
    if not isinstance(outputs, list):
        return [("", _compact(outputs, 4000))] if outputs not in (None, "", [], {}) else []
    documents = []
    for item in outputs:
        if isinstance(item, dict):
            text = item.get("page_content") or item.get("content") or item.get("text") or item.get("chunk")
            metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
            source = str(metadata.get("source") or metadata.get("doc_uri") or item.get("source") or item.get("id") or "")
            documents.append((source, text if isinstance(text, str) else _compact(item, 4000)))
        else:
            documents.append(("", _compact(item, 4000)))
    return documents


def retrieved_context(spans: list[SpanData]) -> str | None:
    documents = [doc for span in spans if span.span_type == "RETRIEVER" for doc in _documents(span.outputs)]
    if not any(span.span_type == "RETRIEVER" for span in spans):
        return None
    if not documents:
        return "(the retriever returned no documents)"
    return "\n".join(
        f"[{index}]{' (' + source + ')' if source else ''} {text}" for index, (source, text) in enumerate(documents, 1)
    )


def tool_calls(spans: list[SpanData]) -> str | None:
    tools = sorted((span for span in spans if span.span_type == "TOOL"), key=lambda span: span.started_at)
    if not tools:
        return None
    lines = []
    for index, span in enumerate(tools, 1):
        result = f"ERROR: {span.status_message}" if span.status == "ERROR" else _compact(span.outputs, 800)
        lines.append(f"{index}. {span.name}({_compact(span.inputs, 800)}) → {result}")
    return "\n".join(lines)


def conversation(traces: list[TraceData]) -> str:
    turns = []
    for number, trace in enumerate(traces, 1):
        user = message_text(trace.request, role="user")
        assistant = message_text(trace.response, role="assistant")
        user_text = "(no request logged)" if user is None else _compact(user, 4000)
        if trace.status == "ERROR" and trace.response is None:
            assistant_text = "(the application failed on this turn and sent no answer)"
        else:
            assistant_text = "(no response logged)" if assistant is None else _compact(assistant, 4000)
        turns.append(f"Turn {number}\nUser: {user_text}\nAssistant: {assistant_text}")
    return "\n\n".join(turns)


def _metadata(trace: TraceData) -> dict[str, str]:
    combined = dict(trace.metadata)
    combined.update({f"tag.{key}": value for key, value in trace.tags.items()})
    return combined


def trace_values(trace: TraceData) -> dict[str, Any]:
    return {
        "inputs": trace.request,
        "outputs": trace.response,
        "trace": render_spans(trace.spans) if trace.spans else None,
        "metadata": _metadata(trace),
        "retrieved_context": retrieved_context(trace.spans),
        "tool_calls": tool_calls(trace.spans),
        # Absent (not an empty object) when there are none: {{ expectations }} then says the judge doesn't apply.
        "expectations": trace.expectations or None,
    }


def session_values(traces: list[TraceData]) -> dict[str, Any]:
    if not traces:
        return {"conversation": None, "inputs": None, "outputs": None, "metadata": {}, "retrieved_context": None, "tool_calls": None}
    all_spans = [span for trace in traces for span in trace.spans]
    return {
        "conversation": conversation(traces),
        "inputs": traces[0].request,
        "outputs": traces[-1].response,
        "metadata": _metadata(traces[0]),
        "retrieved_context": retrieved_context(all_spans),
        "tool_calls": tool_calls(all_spans),
    }
