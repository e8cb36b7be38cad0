"""OpenAPI documentation of the judges API (judges/api.py): judges and their versions, by-hand runs (jobs), and
each judge's state for a trace or a conversation. Applied by decorators there (`@api_schema.judge_list`, ...).
A judge and a job's progress are answered through JudgeSerializer and JobSerializer, so what is documented is
what is sent; the other shapes (a judge's versions, its states) are assembled elsewhere and spelled out here."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers

from judges.actions import NAME_PATTERN
from judges.catalog import BUILTIN_JUDGES
from judges.endpoint_schema import EDITOR_ONLY, DecimalTextField
from judges.models import EvaluationStatus, OutputType, Scope
from traces.openapi import EXPERIMENT_ID, SESSION_ID, TRACE_ID, errors, path_str

JUDGE_NAME_PATTERN = NAME_PATTERN.pattern


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class EndpointRefField(serializers.Field):
    """A model endpoint by its name or its id."""


JUDGE_NAME = path_str("name", "The judge's name (unique in its experiment, fixed once created).", "user_frustration")
TRACE_JUDGE_NAME = path_str("name", "The judge's name (unique in its experiment, fixed once created).", "helpful")


# --- judges -------------------------------------------------------------------------------------------------

class BlankAsNullCharField(serializers.CharField):
    """Text the model keeps as "" when there is none, answered as null."""

    def to_representation(self, value: Any) -> str | None:
        return str(value) or None


class BuiltinDescriptionField(serializers.CharField):
    """The judge's built-in's description ("" for a custom judge); reads the whole judge (source="*")."""

    def to_representation(self, judge: Any) -> str:
        builtin = BUILTIN_JUDGES.get(judge.builtin_key)
        return builtin.description if builtin else ""


class SessionIdleSecondsField(serializers.IntegerField):
    """A session judge's idle time before judging (its own or the default); null for a trace judge (source="*")."""

    def to_representation(self, judge: Any) -> int | None:
        return judge.idle_seconds() if judge.scope == Scope.SESSION else None


# A judge as the API answers it: `JudgeSerializer(judge).data` (no docstring: it would become the schema's text).
class JudgeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    experiment_id = serializers.IntegerField()
    name = serializers.CharField()
    scope = serializers.ChoiceField(Scope.choices)
    builtin_key = BlankAsNullCharField(allow_null=True, help_text="The built-in judge it is, or null for a custom one.")
    description = BuiltinDescriptionField(source="*", allow_blank=True, help_text="A built-in judge's description.")
    instructions = serializers.CharField(allow_blank=True)
    output_type = serializers.ChoiceField(OutputType.choices)
    categories = serializers.ListField(child=serializers.CharField())
    min_value = serializers.FloatField(allow_null=True)
    max_value = serializers.FloatField(allow_null=True)
    endpoint = serializers.CharField(source="endpoint.name", help_text="The model endpoint's name.")
    model = serializers.CharField(source="endpoint.model", help_text="The endpoint's litellm model string.")
    sample_rate = serializers.FloatField()
    filter_string = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField(help_text="Automatic evaluation on.")
    enabled_at = serializers.DateTimeField(allow_null=True)
    session_idle_seconds = SessionIdleSecondsField(source="*", allow_null=True, help_text="Session judges: idle time before judging.")
    daily_cost_cap_usd = serializers.CharField(allow_null=True)
    paused_reason = BlankAsNullCharField(allow_null=True, help_text="Why the judge is paused (e.g. an authentication failure).")
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

judge_list = extend_schema_view(
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
)

judge_detail = extend_schema_view(
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
)

judge_start = extend_schema_view(
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
)

judge_stop = extend_schema_view(
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
)


class JudgeVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    config = serializers.DictField(help_text="What the judge asked and judged in that version.")
    created_at = serializers.DateTimeField()


class JudgeVersionListSerializer(serializers.Serializer):
    versions = JudgeVersionSerializer(many=True, help_text="Newest first.")


judge_versions = extend_schema_view(
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
)


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

judge_run = extend_schema_view(
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
)

job = extend_schema_view(
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
)


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


trace_judge_states = extend_schema_view(
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
)

session_judge_states = extend_schema_view(
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
)
