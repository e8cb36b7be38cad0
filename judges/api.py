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

from accounts.roles import EditorOrReadOnly
from judges import agreement_schema, api_schema, endpoint_schema
from judges.actions import JUDGE_FIELDS, create_judge, delete_judge, update_judge
from judges.endpoint_actions import ENDPOINT_FIELDS, check_connection, create_endpoint, update_endpoint
from judges.errors import ConfigError
from judges.labels import report
from judges.manual import job_json, start_job
from judges.models import Judge, ModelEndpoint, Scope
from judges.states import session_state, trace_state
from traces.models import Experiment, Session, Trace


class EditorAPIView(APIView):
    """Reads for everyone logged in; changes for editors only (accounts.roles)."""

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
    return endpoint_schema.EndpointSerializer(endpoint).data  # the key itself is write-only: never a field


def judge_json(judge: Judge) -> dict[str, Any]:
    return api_schema.JudgeSerializer(judge).data


def _job(progress: dict[str, Any] | None) -> dict[str, Any]:
    """A job's progress (judges.manual.job_json, which the backfill page reads too) as the API documents it."""
    return api_schema.JobSerializer(progress).data


@endpoint_schema.endpoint_list
class EndpointListView(EditorAPIView):
    def get(self, request: Request) -> Response:
        return Response({"endpoints": [endpoint_json(e) for e in ModelEndpoint.objects.order_by("name")]})

    def post(self, request: Request) -> Response:
        data = _object(request, (*ENDPOINT_FIELDS, "api_key"))
        if isinstance(data, Response):
            return data
        try:
            endpoint = create_endpoint(allow_server_key=request.user.is_staff, user=request.user, **data)
        except ConfigError as error:
            return _config_error(error)
        return Response(endpoint_json(endpoint), status=status.HTTP_201_CREATED)


@endpoint_schema.endpoint_detail
class EndpointDetailView(EditorAPIView):
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(endpoint_json(get_object_or_404(ModelEndpoint, pk=endpoint_id)))

    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = get_object_or_404(ModelEndpoint, pk=endpoint_id)
        data = _object(request, (*ENDPOINT_FIELDS, "api_key", "clear_api_key"))
        if isinstance(data, Response):
            return data
        try:
            endpoint = update_endpoint(endpoint, allow_server_key=request.user.is_staff, user=request.user, **data)
        except ConfigError as error:
            return _config_error(error)
        return Response(endpoint_json(endpoint))


@endpoint_schema.endpoint_test
class EndpointTestView(EditorAPIView):
    def post(self, request: Request, endpoint_id: int) -> Response:
        ok, message = check_connection(get_object_or_404(ModelEndpoint, pk=endpoint_id))
        return Response({"ok": ok, "message": message})


def _judge(experiment_id: int, name: str) -> Judge:
    # experiment__pk, not experiment_id: Django guards pk lookups against ids too big for the database (empty
    # result → 404), not foreign-key lookups (OverflowError on SQLite).
    return get_object_or_404(Judge.objects.select_related("endpoint"), experiment__pk=experiment_id, name=name)


@api_schema.judge_list
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


@api_schema.judge_detail
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
        delete_judge(judge, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


SAMPLING_FIELDS = ("sample_rate", "filter_string", "session_idle_seconds")


@api_schema.judge_start
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


@api_schema.judge_stop
class JudgeStopView(EditorAPIView):
    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = update_judge(_judge(experiment_id, name), user=request.user, active=False)
        return Response(judge_json(judge))


@api_schema.judge_versions
class JudgeVersionsView(EditorAPIView):
    def get(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        return Response(
            {"versions": [{"version": v.version, "config": v.config, "created_at": v.created_at} for v in judge.versions.order_by("-version")]}
        )


@api_schema.judge_run
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
        return Response(_job(job_json(job)), status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/jobs/{job}"})


@api_schema.job
class JobView(APIView):
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        body = job_json(job_id)
        if body is None:
            return Response({"detail": f"no job {job_id}"}, status=status.HTTP_404_NOT_FOUND)
        return Response(_job(body))


@api_schema.trace_judge_states
class TraceJudgeStatesView(APIView):
    """For one trace, every trace judge of its experiment: judged (value), pending, error, or why not."""

    def get(self, request: Request, trace_id: str) -> Response:
        trace = get_object_or_404(Trace, trace_id=trace_id)
        judges = Judge.objects.filter(experiment_id=trace.experiment_id, scope=Scope.TRACE).select_related("endpoint").order_by("name")
        return Response({"trace_id": trace.trace_id, "judges": {judge.name: trace_state(judge, trace).as_json() for judge in judges}})


@api_schema.session_judge_states
class SessionJudgeStatesView(APIView):
    def get(self, request: Request, experiment_id: int, session_id: str) -> Response:
        session = get_object_or_404(Session, experiment__pk=experiment_id, session_id=session_id)
        judges = Judge.objects.filter(experiment_id=session.experiment_id, scope=Scope.SESSION).select_related("endpoint").order_by("name")
        return Response({"session_id": session.session_id, "judges": {judge.name: session_state(judge, session).as_json() for judge in judges}})


@agreement_schema.judge_agreement
class JudgeAgreementView(APIView):
    """How the judge agrees with people's labels, per version, with the disagreements (judges.labels.report)."""

    def get(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        errors = {}
        version = request.query_params.get("version")
        page = request.query_params.get("page", "1")
        if version is not None and not (version.isdigit() and 1 <= int(version) <= judge.version):
            errors["version"] = f"no version {version!r} of {judge.name}; it has versions 1 to {judge.version}"
        if not page.isdigit() or not 1 <= int(page) <= 100_000:
            errors["page"] = "a page number from 1"
        if errors:
            return _config_error(ConfigError(errors))
        return Response(report(judge, int(version) if version else None, int(page)))
