"""OpenAPI documentation of the experiments, traces, sessions and assessments API (traces/api.py), applied by
decorators there: `@api_schema.trace_list` on TraceListView, and so on.

The views build most of their JSON by hand, so request shapes are spelled out here as small documentation-only
serializers (never used to parse anything). Where a view answers through a real serializer (traces.serializers)
that serializer is reused, so those shapes can't drift.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers

from traces.models import AssessmentSource, SpanStatus, SpanType, TraceStatus
from traces.openapi import EXPERIMENT_ID, SESSION_ID, TRACE_ID, errors
from traces.serializers import (
    AssessmentSerializer,
    ExperimentSerializer,
    SessionSerializer,
    TraceDetailSerializer,
    TraceSummarySerializer,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "minimum": 1_000_000_000_000, "maximum": 4_102_444_800_000}]}
)
class TimestampField(serializers.Field):
    """ISO 8601 with a timezone, or epoch milliseconds; in the years 1970–2099."""


PAGE_SIZE = OpenApiParameter(
    "page_size", {"type": "integer", "minimum": 1, "maximum": 500}, description="Rows per page, 1–500 (default 50).",
)
CURSOR = OpenApiParameter(
    "cursor", OpenApiTypes.STR, description="`next_cursor` from the previous page; omit it for the first page.",
)


TIME_DESCRIPTION = "ISO 8601 with a timezone (`2026-11-20T12:00:00Z`) or epoch milliseconds, in the years 1970–2099."
SINCE = OpenApiParameter("since", OpenApiTypes.STR, description=f"Only rows at or after this time. {TIME_DESCRIPTION}")
UNTIL = OpenApiParameter("until", OpenApiTypes.STR, description=f"Only rows before this time. {TIME_DESCRIPTION}")


# --- experiments --------------------------------------------------------------------------------------------

class ExperimentListSerializer(serializers.Serializer):
    experiments = ExperimentSerializer(many=True)


EXPERIMENT_EXAMPLE = {"id": 2, "name": "checkout-agent", "description": "the agent behind checkout", "created_at": "2026-11-20T12:00:00Z"}

experiment_list = extend_schema_view(
    get=extend_schema(
        operation_id="experiments_list",
        summary="List experiments",
        description="Every experiment, by name. Any logged-in user or token may read.",
        tags=["Experiments"],
        responses={200: ExperimentListSerializer, **errors()},
        examples=[OpenApiExample("Experiments", value={"experiments": [EXPERIMENT_EXAMPLE]}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="experiments_create",
        summary="Create an experiment",
        description="An experiment groups the traces of one application, and its judges. Any user or token may "
        "create one; the name is trimmed and must not be blank or another experiment's (400 on `name`).",
        tags=["Experiments"],
        request=ExperimentSerializer,
        responses={201: ExperimentSerializer, **errors(400)},
        examples=[
            OpenApiExample("New experiment", value={"name": "checkout-agent", "description": "the agent behind checkout"}, request_only=True),
            OpenApiExample("Created", value=EXPERIMENT_EXAMPLE, response_only=True, status_codes=[201]),
        ],
    ),
)

class ExperimentDeleteSerializer(serializers.Serializer):
    confirm_name = serializers.CharField(help_text="The experiment's name, exactly as it is.")


class DeletionProgressSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(["deleting"])
    traces_total = serializers.IntegerField(help_text="Traces it had when the deletion was asked for.")
    traces_deleted = serializers.IntegerField()
    traces_left = serializers.IntegerField()
    sessions_left = serializers.IntegerField()


DELETION_EXAMPLE = {"name": "checkout-agent", "status": "deleting", "traces_total": 1200, "traces_deleted": 0, "traces_left": 1200, "sessions_left": 85}

experiment_detail = extend_schema_view(
    get=extend_schema(
        operation_id="experiments_retrieve",
        summary="Get an experiment",
        description="One experiment by id. Any logged-in user or token may read.",
        tags=["Experiments"],
        parameters=[EXPERIMENT_ID],
        responses={200: ExperimentSerializer, **errors(404, 410)},
        examples=[OpenApiExample("Experiment", value=EXPERIMENT_EXAMPLE, response_only=True)],
    ),
    delete=extend_schema(
        operation_id="experiments_destroy",
        summary="Delete an experiment",
        description="Deletes the experiment and everything on it (traces, spans, sessions, verdicts, evaluations, "
        "judges, alert rules) in the background, in batches. Editors only. Confirm with the experiment's exact name "
        "in `confirm_name` (in the body, or as a query parameter): a wrong or missing name is a 400 and nothing is "
        "deleted. From the 202 on the experiment is gone from every list and refuses traces (410); `GET` answers 410 "
        "with the progress until it is gone, then 404. Asking again while it runs answers 202 with the progress.",
        tags=["Experiments"],
        parameters=[EXPERIMENT_ID],
        request=ExperimentDeleteSerializer,
        responses={202: DeletionProgressSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample("Confirm", value={"confirm_name": "checkout-agent"}, request_only=True),
            OpenApiExample("Deleting", value=DELETION_EXAMPLE, response_only=True, status_codes=[202]),
        ],
    ),
)


# --- traces -------------------------------------------------------------------------------------------------

class SpanEventInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=300)
    time = TimestampField(required=False)
    attributes = serializers.DictField(required=False)


class SpanInSerializer(serializers.Serializer):
    span_id = serializers.RegexField(ID_PATTERN, max_length=64, help_text="Unique within the trace.")
    parent_span_id = serializers.RegexField(ID_PATTERN, max_length=64, required=False, help_text="None: the root span.")
    name = serializers.CharField(max_length=300, required=False)
    span_type = serializers.ChoiceField(SpanType.choices, required=False, help_text="Default UNKNOWN.")
    start_time = TimestampField()
    end_time = TimestampField(required=False)
    status = serializers.ChoiceField(SpanStatus.choices, required=False)
    status_message = serializers.CharField(max_length=10_000, required=False)
    inputs = serializers.JSONField(required=False, help_text="Any JSON.")
    outputs = serializers.JSONField(required=False, help_text="Any JSON.")
    attributes = serializers.DictField(required=False)
    events = SpanEventInSerializer(many=True, required=False)


class TokenUsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField(min_value=0, required=False)
    output_tokens = serializers.IntegerField(min_value=0, required=False)
    total_tokens = serializers.IntegerField(min_value=0, required=False)


class TraceInSerializer(serializers.Serializer):
    trace_id = serializers.RegexField(
        ID_PATTERN, max_length=128, help_text="Unique across experiments; re-sending a trace updates it.",
    )
    name = serializers.CharField(max_length=300, required=False, help_text="Default: the root span's name.")
    status = serializers.ChoiceField(TraceStatus.choices, required=False, help_text="Default: from the root span.")
    start_time = TimestampField(required=False, help_text="Required when the trace has no spans.")
    end_time = TimestampField(required=False)
    request = serializers.JSONField(required=False, help_text="Any JSON; default: the root span's inputs.")
    response = serializers.JSONField(required=False, help_text="Any JSON; default: the root span's outputs.")
    session_id = serializers.CharField(max_length=200, required=False, help_text="Traces sharing it form a conversation.")
    user_id = serializers.CharField(max_length=200, required=False)
    metadata = serializers.DictField(required=False, help_text="Flat object; values are stored as strings.")
    tags = serializers.DictField(required=False, help_text="Flat object; values are stored as strings.")
    token_usage = TokenUsageSerializer(required=False, help_text="Default: summed from the spans' attributes.")
    spans = SpanInSerializer(many=True, required=False)


class TraceBatchSerializer(serializers.Serializer):
    traces = TraceInSerializer(many=True, help_text="1 to EVALAPP_MAX_TRACES_PER_REQUEST (1,000) traces.")


class IngestResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    spans = serializers.IntegerField(help_text="Spans written.")
    trace_ids = serializers.ListField(child=serializers.CharField())


class TracePageSerializer(serializers.Serializer):
    traces = TraceSummarySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass it back as `cursor`; null on the last page.")


TRACE_IN_EXAMPLE = {
    "trace_id": "tr-7f3a9c",
    "name": "support_agent",
    "status": "OK",
    "start_time": "2026-11-22T10:15:00.000Z",
    "end_time": 1763806501250,
    "request": {"messages": [{"role": "user", "content": "Where is my order?"}]},
    "response": {"content": "It ships tomorrow."},
    "session_id": "conversation-123",
    "user_id": "user-42",
    "metadata": {"environment": "production", "app_version": "1.5.0"},
    "tags": {"team": "support"},
    "token_usage": {"input_tokens": 310, "output_tokens": 52},
    "spans": [
        {
            "span_id": "root", "name": "support_agent", "span_type": "AGENT",
            "start_time": "2026-11-22T10:15:00Z", "end_time": "2026-11-22T10:15:01.250Z",
            "inputs": {"question": "Where is my order?"}, "outputs": "It ships tomorrow.",
        },
        {
            "span_id": "search", "parent_span_id": "root", "name": "search_help_center", "span_type": "RETRIEVER",
            "start_time": "2026-11-22T10:15:00.010Z", "end_time": "2026-11-22T10:15:00.200Z",
            "inputs": {"query": "order status"}, "outputs": [{"page_content": "Orders ship in 2 days."}],
            "attributes": {"retriever.k": 3},
            "events": [{"name": "cache_miss", "time": "2026-11-22T10:15:00.011Z"}],
        },
    ],
}
TRACE_SUMMARY_EXAMPLE = {
    "trace_id": "tr-7f3a9c", "experiment_id": 2, "name": "support_agent", "status": "OK",
    "started_at": "2026-11-22T10:15:00Z", "ended_at": "2026-11-22T10:15:01.250000Z", "duration_ms": 1250,
    "request_preview": "Where is my order?", "response_preview": "It ships tomorrow.",
    "metadata": {"environment": "production", "app_version": "1.5.0"}, "tags": {"team": "support"},
    "session_id": "conversation-123", "user_id": "user-42",
    "input_tokens": 310, "output_tokens": 52, "total_tokens": 362, "span_count": 2,
    "created_at": "2026-11-22T10:15:02Z", "updated_at": "2026-11-22T10:15:02Z",
}
ASSESSMENT_EXAMPLE = {
    "id": 41, "trace_id": "tr-7f3a9c", "session_id": None, "name": "relevance_to_query", "value": True,
    "rationale": "The answer addresses the shipping question directly.", "source_type": "LLM_JUDGE",
    "source_id": "judge:3", "judge_name": "relevance_to_query", "judge_version": 2, "model": "openai/gpt-4.1-mini",
    "error_code": "", "error_message": "", "cost_usd": "0.00021400", "input_tokens": 412, "output_tokens": 38,
    "latency_ms": 840, "valid": True, "overrides": None, "metadata": {"endpoint": "gpt-4.1-mini", "attempts": 1},
    "created_at": "2026-11-22T10:15:03Z",
}
INVALID_BATCH_EXAMPLE = {
    "detail": "traces[0].spans[0].start_time: 'yesterday' is not an ISO 8601 time (e.g. 2026-11-22T10:15:00Z)",
    "errors": [
        {"field": "traces[0].spans[0].start_time", "message": "'yesterday' is not an ISO 8601 time (e.g. 2026-11-22T10:15:00Z)"}
    ],
}

trace_list = extend_schema_view(
    get=extend_schema(
        operation_id="traces_list",
        summary="List an experiment's traces",
        description="Newest first, in keyset pages: pass `next_cursor` back as `cursor` for the next page. "
        "Filters combine with AND; `filter_string` uses the filter language (MLflow's trace search syntax plus "
        "OR, NOT and parentheses). Any logged-in user or token may read.",
        tags=["Traces"],
        parameters=[
            EXPERIMENT_ID, PAGE_SIZE, CURSOR, SINCE, UNTIL,
            OpenApiParameter("status", OpenApiTypes.STR, enum=TraceStatus.values, description="Trace status (case-insensitive)."),
            OpenApiParameter("session_id", OpenApiTypes.STR, description="Only this conversation's traces."),
            OpenApiParameter(
                "filter_string", OpenApiTypes.STR, description="e.g. `metadata.environment = 'production' AND "
                "trace.execution_time_ms > 1500`. A bad filter is a 400 naming the column and the nearest field.",
            ),
        ],
        responses={200: TracePageSerializer, **errors(400, 404)},
        examples=[
            OpenApiExample("A page of traces", value={"traces": [TRACE_SUMMARY_EXAMPLE], "next_cursor": "MjAyNi0xMS0yMlQxMDoxNTowMCswMDowMHw0Mg"}, response_only=True),
        ],
    ),
    post=extend_schema(
        operation_id="traces_ingest",
        summary="Log a batch of traces",
        description="Store up to 1,000 traces (16 MiB; `Content-Encoding: gzip` allowed, the limit also applies "
        "after inflating) as `{\"traces\": [...]}` or a bare list. All or nothing: if any item is invalid, "
        "nothing is stored and every problem is listed with its path. Re-sending a trace updates it; spans may "
        "arrive over several requests. Any logged-in user or token may log traces.",
        tags=["Traces"],
        parameters=[EXPERIMENT_ID],
        request=TraceBatchSerializer,
        responses={200: IngestResultSerializer, **errors(400, 404, 413, 415)},
        examples=[
            OpenApiExample("One trace with two spans", value={"traces": [TRACE_IN_EXAMPLE]}, request_only=True),
            OpenApiExample("Stored", value={"created": 1, "updated": 0, "spans": 2, "trace_ids": ["tr-7f3a9c"]}, response_only=True, status_codes=[200]),
            OpenApiExample("Invalid item", value=INVALID_BATCH_EXAMPLE, response_only=True, status_codes=[400]),
        ],
    ),
)

trace_detail = extend_schema_view(
    get=extend_schema(
        operation_id="traces_retrieve",
        summary="Get a trace with its spans and assessments",
        description="The whole trace: request, response, every span (in start order) and every assessment "
        "(judges', people's, code's; superseded ones have `valid: false`). Any logged-in user or token may read.",
        tags=["Traces"],
        parameters=[TRACE_ID],
        responses={200: TraceDetailSerializer, **errors(404)},
        examples=[
            OpenApiExample(
                "Trace",
                value={
                    **TRACE_SUMMARY_EXAMPLE,
                    "request": {"messages": [{"role": "user", "content": "Where is my order?"}]},
                    "response": {"content": "It ships tomorrow."},
                    "spans": [
                        {
                            "span_id": "root", "parent_span_id": "", "name": "support_agent", "span_type": "AGENT",
                            "started_at": "2026-11-22T10:15:00Z", "ended_at": "2026-11-22T10:15:01.250000Z",
                            "duration_ms": 1250, "status": "OK", "status_message": "",
                            "inputs": {"question": "Where is my order?"}, "outputs": "It ships tomorrow.",
                            "attributes": {}, "events": [],
                        }
                    ],
                    "assessments": [ASSESSMENT_EXAMPLE],
                },
                response_only=True,
            )
        ],
    ),
)


# --- sessions -----------------------------------------------------------------------------------------------

class SessionPageSerializer(serializers.Serializer):
    sessions = SessionSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass it back as `cursor`; null on the last page.")


class SessionDetailSerializer(SessionSerializer):
    traces = TraceSummarySerializer(many=True, read_only=True, help_text="The conversation's turns, oldest first.")

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "traces"]


SESSION_EXAMPLE = {
    "session_id": "conversation-123", "experiment_id": 2, "user_id": "user-42",
    "first_trace_at": "2026-11-22T10:15:00Z", "last_trace_at": "2026-11-22T10:19:30Z", "trace_count": 3,
    "last_ingested_at": "2026-11-22T10:19:31Z",
}

session_list = extend_schema_view(
    get=extend_schema(
        operation_id="sessions_list",
        summary="List an experiment's conversations",
        description="Sessions (traces sharing a `session_id`), most recently active first, in keyset pages. "
        "Any logged-in user or token may read.",
        tags=["Sessions"],
        parameters=[
            EXPERIMENT_ID, PAGE_SIZE, CURSOR,
            OpenApiParameter("since", OpenApiTypes.STR, description=f"Last trace at or after this time. {TIME_DESCRIPTION}"),
            OpenApiParameter("until", OpenApiTypes.STR, description=f"Last trace before this time. {TIME_DESCRIPTION}"),
            OpenApiParameter("user_id", OpenApiTypes.STR, description="Only this user's conversations."),
            OpenApiParameter("search", OpenApiTypes.STR, description="Part of the session id."),
        ],
        responses={200: SessionPageSerializer, **errors(400, 404)},
        examples=[OpenApiExample("A page of sessions", value={"sessions": [SESSION_EXAMPLE], "next_cursor": None}, response_only=True)],
    ),
)

session_detail = extend_schema_view(
    get=extend_schema(
        operation_id="sessions_retrieve",
        summary="Get a conversation with its turns",
        description="The session and its traces, oldest first. Any logged-in user or token may read.",
        tags=["Sessions"],
        parameters=[EXPERIMENT_ID, SESSION_ID],
        responses={200: SessionDetailSerializer, **errors(404)},
        examples=[OpenApiExample("Session", value={**SESSION_EXAMPLE, "traces": [TRACE_SUMMARY_EXAMPLE]}, response_only=True)],
    ),
)


# --- assessments --------------------------------------------------------------------------------------------

class AssessmentPageSerializer(serializers.Serializer):
    assessments = AssessmentSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass it back as `cursor`; null on the last page.")


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string", "minLength": 1, "maxLength": 500}]})
class FeedbackValueField(serializers.Field):
    """A verdict: yes/no, a score, or a short text."""


class FeedbackSerializer(serializers.Serializer):
    trace_id = serializers.CharField(required=False, help_text="The trace the feedback is about (or give `session_id`).")
    session_id = serializers.CharField(required=False, help_text="The conversation the feedback is about (or give `trace_id`).")
    name = serializers.CharField(max_length=200, help_text="What it is about, e.g. `thumbs` or a judge's name.")
    value = FeedbackValueField(
        help_text="true/false, a number, or a text of 1–500 characters. Under a judge's name, a value that judge gives: "
        "true/false, a (whole) number, or one of its categories."
    )
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=10_000)


assessment_list = extend_schema_view(
    get=extend_schema(
        operation_id="assessments_list",
        summary="List an experiment's assessments",
        description="Verdicts on traces and sessions, newest first, in keyset pages: by judges (LLM_JUDGE), "
        "people (HUMAN) or code (CODE). Any logged-in user or token may read.",
        tags=["Assessments"],
        parameters=[
            EXPERIMENT_ID, PAGE_SIZE, CURSOR,
            OpenApiParameter("trace_id", OpenApiTypes.STR, description="Only this trace's assessments."),
            OpenApiParameter("session_id", OpenApiTypes.STR, description="Only this conversation's (session-level) assessments."),
            OpenApiParameter("judge", OpenApiTypes.STR, description="Only assessments under this name (a judge's name, or feedback's name)."),
            OpenApiParameter("source_type", OpenApiTypes.STR, enum=AssessmentSource.values, description="Who gave it (case-insensitive)."),
            OpenApiParameter("valid", OpenApiTypes.BOOL, description="`true`: only current verdicts, not superseded ones."),
        ],
        responses={200: AssessmentPageSerializer, **errors(400, 404)},
        examples=[OpenApiExample("A page of assessments", value={"assessments": [ASSESSMENT_EXAMPLE], "next_cursor": None}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="assessments_create",
        summary="Give feedback on a trace or a conversation",
        description="Records a person's verdict (a HUMAN assessment) on one trace or one session. A newer "
        "verdict from the same person under the same name supersedes the earlier one, which stays with "
        "`valid: false`. Viewers may give feedback too.",
        tags=["Assessments"],
        parameters=[EXPERIMENT_ID],
        request=FeedbackSerializer,
        responses={201: AssessmentSerializer, **errors(400, 404)},
        examples=[
            OpenApiExample("Thumbs down on a trace", value={"trace_id": "tr-7f3a9c", "name": "thumbs", "value": False, "rationale": "missed the refund"}, request_only=True),
            OpenApiExample(
                "Recorded",
                value={
                    **ASSESSMENT_EXAMPLE, "id": 57, "name": "thumbs", "value": False, "rationale": "missed the refund",
                    "source_type": "HUMAN", "source_id": "pat", "judge_name": "", "judge_version": None, "model": "",
                    "cost_usd": None, "input_tokens": None, "output_tokens": None, "latency_ms": None, "metadata": {},
                },
                response_only=True,
                status_codes=[201],
            ),
        ],
    ),
)
