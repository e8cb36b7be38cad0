"""OpenAPI documentation of a judge's shadow version endpoints (judges/shadow_api.py, answered by judges.shadow)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from judges.agreement_schema import AgreementSerializer
from judges.api_schema import JUDGE_NAME, EndpointRefField
from judges.models import OutputType
from judges.shadow import DIFF_PAGE
from traces.openapi import EXPERIMENT_ID, errors


class ShadowStartSerializer(serializers.Serializer):
    instructions = serializers.CharField(help_text="The candidate's instructions (required).")
    endpoint = EndpointRefField(required=False, help_text="Another model endpoint, by name or id.")
    output_type = serializers.ChoiceField(OutputType.choices, required=False)
    categories = serializers.ListField(child=serializers.CharField(), required=False)
    min_value = serializers.FloatField(required=False, allow_null=True)
    max_value = serializers.FloatField(required=False, allow_null=True)


class ShadowSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="Its number, in the judge's one sequence of versions.")
    status = serializers.ChoiceField(["shadow", "promoted", "discarded"])
    settings = serializers.DictField(help_text="instructions, endpoint (id), output_type, categories, min_value, max_value.")
    model = serializers.CharField()
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    judged = serializers.IntegerField()
    errors = serializers.IntegerField()
    queued = serializers.IntegerField()
    cost_usd = serializers.FloatField(help_text="What the shadow's calls cost, apart from the live version's.")


class PromotedSerializer(serializers.Serializer):
    promoted = serializers.IntegerField(help_text="The shadow version promoted.")
    version = serializers.IntegerField(help_text="The new live version it became.")


class SideSerializer(serializers.Serializer):
    value = serializers.JSONField()
    rationale = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(allow_null=True)


class DiffRowSerializer(serializers.Serializer):
    trace_id = serializers.CharField(required=False)
    session_id = serializers.CharField(required=False)
    live = SideSerializer()
    shadow = SideSerializer()
    human = serializers.DictField(allow_null=True, help_text="The item's first human label: value, labelled_by.")


class PeopleSerializer(serializers.Serializer):
    live = AgreementSerializer()
    shadow = AgreementSerializer()


class DiffSerializer(serializers.Serializer):
    judge = serializers.CharField()
    live_version = serializers.IntegerField()
    shadow_version = serializers.IntegerField()
    shadow_status = serializers.CharField()
    compared = serializers.IntegerField(help_text="Items both versions judged (errors left out).")
    disagreements = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    agreement_with_people = PeopleSerializer(help_text="Each version against the first human label, on the labelled items both judged.")
    results = DiffRowSerializer(many=True, help_text=f"Up to {DIFF_PAGE} disagreements.")


SHADOW_EXAMPLE = {
    "version": 3, "status": "shadow",
    "settings": {"instructions": "Is {{ outputs }} polite? Curt is not rude.", "endpoint": 1, "output_type": "boolean", "categories": [], "min_value": None, "max_value": None},
    "model": "openai/gpt-4.1-mini", "created_at": "2026-12-06T20:30:00Z", "ended_at": None, "judged": 120, "errors": 0, "queued": 2, "cost_usd": 0.04,
}
INSUFFICIENT = {"n": 4, "status": "insufficient", "min_pairs": 20, "accuracy": None, "kappa": None, "kappa_weights": None, "mae": None, "spearman": None, "confusion": None}
DIFF_EXAMPLE = {
    "judge": "polite", "live_version": 2, "shadow_version": 3, "shadow_status": "shadow", "compared": 120, "disagreements": 1, "page": 1, "pages": 1,
    "agreement_with_people": {"live": INSUFFICIENT, "shadow": INSUFFICIENT},
    "results": [{
        "trace_id": "tr-17",
        "live": {"value": False, "rationale": "The answer is curt.", "version": 2},
        "shadow": {"value": True, "rationale": "Curt, but not rude.", "version": 3},
        "human": {"value": True, "labelled_by": "pat"},
    }],
}


shadow = extend_schema_view(
    get=extend_schema(
        operation_id="judges_shadow", summary="A judge's shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="The running shadow version and what it judged and cost so far; 404 when there is none.",
        responses={200: ShadowSerializer, **errors(404)},
        examples=[OpenApiExample("Running", value=SHADOW_EXAMPLE, response_only=True)],
    ),
    post=extend_schema(
        operation_id="judges_shadow_start", summary="Start a shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="A candidate (other instructions, model or output settings) that judges the same sampled items as the "
        "live version, counted in no chart, chip, alert or agreement. One per judge. Editors only.",
        request=ShadowStartSerializer, responses={201: ShadowSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample("Other instructions", value={"instructions": "Is {{ outputs }} polite? Curt is not rude."}, request_only=True),
            OpenApiExample("Started", value={**SHADOW_EXAMPLE, "judged": 0, "queued": 0, "cost_usd": 0.0}, response_only=True, status_codes=["201"]),
        ],
    ),
)
promote = extend_schema_view(
    post=extend_schema(
        operation_id="judges_shadow_promote", summary="Promote the shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="Its settings become the judge's: a new live version (a version mark on the Overview). Editors only.",
        request=None, responses={200: PromotedSerializer, **errors(400, 403, 404)},
        examples=[OpenApiExample("Promoted", value={"promoted": 3, "version": 4}, response_only=True)],
    )
)
discard = extend_schema_view(
    post=extend_schema(
        operation_id="judges_shadow_discard", summary="Discard the shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="It stops: queued work is cancelled. Its verdicts stay, marked shadow, as history. Editors only.",
        request=None, responses={200: ShadowSerializer, **errors(400, 403, 404)},
        examples=[OpenApiExample("Discarded", value={**SHADOW_EXAMPLE, "status": "discarded", "ended_at": "2026-12-07T09:00:00Z", "queued": 0}, response_only=True)],
    )
)
diff = extend_schema_view(
    get=extend_schema(
        operation_id="judges_shadow_diff", summary="Where the shadow and the live version disagree", tags=["Judges"],
        description="Every item where the shadow's latest verdict differs from the live version's (errors left out), "
        f"{DIFF_PAGE} a page, with both rationales and the item's first human label; and each version's agreement with "
        "people on the labelled items both judged (κ with a 95% bootstrap interval; insufficient below 20 pairs).",
        parameters=[
            EXPERIMENT_ID, JUDGE_NAME,
            OpenApiParameter("page", OpenApiTypes.INT, description="From 1."),
            OpenApiParameter("version", OpenApiTypes.INT, description="A past shadow version (default: the running one, else the latest)."),
        ],
        responses={200: DiffSerializer, **errors(400, 404)},
        examples=[OpenApiExample("One disagreement", value=DIFF_EXAMPLE, response_only=True)],
    )
)
