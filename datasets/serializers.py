"""JSON shapes of what the datasets API returns (input is validated by datasets.records, which names each path)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datasets.models import Dataset, DatasetRecord


class DatasetSerializer(serializers.ModelSerializer):
    experiment_id = serializers.IntegerField(read_only=True)
    record_count = serializers.IntegerField(read_only=True, help_text="How many records the dataset holds.")
    created_by = serializers.SerializerMethodField(help_text="The username of who created it (null: unknown or deleted).")

    class Meta:
        model = Dataset
        fields = ["id", "experiment_id", "name", "description", "record_count", "created_by", "created_at", "updated_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, dataset: Dataset) -> str | None:
        return dataset.created_by.get_username() if dataset.created_by_id else None


@extend_schema_field({"description": "Any JSON (null: none given)."})
class AnyJsonField(serializers.JSONField):
    pass


class RecordSerializer(serializers.ModelSerializer):
    dataset_id = serializers.IntegerField(read_only=True)
    inputs = serializers.DictField(help_text="The application's inputs; the record's identity in its dataset.")
    expectations = serializers.DictField(help_text="expected_response, expected_facts (a list of texts), guidelines, or any keys.")
    outputs = AnyJsonField(allow_null=True, help_text="Pre-generated outputs, judged as given when a run has no predict function.")
    tags = serializers.DictField(child=serializers.CharField())

    class Meta:
        model = DatasetRecord
        fields = [
            "id",
            "dataset_id",
            "inputs",
            "expectations",
            "outputs",
            "tags",
            "source_type",
            "source_trace_id",
            "version",
            "content_hash",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "source_type": {"help_text": "Where the record came from: trace, upload, api or ui."},
            "source_trace_id": {"help_text": 'The trace it was made from ("" unless source_type is trace).'},
            "version": {"help_text": "1 when created; +1 on every change."},
            "content_hash": {"help_text": "SHA-256 of the canonical JSON of [inputs, expectations, outputs]."},
        }
