"""OpenAPI documentation of the datasets API (datasets/api.py), applied by decorators there. Request bodies are
documentation-only serializers; responses reuse datasets.serializers, so those shapes can't drift."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiRequest, extend_schema, extend_schema_view
from rest_framework import serializers

from datasets.serializers import DatasetSerializer, RecordSerializer
from traces.openapi import EXPERIMENT_ID, errors, path_int

TAG = ["Datasets"]
DATASET_ID = path_int("dataset_id", "The dataset's id.")
RECORD_ID = path_int("record_id", "The record's id.")
PAGE_SIZE = OpenApiParameter(
    "page_size", {"type": "integer", "minimum": 1, "maximum": 500}, description="Rows per page, 1–500 (default 50)."
)
CURSOR = OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` from the previous page; omit it for the first page.")
WHO = "Any logged-in user or token may read; only editors may change datasets (a viewer gets 403)."


class DatasetListSerializer(serializers.Serializer):
    datasets = DatasetSerializer(many=True)


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Unique in the experiment; trimmed.")
    description = serializers.CharField(required=False, allow_blank=True)


class RecordInSerializer(serializers.Serializer):
    inputs = serializers.DictField(help_text="Required, a non-empty JSON object: what the application is called with.")
    expectations = serializers.DictField(
        required=False, help_text="`expected_response`, `expected_facts` (a list of texts), `guidelines` (a text or a list), or any keys."
    )
    outputs = serializers.JSONField(required=False, help_text="Pre-generated outputs (any JSON).")
    tags = serializers.DictField(child=serializers.CharField(), required=False)


class RecordBatchSerializer(serializers.Serializer):
    records = RecordInSerializer(many=True, help_text="1 to 10,000 records (a bare list is accepted too).")


class RecordPatchSerializer(RecordInSerializer):
    inputs = serializers.DictField(required=False, help_text="New inputs (must not be another record's).")


class MergeResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Records added.")
    updated = serializers.IntegerField(help_text="Records whose expectations, outputs or tags changed (version +1).")
    unchanged = serializers.IntegerField(help_text="Records that already said all this.")
    record_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="The records merged, in the order sent (one per distinct inputs)."
    )


class FromTracesSerializer(serializers.Serializer):
    trace_ids = serializers.ListField(child=serializers.CharField(), required=False, help_text="Traces of this experiment, by id.")
    filter_string = serializers.CharField(required=False, allow_blank=True, help_text='The trace filter language; "" selects every trace.')


class FromTracesResultSerializer(MergeResultSerializer):
    matched = serializers.IntegerField(help_text="Traces selected.")
    skipped = serializers.IntegerField(help_text="Selected traces without a request (no inputs to record).")


class RecordPageSerializer(serializers.Serializer):
    records = RecordSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass it back as `cursor`; null on the last page.")


DATASET_EXAMPLE = {
    "id": 3,
    "experiment_id": 2,
    "name": "refund-questions",
    "description": "what support must get right",
    "record_count": 2,
    "created_by": "pat",
    "created_at": "2026-11-22T10:15:00Z",
    "updated_at": "2026-11-22T10:20:00Z",
}
RECORD_IN_EXAMPLE = {
    "inputs": {"question": "What is your refund policy?"},
    "expectations": {"expected_facts": ["30-day window", "original packaging"]},
}
RECORD_EXAMPLE = {
    "id": 41,
    "dataset_id": 3,
    **RECORD_IN_EXAMPLE,
    "outputs": None,
    "tags": {"topic": "refunds"},
    "source_type": "api",
    "source_trace_id": "",
    "version": 1,
    "content_hash": "5d41402abc4b2a76b9719d911017c592ae5d41402abc4b2a76b9719d911017c5",
    "created_at": "2026-11-22T10:15:00Z",
    "updated_at": "2026-11-22T10:15:00Z",
}
MERGED_EXAMPLE = {"created": 1, "updated": 1, "unchanged": 0, "record_ids": [41, 42]}
BAD_ROW_EXAMPLE = {
    "detail": "row 3, column expectations.expected_facts: is not valid JSON (Expecting value: line 1 column 2 (char 1)) (and 1 more problem)",
    "errors": [
        {"field": "row 3, column expectations.expected_facts", "message": "is not valid JSON (Expecting value: line 1 column 2 (char 1))"},
        {"field": "row 5, inputs", "message": "must not be empty: a record is known by its inputs"},
    ],
}

dataset_list = extend_schema_view(
    get=extend_schema(
        operation_id="datasets_list",
        summary="List an experiment's datasets",
        description=f"By name, each with its record count. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, OpenApiParameter("name", OpenApiTypes.STR, description="Only the dataset with this exact name.")],
        responses={200: DatasetListSerializer, **errors(404)},
        examples=[OpenApiExample("Datasets", value={"datasets": [DATASET_EXAMPLE]}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="datasets_create",
        summary="Create a dataset",
        description=f"An empty dataset; add records with a merge, an upload or from traces. The name must be new in the experiment (400 on `name`). {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID],
        request=DatasetCreateSerializer,
        responses={201: DatasetSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample(
                "New dataset", value={"name": "refund-questions", "description": "what support must get right"}, request_only=True
            ),
            OpenApiExample("Created", value={**DATASET_EXAMPLE, "record_count": 0}, response_only=True, status_codes=[201]),
        ],
    ),
)

dataset_detail = extend_schema_view(
    get=extend_schema(
        operation_id="datasets_retrieve",
        summary="Get a dataset",
        description=f"One dataset with its record count. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, DATASET_ID],
        responses={200: DatasetSerializer, **errors(404)},
        examples=[OpenApiExample("Dataset", value=DATASET_EXAMPLE, response_only=True)],
    ),
    delete=extend_schema(
        operation_id="datasets_destroy",
        summary="Delete a dataset",
        description=f"The dataset and all its records. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, DATASET_ID],
        responses={204: None, **errors(403, 404)},
        examples=[
            OpenApiExample("Not found", value={"detail": "No Dataset matches the given query."}, response_only=True, status_codes=[404])
        ],
    ),
)

record_list = extend_schema_view(
    get=extend_schema(
        operation_id="dataset_records_list",
        summary="List a dataset's records",
        description=f"Newest first, in keyset pages; `search` finds text in the inputs and expectations (any case). {WHO}",
        tags=TAG,
        parameters=[
            EXPERIMENT_ID,
            DATASET_ID,
            PAGE_SIZE,
            CURSOR,
            OpenApiParameter("search", OpenApiTypes.STR, description="Text in the inputs or expectations."),
        ],
        responses={200: RecordPageSerializer, **errors(400, 404)},
        examples=[OpenApiExample("A page of records", value={"records": [RECORD_EXAMPLE], "next_cursor": None}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="dataset_records_merge",
        summary="Merge records",
        description="MLflow's `merge_records`: each record is added, or — when a record with the same `inputs` (compared "
        "as canonical JSON) exists — merged into it: `expectations` and `tags` key by key, `outputs` replaced when given. "
        "Re-merging the same records changes nothing. All or nothing: any invalid record refuses the batch, and every "
        f"problem is listed with its path. Body up to EVALAPP_MAX_BODY_BYTES (gzip allowed). {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, DATASET_ID],
        request=RecordBatchSerializer,
        responses={200: MergeResultSerializer, **errors(400, 403, 404, 413, 415)},
        examples=[
            OpenApiExample(
                "Two records",
                value={"records": [RECORD_IN_EXAMPLE, {"inputs": {"question": "How do I contact support?"}}]},
                request_only=True,
            ),
            OpenApiExample("Merged", value=MERGED_EXAMPLE, response_only=True, status_codes=[200]),
            OpenApiExample(
                "Invalid record",
                value={
                    "detail": 'records[1].inputs: is required: a JSON object of the inputs, e.g. {"question": "..."}',
                    "errors": [
                        {"field": "records[1].inputs", "message": 'is required: a JSON object of the inputs, e.g. {"question": "..."}'}
                    ],
                },
                response_only=True,
                status_codes=[400],
            ),
        ],
    ),
)

record_upload = extend_schema_view(
    post=extend_schema(
        operation_id="dataset_records_upload",
        summary="Upload a CSV or JSON Lines file of records",
        description="The file is the request body: `Content-Type: text/csv` or `application/x-ndjson` (or `?file_format=csv|jsonl`). "
        "CSV columns: `inputs.<key>`, `expectations.<key>`, `tags.<key>`, `outputs` (text) or `outputs.<key>`; or `inputs`, "
        "`expectations`, `tags` holding a JSON object; `expectations.expected_facts` holds one fact per line or a JSON list. "
        "JSON Lines: one record per line, as in a merge. Merged like a merge; any bad row refuses the file and every "
        f"problem names its row (or line) and column. Larger than EVALAPP_DATASET_MAX_UPLOAD_BYTES → 413. {WHO}",
        tags=TAG,
        parameters=[
            EXPERIMENT_ID,
            DATASET_ID,
            OpenApiParameter("file_format", OpenApiTypes.STR, enum=["csv", "jsonl"], description="When the Content-Type doesn't say."),
        ],
        request={"text/csv": OpenApiTypes.STR, "application/x-ndjson": OpenApiTypes.STR},
        responses={200: MergeResultSerializer, **errors(400, 403, 404, 413, 415)},
        examples=[
            OpenApiExample(
                "CSV", value="inputs.question,expectations.expected_response\nWhat is your refund policy?,30 days\n", request_only=True
            ),
            OpenApiExample("Merged", value=MERGED_EXAMPLE, response_only=True, status_codes=[200]),
            OpenApiExample("Bad rows", value=BAD_ROW_EXAMPLE, response_only=True, status_codes=[400]),
        ],
    ),
)

record_from_traces = extend_schema_view(
    post=extend_schema(
        operation_id="dataset_records_from_traces",
        summary="Add traces as records",
        description="Each selected trace of the dataset's experiment becomes a record: its request as the `inputs` (a "
        "request that is not a JSON object goes under `request`), its response as the `outputs`, the trace id as the "
        'source. Select by `trace_ids`, by `filter_string` (the trace filter language; "" for every trace), or both. '
        f"Merged like a merge; at most 10,000 traces at a time. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, DATASET_ID],
        request=OpenApiRequest(FromTracesSerializer),
        responses={200: FromTracesResultSerializer, **errors(400, 403, 404, 413, 415)},
        examples=[
            OpenApiExample(
                "By filter", value={"filter_string": "metadata.environment = 'production' AND trace.status = 'OK'"}, request_only=True
            ),
            OpenApiExample("Added", value={"matched": 2, "skipped": 0, **MERGED_EXAMPLE}, response_only=True, status_codes=[200]),
        ],
    ),
)

record_detail = extend_schema_view(
    get=extend_schema(
        operation_id="dataset_records_retrieve",
        summary="Get a record",
        description=f"One record. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, DATASET_ID, RECORD_ID],
        responses={200: RecordSerializer, **errors(404)},
        examples=[OpenApiExample("Record", value=RECORD_EXAMPLE, response_only=True)],
    ),
    patch=extend_schema(
        operation_id="dataset_records_update",
        summary="Change a record",
        description="Replaces the parts given (unlike a merge, `expectations` is the whole new object). New `inputs` "
        f"must not be another record's. The version goes up when anything changed. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, DATASET_ID, RECORD_ID],
        request=RecordPatchSerializer,
        responses={200: RecordSerializer, **errors(400, 403, 404, 413, 415)},
        examples=[
            OpenApiExample(
                "New expectations",
                value={"expectations": {"expected_response": "Within 30 days, in the original packaging."}},
                request_only=True,
            ),
            OpenApiExample("Changed", value={**RECORD_EXAMPLE, "version": 2}, response_only=True, status_codes=[200]),
        ],
    ),
    delete=extend_schema(
        operation_id="dataset_records_destroy",
        summary="Delete a record",
        description=f"{WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, DATASET_ID, RECORD_ID],
        responses={204: None, **errors(403, 404)},
        examples=[
            OpenApiExample(
                "Not found", value={"detail": "No DatasetRecord matches the given query."}, response_only=True, status_codes=[404]
            )
        ],
    ),
)
