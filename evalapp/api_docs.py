"""OpenAPI documentation of the JSON API: request/response schemas and examples for every endpoint, attached
to the API views from here (drf-spectacular's extend_schema_view), so the views stay readable.

The API views are plain APIViews that build their JSON by hand, so the shapes are spelled out below as small
documentation-only serializers (never used to parse anything). Where the views already answer through a real
serializer (experiments, traces, sessions, assessments) that serializer is reused, so those shapes can't drift.

The OTLP receiver lives at `/v1/traces` (where OpenTelemetry exporters look), outside SCHEMA_PATH_PREFIX
(`/api/v1`); it is documented all the same, under the "OTLP" tag, with its protobuf and JSON bodies.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from evalapp.overview import PRESETS
from evalapp.overview_api import OverviewView
from judges import api as judges_api
from judges.actions import NAME_PATTERN
from judges.catalog import BUILTIN_JUDGES
from judges.models import EvaluationStatus, OutputMode, OutputType, Scope
from traces import api as traces_api
from traces.models import AssessmentSource, SpanStatus, SpanType, TraceStatus
from traces.serializers import (
    AssessmentSerializer,
    ExperimentSerializer,
    SessionSerializer,
    TraceDetailSerializer,
    TraceSummarySerializer,
)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "evalapp.auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        # Declared as HTTP bearer so Swagger UI's "Authorize" sends `Bearer <token>`, which the API accepts
        # alongside `Token <token>`.
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Token <token>` or `Authorization: Bearer <token>`. "
            "Create one with `python manage.py create_token <user>`; it is shown once.",
        }


# --- shared pieces ------------------------------------------------------------------------------------------

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
JUDGE_NAME_PATTERN = NAME_PATTERN.pattern


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "minimum": 1_000_000_000_000, "maximum": 4_102_444_800_000}]}
)
class TimestampField(serializers.Field):
    """ISO 8601 with a timezone, or epoch milliseconds; in the years 1970–2099."""


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number", "minimum": 0}]})
class DecimalTextField(serializers.Field):
    """A non-negative decimal amount, as text ("2.50") or a number."""


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class EndpointRefField(serializers.Field):
    """A model endpoint by its name or its id."""


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Path of the offending field, e.g. `traces[3].spans[0].start_time`.")
    message = serializers.CharField(help_text="What is wrong and what to do about it.")


class ApiErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence a person can act on (the first problem, with a count of the rest).")
    errors = FieldErrorSerializer(many=True, required=False, help_text="Every problem found, each with its field.")


ERROR_DESCRIPTIONS = {
    400: "Invalid request: `errors` names each offending field. Nothing was changed.",
    401: "Missing, invalid or revoked API token (or no login session).",
    403: "The account is a viewer: it can read but not change judges, model endpoints or runs.",
    404: "No such object.",
    413: "The body (or the gzip-inflated body) is over `EVALAPP_MAX_BODY_BYTES`; the message says the limit.",
    415: "A content type or content encoding the endpoint doesn't read.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The shared error body for these status codes (401 is added everywhere: every endpoint needs a token)."""
    return {code: OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in sorted({401, *codes})}


def path_int(name: str, description: str, example: int = 1) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.INT, OpenApiParameter.PATH, required=True, description=description,
        examples=[OpenApiExample(name, value=example)],
    )


def path_str(name: str, description: str, example: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.PATH, required=True, description=description,
        examples=[OpenApiExample(name, value=example)],
    )


EXPERIMENT_ID = path_int("experiment_id", "The experiment's id.")
TRACE_ID = path_str("trace_id", "The trace's id (unique across experiments).", "tr-7f3a9c")
SESSION_ID = path_str("session_id", "The conversation's `session_id`.", "conversation-123")
JUDGE_NAME = path_str("name", "The judge's name (unique in its experiment, fixed once created).", "user_frustration")
TRACE_JUDGE_NAME = path_str("name", "The judge's name (unique in its experiment, fixed once created).", "helpful")
ENDPOINT_ID = path_int("endpoint_id", "The model endpoint's id.")

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

extend_schema_view(
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
        "create one; the name is trimmed and must not be blank.",
        tags=["Experiments"],
        request=ExperimentSerializer,
        responses={201: ExperimentSerializer, **errors(400)},
        examples=[
            OpenApiExample("New experiment", value={"name": "checkout-agent", "description": "the agent behind checkout"}, request_only=True),
            OpenApiExample("Created", value=EXPERIMENT_EXAMPLE, response_only=True, status_codes=[201]),
        ],
    ),
)(traces_api.ExperimentListView)

extend_schema_view(
    get=extend_schema(
        operation_id="experiments_retrieve",
        summary="Get an experiment",
        description="One experiment by id. Any logged-in user or token may read.",
        tags=["Experiments"],
        parameters=[EXPERIMENT_ID],
        responses={200: ExperimentSerializer, **errors(404)},
        examples=[OpenApiExample("Experiment", value=EXPERIMENT_EXAMPLE, response_only=True)],
    ),
)(traces_api.ExperimentDetailView)


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

extend_schema_view(
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
)(traces_api.TraceListView)

extend_schema_view(
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
)(traces_api.TraceDetailView)


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

extend_schema_view(
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
)(traces_api.SessionListView)

extend_schema_view(
    get=extend_schema(
        operation_id="sessions_retrieve",
        summary="Get a conversation with its turns",
        description="The session and its traces, oldest first. Any logged-in user or token may read.",
        tags=["Sessions"],
        parameters=[EXPERIMENT_ID, SESSION_ID],
        responses={200: SessionDetailSerializer, **errors(404)},
        examples=[OpenApiExample("Session", value={**SESSION_EXAMPLE, "traces": [TRACE_SUMMARY_EXAMPLE]}, response_only=True)],
    ),
)(traces_api.SessionDetailView)


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
    value = FeedbackValueField(help_text="true/false, a number, or a text of 1–500 characters.")
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=10_000)


extend_schema_view(
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
)(traces_api.AssessmentListView)


# --- model endpoints ----------------------------------------------------------------------------------------

class EndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    model = serializers.CharField(help_text="litellm model string, e.g. `openai/gpt-4.1-mini`.")
    api_base = serializers.CharField(allow_blank=True)
    has_api_key = serializers.BooleanField(help_text="Whether a key is set; the key itself is never returned.")
    inference_params = serializers.DictField()
    max_concurrency = serializers.IntegerField()
    requests_per_minute = serializers.IntegerField(allow_null=True)
    timeout_seconds = serializers.IntegerField()
    max_retries = serializers.IntegerField()
    input_cost_per_million = serializers.CharField(allow_null=True, help_text="USD per million input tokens, as a decimal string.")
    output_cost_per_million = serializers.CharField(allow_null=True, help_text="USD per million output tokens, as a decimal string.")
    context_window = serializers.IntegerField(allow_null=True)
    output_mode = serializers.ChoiceField(OutputMode.choices)
    detected_output_mode = serializers.CharField(allow_blank=True, help_text="What `auto` found the model supports.")
    is_standin = serializers.BooleanField(help_text="The project's scripted stand-in model, not a real LLM.")


class EndpointListSerializer(serializers.Serializer):
    endpoints = EndpointSerializer(many=True)


class EndpointUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    model = serializers.CharField(max_length=200, required=False, help_text="litellm model string, no spaces.")
    api_base = serializers.CharField(required=False, allow_blank=True, help_text="http(s) URL of an OpenAI-compatible server.")
    api_key = serializers.CharField(required=False, write_only=True, help_text="Write-only: stored encrypted, never returned.")
    inference_params = serializers.DictField(
        required=False, help_text='e.g. {"temperature": 0, "max_tokens": 400}; messages/model/api_key/api_base/response_format/stream are reserved.',
    )
    max_concurrency = serializers.IntegerField(min_value=1, max_value=256, required=False)
    requests_per_minute = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=600, required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
    input_cost_per_million = DecimalTextField(required=False, allow_null=True)
    output_cost_per_million = DecimalTextField(required=False, allow_null=True)
    context_window = serializers.IntegerField(min_value=1000, max_value=10_000_000, required=False, allow_null=True)
    output_mode = serializers.ChoiceField(OutputMode.choices, required=False)
    is_standin = serializers.BooleanField(required=False)
    clear_api_key = serializers.BooleanField(required=False, write_only=True, help_text="Remove the stored key.")


class EndpointCreateSerializer(EndpointUpdateSerializer):
    name = serializers.CharField(max_length=100)
    model = serializers.CharField(max_length=200, help_text="litellm model string, no spaces.")
    clear_api_key = None


ENDPOINT_EXAMPLE = {
    "id": 1, "name": "gpt-4.1-mini", "model": "openai/gpt-4.1-mini", "api_base": "", "has_api_key": True,
    "inference_params": {"temperature": 0, "max_tokens": 400}, "max_concurrency": 4, "requests_per_minute": 500,
    "timeout_seconds": 60, "max_retries": 3, "input_cost_per_million": None, "output_cost_per_million": None,
    "context_window": 128000, "output_mode": "auto", "detected_output_mode": "json_schema", "is_standin": False,
}
EDITOR_ONLY = "Anyone logged in may read; only editors (staff, or the `editors` group) may change, others get 403."

extend_schema_view(
    get=extend_schema(
        operation_id="endpoints_list",
        summary="List model endpoints",
        description=f"The models judges can call, by name. API keys are never returned (`has_api_key`). {EDITOR_ONLY}",
        tags=["Model endpoints"],
        responses={200: EndpointListSerializer, **errors()},
        examples=[OpenApiExample("Endpoints", value={"endpoints": [ENDPOINT_EXAMPLE]}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="endpoints_create",
        summary="Create a model endpoint",
        description=f"Any litellm model, optionally at an `api_base` (any OpenAI-compatible server). {EDITOR_ONLY}",
        tags=["Model endpoints"],
        request=EndpointCreateSerializer,
        responses={201: EndpointSerializer, **errors(400, 403)},
        examples=[
            OpenApiExample(
                "OpenAI model",
                value={"name": "gpt-4.1-mini", "model": "openai/gpt-4.1-mini", "api_key": "sk-...", "max_concurrency": 4,
                       "requests_per_minute": 500, "inference_params": {"temperature": 0, "max_tokens": 400}},
                request_only=True,
            ),
            OpenApiExample("Created", value=ENDPOINT_EXAMPLE, response_only=True, status_codes=[201]),
            OpenApiExample(
                "Invalid settings",
                value={"detail": "model: must be a litellm model string without spaces, such as openai/gpt-4.1-mini",
                       "errors": [{"field": "model", "message": "must be a litellm model string without spaces, such as openai/gpt-4.1-mini"}]},
                response_only=True,
                status_codes=[400],
            ),
        ],
    ),
)(judges_api.EndpointListView)

extend_schema_view(
    get=extend_schema(
        operation_id="endpoints_retrieve",
        summary="Get a model endpoint",
        description=f"One model endpoint (never its API key). {EDITOR_ONLY}",
        tags=["Model endpoints"],
        parameters=[ENDPOINT_ID],
        responses={200: EndpointSerializer, **errors(404)},
        examples=[OpenApiExample("Endpoint", value=ENDPOINT_EXAMPLE, response_only=True)],
    ),
    patch=extend_schema(
        operation_id="endpoints_update",
        summary="Change a model endpoint",
        description="Change any settings; the API key changes only if a new one is given (or `clear_api_key`). "
        "A new key, model or api_base resumes judges paused by an authentication failure. Editors only.",
        tags=["Model endpoints"],
        parameters=[ENDPOINT_ID],
        request=EndpointUpdateSerializer,
        responses={200: EndpointSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample("Rotate the key", value={"api_key": "sk-new-...", "max_concurrency": 8}, request_only=True),
            OpenApiExample("Changed", value={**ENDPOINT_EXAMPLE, "max_concurrency": 8}, response_only=True),
        ],
    ),
)(judges_api.EndpointDetailView)


class EndpointCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField(help_text="What the model replied, or the provider's error in plain words.")


extend_schema_view(
    post=extend_schema(
        operation_id="endpoints_test",
        summary="Test a model endpoint",
        description="One tiny call to the model (no retries), to check the key, the model name and the network. "
        "A failing model is still a 200 with `ok: false`. Editors only.",
        tags=["Model endpoints"],
        parameters=[ENDPOINT_ID],
        request=None,
        responses={200: EndpointCheckSerializer, **errors(403, 404)},
        examples=[
            OpenApiExample("Connected", value={"ok": True, "message": "Connected to openai/gpt-4.1-mini in 412 ms; it replied 'OK'."}, response_only=True),
            OpenApiExample("Bad key", value={"ok": False, "message": "Authentication failed: Incorrect API key provided."}, response_only=True),
        ],
    ),
)(judges_api.EndpointTestView)


# --- judges -------------------------------------------------------------------------------------------------

class JudgeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    experiment_id = serializers.IntegerField()
    name = serializers.CharField()
    scope = serializers.ChoiceField(Scope.choices)
    builtin_key = serializers.CharField(allow_null=True, help_text="The built-in judge it is, or null for a custom one.")
    description = serializers.CharField(allow_blank=True, help_text="A built-in judge's description.")
    instructions = serializers.CharField(allow_blank=True)
    output_type = serializers.ChoiceField(OutputType.choices)
    categories = serializers.ListField(child=serializers.CharField())
    min_value = serializers.FloatField(allow_null=True)
    max_value = serializers.FloatField(allow_null=True)
    endpoint = serializers.CharField(help_text="The model endpoint's name.")
    model = serializers.CharField(help_text="The endpoint's litellm model string.")
    sample_rate = serializers.FloatField()
    filter_string = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField(help_text="Automatic evaluation on.")
    enabled_at = serializers.DateTimeField(allow_null=True)
    session_idle_seconds = serializers.IntegerField(allow_null=True, help_text="Session judges: idle time before judging.")
    daily_cost_cap_usd = serializers.CharField(allow_null=True)
    paused_reason = serializers.CharField(allow_null=True, help_text="Why the judge is paused (e.g. an authentication failure).")
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class JudgeListSerializer(serializers.Serializer):
    judges = JudgeSerializer(many=True)


class SamplingSerializer(serializers.Serializer):
    sample_rate = serializers.FloatField(min_value=0, max_value=1, required=False, help_text="0 to 1; deterministic per trace.")
    filter_string = serializers.CharField(required=False, allow_blank=True, help_text="Only traces matching it (filter language).")
    session_idle_seconds = serializers.IntegerField(
        min_value=10, max_value=604_800, required=False, allow_null=True, help_text="Session judges only.",
    )


class JudgeUpdateSerializer(SamplingSerializer):
    name = serializers.RegexField(JUDGE_NAME_PATTERN, required=False, help_text="Fixed once created.")
    scope = serializers.ChoiceField(Scope.choices, required=False, help_text="Default `trace`; fixed once created.")
    builtin_key = serializers.ChoiceField(
        list(BUILTIN_JUDGES), required=False, allow_null=True, allow_blank=True,
        help_text="A built-in judge (its scope must match); omit it for a custom judge. Fixed once created.",
    )
    instructions = serializers.CharField(
        required=False, allow_blank=True,
        help_text="Custom judges: the question, with variables such as `{{ inputs }}`, `{{ outputs }}`, `{{ conversation }}`.",
    )
    output_type = serializers.ChoiceField(OutputType.choices, required=False)
    categories = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=20)
    min_value = serializers.FloatField(required=False, allow_null=True)
    max_value = serializers.FloatField(required=False, allow_null=True)
    endpoint = EndpointRefField(required=False)
    active = serializers.BooleanField(required=False)
    daily_cost_cap_usd = DecimalTextField(required=False, allow_null=True)


class JudgeCreateSerializer(JudgeUpdateSerializer):
    name = serializers.RegexField(JUDGE_NAME_PATTERN, help_text="Up to 100 letters, digits, spaces, `_`, `-`, `.`; fixed once created.")
    endpoint = EndpointRefField()


JUDGE_EXAMPLE = {
    "id": 3, "experiment_id": 2, "name": "user_frustration", "scope": "session", "builtin_key": "UserFrustration",
    "description": BUILTIN_JUDGES["UserFrustration"].description,
    "instructions": "", "output_type": "categorical", "categories": ["none", "resolved", "unresolved"],
    "min_value": None, "max_value": None, "endpoint": "gpt-4.1-mini", "model": "openai/gpt-4.1-mini",
    "sample_rate": 1.0, "filter_string": "", "active": False, "enabled_at": None, "session_idle_seconds": 300,
    "daily_cost_cap_usd": None, "paused_reason": None, "version": 1,
    "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
}
KNOWLEDGE_RETENTION_EXAMPLE = {
    **JUDGE_EXAMPLE, "id": 4, "name": "knowledge_retention", "builtin_key": "KnowledgeRetention",
    "description": BUILTIN_JUDGES["KnowledgeRetention"].description, "output_type": "boolean", "categories": [],
}
ACTIVE_JUDGE_EXAMPLE = {
    **JUDGE_EXAMPLE, "active": True, "enabled_at": "2026-11-22T10:05:00Z", "version": 2,
    "filter_string": "metadata.environment = 'production'", "updated_at": "2026-11-22T10:05:00Z",
}

extend_schema_view(
    get=extend_schema(
        operation_id="judges_list",
        summary="List an experiment's judges",
        description=f"Every judge, by name, with its sampling config and state. {EDITOR_ONLY}",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID],
        responses={200: JudgeListSerializer, **errors(404)},
        examples=[OpenApiExample("Judges", value={"judges": [JUDGE_EXAMPLE]}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="judges_create",
        summary="Create a judge",
        description="A built-in judge (`builtin_key`) or a custom one (`instructions` with variables), on a model "
        "endpoint, judging single traces (`scope: trace`) or whole conversations (`scope: session`). It starts "
        "off unless `active` is true. A bad filter or template is refused with the field and the reason. Editors only.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID],
        request=JudgeCreateSerializer,
        responses={201: JudgeSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample(
                "Built-in session judge",
                value={"name": "knowledge_retention", "scope": "session", "builtin_key": "KnowledgeRetention", "endpoint": "gpt-4.1-mini"},
                request_only=True,
            ),
            OpenApiExample(
                "Custom trace judge",
                value={"name": "polite", "instructions": "Is {{ outputs }} polite to the user who asked {{ inputs }}?", "output_type": "boolean",
                       "endpoint": "gpt-4.1-mini", "sample_rate": 0.5, "active": True},
                request_only=True,
            ),
            OpenApiExample("Created", value=KNOWLEDGE_RETENTION_EXAMPLE, response_only=True, status_codes=[201]),
        ],
    ),
)(judges_api.JudgeListView)

extend_schema_view(
    get=extend_schema(
        operation_id="judges_retrieve",
        summary="Get a judge",
        description=f"One judge by name. {EDITOR_ONLY}",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, JUDGE_NAME],
        responses={200: JudgeSerializer, **errors(404)},
        examples=[OpenApiExample("Judge", value=JUDGE_EXAMPLE, response_only=True)],
    ),
    patch=extend_schema(
        operation_id="judges_update",
        summary="Change a judge",
        description="A change to what the judge asks or judges makes a new version (see `/versions`); the name, "
        "scope and built-in are fixed. What it already judged is not re-judged. Editors only.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, JUDGE_NAME],
        request=JudgeUpdateSerializer,
        responses={200: JudgeSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample("Cap the spend", value={"daily_cost_cap_usd": "2.50", "sample_rate": 0.2}, request_only=True),
            OpenApiExample("Changed", value={**JUDGE_EXAMPLE, "daily_cost_cap_usd": "2.50", "sample_rate": 0.2, "version": 2}, response_only=True),
        ],
    ),
    delete=extend_schema(
        operation_id="judges_destroy",
        summary="Delete a judge",
        description="Its assessments stay: they are history, recorded under the judge's name and version. Editors only.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, JUDGE_NAME],
        responses={204: OpenApiResponse(description="Deleted."), **errors(403, 404)},
        examples=[
            OpenApiExample(
                "Not found", value={"detail": "No Judge matches the given query."}, response_only=True, status_codes=[404],
            ),
        ],
    ),
)(judges_api.JudgeDetailView)

extend_schema_view(
    post=extend_schema(
        operation_id="judges_start",
        summary="Switch automatic evaluation on",
        description="The judge judges every new trace (or finished conversation) that passes its filter and "
        "sample rate, and looks back an hour. Optionally changes the sampling config at the same time (a new "
        "version if it changes); calling it again on an active judge just updates the config. Editors only.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, JUDGE_NAME],
        request=SamplingSerializer,
        responses={200: JudgeSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample(
                "Production only, all of it",
                value={"sample_rate": 1.0, "filter_string": "metadata.environment = 'production'", "session_idle_seconds": 600},
                request_only=True,
            ),
            OpenApiExample("Started", value=ACTIVE_JUDGE_EXAMPLE, response_only=True),
        ],
    ),
)(judges_api.JudgeStartView)

extend_schema_view(
    post=extend_schema(
        operation_id="judges_stop",
        summary="Switch automatic evaluation off",
        description="Queued automatic work for the judge is cancelled at once (what is running finishes; jobs "
        "asked for by hand still run). Editors only.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, JUDGE_NAME],
        request=None,
        responses={200: JudgeSerializer, **errors(403, 404)},
        examples=[OpenApiExample("Stopped", value={**ACTIVE_JUDGE_EXAMPLE, "active": False}, response_only=True)],
    ),
)(judges_api.JudgeStopView)


class JudgeVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    config = serializers.DictField(help_text="What the judge asked and judged in that version.")
    created_at = serializers.DateTimeField()


class JudgeVersionListSerializer(serializers.Serializer):
    versions = JudgeVersionSerializer(many=True, help_text="Newest first.")


extend_schema_view(
    get=extend_schema(
        operation_id="judges_versions",
        summary="A judge's versions",
        description=f"Every version of the judge's behaviour, newest first. {EDITOR_ONLY}",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, JUDGE_NAME],
        responses={200: JudgeVersionListSerializer, **errors(404)},
        examples=[
            OpenApiExample(
                "Versions",
                value={"versions": [
                    {"version": 2, "config": {"sample_rate": 1.0, "filter_string": "metadata.environment = 'production'", "endpoint": "gpt-4.1-mini"},
                     "created_at": "2026-11-22T10:05:00Z"},
                    {"version": 1, "config": {"sample_rate": 1.0, "filter_string": "", "endpoint": "gpt-4.1-mini"},
                     "created_at": "2026-11-22T10:00:00Z"},
                ]},
                response_only=True,
            )
        ],
    ),
)(judges_api.JudgeVersionsView)


# --- jobs ---------------------------------------------------------------------------------------------------

class JobRunSerializer(serializers.Serializer):
    trace_ids = serializers.ListField(
        child=serializers.CharField(), required=False, min_length=1, max_length=500, help_text="For a trace judge.",
    )
    session_ids = serializers.ListField(
        child=serializers.CharField(), required=False, min_length=1, max_length=500, help_text="For a session judge.",
    )


class JobResultSerializer(serializers.Serializer):
    trace_id = serializers.CharField(required=False, help_text="Trace jobs.")
    session_id = serializers.CharField(required=False, help_text="Session jobs.")
    status = serializers.ChoiceField(EvaluationStatus.choices)
    value = serializers.JSONField(allow_null=True, help_text="The verdict, once judged.")
    rationale = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    cost_usd = serializers.CharField(allow_null=True)
    assessment_id = serializers.IntegerField(allow_null=True)


class JobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    judge = serializers.CharField(help_text="The judge's name.")
    experiment_id = serializers.IntegerField()
    judge_version = serializers.IntegerField()
    status = serializers.ChoiceField(["queued", "running", "done"], help_text="queued: nothing started yet; done: every target finished.")
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="How many finished with an error.")
    created_at = serializers.DateTimeField()
    results = JobResultSerializer(many=True)


JOB_ID = "3f2b8c1e-9a4d-4e7b-8c21-5d6f0a9b7e34"
QUEUED_JOB_EXAMPLE = {
    "id": JOB_ID, "judge": "helpful", "experiment_id": 2, "judge_version": 1, "status": "queued", "total": 2, "done": 0,
    "errors": 0, "created_at": "2026-11-22T10:20:00Z",
    "results": [
        {"trace_id": trace_id, "status": "pending", "value": None, "rationale": "", "error_code": None,
         "error_message": None, "cost_usd": None, "assessment_id": None}
        for trace_id in ("tr-7f3a9c", "tr-81b2d0")
    ],
}
DONE_JOB_EXAMPLE = {
    **QUEUED_JOB_EXAMPLE, "status": "done", "done": 2,
    "results": [
        {"trace_id": "tr-7f3a9c", "status": "done", "value": True, "rationale": "It answers the question.", "error_code": None,
         "error_message": None, "cost_usd": "0.00021400", "assessment_id": 61},
        {"trace_id": "tr-81b2d0", "status": "done", "value": False, "rationale": "It ignores the refund request.", "error_code": None,
         "error_message": None, "cost_usd": "0.00019800", "assessment_id": 62},
    ],
}

extend_schema_view(
    post=extend_schema(
        operation_id="judges_run",
        summary="Judge traces or conversations now",
        description="Queue the judge on these traces (trace judges: `trace_ids`) or sessions (session judges: "
        "`session_ids`), whatever its sampling config or on/off; a re-run keeps the earlier result as overridden. "
        "Unknown ids, the wrong kind, or a paused judge are refused as a whole. Answers 202 with the job "
        "(also in `Location`) to poll at `/api/v1/jobs/{job_id}`. Editors only.",
        tags=["Jobs"],
        parameters=[EXPERIMENT_ID, TRACE_JUDGE_NAME],
        request=JobRunSerializer,
        responses={202: JobSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample("Two traces", value={"trace_ids": ["tr-7f3a9c", "tr-81b2d0"]}, request_only=True),
            OpenApiExample("Queued", value=QUEUED_JOB_EXAMPLE, response_only=True, status_codes=[202]),
        ],
    ),
)(judges_api.JudgeRunView)

extend_schema_view(
    get=extend_schema(
        operation_id="jobs_retrieve",
        summary="A job's progress and results",
        description="Poll until `status` is `done`; each result carries its verdict or its error. Any logged-in user or token may read.",
        tags=["Jobs"],
        parameters=[
            OpenApiParameter(
                "job_id", OpenApiTypes.UUID, OpenApiParameter.PATH, required=True,
                description="The `id` from `POST …/judges/{name}/run`.", examples=[OpenApiExample("job_id", value=JOB_ID)],
            )
        ],
        responses={200: JobSerializer, **errors(404)},
        examples=[OpenApiExample("Done", value=DONE_JOB_EXAMPLE, response_only=True)],
    ),
)(judges_api.JobView)


# --- judge states ("why not judged?") -----------------------------------------------------------------------

JUDGE_STATES = [
    "judged", "pending", "running", "error", "filtered_out", "sampled_out", "too_old", "waiting_for_idle",
    "in_progress", "judge_off", "paused", "not_selected",
]


class JudgeStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(JUDGE_STATES)
    text = serializers.CharField(help_text="The reason, in words.")
    value = serializers.JSONField(allow_null=True, help_text="The verdict when `judged`.")
    assessment_id = serializers.IntegerField(allow_null=True)


class TraceJudgeStatesSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    judges = serializers.DictField(child=JudgeStateSerializer(), help_text="Judge name → its state for this trace.")


class SessionJudgeStatesSerializer(serializers.Serializer):
    session_id = serializers.CharField()
    judges = serializers.DictField(child=JudgeStateSerializer(), help_text="Judge name → its state for this conversation.")


extend_schema_view(
    get=extend_schema(
        operation_id="trace_judge_states",
        summary="Each trace judge's state for a trace",
        description="For every trace judge of the trace's experiment: judged (with the value), pending, running, "
        "error (reason), or why not (filtered out, sampled out, too old, still in progress, judge off, paused). "
        "Any logged-in user or token may read.",
        tags=["Judges"],
        parameters=[TRACE_ID],
        responses={200: TraceJudgeStatesSerializer, **errors(404)},
        examples=[
            OpenApiExample(
                "States",
                value={"trace_id": "tr-7f3a9c", "judges": {
                    "relevance_to_query": {"state": "judged", "text": "judged: True", "value": True, "assessment_id": 41},
                    "prod_only": {"state": "filtered_out", "text": "filtered out by metadata.environment = 'staging'", "value": None, "assessment_id": None},
                }},
                response_only=True,
            )
        ],
    ),
)(judges_api.TraceJudgeStatesView)

extend_schema_view(
    get=extend_schema(
        operation_id="session_judge_states",
        summary="Each session judge's state for a conversation",
        description="For every session judge of the experiment: judged, pending, waiting for the conversation to "
        "go idle, or why not. Any logged-in user or token may read.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, SESSION_ID],
        responses={200: SessionJudgeStatesSerializer, **errors(404)},
        examples=[
            OpenApiExample(
                "States",
                value={"session_id": "conversation-123", "judges": {
                    "user_frustration": {"state": "waiting_for_idle", "text": "waiting for the conversation to be idle for 300 s",
                                         "value": None, "assessment_id": None},
                }},
                response_only=True,
            )
        ],
    ),
)(judges_api.SessionJudgeStatesView)


# --- OTLP ---------------------------------------------------------------------------------------------------

@extend_schema_field({"oneOf": [{"type": "string", "pattern": "^[0-9]{1,20}$"}, {"type": "integer", "minimum": 0}]})
class UnixNanoField(serializers.Field):
    """Nanoseconds since the epoch: OTLP/JSON sends fixed64 as a decimal string (a number works too)."""


# OTLP/JSON field names are camelCase (snake_case is accepted too), so these shapes are built from dicts.
OtlpAnyValueSerializer = type(
    inline_serializer(
        "OtlpAnyValue",
        {
            "stringValue": serializers.CharField(required=False),
            "boolValue": serializers.BooleanField(required=False),
            "intValue": UnixNanoField(required=False, help_text="int64, as a string or a number."),
            "doubleValue": serializers.FloatField(required=False),
            "bytesValue": serializers.CharField(required=False, help_text="Base64."),
            "arrayValue": serializers.JSONField(required=False, help_text='`{"values": [AnyValue, ...]}`'),
            "kvlistValue": serializers.JSONField(required=False, help_text='`{"values": [KeyValue, ...]}`'),
        },
    )
)
OtlpKeyValueSerializer = type(
    inline_serializer("OtlpKeyValue", {"key": serializers.CharField(), "value": OtlpAnyValueSerializer(help_text="Exactly one of the fields.")})
)


def _otlp_key_values(**kwargs: Any) -> serializers.Serializer:
    return OtlpKeyValueSerializer(many=True, **kwargs)


OtlpExportRequestSerializer = inline_serializer(
    "OtlpExportTraceServiceRequest",
    {
        "resourceSpans": inline_serializer(
            "OtlpResourceSpans",
            {
                "resource": inline_serializer(
                    "OtlpResource",
                    {"attributes": _otlp_key_values(required=False, help_text="e.g. service.name, evalapp.experiment.id.")},
                    required=False,
                ),
                "scopeSpans": inline_serializer(
                    "OtlpScopeSpans",
                    {
                        "scope": serializers.DictField(required=False, help_text="The instrumentation scope (name, version)."),
                        "spans": inline_serializer(
                            "OtlpSpan",
                            {
                                "traceId": serializers.RegexField(r"^[0-9a-fA-F]{32}$", help_text="16 bytes, hex."),
                                "spanId": serializers.RegexField(r"^[0-9a-fA-F]{16}$", help_text="8 bytes, hex."),
                                "parentSpanId": serializers.RegexField(r"^([0-9a-fA-F]{16})?$", required=False, allow_blank=True, help_text="None or empty: the root span."),
                                "name": serializers.CharField(),
                                "kind": serializers.IntegerField(min_value=0, max_value=5, required=False),
                                "startTimeUnixNano": UnixNanoField(),
                                "endTimeUnixNano": UnixNanoField(required=False),
                                "attributes": _otlp_key_values(required=False, help_text="e.g. openinference.span.kind, input.value, session.id."),
                                "events": inline_serializer(
                                    "OtlpSpanEvent",
                                    {
                                        "name": serializers.CharField(),
                                        "timeUnixNano": UnixNanoField(required=False),
                                        "attributes": _otlp_key_values(required=False),
                                    },
                                    many=True,
                                    required=False,
                                ),
                                "status": inline_serializer(
                                    "OtlpStatus",
                                    {
                                        "code": serializers.IntegerField(min_value=0, max_value=2, required=False, help_text="0 unset, 1 ok, 2 error."),
                                        "message": serializers.CharField(required=False),
                                    },
                                    required=False,
                                ),
                            },
                            many=True,
                        ),
                    },
                    many=True,
                    required=False,
                ),
            },
            many=True,
        ),
    },
)


extend_schema_view(
    post=extend_schema(
        operation_id="otlp_traces_export",
        summary="Receive OpenTelemetry traces (OTLP/HTTP)",
        description="The standard OTLP/HTTP trace receiver, at `/v1/traces` (outside `/api/v1`, where exporters "
        "expect it): `application/x-protobuf` or `application/json` bodies, optionally `Content-Encoding: gzip`. "
        "The experiment is the `x-evalapp-experiment-id` header (an id or a name) or the resource attribute "
        "`evalapp.experiment.id`. `Authorization: Bearer <token>` (what exporters send) or `Token <token>`. "
        "Errors to protobuf requests are a `google.rpc.Status` message; to JSON requests, the usual error body. "
        "Any logged-in user or token may log traces.",
        tags=["OTLP"],
        parameters=[
            OpenApiParameter(
                "x-evalapp-experiment-id", OpenApiTypes.STR, OpenApiParameter.HEADER,
                description="The experiment (its id or its name), unless the resource attribute names it.",
                examples=[OpenApiExample("experiment", value="checkout-agent")],
            )
        ],
        request={"application/x-protobuf": OpenApiTypes.BINARY, "application/json": OtlpExportRequestSerializer},
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="Stored (an empty ExportTraceServiceResponse)."),
            (200, "application/x-protobuf"): OpenApiResponse(OpenApiTypes.BINARY, description="Stored (an empty ExportTraceServiceResponse)."),
            **errors(400, 404, 413, 415),
        },
        examples=[
            OpenApiExample(
                "OTLP/JSON",
                media_type="application/json",
                value={"resourceSpans": [{
                    "resource": {"attributes": [
                        {"key": "service.name", "value": {"stringValue": "checkout"}},
                        {"key": "evalapp.experiment.id", "value": {"stringValue": "checkout-agent"}},
                    ]},
                    "scopeSpans": [{"spans": [{
                        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                        "name": "support_agent", "kind": 1,
                        "startTimeUnixNano": "1763806500000000000", "endTimeUnixNano": "1763806501250000000",
                        "attributes": [
                            {"key": "openinference.span.kind", "value": {"stringValue": "AGENT"}},
                            {"key": "input.value", "value": {"stringValue": "Where is my order?"}},
                            {"key": "session.id", "value": {"stringValue": "conversation-123"}},
                        ],
                        "status": {"code": 1},
                    }]}],
                }]},
                request_only=True,
            ),
            OpenApiExample("Stored", media_type="application/json", value={}, response_only=True, status_codes=[200]),
        ],
    ),
)(traces_api.OtlpTracesView)


# --- overview -----------------------------------------------------------------------------------------------

class OverviewRangeSerializer(serializers.Serializer):
    to = serializers.DateTimeField(help_text="Exclusive.")
    bucket = serializers.ChoiceField(["minute", "hour", "day"], help_text="Minutes up to 2 h, hours up to 48 h, days beyond.")
    preset = serializers.ChoiceField(PRESETS, allow_null=True, help_text="Null for a custom from/to.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so it can't be declared as a class attribute.
        return {"from": serializers.DateTimeField(), **super().get_fields()}


class JudgeSeriesPointSerializer(serializers.Serializer):
    bucket = serializers.DateTimeField(help_text="The bucket's start (UTC).")
    judged = serializers.IntegerField()
    errors = serializers.IntegerField()
    pass_rate = serializers.FloatField(required=False, allow_null=True, help_text="Yes/no judges only.")
    mean = serializers.FloatField(required=False, allow_null=True, help_text="Integer/float judges only.")
    shares = serializers.DictField(
        child=serializers.FloatField(allow_null=True), required=False, help_text="Categorical judges only: category → share.",
    )


class HumanFeedbackSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="People's feedback under the judge's name.")
    pass_rate = serializers.FloatField(allow_null=True)


class VersionMarkSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class OverviewJudgeSerializer(serializers.Serializer):
    name = serializers.CharField()
    scope = serializers.ChoiceField(Scope.choices)
    output_type = serializers.ChoiceField(OutputType.choices)
    active = serializers.BooleanField()
    version = serializers.IntegerField()
    judged = serializers.IntegerField(help_text="Valid judge verdicts in the range.")
    errors = serializers.IntegerField(help_text="Failed judge calls (\"not applicable\" is neither).")
    not_applicable = serializers.IntegerField()
    pass_rate = serializers.FloatField(allow_null=True, help_text="Yes/no judges; null otherwise or with no verdicts.")
    mean = serializers.FloatField(allow_null=True, help_text="Integer/float judges; null otherwise.")
    categories = serializers.DictField(
        child=serializers.FloatField(allow_null=True), allow_null=True, help_text="Categorical judges: category → share.",
    )
    cost_usd = serializers.FloatField(help_text="Including re-runs.")
    human = HumanFeedbackSummarySerializer()
    series = JudgeSeriesPointSerializer(many=True, help_text="Every bucket of the range, oldest first.")
    versions = VersionMarkSerializer(many=True, help_text="Versions created inside the range.")


class PerformancePointSerializer(serializers.Serializer):
    bucket = serializers.DateTimeField()
    traces = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()
    judge_cost_usd = serializers.FloatField()


class PerformanceSerializer(PerformancePointSerializer):
    bucket = None
    percentiles_approximate = serializers.BooleanField(
        help_text="True for day buckets (ranges beyond 48 h): p50/p95 then come from hourly latency histograms and "
        "are within 5% of the exact figure. Every other number is exact."
    )
    series = PerformancePointSerializer(many=True)


class OverviewSerializer(serializers.Serializer):
    range = OverviewRangeSerializer()
    judges = OverviewJudgeSerializer(many=True)
    performance = PerformanceSerializer()


extend_schema_view(
    get=extend_schema(
        operation_id="overview_retrieve",
        summary="Judge quality and performance over time",
        description="The aggregates the Overview tab draws, in UTC time buckets (minutes up to 2 h, hours up to "
        "48 h, days beyond; every bucket present, empty ones with zero counts and null rates). Per judge: valid "
        "verdicts, errors, and `pass_rate` (yes/no), `mean` (integer/float) or `categories` (categorical); people's "
        "feedback under the judge's name; versions created in the range. Performance: trace counts, error rate, "
        "p50/p95 duration of finished traces (exact up to 48 h; beyond, within 5% and `percentiles_approximate`), "
        "tokens and judge cost. Trace verdicts are placed at the trace's "
        "start, session verdicts at the conversation's last turn. Any logged-in user or token may read.",
        tags=["Overview"],
        parameters=[
            EXPERIMENT_ID,
            OpenApiParameter("range", OpenApiTypes.STR, enum=list(PRESETS), description="A preset (default `7d`); ignored when `from` is given."),
            OpenApiParameter(
                "from", OpenApiTypes.STR,
                description="Start: an ISO date (`2026-11-01`) or date-time (UTC without an offset). At most 366 days before `to`.",
            ),
            OpenApiParameter("to", OpenApiTypes.STR, description="End (needs `from`): an ISO date includes that whole day; default now."),
        ],
        responses={200: OverviewSerializer, **errors(400, 404)},
        examples=[
            OpenApiExample(
                "Last 7 days",
                value={
                    "range": {"from": "2026-11-13T12:00:00Z", "to": "2026-11-20T12:00:00Z", "bucket": "day", "preset": "7d"},
                    "judges": [{
                        "name": "safety", "scope": "trace", "output_type": "boolean", "active": True, "version": 2,
                        "judged": 120, "errors": 3, "not_applicable": 0, "pass_rate": 0.95, "mean": None, "categories": None,
                        "cost_usd": 0.0132, "human": {"count": 4, "pass_rate": 0.75},
                        "series": [{"bucket": "2026-11-13T00:00:00Z", "judged": 15, "errors": 0, "pass_rate": 0.93}],
                        "versions": [{"version": 2, "created_at": "2026-11-16T09:12:00Z"}],
                    }],
                    "performance": {
                        "traces": 130, "errors": 4, "error_rate": 0.0308, "p50_ms": 1210.0, "p95_ms": 3900.5,
                        "percentiles_approximate": True, "tokens": 41200, "judge_cost_usd": 0.0411,
                        "series": [{"bucket": "2026-11-13T00:00:00Z", "traces": 17, "errors": 1, "error_rate": 0.0588,
                                    "p50_ms": 1190.0, "p95_ms": 3100.0, "tokens": 5400, "judge_cost_usd": 0.0051}],
                    },
                },
                response_only=True,
            ),
            OpenApiExample(
                "Bad range",
                value={"detail": "range: '2w' is not a range; use one of 1h, 24h, 7d, 30d, or give 'from' and 'to'",
                       "errors": [{"field": "range", "message": "'2w' is not a range; use one of 1h, 24h, 7d, 30d, or give 'from' and 'to'"}]},
                response_only=True,
                status_codes=[400],
            ),
        ],
    ),
)(OverviewView)
