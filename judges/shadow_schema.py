"""OpenAPI documentation of a judge's shadow version endpoints (judges/shadow_api.py, answered by judges.shadow)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from judges.agreement_schema import AgreementSerializer
from judges.api_schema import JUDGE_NAME, EndpointRefField
from judges.shadow import DIFF_PAGE
from traces.openapi import EXPERIMENT_ID, errors


class ShadowStartSerializer(serializers.Serializer):
    instructions = serializers.CharField(help_text="The candidate's instructions (required).")
    endpoint = EndpointRefField(required=False, help_text="Another model endpoint, by name or id.")
    output_type = serializers.ChoiceField(["boolean", "categorical", "integer", "float", "string"], required=False)
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


shadow = extend_schema_view(
    get=extend_schema(
        operation_id="judges_shadow", summary="A judge's shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="The running shadow version and what it judged and cost so far; 404 when there is none.",
        responses={200: ShadowSerializer, **errors(404)},
    ),
    post=extend_schema(
        operation_id="judges_shadow_start", summary="Start a shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="A candidate (other instructions, model or output settings) that judges the same sampled items as the "
        "live version, counted in no chart, chip, alert or agreement. One per judge. Editors only.",
        request=ShadowStartSerializer, responses={201: ShadowSerializer, **errors(400, 403, 404)},
    ),
)
promote = extend_schema_view(
    post=extend_schema(
        operation_id="judges_shadow_promote", summary="Promote the shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="Its settings become the judge's: a new live version (a version mark on the Overview). Editors only.",
        request=None, responses={200: PromotedSerializer, **errors(400, 403, 404)},
    )
)
discard = extend_schema_view(
    post=extend_schema(
        operation_id="judges_shadow_discard", summary="Discard the shadow version", tags=["Judges"], parameters=[EXPERIMENT_ID, JUDGE_NAME],
        description="It stops: queued work is cancelled. Its verdicts stay, marked shadow, as history. Editors only.",
        request=None, responses={200: ShadowSerializer, **errors(400, 403, 404)},
    )
)
diff = extend_schema_view(
    get=extend_schema(
        operation_id="judges_shadow_diff", summary="Where the shadow and the live version disagree", tags=["Judges"],
        parameters=[
            EXPERIMENT_ID, JUDGE_NAME,
            OpenApiParameter("page", OpenApiTypes.INT, description="From 1."),
            OpenApiParameter("version", OpenApiTypes.INT, description="A past shadow version (default: the running one, else the latest)."),
        ],
        responses={200: DiffSerializer, **errors(400, 404)},
    )
)
