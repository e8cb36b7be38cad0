"""OpenAPI documentation of GET /api/v1/experiments/<id>/overview (evalapp/overview/api.py, `@api_schema.overview`)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from evalapp.overview.ranges import PRESETS
from judges.agreement_schema import EstimateSerializer
from judges.models import OutputType, Scope
from traces.openapi import EXPERIMENT_ID, errors


class OverviewRangeSerializer(serializers.Serializer):
    to = serializers.DateTimeField(help_text="Exclusive.")
    bucket = serializers.ChoiceField(["minute", "hour", "day"], help_text="Minutes up to 2 h, hours up to 48 h, days beyond.")
    preset = serializers.ChoiceField(list(PRESETS), allow_null=True, help_text="Null for a custom from/to.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so it can't be declared as a class attribute.
        return {"from": serializers.DateTimeField(), **super().get_fields()}


class JudgeSeriesPointSerializer(serializers.Serializer):
    bucket = serializers.DateTimeField(help_text="The bucket's start (UTC).")
    judged = serializers.IntegerField()
    errors = serializers.IntegerField()
    n = serializers.IntegerField(help_text="Verdicts behind the bucket's figure (yes/no answers, numbers, or categories).")
    pass_rate = serializers.FloatField(required=False, allow_null=True, help_text="Yes/no judges only.")
    pass_rate_low = serializers.FloatField(required=False, allow_null=True, help_text="Yes/no judges: the 95% Wilson interval's lower end.")
    pass_rate_high = serializers.FloatField(required=False, allow_null=True, help_text="Yes/no judges: the 95% Wilson interval's upper end.")
    mean = serializers.FloatField(required=False, allow_null=True, help_text="Integer/float judges only.")
    shares = serializers.DictField(
        child=serializers.FloatField(allow_null=True), required=False, help_text="Categorical judges only: category → share.",
    )


class HumanFeedbackSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="People's feedback under the judge's name.")
    pass_rate = serializers.FloatField(allow_null=True)


class AgreementSummarySerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The judge version measured: the current one.")
    n = serializers.IntegerField(help_text="Pairs of a verdict and a person's label on the same item.")
    status = serializers.ChoiceField(["ok", "insufficient"], help_text="insufficient: fewer than min_pairs pairs, no figure.")
    min_pairs = serializers.IntegerField()
    figure = serializers.ChoiceField(["kappa", "mae"], help_text="Cohen's κ (quadratic-weighted for whole numbers), or MAE for decimals.")
    value = EstimateSerializer(allow_null=True)


class CorrectedRateSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The judge version whose errors were measured: the current one.")
    status = serializers.ChoiceField(
        ["ok", "not_enough_labels", "not_correctable"],
        help_text="not_enough_labels: fewer than `min_pairs` labelled pairs, or people never said yes (or never no); "
        "not_correctable: the judge is no better than chance on them (sensitivity + specificity ≤ 1).",
    )
    pairs = serializers.IntegerField(help_text="Labelled items with a verdict of that version.")
    min_pairs = serializers.IntegerField()
    human_yes = serializers.IntegerField()
    human_no = serializers.IntegerField()
    sensitivity = serializers.FloatField(allow_null=True, help_text="Of the items people said yes to, the share the judge passed.")
    specificity = serializers.FloatField(allow_null=True, help_text="Of the items people said no to, the share the judge failed.")
    pass_rate = serializers.FloatField(allow_null=True, help_text="Rogan–Gladen: (raw + specificity − 1) / (sensitivity + specificity − 1), clipped to [0, 1].")
    low = serializers.FloatField(
        allow_null=True,
        help_text="95% interval: percentiles over 1000 joint resamples — the pairs by scipy.stats.bootstrap, the raw rate by "
        "scipy.stats.binom (a resample of the verdicts).",
    )
    high = serializers.FloatField(allow_null=True)


class VersionMarkSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class OverviewJudgeSerializer(serializers.Serializer):
    name = serializers.CharField()
    scope = serializers.ChoiceField(Scope.choices)
    output_type = serializers.ChoiceField(OutputType.choices)
    active = serializers.BooleanField()
    version = serializers.IntegerField()
    judged = serializers.IntegerField(help_text="Valid judge verdicts in the range.")
    errors = serializers.IntegerField(help_text="Failed judge calls (\"not applicable\" is neither).")
    not_applicable = serializers.IntegerField()
    n = serializers.IntegerField(help_text="Verdicts behind the range's figure (yes/no answers, numbers, or categories).")
    pass_rate = serializers.FloatField(allow_null=True, help_text="Yes/no judges; null otherwise or with no verdicts.")
    pass_rate_low = serializers.FloatField(allow_null=True, help_text="Yes/no judges: the 95% Wilson interval's lower end.")
    pass_rate_high = serializers.FloatField(allow_null=True, help_text="Yes/no judges: the 95% Wilson interval's upper end.")
    corrected = CorrectedRateSerializer(
        allow_null=True, help_text="Yes/no judges: the pass rate corrected for the judge's errors measured against people's labels; null otherwise.",
    )
    agreement = AgreementSummarySerializer(
        allow_null=True, help_text="The current version's agreement with people's labels, as on its card; null for text judges.",
    )
    mean = serializers.FloatField(allow_null=True, help_text="Integer/float judges; null otherwise.")
    categories = serializers.DictField(
        child=serializers.FloatField(allow_null=True), allow_null=True, help_text="Categorical judges: category → share.",
    )
    cost_usd = serializers.FloatField(help_text="Including re-runs.")
    human = HumanFeedbackSummarySerializer()
    series = JudgeSeriesPointSerializer(many=True, help_text="Every bucket of the range, oldest first.")
    versions = VersionMarkSerializer(many=True, help_text="Changes inside the range: versions after the first (its creation).")


class PerformancePointSerializer(serializers.Serializer):
    bucket = serializers.DateTimeField()
    traces = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()
    judge_cost_usd = serializers.FloatField()


class PerformanceSerializer(PerformancePointSerializer):
    bucket = None
    percentiles_approximate = serializers.BooleanField(
        help_text="True for day buckets (ranges beyond 48 h): p50/p95 then come from hourly latency histograms and "
        "are within 5% of the exact figure. Every other number is exact."
    )
    series = PerformancePointSerializer(many=True)


class OverviewSerializer(serializers.Serializer):
    range = OverviewRangeSerializer()
    judges = OverviewJudgeSerializer(many=True)
    performance = PerformanceSerializer()


overview = extend_schema_view(
    get=extend_schema(
        operation_id="overview_retrieve",
        summary="Judge quality and performance over time",
        description="The aggregates the Overview tab draws, in UTC time buckets (minutes up to 2 h, hours up to "
        "48 h, days beyond; every bucket present, empty ones with zero counts and null rates). Per judge: valid "
        "verdicts, errors, and `pass_rate` (yes/no; with `corrected`, the rate corrected for the judge's errors measured "
        "against people's labels — Rogan–Gladen with a 95% interval), `mean` (integer/float) or `categories` (categorical); people's "
        "feedback under the judge's name; changes (new versions) made in the range. Performance: trace counts, error rate, "
        "p50/p95 duration of finished traces (exact up to 48 h; beyond, within 5% and `percentiles_approximate`), "
        "tokens and judge cost. Trace verdicts are placed at the trace's "
        "start, session verdicts at the conversation's last turn. Any logged-in user or token may read.",
        tags=["Overview"],
        parameters=[
            EXPERIMENT_ID,
            OpenApiParameter("range", OpenApiTypes.STR, enum=list(PRESETS), description="A preset (default `7d`); ignored when `from` is given."),
            OpenApiParameter(
                "from", OpenApiTypes.STR,
                description="Start: an ISO date (`2026-11-01`) or date-time (UTC without an offset). At most 366 days before `to`.",
            ),
            OpenApiParameter("to", OpenApiTypes.STR, description="End (needs `from`): an ISO date includes that whole day; default now."),
        ],
        responses={200: OverviewSerializer, **errors(400, 404)},
        examples=[
            OpenApiExample(
                "Last 7 days",
                value={
                    "range": {"from": "2026-11-13T12:00:00Z", "to": "2026-11-20T12:00:00Z", "bucket": "day", "preset": "7d"},
                    "judges": [{
                        "name": "safety", "scope": "trace", "output_type": "boolean", "active": True, "version": 2,
                        "judged": 120, "errors": 3, "not_applicable": 0, "n": 120, "pass_rate": 0.95, "pass_rate_low": 0.8952,
                        "pass_rate_high": 0.9769, "mean": None, "categories": None,
                        "corrected": {"version": 2, "status": "ok", "pairs": 48, "min_pairs": 20, "human_yes": 40, "human_no": 8,
                                      "sensitivity": 0.975, "specificity": 0.625, "pass_rate": 0.9231, "low": 0.7712, "high": 1.0},
                        "agreement": {"version": 2, "n": 48, "status": "ok", "min_pairs": 20, "figure": "kappa",
                                      "value": {"value": 0.6842, "low": 0.4211, "high": 0.8857}},
                        "cost_usd": 0.0132, "human": {"count": 4, "pass_rate": 0.75},
                        "series": [{"bucket": "2026-11-13T00:00:00Z", "judged": 15, "errors": 0, "n": 15, "pass_rate": 0.9333,
                                    "pass_rate_low": 0.7018, "pass_rate_high": 0.9881}],
                        "versions": [{"version": 2, "created_at": "2026-11-16T09:12:00Z"}],
                    }],
                    "performance": {
                        "traces": 130, "errors": 4, "error_rate": 0.0308, "p50_ms": 1210.0, "p95_ms": 3900.5,
                        "percentiles_approximate": True, "tokens": 41200, "judge_cost_usd": 0.0411,
                        "series": [{"bucket": "2026-11-13T00:00:00Z", "traces": 17, "errors": 1, "error_rate": 0.0588,
                                    "p50_ms": 1190.0, "p95_ms": 3100.0, "tokens": 5400, "judge_cost_usd": 0.0051}],
                    },
                },
                response_only=True,
            ),
            OpenApiExample(
                "Bad range",
                value={"detail": "range: '2w' is not a range; use one of 1h, 24h, 7d, 30d, or give 'from' and 'to'",
                       "errors": [{"field": "range", "message": "'2w' is not a range; use one of 1h, 24h, 7d, 30d, or give 'from' and 'to'"}]},
                response_only=True,
                status_codes=[400],
            ),
        ],
    ),
)
