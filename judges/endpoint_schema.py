"""OpenAPI documentation of the model endpoints API (judges/api.py: `@endpoint_schema.endpoint_list` and so on).
An endpoint is answered by EndpointSerializer itself (`EndpointSerializer(endpoint).data`), so what is documented
is what is sent."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers

from judges.models import OutputMode
from traces.openapi import errors, path_int


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number", "minimum": 0}]})
class DecimalTextField(serializers.Field):
    """A non-negative decimal amount, as text ("2.50") or a number."""


ENDPOINT_ID = path_int("endpoint_id", "The model endpoint's id.")


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
    use_server_key = serializers.BooleanField(help_text="Without a key of its own, calls use the server's key for the provider (admins set this).")
    outage_retry_seconds = serializers.IntegerField(help_text="How long transient failures are retried before the endpoint pauses itself.")
    paused_reason = serializers.CharField(allow_blank=True, help_text="Set while the endpoint is paused by an outage; it resumes by itself.")


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
    use_server_key = serializers.BooleanField(
        required=False, help_text="Admins only, and only with api_base empty: use the server's own key for the provider."
    )
    outage_retry_seconds = serializers.IntegerField(min_value=0, max_value=7 * 86400, required=False)
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
    "use_server_key": False, "outage_retry_seconds": 600, "paused_reason": "",
}
EDITOR_ONLY = "Anyone logged in may read; only editors (staff, or the `editors` group) may change, others get 403."

endpoint_list = extend_schema_view(
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
)

endpoint_detail = extend_schema_view(
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
)


class EndpointCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField(help_text="What the model replied, or the provider's error in plain words.")


endpoint_test = extend_schema_view(
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
)
