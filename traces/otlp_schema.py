"""OpenAPI documentation of the OTLP/HTTP trace receiver (traces/api.py: OtlpTracesView, `@otlp_schema.otlp_traces`).

It lives at `/v1/traces` (where OpenTelemetry exporters look), outside SCHEMA_PATH_PREFIX (`/api/v1`); it is
documented all the same, under the "OTLP" tag, with its protobuf and JSON bodies.
"""

from __future__ import annotations

from typing import Any

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

from traces.openapi import errors


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


otlp_traces = extend_schema_view(
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
)
