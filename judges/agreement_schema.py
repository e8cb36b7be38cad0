"""OpenAPI documentation of `GET /api/v1/experiments/{id}/judges/{name}/agreement` (judges/api.py
JudgeAgreementView, answered by judges.labels.report); beside judges/api_schema.py, which documents the rest."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from judges.agreement import MIN_PAIRS
from judges.api_schema import JUDGE_NAME
from judges.labels import DISAGREEMENTS_PAGE, PAIRING
from traces.openapi import EXPERIMENT_ID, errors


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="null when it is undefined (κ when every pair is the same single value).")
    low = serializers.FloatField(allow_null=True, help_text="95% bootstrap interval (percentile, paired resampling, fixed seed).")
    high = serializers.FloatField(allow_null=True)


class ConfusionSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.JSONField(), help_text="The values, in the judge's order.")
    rows = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()), help_text="Rows: the judge's value (or the first person's); columns: the person's (or the second person's).")


class AgreementSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Pairs.")
    status = serializers.ChoiceField(["ok", "insufficient"], help_text=f"insufficient below {MIN_PAIRS} pairs: then every figure is null.")
    min_pairs = serializers.IntegerField()
    accuracy = EstimateSerializer(allow_null=True, help_text="Yes/no, categories and whole numbers: the share of exact matches.")
    kappa = EstimateSerializer(allow_null=True, help_text="Cohen's κ (yes/no, categories); quadratic-weighted for whole numbers.")
    kappa_weights = serializers.ChoiceField([None, "quadratic"], allow_null=True)
    mae = EstimateSerializer(allow_null=True, help_text="Numbers: mean absolute error.")
    spearman = EstimateSerializer(allow_null=True, help_text="Numbers: Spearman's rank correlation.")
    confusion = ConfusionSerializer(allow_null=True, help_text="Yes/no, categories and whole numbers.")


class VersionAgreementSerializer(AgreementSerializer):
    version = serializers.IntegerField()
    current = serializers.BooleanField()


class DisagreementSerializer(serializers.Serializer):
    trace_id = serializers.CharField(required=False, help_text="Trace judges.")
    session_id = serializers.CharField(required=False, help_text="Session judges.")
    url = serializers.CharField(help_text="The trace's (or conversation's) page.")
    judge_value = serializers.JSONField()
    human_value = serializers.JSONField(help_text="The first label.")
    labelled_by = serializers.CharField()
    comment = serializers.CharField(allow_blank=True)
    rationale = serializers.CharField(allow_blank=True, help_text="The judge's.")
    second_label = serializers.DictField(allow_null=True, help_text="Another person's label of the same item, if any.")


class DisagreementPageSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    total = serializers.IntegerField()
    results = DisagreementSerializer(many=True, help_text=f"Up to {DISAGREEMENTS_PAGE}, biggest differences first.")


class LabelCountsSerializer(serializers.Serializer):
    items = serializers.IntegerField(help_text="Items with at least one label.")
    people = serializers.IntegerField()
    second_labels = serializers.IntegerField(help_text="Items a second person labelled too.")


class AgreementReportSerializer(serializers.Serializer):
    judge = serializers.CharField()
    output_type = serializers.CharField()
    current_version = serializers.IntegerField()
    pairing = serializers.CharField(help_text="Which label pairs with the judge when several people labelled.")
    labels = LabelCountsSerializer()
    versions = VersionAgreementSerializer(many=True, help_text="Judge vs people, newest version first.")
    inter_annotator = AgreementSerializer(help_text="First vs second person's label on the same items.")
    disagreements = DisagreementPageSerializer()


def _figure(value, low, high):
    return {"value": value, "low": low, "high": high}


EXAMPLE = {
    "judge": "helpful", "output_type": "boolean", "current_version": 2, "pairing": PAIRING,
    "labels": {"items": 142, "people": 3, "second_labels": 31},
    "versions": [
        {"version": 2, "current": True, "n": 120, "status": "ok", "min_pairs": MIN_PAIRS,
         "accuracy": _figure(0.9, 0.8417, 0.95), "kappa": _figure(0.7851, 0.6643, 0.8905), "kappa_weights": None,
         "mae": None, "spearman": None, "confusion": {"labels": [True, False], "rows": [[78, 7], [5, 30]]}},
        {"version": 1, "current": False, "n": 12, "status": "insufficient", "min_pairs": MIN_PAIRS, "accuracy": None,
         "kappa": None, "kappa_weights": None, "mae": None, "spearman": None,
         "confusion": {"labels": [True, False], "rows": [[6, 3], [1, 2]]}},
    ],
    "inter_annotator": {"n": 31, "status": "ok", "min_pairs": MIN_PAIRS, "accuracy": _figure(0.9032, 0.7742, 1.0),
                        "kappa": _figure(0.7547, 0.4, 1.0), "kappa_weights": None, "mae": None, "spearman": None,
                        "confusion": {"labels": [True, False], "rows": [[22, 2], [1, 6]]}},
    "disagreements": {"version": 2, "page": 1, "pages": 1, "total": 12, "results": [
        {"trace_id": "tr-81b2d0", "url": "/experiments/2/traces/tr-81b2d0", "judge_value": True, "human_value": False,
         "labelled_by": "ann", "comment": "It never gives the refund date.", "rationale": "It answers the question.",
         "second_label": None},
    ]},
}

judge_agreement = extend_schema_view(
    get=extend_schema(
        operation_id="judges_agreement",
        summary="How a judge agrees with people",
        description=f"People's labels (HUMAN assessments under the judge's name: the trace page's feedback, the "
        f"labelling queue, `POST …/assessments`) against the judge's verdicts, per version: accuracy, Cohen's κ "
        f"(quadratic-weighted for whole-number scales), MAE and Spearman's ρ for numbers, the confusion matrix, each "
        f"with a 95% bootstrap interval — or `insufficient` below {MIN_PAIRS} pairs. {PAIRING} The disagreements "
        f"of one version (default the current), {DISAGREEMENTS_PAGE} a page. Any logged-in user or token may read.",
        tags=["Judges"],
        parameters=[
            EXPERIMENT_ID, JUDGE_NAME,
            OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Whose disagreements to list (default: the current version)."),
            OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY, description="The disagreements' page, from 1."),
        ],
        responses={200: AgreementReportSerializer, **errors(400, 404)},
        examples=[OpenApiExample("Agreement", value=EXAMPLE, response_only=True)],
    ),
)
