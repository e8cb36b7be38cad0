"""How the trace page shows JSON values: chat messages as a conversation, an object's main text as text,
anything else as pretty-printed JSON (what counts as a chat and its text: traces.chat); and spans as a tree on the
trace's timeline. No database, no requests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from traces.chat import chat_messages, choice_messages, content_text, is_message, text_key
from traces.models import Span, Trace

MAX_JSON_CHARS = 100_000


@dataclass
class Message:
    role: str
    text: str
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    name: str = ""


@dataclass
class Readable:
    """A JSON value as people read it: kind is empty | text | chat | json. `rest` holds what a chat leaves out."""

    kind: str
    text: str = ""
    messages: list[Message] = field(default_factory=list)
    rest: str = ""
    size: int = 0
    label: str = ""  # for text taken out of a JSON object: the key it came from


def pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if len(text) > MAX_JSON_CHARS:
        return text[:MAX_JSON_CHARS] + f"\n… ({len(text) - MAX_JSON_CHARS:,} more characters not shown)"
    return text


def _message(item: dict[str, Any]) -> Message:
    calls = []
    for call in item.get("tool_calls") or []:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        arguments = function.get("arguments", "")
        if isinstance(arguments, str):
            try:
                arguments = pretty_json(json.loads(arguments))
            except ValueError:
                pass
        else:
            arguments = pretty_json(arguments)
        calls.append((str(function.get("name", "tool")), arguments))
    return Message(item["role"], content_text(item.get("content")), calls, str(item.get("name") or item.get("tool_call_id") or ""))


def _chat(messages: list[dict[str, Any]], rest: dict[str, Any] | None = None) -> Readable:
    return Readable("chat", messages=[_message(item) for item in messages], rest=pretty_json(rest) if rest else "")


def readable(value: Any) -> Readable:
    """Chat messages (a list of them, {"messages": [...]}, one message, or a chat completion's choices) as a
    conversation; plain text, or an object's main text (`{"content": "..."}`), as text; anything else as
    pretty-printed JSON."""
    if value is None or value == "" or value == {} or value == []:
        return Readable("empty")
    if isinstance(value, str):
        return Readable("text", text=value, size=len(value))
    if (messages := chat_messages(value)) is not None:
        return _chat(messages, {key: item for key, item in value.items() if key != "messages"} if isinstance(value, dict) else None)
    if isinstance(value, dict):
        if (messages := choice_messages(value)) is not None:
            return _chat(messages, {key: item for key, item in value.items() if key != "choices"})
        if is_message(value):
            return _chat([value])
        if (key := text_key(value)) is not None:
            rest = {other: item for other, item in value.items() if other != key}
            return Readable("text", text=value[key], size=len(value[key]), rest=pretty_json(rest) if rest else "", label=key)
    text = pretty_json(value)
    return Readable("json", text=text, size=len(text))


@dataclass
class SpanRow:
    span: Span
    depth: int
    offset_pct: str
    width_pct: str
    inputs: Readable
    outputs: Readable
    attributes: str


def span_rows(trace: Trace, spans: list[Span]) -> list[SpanRow]:
    """Depth-first, children in start order, with each span's place on the trace's timeline (a waterfall)."""
    if not spans:
        return []
    start = min(span.started_at for span in spans)
    end = max([span.ended_at or span.started_at for span in spans] + ([trace.ended_at] if trace.ended_at else []))
    total = max((end - start).total_seconds(), 0.001)
    ids = {span.span_id for span in spans}
    children: dict[str, list[Span]] = {}
    roots = []
    for span in spans:  # already in start order
        if span.parent_span_id and span.parent_span_id in ids and span.parent_span_id != span.span_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)  # a root, or an orphan whose parent never arrived
    rows: list[SpanRow] = []
    seen: set[str] = set()
    stack = [(span, 0) for span in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:  # a parent cycle in bad data
            continue
        seen.add(span.span_id)
        offset = (span.started_at - start).total_seconds() / total * 100
        width = ((span.ended_at or end) - span.started_at).total_seconds() / total * 100
        rows.append(
            SpanRow(
                span,
                depth,
                f"{max(0.0, min(offset, 100.0)):.2f}",
                f"{max(0.4, min(width, 100.0 - offset)):.2f}",
                readable(span.inputs),
                readable(span.outputs),
                pretty_json(span.attributes) if span.attributes else "",
            )
        )
        stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, [])))
    return rows


def key_values(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)) for key, value in sorted((mapping or {}).items())]

