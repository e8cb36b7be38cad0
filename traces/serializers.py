"""JSON shapes of what the API returns (input is validated in payload.py/otlp.py, which report precise paths)."""

from __future__ import annotations

from rest_framework import serializers

from traces.models import Assessment, Experiment, Session, Span, Trace


class ExperimentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Experiment
        fields = ["id", "name", "description", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("Name must not be blank.")
        return value


class SpanSerializer(serializers.ModelSerializer):
    duration_ms = serializers.IntegerField(read_only=True)

    class Meta:
        model = Span
        fields = [
            "span_id",
            "parent_span_id",
            "name",
            "span_type",
            "started_at",
            "ended_at",
            "duration_ms",
            "status",
            "status_message",
            "inputs",
            "outputs",
            "attributes",
            "events",
        ]


class AssessmentSerializer(serializers.ModelSerializer):
    trace_id = serializers.CharField(source="trace.trace_id", read_only=True, default=None)
    session_id = serializers.CharField(source="session.session_id", read_only=True, default=None)
    overrides = serializers.PrimaryKeyRelatedField(read_only=True)

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


TRACE_SUMMARY_FIELDS = [
    "trace_id",
    "experiment_id",
    "name",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "request_preview",
    "response_preview",
    "metadata",
    "tags",
    "session_id",
    "user_id",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "span_count",
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
