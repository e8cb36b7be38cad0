"""OpenAPI documentation of the align() API (judges/align_api.py, answered by judges.align)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from judges import align
from judges.agreement_schema import AgreementSerializer
from judges.api_schema import TRACE_JUDGE_NAME
from traces.openapi import EXPERIMENT_ID, errors

RUN_ID = "5b0c6f1e-2a4d-4f5e-9c3b-7d8e9f0a1b2c"


class PlanSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The judge version whose labelled pairs are used: the current one.")
    pairs = serializers.IntegerField(help_text="Labelled items with a verdict of that version.")
    min_labels = serializers.IntegerField()
    train = serializers.IntegerField()
    held_out = serializers.IntegerField()
    held_out_share = serializers.FloatField(help_text="Items whose id hashes below this share are held out.")
    train_disagreements = serializers.IntegerField(help_text="The corrections candidates learn from.")
    problem = serializers.CharField(allow_null=True, help_text="Why a run can't start (too few labels: how many more), or null.")
    calls = serializers.IntegerField(help_text="Model calls a run makes: held-out × instructions tried, + 1 rewrite.")
    estimate_usd = serializers.CharField(allow_null=True, help_text="Estimated cost; null when the model's price is unknown.")
    rewrite_endpoint = serializers.CharField(allow_null=True)


class CandidateSerializer(serializers.Serializer):
    key = serializers.ChoiceField([align.CURRENT, align.FEW_SHOT, align.REWRITTEN])
    title = serializers.CharField()
    instructions = serializers.CharField(allow_blank=True)
    problem = serializers.CharField(allow_null=True, help_text="Why it wasn't tried (a failed or unusable rewrite), or null.")
    n = serializers.IntegerField(allow_null=True, help_text="Held-out items it was scored on (its errors left out).")
    errors = serializers.IntegerField(allow_null=True)
    figure = serializers.ChoiceField(["kappa", "mae"], allow_null=True, help_text="The main figure: κ (weighted for whole numbers), MAE for decimals.")
    agreement = AgreementSerializer(allow_null=True, help_text="Agreement with people on the held-out items only.")
    cost_usd = serializers.CharField(allow_null=True)
    improvement = serializers.FloatField(allow_null=True, help_text="Its figure minus the current instructions' (κ: higher is better; MAE: lower).")


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class AlignRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    judge = serializers.CharField()
    judge_version = serializers.IntegerField()
    status = serializers.ChoiceField(["queued", "running", "done", "failed"])
    error = serializers.CharField(allow_null=True)
    min_labels = serializers.IntegerField()
    train = serializers.IntegerField()
    held_out = serializers.IntegerField()
    held_out_share = serializers.FloatField()
    rewrite_endpoint = serializers.CharField(allow_null=True)
    progress = ProgressSerializer(help_text="Model calls made of those planned.")
    estimate_usd = serializers.CharField(allow_null=True, help_text="Shown before it started.")
    cost_usd = serializers.CharField(allow_null=True, help_text="What the calls made so far cost.")
    cost_unknown_calls = serializers.IntegerField(help_text="Calls whose model has no known price (not in cost_usd).")
    candidates = CandidateSerializer(many=True, help_text="The current instructions first, then each candidate.")
    picked = serializers.CharField(allow_null=True)
    picked_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class AlignPreviewSerializer(serializers.Serializer):
    plan = PlanSerializer()
    runs = AlignRunSerializer(many=True, help_text="The judge's latest runs, newest first (up to 10).")


class AlignStartSerializer(serializers.Serializer):
    min_labels = serializers.IntegerField(required=False, min_value=align.MIN_HELD_OUT, max_value=100_000, help_text=f"Default {align.DEFAULT_MIN_LABELS}.")
    rewrite_endpoint = serializers.CharField(required=False, allow_null=True, help_text="The endpoint (id or name) that rewrites the instructions; default the judge's own; null: no rewritten candidate.")


class AlignUseSerializer(serializers.Serializer):
    candidate = serializers.ChoiceField([align.FEW_SHOT, align.REWRITTEN])


class AlignUsedSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The shadow version's number (the live version is unchanged).")
    run = AlignRunSerializer()


_AGREEMENT = {"n": 38, "status": "ok", "min_pairs": 20, "accuracy": {"value": 0.71, "low": 0.55, "high": 0.84},
              "kappa": {"value": 0.41, "low": 0.18, "high": 0.63}, "kappa_weights": None, "mae": None, "spearman": None,
              "confusion": {"labels": [True, False], "rows": [[16, 11], [0, 11]]}}
RUN_EXAMPLE = {
    "id": RUN_ID, "judge": "helpful", "judge_version": 3, "status": "done", "error": None, "min_labels": 50, "train": 62,
    "held_out": 38, "held_out_share": align.HELD_OUT_SHARE, "rewrite_endpoint": "gpt-4.1", "progress": {"done": 115, "total": 115},
    "estimate_usd": "0.041200", "cost_usd": "0.029810", "cost_unknown_calls": 0,
    "candidates": [
        {"key": "current", "title": align.TITLES[align.CURRENT], "instructions": "Is {{ outputs }} helpful?", "problem": None, "n": 38,
         "errors": 0, "figure": "kappa", "agreement": _AGREEMENT, "cost_usd": "0.009100", "improvement": None},
        {"key": "rewritten", "title": align.TITLES[align.REWRITTEN], "instructions": "Is {{ outputs }} helpful? An answer that brushes the question off fails.",
         "problem": None, "n": 38, "errors": 0, "figure": "kappa",
         "agreement": {**_AGREEMENT, "kappa": {"value": 0.89, "low": 0.74, "high": 1.0}}, "cost_usd": "0.009700", "improvement": 0.48},
    ],
    "picked": None, "picked_version": None, "created_at": "2026-12-06T21:00:00Z", "finished_at": "2026-12-06T21:01:12Z",
}
PLAN_EXAMPLE = {
    "version": 3, "pairs": 100, "min_labels": 50, "train": 62, "held_out": 38, "held_out_share": align.HELD_OUT_SHARE,
    "train_disagreements": 14, "problem": None, "calls": 115, "estimate_usd": "0.041200", "rewrite_endpoint": "gpt-4.1",
}
RUN_ID_PARAMETER = OpenApiParameter(
    "run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, required=True, description="The run's `id`.",
    examples=[OpenApiExample("run_id", value=RUN_ID)],
)

judge_align = extend_schema_view(
    get=extend_schema(
        operation_id="judges_align_preview",
        summary="What an align() run would do, and the latest runs",
        description="The current version's labelled pairs, split by a hash of the item id into train and held-out "
        f"({align.HELD_OUT_SHARE:.0%} held out), the corrections to learn from, the calls and the estimated cost — or "
        "`problem`: why a run can't start (too few labels, with how many more). Any logged-in user or token may read.",
        tags=["Judges"],
        parameters=[
            EXPERIMENT_ID, TRACE_JUDGE_NAME,
            OpenApiParameter("min_labels", OpenApiTypes.INT, OpenApiParameter.QUERY, description=f"Default {align.DEFAULT_MIN_LABELS}."),
            OpenApiParameter("rewrite_endpoint", OpenApiTypes.STR, OpenApiParameter.QUERY, description="An endpoint's id or name (default: the judge's)."),
        ],
        responses={200: AlignPreviewSerializer, **errors(400, 404)},
        examples=[OpenApiExample("Preview", value={"plan": PLAN_EXAMPLE, "runs": [RUN_EXAMPLE]}, response_only=True)],
    ),
    post=extend_schema(
        operation_id="judges_align_start",
        summary="Start an align() run",
        description="Candidates from the train corrections — the instructions plus few-shot examples, and instructions "
        "rewritten by `rewrite_endpoint` — and the current instructions, each judging every held-out item with the "
        "judge's endpoint (its concurrency, per-minute and spend limits) in a background worker; scored on held-out "
        "items only. Answers 202 with the run to poll (also in `Location`). Too few labels is a 400 saying how many "
        "more. Editors only.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, TRACE_JUDGE_NAME],
        request=AlignStartSerializer,
        responses={202: AlignRunSerializer, **errors(400, 403, 404)},
        examples=[
            OpenApiExample("Start", value={"min_labels": 50, "rewrite_endpoint": "gpt-4.1"}, request_only=True),
            OpenApiExample("Started", value={**RUN_EXAMPLE, "status": "queued", "candidates": [], "progress": {"done": 0, "total": 115},
                                             "cost_usd": "0.000000", "finished_at": None}, response_only=True, status_codes=[202]),
        ],
    ),
)

align_run = extend_schema_view(
    get=extend_schema(
        operation_id="judges_align_run",
        summary="An align() run: progress, cost, candidates and their held-out scores",
        description="Poll until `status` is `done` (or `failed`). Any logged-in user or token may read.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, TRACE_JUDGE_NAME, RUN_ID_PARAMETER],
        responses={200: AlignRunSerializer, **errors(404)},
        examples=[OpenApiExample("Done", value=RUN_EXAMPLE, response_only=True)],
    ),
)

align_use = extend_schema_view(
    post=extend_schema(
        operation_id="judges_align_use",
        summary="Use a candidate's instructions",
        description="Makes the chosen candidate's instructions the judge's shadow version (`…/shadow`): it judges the "
        "live version's sampled items beside it, counted nowhere, until promoted. Refused when the run isn't done, the "
        "candidate wasn't tried, the judge changed since the run, or it already has a shadow. Editors only.",
        tags=["Judges"],
        parameters=[EXPERIMENT_ID, TRACE_JUDGE_NAME, RUN_ID_PARAMETER],
        request=AlignUseSerializer,
        responses={200: AlignUsedSerializer, **errors(400, 403, 404)},
        examples=[OpenApiExample("Use", value={"candidate": "rewritten"}, request_only=True)],
    ),
)
