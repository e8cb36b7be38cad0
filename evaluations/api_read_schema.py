"""OpenAPI documentation of the evaluation runs' read API (evaluations/api_read.py), applied by decorators there.
The serializers are documentation only: the views build their JSON with evaluations.api_read's functions."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from traces.openapi import errors

TAG = ["Evaluations"]
WHO = "Any logged-in user or token may read runs."
EXAMPLE_RUN_ID = "6f1c2a52-8d7e-4d3b-9a51-0c2b7e1d4f10"
EXAMPLE_OTHER_ID = "0b9d3e7a-21c4-4f5e-8a16-7c3d2e9f5a01"


def _uuid(name: str, description: str, example: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.UUID, OpenApiParameter.PATH, required=True, description=description, examples=[OpenApiExample(name, value=example)]
    )


RUN_ID = _uuid("run_id", "The run's id.", EXAMPLE_RUN_ID)
OTHER_ID = _uuid("other_id", "The run to compare with `run_id` (the new one; `run_id` is the base).", EXAMPLE_OTHER_ID)


class EvaluationRunJudgeSerializer(serializers.Serializer):
    name = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(allow_null=True, help_text="The judge's version when the run started.")
    output_type = serializers.CharField(allow_null=True, help_text="boolean (yes/no), integer, float, categorical or string.")


class EvaluationRunJudgeMetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    output_type = serializers.CharField()
    n = serializers.IntegerField(help_text="Verdicts behind the figure: yes/no verdicts for a pass rate, numbers for a mean.")
    judged = serializers.IntegerField(help_text="Verdicts given (any value).")
    errors = serializers.IntegerField(help_text="Evaluations that failed (not counting 'not applicable').")
    not_applicable = serializers.IntegerField(help_text="Rows the judge does not apply to (e.g. no expectations).")
    pending = serializers.IntegerField(help_text="Evaluations queued or being judged.")
    pass_rate = serializers.FloatField(allow_null=True, help_text="Yes/no judges: share of yes verdicts.")
    pass_rate_low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval (scipy.stats.binomtest).")
    pass_rate_high = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True, help_text="Numeric judges: mean score.")
    mean_low = serializers.FloatField(allow_null=True, help_text="95% Student t interval (scipy.stats.ttest_1samp), from 2 numbers.")
    mean_high = serializers.FloatField(allow_null=True)
    cost_usd = serializers.FloatField()


class EvaluationRunGateOutcomeSerializer(serializers.Serializer):
    judge_name = serializers.CharField()
    metric = serializers.ChoiceField(choices=["pass_rate", "mean"])
    operator = serializers.ChoiceField(choices=[">=", "<="])
    threshold = serializers.FloatField()
    value = serializers.FloatField(allow_null=True, help_text="The run's figure; null when there were no verdicts (the gate fails).")
    n = serializers.IntegerField()
    passed = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True, help_text="Why a gate without a figure failed.")


class EvaluationRunSummarySerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Evaluations of the run settled (judged, failed, skipped).")
    total = serializers.IntegerField(help_text="Evaluations of the run.")
    progress = serializers.FloatField(allow_null=True)
    judging = serializers.BooleanField(help_text="Still moving: predicting, or evaluations not settled.")
    row_errors = serializers.IntegerField(help_text="Rows whose predict function raised or timed out.")
    cost_usd = serializers.FloatField()
    duration_seconds = serializers.FloatField()
    passed = serializers.BooleanField(help_text="Every gate passed (true without gates).")
    judges = EvaluationRunJudgeMetricSerializer(many=True)
    gates = EvaluationRunGateOutcomeSerializer(many=True)


class EvaluationRunDetailSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    experiment_id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["predicting", "judging", "done", "cancelled"])
    dataset_id = serializers.IntegerField(allow_null=True)
    dataset_name = serializers.CharField(allow_blank=True)
    judges = EvaluationRunJudgeSerializer(many=True)
    params = serializers.DictField(child=serializers.JSONField(), help_text="What was evaluated (agent version, commit, model…).")
    row_count = serializers.IntegerField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    judging_started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    summary = EvaluationRunSummarySerializer()


class EvaluationRunRowVerdictSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["judged", "error", "not_applicable", "pending", "running", "missing"])
    value = serializers.JSONField(allow_null=True)
    passed = serializers.BooleanField(allow_null=True, help_text="Yes/no verdicts: the value; else null.")
    rationale = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_blank=True)
    error_message = serializers.CharField(allow_blank=True)


class EvaluationRunRowSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    record_id = serializers.IntegerField(allow_null=True)
    record_version = serializers.IntegerField(allow_null=True)
    record_change = serializers.ChoiceField(choices=["", "changed", "deleted"], help_text="Whether the dataset record changed since the run.")
    inputs = serializers.JSONField()
    expectations = serializers.JSONField()
    outputs = serializers.JSONField(allow_null=True)
    trace_id = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_blank=True, help_text="The predict function's error, if it raised.")
    latency_ms = serializers.IntegerField(allow_null=True)
    verdicts = serializers.DictField(child=EvaluationRunRowVerdictSerializer(), help_text="By judge name.")


class EvaluationRunRowPageSerializer(serializers.Serializer):
    rows = EvaluationRunRowSerializer(many=True)
    total = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    next_offset = serializers.IntegerField(allow_null=True)


class EvaluationRunComparedSideSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    outputs = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    trace_id = serializers.CharField(allow_null=True)
    value = serializers.JSONField(allow_null=True)
    rationale = serializers.CharField(allow_blank=True)


class EvaluationRunRowChangeSerializer(serializers.Serializer):
    judge_name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["pass → fail", "fail → pass", "score drop", "score rise"])
    delta = serializers.FloatField(allow_null=True, help_text="new − base, for numbers.")
    inputs = serializers.JSONField()
    expectations = serializers.JSONField()
    base = EvaluationRunComparedSideSerializer()
    new = EvaluationRunComparedSideSerializer()


class EvaluationRunJudgeChangeSerializer(serializers.Serializer):
    name = serializers.CharField()
    output_type = serializers.CharField()
    test = serializers.ChoiceField(choices=["mcnemar", "wilcoxon"], allow_null=True)
    n_pairs = serializers.IntegerField(help_text="Rows with a verdict of this judge in both runs.")
    base_value = serializers.FloatField(allow_null=True, help_text="Pass rate or mean of the base run over the pairs.")
    new_value = serializers.FloatField(allow_null=True)
    change = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Null when nothing changed.")
    regressions = serializers.IntegerField()
    improvements = serializers.IntegerField()
    note = serializers.CharField(allow_blank=True)


class EvaluationRunComparisonSerializer(serializers.Serializer):
    base_run_id = serializers.UUIDField()
    new_run_id = serializers.UUIDField()
    matched = serializers.IntegerField(help_text="Rows joined (by dataset record id, else by the inputs' key).")
    only_base = serializers.IntegerField()
    only_new = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField())
    judges = EvaluationRunJudgeChangeSerializer(many=True)
    regressions = EvaluationRunRowChangeSerializer(many=True)
    improvements = EvaluationRunRowChangeSerializer(many=True)


SUMMARY_EXAMPLE = {
    "done": 200,
    "total": 200,
    "progress": 1.0,
    "judging": False,
    "row_errors": 1,
    "cost_usd": 0.084,
    "duration_seconds": 41.2,
    "passed": False,
    "judges": [
        {
            "name": "correctness", "version": 2, "output_type": "boolean", "n": 98, "judged": 98, "errors": 1, "not_applicable": 0,
            "pending": 0, "pass_rate": 0.8163, "pass_rate_low": 0.7287, "pass_rate_high": 0.8804, "mean": None, "mean_low": None,
            "mean_high": None, "cost_usd": 0.042,
        },
        {
            "name": "helpfulness", "version": 1, "output_type": "integer", "n": 99, "judged": 99, "errors": 0, "not_applicable": 0,
            "pending": 0, "pass_rate": None, "pass_rate_low": None, "pass_rate_high": None, "mean": 4.12, "mean_low": 3.94,
            "mean_high": 4.3, "cost_usd": 0.042,
        },
    ],
    "gates": [
        {"judge_name": "correctness", "metric": "pass_rate", "operator": ">=", "threshold": 0.85, "value": 0.8163, "n": 98, "passed": False, "reason": ""}
    ],
}
RUN_EXAMPLE = {
    "id": EXAMPLE_RUN_ID,
    "experiment_id": 1,
    "name": "agent v2.3",
    "status": "done",
    "dataset_id": 3,
    "dataset_name": "refund-questions",
    "judges": [{"name": "correctness", "version": 2, "output_type": "boolean"}, {"name": "helpfulness", "version": 1, "output_type": "integer"}],
    "params": {"git_commit": "a1b2c3d", "model": "gpt-4.1-mini"},
    "row_count": 100,
    "created_by": "pat",
    "created_at": "2026-11-22T10:15:00Z",
    "judging_started_at": "2026-11-22T10:15:20Z",
    "finished_at": "2026-11-22T10:15:41Z",
    "summary": SUMMARY_EXAMPLE,
}
ROW_EXAMPLE = {
    "position": 0,
    "record_id": 41,
    "record_version": 1,
    "record_change": "",
    "inputs": {"question": "What is your refund policy?"},
    "expectations": {"expected_facts": ["30-day window"]},
    "outputs": "Refunds are accepted within 30 days.",
    "trace_id": "tr-7f3a9c",
    "error": "",
    "latency_ms": 812,
    "verdicts": {
        "correctness": {"state": "judged", "value": True, "passed": True, "rationale": "States the 30-day window.", "error_code": "", "error_message": ""}
    },
}
SIDE_EXAMPLE = {"position": 4, "outputs": "Refunds within 30 days.", "error": "", "trace_id": "tr-81b2d0", "value": True, "rationale": "States the window."}
COMPARISON_EXAMPLE = {
    "base_run_id": EXAMPLE_RUN_ID,
    "new_run_id": EXAMPLE_OTHER_ID,
    "matched": 100,
    "only_base": 0,
    "only_new": 0,
    "notes": [],
    "judges": [
        {
            "name": "correctness", "output_type": "boolean", "test": "mcnemar", "n_pairs": 97, "base_value": 0.8454, "new_value": 0.8144,
            "change": -0.031, "p_value": 0.375, "regressions": 5, "improvements": 2, "note": "",
        }
    ],
    "regressions": [
        {
            "judge_name": "correctness", "kind": "pass → fail", "delta": None, "inputs": {"question": "What is your refund policy?"},
            "expectations": {"expected_facts": ["30-day window"]}, "base": SIDE_EXAMPLE,
            "new": {**SIDE_EXAMPLE, "outputs": "We do not offer refunds.", "trace_id": "tr-9c0d11", "value": False, "rationale": "Contradicts the 30-day window."},
        }
    ],
    "improvements": [],
}

run_detail = extend_schema_view(
    get=extend_schema(
        operation_id="evaluation_runs_retrieve",
        summary="Get an evaluation run with its results",
        description="The run (dataset, pinned judges, params, status) and its summary: per judge the pass rate with its 95% "
        "Wilson interval or the mean with its 95% t interval, each with n, errors and pending evaluations, cost; every "
        f"quality gate with its value, n and outcome (a gate with no verdicts fails); judging progress. {WHO}",
        tags=TAG,
        parameters=[RUN_ID],
        responses={200: EvaluationRunDetailSerializer, **errors(404)},
        examples=[OpenApiExample("A finished run", value=RUN_EXAMPLE, response_only=True)],
    )
)

run_rows = extend_schema_view(
    get=extend_schema(
        operation_id="evaluation_run_rows_list",
        summary="List a run's rows with their verdicts",
        description="By position, in pages of `page_size` from `offset`: what was evaluated (as copied when the run started), "
        "the answer, its trace, the predict error if any, whether the dataset record changed since, and each judge's "
        f"verdict with its rationale (or its state while being judged). {WHO}",
        tags=TAG,
        parameters=[
            RUN_ID,
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 500}, description="Rows per page, 1–500 (default 50)."),
            OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Rows to skip (`next_offset` of the previous page)."),
            OpenApiParameter(
                "only",
                {"type": "string", "enum": ["", "failed", "errors", "changed"]},
                description="`failed`: rows a yes/no judge failed; `errors`: predict or judge errors; `changed`: the record changed since.",
            ),
        ],
        responses={200: EvaluationRunRowPageSerializer, **errors(400, 404)},
        examples=[OpenApiExample("A page of rows", value={"rows": [ROW_EXAMPLE], "total": 100, "offset": 0, "limit": 1, "next_offset": 1}, response_only=True)],
    )
)

run_compare = extend_schema_view(
    get=extend_schema(
        operation_id="evaluation_runs_compare",
        summary="Compare two runs on the same dataset",
        description="`other_id` (new) against `run_id` (base), row by row — joined by dataset record id, else by the key of the "
        "inputs, never by position. Per judge: the pass rate or mean over the paired rows, the change, and a paired test: "
        "McNemar's exact test (binomial on the discordant pairs) for yes/no judges, Wilcoxon's signed-rank test for "
        "numbers, with its p-value (null when nothing changed). Then every regression (pass → fail, score drop) and "
        f"improvement, with both runs' outputs and rationales. Runs of other experiments or datasets: 400 on `other_id`. {WHO}",
        tags=TAG,
        parameters=[RUN_ID, OTHER_ID],
        responses={200: EvaluationRunComparisonSerializer, **errors(400, 404)},
        examples=[OpenApiExample("One regression", value=COMPARISON_EXAMPLE, response_only=True)],
    )
)
