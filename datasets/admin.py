from __future__ import annotations

from django.contrib import admin

from datasets.models import Dataset, DatasetRecord


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "experiment", "created_by", "created_at", "updated_at"]
    list_select_related = ["experiment", "created_by"]
    search_fields = ["name"]


@admin.register(DatasetRecord)
class DatasetRecordAdmin(admin.ModelAdmin):
    """For looking: records change through the pages, the API and the client (datasets.actions)."""

    list_display = ["pk", "dataset", "source_type", "source_trace_id", "version", "updated_at"]
    list_select_related = ["dataset"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
