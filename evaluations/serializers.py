"""What the evaluation runs API sends: a run with its progress, per-judge metrics and gates (evaluations.results,
the same figures as the run page), and its rows with their verdicts. Plain functions building JSON, and the
documentation serializers that describe the same shapes (evaluations.api_schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evaluations.models import EvaluationRun
from evaluations.results import RowPage, RunSummary


def _moment(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def run_json(run: EvaluationRun, summary: RunSummary) -> dict[str, Any]:
    return {
        "id": str(run.pk),
        "experiment_id": run.experiment_id,
        "name": run.name,
        "status": run.status,
        "dataset_id": run.dataset_id,
        "dataset_name": run.dataset_name,
        "params": run.params,
        "row_count": run.row_count,
        "row_errors": summary.row_errors,
        "judging": {"done": summary.done, "total": summary.total},
        "judges": [
            {
                "name": metric.name,
                "judge_id": metric.judge_id,
                "version": metric.version,
                "output_type": metric.output_type,
                "n": metric.n,
                "errors": metric.errors,
                "not_applicable": metric.not_applicable,
                "pending": metric.pending,
                "pass_rate": metric.pass_rate,
                "pass_rate_low": metric.pass_rate_low,
                "pass_rate_high": metric.pass_rate_high,
                "mean": metric.mean,
                "mean_low": metric.mean_low,
                "mean_high": metric.mean_high,
                "cost_usd": metric.cost_usd,
            }
            for metric in summary.judges
        ],
        "gates": [
            {
                "judge": gate.judge_name,
                "metric": gate.metric,
                "operator": gate.operator,
                "threshold": gate.threshold,
                "value": gate.value,
                "n": gate.n,
                "passed": gate.passed,
                "reason": gate.reason,
            }
            for gate in summary.gates
        ],
        "passed": summary.passed,
        "cost_usd": summary.cost_usd,
        "created_by": run.created_by.username if run.created_by_id else None,
        "created_at": _moment(run.created_at),
        "judging_started_at": _moment(run.judging_started_at),
        "finished_at": _moment(run.finished_at),
    }


def created_json(run: EvaluationRun, summary: RunSummary, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A new run, with what the client's predict function is to be called on: each row's position and inputs."""
    return {**run_json(run, summary), "rows": rows}


def rows_json(page: RowPage) -> dict[str, Any]:
    return {
        "rows": [
            {
                "position": result.row.position,
                "record_id": result.row.record_id,
                "record_version": result.row.record_version,
                "record_change": result.record_change,
                "source_trace_id": result.row.source_trace_id,
                "inputs": result.row.inputs,
                "expectations": result.row.expectations,
                "outputs": result.row.outputs,
                "error": result.row.error,
                "latency_ms": result.row.latency_ms,
                "trace_id": result.trace_ref,
                "verdicts": [
                    {
                        "judge": verdict.judge_name,
                        "state": verdict.state,
                        "value": verdict.value,
                        "passed": verdict.passed,
                        "rationale": verdict.rationale,
                        "error_code": verdict.error_code,
                        "error_message": verdict.error_message,
                    }
                    for verdict in result.verdicts
                ],
            }
            for result in page.rows
        ],
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
    }


# --- documentation of the same shapes --------------------------------------------------------------------------


class JudgeMetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    judge_id = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(allow_null=True, help_text="The judge's version pinned when the run started.")
    output_type = serializers.CharField()
    n = serializers.IntegerField(help_text="Verdicts the figure rests on.")
    errors = serializers.IntegerField()
    not_applicable = serializers.IntegerField(help_text="Rows the judge does not apply to (e.g. Correctness without expected facts).")
    pending = serializers.IntegerField()
    pass_rate = serializers.FloatField(allow_null=True, help_text="Yes/no judges: share of yes.")
    pass_rate_low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval.")
    pass_rate_high = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True, help_text="Numeric judges: the mean.")
    mean_low = serializers.FloatField(allow_null=True, help_text="95% t interval.")
    mean_high = serializers.FloatField(allow_null=True)
    cost_usd = serializers.FloatField()


class GateOutcomeSerializer(serializers.Serializer):
    judge = serializers.CharField()
    metric = serializers.CharField(help_text="pass_rate (yes/no judges) or mean (numeric judges).")
    operator = serializers.CharField(help_text="'>=' or '<='.")
    threshold = serializers.FloatField()
    value = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
    passed = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True, help_text="Why it failed without a comparison (no verdicts), else empty.")


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Judgements settled.")
    total = serializers.IntegerField(help_text="Judgements queued (rows with a trace × judges).")


class RunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    experiment_id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField(help_text="predicting, judging, done or cancelled.")
    dataset_id = serializers.IntegerField(allow_null=True)
    dataset_name = serializers.CharField(allow_blank=True)
    params = serializers.DictField()
    row_count = serializers.IntegerField()
    row_errors = serializers.IntegerField(help_text="Rows whose predict function raised or timed out.")
    judging = ProgressSerializer()
    judges = JudgeMetricSerializer(many=True)
    gates = GateOutcomeSerializer(many=True)
    passed = serializers.BooleanField(help_text="Every gate passed (true without gates).")
    cost_usd = serializers.FloatField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    judging_started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class RowToPredictSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    inputs = serializers.DictField()


class CreatedRunSerializer(RunSerializer):
    rows = RowToPredictSerializer(many=True, help_text="Only with `predict`: what to call the predict function on, by position.")


class RunListSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)


class VerdictSerializer(serializers.Serializer):
    judge = serializers.CharField()
    state = serializers.CharField(help_text="judged, error, not_applicable, pending, running, or missing (no trace: the predict function failed).")
    value = serializers.JSONField(allow_null=True)
    passed = serializers.BooleanField(allow_null=True)
    rationale = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_blank=True)
    error_message = serializers.CharField(allow_blank=True)


class RowSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    record_id = serializers.IntegerField(allow_null=True)
    record_version = serializers.IntegerField(allow_null=True)
    record_change = serializers.CharField(allow_blank=True, help_text='"changed" or "deleted" when the record moved on since.')
    source_trace_id = serializers.CharField(allow_blank=True)
    inputs = serializers.DictField()
    expectations = serializers.DictField()
    outputs = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    trace_id = serializers.CharField(allow_null=True)
    verdicts = VerdictSerializer(many=True)


class RowPageSerializer(serializers.Serializer):
    rows = RowSerializer(many=True)
    total = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()


class PredictionsResultSerializer(serializers.Serializer):
    logged = serializers.IntegerField(help_text="Predictions recorded by this request.")
    waiting = serializers.IntegerField(help_text="Rows still without a prediction; at 0 the judging starts.")
    status = serializers.CharField(help_text="predicting, judging, done or cancelled.")
