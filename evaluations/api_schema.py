"""OpenAPI documentation of the evaluation runs API (evaluations/api.py), applied by decorators there. Request
bodies are documentation-only serializers; responses are evaluations.serializers' documentation of run_json."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from evaluations.serializers import CreatedRunSerializer, PredictionsResultSerializer, RowPageSerializer, RunListSerializer, RunSerializer
from traces.openapi import EXPERIMENT_ID, errors

TAG = ["Evaluation runs"]
RUN_ID = OpenApiParameter(
    "run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, required=True, description="The run's id.",
    examples=[OpenApiExample("run_id", value="5b0e6a3e-9f43-4c1e-8d0c-2a7f5e1c9b10")],
)
WHO = "Any logged-in user or token may read; only editors may start, feed or cancel runs (a viewer gets 403)."


class RecordSerializer(serializers.Serializer):
    inputs = serializers.DictField()
    expectations = serializers.DictField(required=False)
    outputs = serializers.JSONField(required=False)


class CreateRunSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, help_text="Shown on the Evaluations tab; default: the time.")
    dataset = serializers.JSONField(required=False, help_text="A dataset of the experiment, by id or name.")
    records = RecordSerializer(many=True, required=False, help_text="Records given inline (at most 10,000).")
    trace_ids = serializers.ListField(child=serializers.CharField(), required=False, help_text="Existing traces to evaluate again.")
    filter_string = serializers.CharField(required=False, allow_blank=True, help_text="Existing traces by the trace filter language.")
    judges = serializers.ListField(
        child=serializers.CharField(),
        help_text="The experiment's judges by name; a built-in's name (`Correctness`, `safety`, ...) uses the experiment's judge of "
        "that built-in under its default name, made (automatic evaluation off) when there is none.",
    )
    gates = serializers.ListField(
        child=serializers.JSONField(), required=False,
        help_text='Quality gates: "correctness>=0.9", "relevance.pass_rate>=90%", "score.mean<=4", or {judge, metric, operator, threshold}.',
    )
    params = serializers.DictField(required=False, help_text="What was evaluated: agent version, commit, model...")
    predict = serializers.BooleanField(
        required=False, help_text="true: the client calls its predict function per row and logs the results; false (default): judge the outputs given."
    )
    judge_model = serializers.JSONField(required=False, help_text="The endpoint (name or id) for built-ins made for this run.")


class PredictionSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    outputs = serializers.JSONField(required=False)
    error = serializers.CharField(required=False, help_text="What the predict function raised (or that it timed out).")
    latency_ms = serializers.IntegerField(required=False)
    start_time = serializers.DateTimeField(required=False)
    spans = serializers.ListField(child=serializers.DictField(), required=False, help_text="Spans in the JSON trace API's shape; else a root span is made.")


class PredictionsSerializer(serializers.Serializer):
    predictions = PredictionSerializer(many=True)


RUN_EXAMPLE = {
    "id": "5b0e6a3e-9f43-4c1e-8d0c-2a7f5e1c9b10",
    "experiment_id": 2,
    "name": "agent v2",
    "status": "done",
    "dataset_id": 3,
    "dataset_name": "refund-questions",
    "params": {"commit": "4f2a9c1"},
    "row_count": 2,
    "row_errors": 0,
    "judging": {"done": 2, "total": 2},
    "judges": [
        {
            "name": "correctness", "judge_id": 7, "version": 1, "output_type": "boolean", "n": 2, "errors": 0, "not_applicable": 0,
            "pending": 0, "pass_rate": 0.5, "pass_rate_low": 0.0945, "pass_rate_high": 0.9055, "mean": None, "mean_low": None,
            "mean_high": None, "cost_usd": 0.0004,
        }
    ],
    "gates": [
        {"judge": "correctness", "metric": "pass_rate", "operator": ">=", "threshold": 0.9, "value": 0.5, "n": 2, "passed": False, "reason": ""}
    ],
    "passed": False,
    "cost_usd": 0.0004,
    "created_by": "pat",
    "created_at": "2026-11-22T10:15:00Z",
    "judging_started_at": "2026-11-22T10:15:03Z",
    "finished_at": "2026-11-22T10:15:09Z",
}

run_list = extend_schema_view(
    get=extend_schema(
        operation_id="evaluation_runs_list",
        summary="List an experiment's evaluation runs",
        description=f"Newest first (at most 100), each with its progress, per-judge metrics (95% intervals, n) and gates. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, OpenApiParameter("name", OpenApiTypes.STR, description="Only runs with this exact name.")],
        responses={200: RunListSerializer, **errors(404)},
        examples=[OpenApiExample("Runs", value={"runs": [RUN_EXAMPLE]}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="evaluation_runs_create",
        summary="Start an evaluation run",
        description="Give exactly one of `dataset`, `records`, or `trace_ids` / `filter_string`; the rows copy what they read. "
        "With `predict: true` the response lists each row's inputs and the run waits for `predictions`; otherwise the "
        "records' outputs (or copies of the traces) are judged at once, behind live work, under the endpoints' limits. "
        f"Unknown or deleted datasets and judges, empty data and bad gates → 400 naming the field. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID],
        request=CreateRunSerializer,
        responses={201: CreatedRunSerializer, **errors(400, 403, 404, 413, 415)},
        examples=[
            OpenApiExample(
                "A dataset, judged by two judges, gated",
                value={"name": "agent v2", "dataset": "refund-questions", "judges": ["correctness", "Safety"], "gates": ["correctness>=0.9"], "predict": True},
                request_only=True,
            ),
            OpenApiExample(
                "Started",
                value={**RUN_EXAMPLE, "status": "predicting", "judging": {"done": 0, "total": 0}, "finished_at": None, "judging_started_at": None,
                       "rows": [{"position": 0, "inputs": {"question": "What is your refund policy?"}}]},
                response_only=True,
                status_codes=[201],
            ),
            OpenApiExample(
                "Unknown judge",
                value={"detail": "judges[0]: no judge 'corectness' in experiment 'checkout-agent' (deleted?)",
                       "errors": [{"field": "judges[0]", "message": "no judge 'corectness' in experiment 'checkout-agent' (deleted?)"}]},
                response_only=True,
                status_codes=[400],
            ),
        ],
    ),
)

run_detail = extend_schema_view(
    get=extend_schema(
        operation_id="evaluation_runs_retrieve",
        summary="Get an evaluation run",
        description=f"Status (predicting → judging → done), judging progress, per-judge metrics with 95% intervals and n, gates and `passed`. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, RUN_ID],
        responses={200: RunSerializer, **errors(404)},
        examples=[OpenApiExample("Run", value=RUN_EXAMPLE, response_only=True)],
    ),
)

run_rows = extend_schema_view(
    get=extend_schema(
        operation_id="evaluation_runs_rows",
        summary="A run's rows with their verdicts",
        description=f"By position: what each row read, its output or error, its trace, and each judge's verdict. {WHO}",
        tags=TAG,
        parameters=[
            EXPERIMENT_ID,
            RUN_ID,
            OpenApiParameter("offset", OpenApiTypes.INT, description="Rows to skip (default 0)."),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, description="Rows per page, 1–1000 (default 100)."),
            OpenApiParameter("only", OpenApiTypes.STR, enum=["", "failed", "errors", "changed"], description="Only failed rows, errors, or rows whose record changed since."),
        ],
        responses={200: RowPageSerializer, **errors(400, 404)},
        examples=[
            OpenApiExample(
                "Rows",
                value={
                    "rows": [
                        {
                            "position": 0, "record_id": 41, "record_version": 1, "record_change": "", "source_trace_id": "",
                            "inputs": {"question": "What is your refund policy?"}, "expectations": {"expected_facts": ["30-day window"]},
                            "outputs": "Within 30 days.", "error": "", "latency_ms": 52, "trace_id": "run-5b0e6a3e9f434c1e8d0c2a7f5e1c9b10-0",
                            "verdicts": [{"judge": "correctness", "state": "judged", "value": True, "passed": True,
                                          "rationale": "States the 30-day window.", "error_code": "", "error_message": ""}],
                        }
                    ],
                    "total": 2, "offset": 0, "limit": 100,
                },
                response_only=True,
            )
        ],
    ),
)

run_predictions = extend_schema_view(
    post=extend_schema(
        operation_id="evaluation_runs_predictions",
        summary="Log predictions of a run's rows",
        description="What the predict function returned (or raised) for some rows, by position: each becomes the row's trace "
        "(its spans if sent, else a root span from `start_time` and `latency_ms`). Sending a row again updates its trace. "
        "When every row has one, the judging starts. A run that is judging already → 409. At most 1,000 per request. "
        f"{WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, RUN_ID],
        request=PredictionsSerializer,
        responses={200: PredictionsResultSerializer, **errors(400, 403, 404, 409, 413, 415)},
        examples=[
            OpenApiExample(
                "Two rows",
                value={"predictions": [{"position": 0, "outputs": "Within 30 days.", "latency_ms": 52},
                                       {"position": 1, "error": "TimeoutError: predict_fn took longer than 30 s"}]},
                request_only=True,
            ),
            OpenApiExample("Logged", value={"logged": 2, "waiting": 0, "status": "judging"}, response_only=True, status_codes=[200]),
        ],
    ),
)

run_cancel = extend_schema_view(
    post=extend_schema(
        operation_id="evaluation_runs_cancel",
        summary="Cancel an evaluation run",
        description=f"Predictions are refused from now on and judging not started yet is cancelled; a finished run → 409. {WHO}",
        tags=TAG,
        parameters=[EXPERIMENT_ID, RUN_ID],
        request=None,
        responses={200: RunSerializer, **errors(403, 404, 409)},
        examples=[OpenApiExample("Cancelled", value={**RUN_EXAMPLE, "status": "cancelled"}, response_only=True)],
    ),
)
