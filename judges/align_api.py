"""The align() API: preview (`GET …/judges/{name}/align`), start (`POST`, editors), poll a run
(`GET …/align/{run_id}`) and use one of its candidates (`POST …/align/{run_id}/use`, editors). The work is
judges.align's; documented in judges/align_schema.py."""

from __future__ import annotations

import uuid
from typing import Any

from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from judges import align, align_schema
from judges.api import EditorAPIView, _config_error, _judge, _object
from judges.errors import ConfigError
from judges.models import AlignRun, Judge, ModelEndpoint
from traces.payload import whole_number

START_FIELDS = ("min_labels", "rewrite_endpoint")


def rewrite_endpoint_of(judge: Judge, value: Any, *, given: bool) -> ModelEndpoint | None:
    """The endpoint that rewrites the instructions: by id or name; the judge's own when not given; none for null."""
    if not given:
        return judge.endpoint
    if value is None or value == "":
        return None
    found = None
    if isinstance(value, int) and not isinstance(value, bool):
        found = ModelEndpoint.objects.filter(pk=value).first() if 0 < value < 2**63 else None
    elif isinstance(value, str):
        number = whole_number(value)
        found = ModelEndpoint.objects.filter(pk=number).first() if number is not None and 0 < number < 2**63 else None
        found = found or ModelEndpoint.objects.filter(name=value).first()
    if found is None:
        raise ConfigError({"rewrite_endpoint": f"no model endpoint {value!r}; give an endpoint's id or name, or null for no rewrite"})
    return found


def _min_labels(value: Any) -> int:
    if isinstance(value, str):
        value = whole_number(value)
    if not isinstance(value, int) or isinstance(value, bool) or not align.MIN_HELD_OUT <= value <= 100_000:
        raise ConfigError({"min_labels": f"a whole number from {align.MIN_HELD_OUT} to 100000"})
    return value


@align_schema.judge_align
class JudgeAlignView(EditorAPIView):
    def get(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        try:
            min_labels = _min_labels(request.query_params.get("min_labels", align.DEFAULT_MIN_LABELS))
            endpoint = rewrite_endpoint_of(judge, request.query_params.get("rewrite_endpoint"), given="rewrite_endpoint" in request.query_params)
        except ConfigError as error:
            return _config_error(error)
        plan = align.plan_align(judge, min_labels=min_labels, rewrite_endpoint=endpoint)
        runs = AlignRun.objects.filter(judge=judge).select_related("judge", "rewrite_endpoint")[:10]
        return Response({"plan": plan.as_json(), "runs": [align.run_json(run) for run in runs]})

    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        data = _object(request, START_FIELDS)
        if isinstance(data, Response):
            return data
        try:
            min_labels = _min_labels(data.get("min_labels", align.DEFAULT_MIN_LABELS))
            endpoint = rewrite_endpoint_of(judge, data.get("rewrite_endpoint"), given="rewrite_endpoint" in data)
            started = align.start_align(judge, min_labels=min_labels, rewrite_endpoint=endpoint, user=request.user)
        except ConfigError as error:
            return _config_error(error)
        body = align.run_json(AlignRun.objects.select_related("judge", "rewrite_endpoint").get(pk=started.pk))
        location = f"/api/v1/experiments/{judge.experiment_id}/judges/{judge.name}/align/{started.pk}"
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


def _run(judge: Judge, run_id: uuid.UUID) -> AlignRun:
    return get_object_or_404(AlignRun.objects.select_related("judge", "rewrite_endpoint"), pk=run_id, judge=judge)


@align_schema.align_run
class AlignRunView(EditorAPIView):
    def get(self, request: Request, experiment_id: int, name: str, run_id: uuid.UUID) -> Response:
        return Response(align.run_json(_run(_judge(experiment_id, name), run_id)))


@align_schema.align_use
class AlignUseView(EditorAPIView):
    def post(self, request: Request, experiment_id: int, name: str, run_id: uuid.UUID) -> Response:
        aligned = _run(_judge(experiment_id, name), run_id)
        data = _object(request, ("candidate",))
        if isinstance(data, Response):
            return data
        key = data.get("candidate")
        try:
            if not isinstance(key, str) or not key:
                raise ConfigError({"candidate": "give the key of a candidate of this run (few_shot or rewritten)"})
            version = align.use_candidate(aligned, key, user=request.user)
        except ConfigError as error:
            return _config_error(error)
        return Response({"version": version, "run": align.run_json(_run(aligned.judge, aligned.pk))})
