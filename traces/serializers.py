"""JSON shapes of what the API returns (input is validated in payload.py/otlp.py, which report precise paths)."""

from __future__ import annotations

from rest_framework import serializers

from traces.models import Assessment, Experiment, Session, Span, Trace
from traces.records import STORED_SPAN_FIELDS, STORED_TRACE_FIELDS


class ExperimentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Experiment
        fields = ["id", "name", "description", "created_at"]
        read_only_fields = ["id", "created_at"]
        # Whether the name is free is create_experiment's to say (ExperimentNameTaken), for the API and the form alike.
        extra_kwargs = {"name": {"validators": []}}

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("Name must not be blank.")
        return value


class SpanSerializer(serializers.ModelSerializer):
    duration_ms = serializers.IntegerField(read_only=True)

    class Meta:
        model = Span
        # What a span stores, with its duration (computed) after its times.
        fields = [shown for name in STORED_SPAN_FIELDS for shown in ((name, "duration_ms") if name == "ended_at" else (name,))]


class AssessmentSerializer(serializers.ModelSerializer):
    # An assessment is of a trace or of a session (the other is null), and overrides an earlier one or nothing.
    trace_id = serializers.CharField(source="trace.trace_id", read_only=True, default=None, allow_null=True)
    session_id = serializers.CharField(source="session.session_id", read_only=True, default=None, allow_null=True)
    overrides = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Assessment
        fields = [
            "id",
            "trace_id",
            "session_id",
            "name",
            "value",
            "rationale",
            "source_type",
            "source_id",
            "judge_name",
            "judge_version",
            "model",
            "error_code",
            "error_message",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "valid",
            "overrides",
            "metadata",
            "created_at",
        ]


# What a trace stores, but its request and response (only their previews: summaries are for lists).
TRACE_SUMMARY_FIELDS = [
    "trace_id",
    "experiment_id",
    *(name for name in STORED_TRACE_FIELDS if name not in ("request", "response")),
    "created_at",
    "updated_at",
]


class TraceSummarySerializer(serializers.ModelSerializer):
    experiment_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Trace
        fields = TRACE_SUMMARY_FIELDS


class TraceDetailSerializer(serializers.ModelSerializer):
    experiment_id = serializers.IntegerField(read_only=True)
    spans = SpanSerializer(many=True, read_only=True)
    assessments = AssessmentSerializer(many=True, read_only=True)

    class Meta:
        model = Trace
        fields = [*TRACE_SUMMARY_FIELDS, "request", "response", "spans", "assessments"]


class SessionSerializer(serializers.ModelSerializer):
    experiment_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Session
        fields = [
            "session_id",
            "experiment_id",
            "user_id",
            "first_trace_at",
            "last_trace_at",
            "trace_count",
            "last_ingested_at",
        ]
