"""The shape every ingestion path is decoded into, and how a trace's fields follow from its spans.

Pure Python (no Django): the JSON API and the OTLP decoder both produce `TraceIn`s, and
`build_trace_fields` turns a trace's explicit fields plus all of its spans into the row we store.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from traces import chat

SPAN_TYPES = (
    "AGENT",
    "CHAIN",
    "CHAT_MODEL",
    "LLM",
    "RETRIEVER",
    "TOOL",
    "EMBEDDING",
    "RERANKER",
    "PARSER",
    "UNKNOWN",
)
TRACE_STATUSES = ("OK", "ERROR", "IN_PROGRESS")
SPAN_STATUSES = ("OK", "ERROR", "UNSET")
PREVIEW_CHARS = 300


class _Unset:
    """Marks a field the client did not send (None is a valid JSON value for request/response)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


@dataclass(kw_only=True)
class SpanIn:
    """One span as a client sent it; its fields are the ones a span row stores (STORED_SPAN_FIELDS)."""

    span_id: str
    parent_span_id: str = ""
    name: str = ""
    span_type: str = "UNKNOWN"
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "UNSET"
    status_message: str = ""
    inputs: Any = None
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TraceIn:
    """One trace as a client sent it. Fields left UNSET/None are derived from the spans (or kept from before)."""

    trace_id: str
    spans: list[SpanIn] = field(default_factory=list)
    name: str | None = None
    status: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    request: Any = UNSET
    response: Any = UNSET
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    session_id: str | None = None
    user_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


@dataclass
class TraceFields:
    """Everything stored on a trace row apart from its identity and bookkeeping times."""

    name: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    request: Any
    response: Any
    request_preview: str
    response_preview: str
    metadata: dict[str, str]
    tags: dict[str, str]
    session_id: str
    user_id: str
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    span_count: int


# What a span row and a trace row store (apart from the trace a span belongs to, and a trace's id, experiment and
# bookkeeping times), in the order the API shows them: ingest writes these, the API's serializers show them.
STORED_SPAN_FIELDS = tuple(item.name for item in fields(SpanIn))
STORED_TRACE_FIELDS = tuple(item.name for item in fields(TraceFields))


# Attribute names of the conventions we understand. First match wins.
SESSION_KEYS = ("session.id", "mlflow.trace.session", "gen_ai.conversation.id")
USER_KEYS = ("user.id", "mlflow.trace.user", "enduser.id")
INPUT_TOKEN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_TOKEN_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")
TOTAL_TOKEN_KEYS = ("llm.token_count.total", "gen_ai.usage.total_tokens")
METADATA_PREFIXES = ("evalapp.metadata.", "mlflow.trace.metadata.")
TAG_PREFIXES = ("evalapp.tag.", "mlflow.trace.tag.")


def _first_str(attributes: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if value not in (None, ""):
            return str(value)
    return None


# Per trace; no real trace comes near a billion tokens. Low enough that the Overview's 64-bit SUM over an
# experiment's traces can't overflow (SQLite raises on that) before some 9 billion traces. A span attribute
# beyond it is ignored like other odd attributes; the JSON API refuses an explicit count beyond it.
MAX_TOKEN_COUNT = 10**9


def _as_int(value: Any) -> int | None:
    """A token count from an attribute: a number or a string of ASCII digits ("²".isdigit() is True, too), in range."""
    if isinstance(value, bool) or value is None:
        return None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value):
        number = int(value)
    elif isinstance(value, str) and (text := value.strip()).isascii() and text.isdigit() and len(text) <= 16:
        number = int(text)
    if number is None or not 0 <= number <= MAX_TOKEN_COUNT:
        return None
    return number


def span_token_usage(attributes: dict[str, Any]) -> tuple[int | None, int | None, int | None]:
    """(input, output, total) tokens a span reports, in any convention we know; None where absent."""
    usage = attributes.get("mlflow.chat.tokenUsage")
    if isinstance(usage, str):
        try:
            usage = json.loads(usage)
        except ValueError:
            usage = None
    if isinstance(usage, dict):
        return (
            _as_int(usage.get("input_tokens")),
            _as_int(usage.get("output_tokens")),
            _as_int(usage.get("total_tokens")),
        )
    found = [None, None, None]
    for index, keys in enumerate((INPUT_TOKEN_KEYS, OUTPUT_TOKEN_KEYS, TOTAL_TOKEN_KEYS)):
        for key in keys:
            if key in attributes:
                found[index] = _as_int(attributes[key])
                break
    return found[0], found[1], found[2]


def span_metadata_and_tags(attributes: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    metadata: dict[str, str] = {}
    tags: dict[str, str] = {}
    raw_metadata = attributes.get("metadata")  # OpenInference: a JSON object as a string
    if isinstance(raw_metadata, str):
        try:
            raw_metadata = json.loads(raw_metadata)
        except ValueError:
            raw_metadata = None
    if isinstance(raw_metadata, dict):
        metadata.update({str(k): stringify(v) for k, v in raw_metadata.items()})
    raw_tags = attributes.get("tag.tags")  # OpenInference: a list of strings
    if isinstance(raw_tags, list):
        tags.update({str(tag): "true" for tag in raw_tags})
    for key, value in attributes.items():
        for prefix in METADATA_PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                metadata[key[len(prefix) :]] = stringify(value)
        for prefix in TAG_PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                tags[key[len(prefix) :]] = stringify(value)
    return metadata, tags


def stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) or value is None:
        return "" if value is None else str(value)
    return json.dumps(value, sort_keys=True, default=str)


def preview(value: Any, *, role: str) -> str:
    """A one-line, human-readable glimpse of a request (role "user": what was asked) or a response ("assistant":
    the answer), for tables."""
    text = _preview_text(value, role)
    text = " ".join(text.split())
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1] + "…"
    return text


def _preview_text(value: Any, role: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # A chat (traces.chat): the newest message of the role, else the last one.
    if (messages := chat.chat_messages(value)) is not None:
        return _preview_content(chat.newest(messages, role) or messages[-1], role)
    if (choices := chat.choice_messages(value)) is not None:
        return _preview_content(choices[0], role)
    if isinstance(value, dict):
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 or (strings and len(strings) == 1):
            only = strings[0] if strings else next(iter(value.values()))
            return _preview_text(only, role)
    if isinstance(value, list) and value and all(isinstance(item, dict) and "content" in item for item in value):
        return _preview_text(value[-1].get("content"), role)
    return json.dumps(value, ensure_ascii=False, default=str)


def _preview_content(message: dict[str, Any], role: str) -> str:
    content = message.get("content")
    return _preview_text(chat.content_text(content) if isinstance(content, list) else content, role)


def find_root(spans: list[SpanIn]) -> SpanIn | None:
    roots = [span for span in spans if not span.parent_span_id]
    if not roots:
        return None
    return min(roots, key=lambda span: span.started_at)


def _leaf_token_usage(spans: list[SpanIn]) -> tuple[int | None, int | None, int | None]:
    """Sum token usage over the deepest spans that report it, so an agent span that repeats its children's
    totals is not counted twice."""
    usage = {span.span_id: span_token_usage(span.attributes) for span in spans}
    reporting = {span_id for span_id, counts in usage.items() if any(c is not None for c in counts)}
    if not reporting:
        return None, None, None
    parents = {span.span_id: span.parent_span_id for span in spans}
    shadowed: set[str] = set()
    for span_id in reporting:
        parent = parents.get(span_id)
        seen = 0
        while parent and seen < 1000:  # bounded: a client could send a parent cycle
            shadowed.add(parent)
            parent = parents.get(parent)
            seen += 1
    totals: list[int | None] = [None, None, None]
    for span_id in reporting - shadowed:
        for index, count in enumerate(usage[span_id]):
            if count is not None:
                # Capped so that even a flood of huge counts fits the 64-bit column.
                totals[index] = min((totals[index] or 0) + count, MAX_TOKEN_COUNT)
    if totals[2] is None and (totals[0] is not None or totals[1] is not None):
        totals[2] = (totals[0] or 0) + (totals[1] or 0)
    return totals[0], totals[1], totals[2]


def _status(explicit: TraceIn, root: SpanIn | None, existing: TraceFields | None) -> str:
    if explicit.status:
        return explicit.status
    if root is not None:
        if root.status == "ERROR":
            return "ERROR"
        return "OK" if root.ended_at is not None else "IN_PROGRESS"
    if existing is not None and existing.status != "IN_PROGRESS":
        return existing.status
    return "OK" if explicit.ended_at is not None else "IN_PROGRESS"


def _token_counts(explicit: TraceIn, spans: list[SpanIn], existing: TraceFields | None) -> tuple[int | None, int | None, int | None]:
    span_in, span_out, span_total = _leaf_token_usage(spans)
    input_tokens = explicit.input_tokens if explicit.input_tokens is not None else span_in
    output_tokens = explicit.output_tokens if explicit.output_tokens is not None else span_out
    total_tokens = explicit.total_tokens if explicit.total_tokens is not None else span_total
    if explicit.total_tokens is None and (explicit.input_tokens is not None or explicit.output_tokens is not None):
        total_tokens = (input_tokens or 0) + (output_tokens or 0)
    if existing is not None and input_tokens is None and output_tokens is None and total_tokens is None:
        return existing.input_tokens, existing.output_tokens, existing.total_tokens
    return input_tokens, output_tokens, total_tokens


def build_trace_fields(explicit: TraceIn, spans: list[SpanIn], existing: TraceFields | None = None) -> TraceFields:
    """The stored fields of a trace: what the client said explicitly, else what its root span says, else what
    we had before, else what the spans we have so far imply (an unfinished trace is IN_PROGRESS)."""
    root = find_root(spans)

    def pick(explicit_value: Any, from_root: Any, from_existing: Any, fallback: Any) -> Any:
        for candidate in (explicit_value, from_root, from_existing):
            if candidate is not UNSET and candidate is not None:
                return candidate
        return fallback

    earliest = min((span.started_at for span in spans), default=None)
    started_at = pick(
        explicit.started_at,
        root.started_at if root else None,
        existing.started_at if existing else None,
        earliest,
    )
    if started_at is None:
        raise ValueError(f"trace {explicit.trace_id}: no start time and no spans")
    if earliest is not None and root is None and explicit.started_at is None:
        started_at = min(started_at, earliest)
    ended_at = pick(explicit.ended_at, root.ended_at if root else None, existing.ended_at if existing else None, None)

    status = _status(explicit, root, existing)
    request = pick(explicit.request, root.inputs if root else None, existing.request if existing else None, None)
    response = pick(explicit.response, root.outputs if root else None, existing.response if existing else None, None)

    ordered = ([root] if root else []) + [span for span in spans if span is not root]
    metadata: dict[str, str] = dict(existing.metadata) if existing else {}
    tags: dict[str, str] = dict(existing.tags) if existing else {}
    session_id = explicit.session_id
    user_id = explicit.user_id
    for span in reversed(ordered):  # root last, so its values win over children's
        span_metadata, span_tags = span_metadata_and_tags(span.attributes)
        metadata.update(span_metadata)
        tags.update(span_tags)
    for span in ordered:
        if session_id is None:
            session_id = _first_str(span.attributes, SESSION_KEYS)
        if user_id is None:
            user_id = _first_str(span.attributes, USER_KEYS)
    metadata.update(explicit.metadata)
    tags.update(explicit.tags)
    if session_id is None:
        session_id = metadata.get("mlflow.trace.session") or (existing.session_id if existing else "")
    if user_id is None:
        user_id = metadata.get("mlflow.trace.user") or (existing.user_id if existing else "")

    input_tokens, output_tokens, total_tokens = _token_counts(explicit, spans, existing)

    duration_ms = None
    if ended_at is not None:
        duration_ms = max(0, round((ended_at - started_at).total_seconds() * 1000))

    name = pick(explicit.name, root.name if root else None, existing.name if existing else None, "")
    return TraceFields(
        name=name,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        duration_ms=duration_ms,
        request=request,
        response=response,
        request_preview=preview(request, role="user"),
        response_preview=preview(response, role="assistant"),
        metadata=metadata,
        tags=tags,
        session_id=session_id or "",
        user_id=user_id or "",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens,
        span_count=len(spans),
    )
