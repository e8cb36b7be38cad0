from __future__ import annotations

from django.contrib import admin

from traces.models import Assessment, Experiment, Session, Span, Trace


class ReadMostlyAdmin(admin.ModelAdmin):
    """Data arrives through ingestion and judges; the admin is for looking (and deleting), not editing."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # One request deleting every trace at once would hold ingest up: use the experiment's Delete… page or
        # DELETE /api/v1/experiments/<id>, which delete in batches (traces.deletion).
        return False


@admin.register(Trace)
class TraceAdmin(ReadMostlyAdmin):
    list_display = ["trace_id", "experiment", "name", "status", "started_at", "duration_ms", "session_id"]
    list_filter = ["status", "experiment"]
    search_fields = ["trace_id", "session_id", "user_id", "name"]
    list_select_related = ["experiment"]
    date_hierarchy = "started_at"


@admin.register(Span)
class SpanAdmin(ReadMostlyAdmin):
    list_display = ["span_id", "trace", "name", "span_type", "status", "started_at"]
    list_filter = ["span_type", "status"]
    search_fields = ["span_id", "trace__trace_id", "name"]
    list_select_related = ["trace"]
    raw_id_fields = ["trace"]


@admin.register(Session)
class SessionAdmin(ReadMostlyAdmin):
    list_display = ["session_id", "experiment", "user_id", "trace_count", "first_trace_at", "last_trace_at"]
    list_filter = ["experiment"]
    search_fields = ["session_id", "user_id"]
    list_select_related = ["experiment"]


@admin.register(Assessment)
class AssessmentAdmin(ReadMostlyAdmin):
    list_display = ["name", "value", "source_type", "judge_name", "judge_version", "valid", "shadow", "error_code", "created_at"]
    list_filter = ["source_type", "valid", "shadow", "name"]
    search_fields = ["name", "judge_name", "trace__trace_id", "session__session_id"]
    raw_id_fields = ["trace", "session", "overrides"]

    def get_queryset(self, request):
        return Assessment.all_objects.all()  # shadow versions' verdicts too, marked by the column
