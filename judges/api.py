"""JSON API for model endpoints and judges (the first part of the judges API; token or session auth).

Every change goes through judges.actions, the same as the admin, commands and tasks."""

from __future__ import annotations

import uuid
from typing import Any

from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalapp.roles import EditorOrReadOnly
from judges.actions import (
    ENDPOINT_FIELDS,
    JUDGE_FIELDS,
    ConfigError,
    check_connection,
    create_endpoint,
    create_judge,
    delete_judge,
    update_endpoint,
    update_judge,
)
from judges.catalog import BUILTIN_JUDGES
from judges.explain import explain_session, explain_trace
from judges.jobs import job_json, start_job
from judges.models import Judge, ModelEndpoint, Scope
from traces.models import Experiment, Session, Trace


class EditorAPIView(APIView):
    """Reads for everyone logged in; changes for editors only (evalapp.roles)."""

    permission_classes = [IsAuthenticated, EditorOrReadOnly]


def _config_error(error: ConfigError) -> Response:
    first_field, first_message = next(iter(error.errors.items()))
    return Response(
        {
            "detail": f"{first_field}: {first_message}",
            "errors": [{"field": field, "message": message} for field, message in error.errors.items()],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


def _object(request: Request, allowed: tuple[str, ...] | None = None) -> dict[str, Any] | Response:
    if not isinstance(request.data, dict):
        return Response({"detail": "Send a JSON object."}, status=status.HTTP_400_BAD_REQUEST)
    data = dict(request.data)
    if allowed is not None:
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            return _config_error(ConfigError({field: f"is not a setting here; use {', '.join(allowed)}" for field in unknown}))
    return data


def endpoint_json(endpoint: ModelEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "name": endpoint.name,
        "model": endpoint.model,
        "api_base": endpoint.api_base,
        "has_api_key": endpoint.has_api_key,  # the key itself is write-only
        "inference_params": endpoint.inference_params,
        "max_concurrency": endpoint.max_concurrency,
        "requests_per_minute": endpoint.requests_per_minute,
        "timeout_seconds": endpoint.timeout_seconds,
        "max_retries": endpoint.max_retries,
        "input_cost_per_million": str(endpoint.input_cost_per_million) if endpoint.input_cost_per_million is not None else None,
        "output_cost_per_million": str(endpoint.output_cost_per_million) if endpoint.output_cost_per_million is not None else None,
        "context_window": endpoint.context_window,
        "output_mode": endpoint.output_mode,
        "detected_output_mode": endpoint.detected_output_mode,
        "is_standin": endpoint.is_standin,
    }


def judge_json(judge: Judge) -> dict[str, Any]:
    builtin = BUILTIN_JUDGES.get(judge.builtin_key)
    return {
        "id": judge.pk,
        "experiment_id": judge.experiment_id,
        "name": judge.name,
        "scope": judge.scope,
        "builtin_key": judge.builtin_key or None,
        "description": builtin.description if builtin else "",
        "instructions": judge.instructions,
        "output_type": judge.output_type,
        "categories": judge.categories,
        "min_value": judge.min_value,
        "max_value": judge.max_value,
        "endpoint": judge.endpoint.name,
        "model": judge.endpoint.model,
        "sample_rate": judge.sample_rate,
        "filter_string": judge.filter_string,
        "active": judge.active,
        "enabled_at": judge.enabled_at,
        "session_idle_seconds": judge.idle_seconds() if judge.scope == Scope.SESSION else None,
        "daily_cost_cap_usd": str(judge.daily_cost_cap_usd) if judge.daily_cost_cap_usd is not None else None,
        "paused_reason": judge.paused_reason or None,
        "version": judge.version,
        "created_at": judge.created_at,
        "updated_at": judge.updated_at,
    }


class EndpointListView(EditorAPIView):
    def get(self, request: Request) -> Response:
        return Response({"endpoints": [endpoint_json(e) for e in ModelEndpoint.objects.order_by("name")]})

    def post(self, request: Request) -> Response:
        data = _object(request, (*ENDPOINT_FIELDS, "api_key"))
        if isinstance(data, Response):
            return data
        try:
            endpoint = create_endpoint(**data)
        except ConfigError as error:
            return _config_error(error)
        return Response(endpoint_json(endpoint), status=status.HTTP_201_CREATED)


class EndpointDetailView(EditorAPIView):
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(endpoint_json(get_object_or_404(ModelEndpoint, pk=endpoint_id)))

    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = get_object_or_404(ModelEndpoint, pk=endpoint_id)
        data = _object(request, (*ENDPOINT_FIELDS, "api_key", "clear_api_key"))
        if isinstance(data, Response):
            return data
        try:
            endpoint = update_endpoint(endpoint, **data)
        except ConfigError as error:
            return _config_error(error)
        return Response(endpoint_json(endpoint))


class EndpointTestView(EditorAPIView):
    def post(self, request: Request, endpoint_id: int) -> Response:
        ok, message = check_connection(get_object_or_404(ModelEndpoint, pk=endpoint_id))
        return Response({"ok": ok, "message": message})


def _judge(experiment_id: int, name: str) -> Judge:
    # experiment__pk, not experiment_id: Django guards pk lookups against ids too big for the database (empty
    # result → 404), not foreign-key lookups (OverflowError on SQLite).
    return get_object_or_404(Judge.objects.select_related("endpoint"), experiment__pk=experiment_id, name=name)


class JudgeListView(EditorAPIView):
    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        judges = Judge.objects.filter(experiment=experiment).select_related("endpoint").order_by("name")
        return Response({"judges": [judge_json(judge) for judge in judges]})

    def post(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        data = _object(request, JUDGE_FIELDS)
        if isinstance(data, Response):
            return data
        try:
            judge = create_judge(experiment, user=request.user, **data)
        except ConfigError as error:
            return _config_error(error)
        return Response(judge_json(judge), status=status.HTTP_201_CREATED)


class JudgeDetailView(EditorAPIView):
    def get(self, request: Request, experiment_id: int, name: str) -> Response:
        return Response(judge_json(_judge(experiment_id, name)))

    def patch(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        data = _object(request, JUDGE_FIELDS)
        if isinstance(data, Response):
            return data
        try:
            judge = update_judge(judge, user=request.user, **data)
        except ConfigError as error:
            return _config_error(error)
        return Response(judge_json(judge))

    def delete(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        delete_judge(judge)
        return Response(status=status.HTTP_204_NO_CONTENT)


SAMPLING_FIELDS = ("sample_rate", "filter_string", "session_idle_seconds")


class JudgeStartView(EditorAPIView):
    """Switch automatic evaluation on, optionally with a new sampling config (MLflow's `start`/`update`)."""

    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        data = _object(request, SAMPLING_FIELDS)
        if isinstance(data, Response):
            return data
        try:
            judge = update_judge(judge, user=request.user, active=True, **data)
        except ConfigError as error:
            return _config_error(error)
        return Response(judge_json(judge))


class JudgeStopView(EditorAPIView):
    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = update_judge(_judge(experiment_id, name), user=request.user, active=False)
        return Response(judge_json(judge))


class JudgeVersionsView(EditorAPIView):
    def get(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        return Response(
            {"versions": [{"version": v.version, "config": v.config, "created_at": v.created_at} for v in judge.versions.order_by("-version")]}
        )


class JudgeRunView(EditorAPIView):
    """Judge these traces or sessions now, by hand (whatever the sampling config or on/off): 202 with a job to poll."""

    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        data = _object(request, ("trace_ids", "session_ids"))
        if isinstance(data, Response):
            return data
        try:
            job = start_job(judge, trace_ids=data.get("trace_ids"), session_ids=data.get("session_ids"))
        except ConfigError as error:
            return _config_error(error)
        return Response(job_json(job), status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/jobs/{job}"})


class JobView(APIView):
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        body = job_json(job_id)
        if body is None:
            return Response({"detail": f"no job {job_id}"}, status=status.HTTP_404_NOT_FOUND)
        return Response(body)


class TraceJudgeStatesView(APIView):
    """For one trace, every trace judge of its experiment: judged (value), pending, error, or why not."""

    def get(self, request: Request, trace_id: str) -> Response:
        trace = get_object_or_404(Trace, trace_id=trace_id)
        judges = Judge.objects.filter(experiment_id=trace.experiment_id, scope=Scope.TRACE).select_related("endpoint").order_by("name")
        return Response({"trace_id": trace.trace_id, "judges": {judge.name: explain_trace(judge, trace).as_json() for judge in judges}})


class SessionJudgeStatesView(APIView):
    def get(self, request: Request, experiment_id: int, session_id: str) -> Response:
        session = get_object_or_404(Session, experiment__pk=experiment_id, session_id=session_id)
        judges = Judge.objects.filter(experiment_id=session.experiment_id, scope=Scope.SESSION).select_related("endpoint").order_by("name")
        return Response({"session_id": session.session_id, "judges": {judge.name: explain_session(judge, session).as_json() for judge in judges}})
