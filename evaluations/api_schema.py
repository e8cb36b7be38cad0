"""OpenAPI documentation of the API that starts and feeds evaluation runs (evaluations/api.py), applied by decorators
there. Request bodies are documentation-only serializers; a run is shown as the read API shows it
(evaluations.api_read_schema)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from evaluations.api_read_schema import RUN_EXAMPLE, EvaluationRunDetailSerializer
from traces.openapi import EXPERIMENT_ID, errors

TAG = ["Evaluations"]
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




class RowToPredictSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    inputs = serializers.DictField()


class StartedRunSerializer(EvaluationRunDetailSerializer):
    rows = RowToPredictSerializer(many=True, help_text="Only with `predict`: what to call the predict function on, by position.")


class RunListSerializer(serializers.Serializer):
    runs = EvaluationRunDetailSerializer(many=True)


class PredictionsResultSerializer(serializers.Serializer):
    logged = serializers.IntegerField(help_text="Predictions recorded by this request.")
    waiting = serializers.IntegerField(help_text="Rows still without a prediction; at 0 the run's status is judging.")
    status = serializers.CharField(help_text="predicting, judging, done or cancelled.")


run_list = extend_schema_view(
    get=extend_schema(
        operation_id="evaluation_runs_list",
        summary="List an experiment's evaluation runs",
        description=f"Newest first (at most 100), each as `GET /api/v1/evaluation-runs/{{run_id}}` shows it: progress, per-judge metrics (95% intervals, n) and gates. {WHO}",
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
        responses={201: StartedRunSerializer, **errors(400, 403, 404, 413, 415)},
        examples=[
            OpenApiExample(
                "A dataset, judged by two judges, gated",
                value={"name": "agent v2", "dataset": "refund-questions", "judges": ["correctness", "Safety"], "gates": ["correctness>=0.9"], "predict": True},
                request_only=True,
            ),
            OpenApiExample(
                "Started",
                value={**RUN_EXAMPLE, "status": "predicting", "finished_at": None, "judging_started_at": None,
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
        responses={200: EvaluationRunDetailSerializer, **errors(403, 404, 409)},
        examples=[OpenApiExample("Cancelled", value={**RUN_EXAMPLE, "status": "cancelled"}, response_only=True)],
    ),
)
