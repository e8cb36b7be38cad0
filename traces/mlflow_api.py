"""The MLflow tracking-URI drop-in: the part of MLflow's REST API its tracing client calls, so an app instrumented
with `mlflow` or `mlflow-tracing` logs to evalapp with `MLFLOW_TRACKING_URI` and `MLFLOW_TRACKING_TOKEN` alone.

What the client does, and what answers it here:
- `mlflow.set_experiment(name)`: experiments/get-by-name, experiments/create (an MLflow experiment is an evalapp
  experiment; its id is ours; id "0", MLflow's default, is the experiment named "Default").
- each finished trace: `POST /api/3.0/mlflow/traces` with its TraceInfoV3 (metadata, tags, assessments logged
  while it ran) — stored in progress; then it uploads the spans to the trace's artifact location,
  `PUT /api/2.0/mlflow-artifacts/artifacts/traces/<id>/traces.json` — decoded as OTLP is and stored. Both go
  through `traces.actions.ingest_traces`, the one ingest action. We answer no `/version`, so the client does not
  also send each span over OTLP as it ends.
- `mlflow.log_feedback` / `log_expectation`: traces/<id>/assessments (HUMAN or CODE assessments).
- `mlflow.search_traces` / `get_trace`: traces/search (the filter language is MLflow's), traces/<id>, and a GET of
  the same traces.json for the spans.
Anything else answers 404 ENDPOINT_NOT_FOUND (or 501 for the few calls we know but do not do), in MLflow's error
shape `{"error_code": ..., "message": ...}`, which its client shows as it is.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from traces import deletion, strict_json
from traces import mlflow_wire as wire
from traces.actions import ExperimentNameTaken, create_experiment, ingest_traces
from traces.feedback import FeedbackError, add_client_assessment
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.http import BodyError, read_body
from traces.models import Assessment, AssessmentSource, Experiment, Span, Trace
from traces.pagination import CursorError, page
from traces.payload import PayloadError, whole_number
from traces.records import TraceIn

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_SEARCH_RESULTS = 500
NEWEST_FIRST = ("timestamp_ms DESC", "attributes.timestamp_ms DESC", "trace.timestamp_ms DESC", "timestamp DESC")
HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "REQUEST_LIMIT_EXCEEDED": 413,
    "NOT_IMPLEMENTED": 501,
}


class MlflowError(Exception):
    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def error_response(error_code: str, message: str, status: int | None = None) -> JsonResponse:
    return JsonResponse({"error_code": error_code, "message": message}, status=status or HTTP_STATUS[error_code])


def _invalid(error: PayloadError | FeedbackError | FilterError | str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", str(error))


@extend_schema(exclude=True)
class MlflowView(APIView):
    """Token (`Authorization: Bearer <token>`, as MLflow sends MLFLOW_TRACKING_TOKEN) or session auth, like every
    API here; every error in MLflow's shape."""

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, MlflowError):
            return error_response(exc.error_code, exc.message)
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            message = str(exc.detail) + " Set MLFLOW_TRACKING_TOKEN to an evalapp API token (python manage.py create_token <user>)."
            return error_response("UNAUTHENTICATED", message)
        if isinstance(exc, exceptions.PermissionDenied):
            return error_response("PERMISSION_DENIED", str(exc.detail))
        if isinstance(exc, exceptions.MethodNotAllowed):
            return error_response("ENDPOINT_NOT_FOUND", f"{self.request.method} is not answered at {self.request.path}.", 405)
        if isinstance(exc, exceptions.APIException):  # a body that is not JSON, and the like
            return error_response("INVALID_PARAMETER_VALUE", str(exc.detail), exc.status_code)
        return super().handle_exception(exc)


def _json_object(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise MlflowError("INVALID_PARAMETER_VALUE", "Send a JSON object.")
    return data


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None and request.method != "GET" and isinstance(request.data, dict):
        value = request.data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{name}'.")
    return value.strip()


# --- experiments ----------------------------------------------------------------------------------------


def resolve_experiment(experiment_id: str, *, create_default: bool = True) -> Experiment:
    """An MLflow experiment id → our experiment. "0" is MLflow's default experiment: ours named "Default", made
    when first used (a client with no experiment set logs there)."""
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        experiment = Experiment.objects.filter(name=DEFAULT_EXPERIMENT_NAME).first()
        if experiment is None and create_default:
            try:
                experiment = create_experiment(DEFAULT_EXPERIMENT_NAME)
            except ExperimentNameTaken as error:  # made by a concurrent request, or being deleted
                experiment = Experiment.objects.filter(name=DEFAULT_EXPERIMENT_NAME).first()
                if experiment is None:
                    raise MlflowError("RESOURCE_DOES_NOT_EXIST", str(error)) from None
        if experiment is not None:
            return experiment
    pk = whole_number(experiment_id)
    experiment = Experiment.objects.filter(pk=pk).first() if pk is not None and pk < 2**63 else None
    if experiment is None:
        if pk is not None and pk < 2**63 and (deleting := deletion.being_deleted(pk=pk)) is not None:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Experiment {deleting.name!r} is being deleted; it takes no more traces.")
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No experiment with id {experiment_id!r} exists in evalapp.")
    return experiment


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    created = int(experiment.created_at.timestamp() * 1000)
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": "mlflow-artifacts:/traces",
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": created,
        "tags": [{"key": "mlflow.note.content", "value": experiment.description}] if experiment.description else [],
    }


class ExperimentByNameView(MlflowView):
    def get(self, request: Request) -> JsonResponse:
        name = _param(request, "experiment_name")
        experiment = Experiment.objects.filter(name=name).first()
        if experiment is None:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'.")
        return JsonResponse({"experiment": experiment_json(experiment)})


class ExperimentGetView(MlflowView):
    def get(self, request: Request) -> JsonResponse:
        return JsonResponse({"experiment": experiment_json(resolve_experiment(_param(request, "experiment_id")))})


class ExperimentCreateView(MlflowView):
    def post(self, request: Request) -> JsonResponse:
        name = _param(request, "name")
        if len(name) > Experiment._meta.get_field("name").max_length:
            raise MlflowError("INVALID_PARAMETER_VALUE", "An experiment name is at most 200 characters.")
        try:
            experiment = create_experiment(name)
        except ExperimentNameTaken as error:
            raise MlflowError("RESOURCE_ALREADY_EXISTS", str(error)) from None
        return JsonResponse({"experiment_id": str(experiment.pk)})


# --- traces ---------------------------------------------------------------------------------------------


def _trace(mlflow_id: str) -> Trace:
    # Not one of an experiment being deleted (Experiment.objects leaves those out): it takes no more data.
    trace = (
        Trace.objects.filter(trace_id=wire.our_trace_id(mlflow_id), experiment__deleting_since__isnull=True)
        .select_related("experiment")
        .first()
    )
    if trace is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Trace with ID {mlflow_id} not found.")
    return trace


def _trace_info(trace: Trace) -> dict[str, Any]:
    assessments = Assessment.objects.filter(trace=trace).order_by("created_at", "pk")
    return wire.trace_info_json(trace, list(assessments))


def _store_assessment(trace: Trace, item: wire.AssessmentIn) -> Assessment:
    metadata = dict(item.metadata)
    if item.expectation:
        metadata[wire.EXPECTATION_KEY] = "expectation"
    if item.span_id:
        metadata[wire.SPAN_ID_KEY] = item.span_id
    source_type = item.source_type
    if source_type == AssessmentSource.LLM_JUDGE:
        # LLM_JUDGE verdicts here are our judges' (the Overview, selection and alerts count them); another
        # program's judge is code to us, and its own word is kept.
        metadata[wire.SOURCE_TYPE_KEY] = source_type
        source_type = AssessmentSource.CODE
    overrides = None
    if item.overrides:
        overrides = Assessment.objects.filter(trace=trace, pk=whole_number(item.overrides) or 0).first()
        if overrides is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"overrides: no assessment {item.overrides!r} on this trace.")
    return add_client_assessment(
        trace=trace,
        name=item.name,
        value=item.value,
        source_type=source_type,
        source_id=item.source_id,
        rationale=item.rationale,
        metadata=metadata,
        error_code=item.error_code,
        error_message=item.error_message,
        overrides=overrides,
    )


class StartTraceView(MlflowView):
    """StartTraceV3, which the client calls when a trace has finished: its info; the spans follow as traces.json."""

    def post(self, request: Request) -> JsonResponse:
        trace_body = _json_object(request).get("trace")
        try:
            parsed = wire.parse_trace_info(trace_body.get("trace_info") if isinstance(trace_body, dict) else None)
        except PayloadError as error:
            raise _invalid(error) from None
        experiment = resolve_experiment(parsed.experiment_id)
        try:
            with transaction.atomic():  # the trace and the verdicts logged while it ran, or nothing
                ingest_traces(experiment, [parsed.trace])
                trace = Trace.objects.get(trace_id=parsed.trace.trace_id)
                for item in parsed.assessments:
                    _store_assessment(trace, item)
        except (PayloadError, FeedbackError) as error:
            raise _invalid(error) from None
        return JsonResponse({"trace": {"trace_info": _trace_info(trace)}})


class TraceInfoView(MlflowView):
    def get(self, request: Request, trace_id: str) -> JsonResponse:
        return JsonResponse({"trace": {"trace_info": _trace_info(_trace(trace_id))}})


class TraceTagsView(MlflowView):
    """SetTraceTag (`mlflow.set_trace_tag` after the fact); written through the ingest action like everything."""

    def patch(self, request: Request, trace_id: str) -> JsonResponse:
        trace = _trace(trace_id)
        key, value = _param(request, "key"), _json_object(request).get("value", "")
        if not isinstance(value, str) or "\x00" in key + value:
            raise MlflowError("INVALID_PARAMETER_VALUE", "A tag's value must be text without NUL characters.")
        try:
            ingest_traces(trace.experiment, [TraceIn(trace_id=trace.trace_id, tags={key: value})])
        except PayloadError as error:
            raise _invalid(error) from None
        return JsonResponse({})

    def delete(self, request: Request, trace_id: str) -> JsonResponse:
        raise MlflowError("NOT_IMPLEMENTED", "evalapp does not delete a trace's tags; set the tag to another value instead.")


def _locations(data: dict[str, Any]) -> list[Experiment]:
    raw = data.get("locations")
    if not isinstance(raw, list) or not raw:
        raise MlflowError("INVALID_PARAMETER_VALUE", "locations: name at least one MLflow experiment to search.")
    experiments = []
    for location in raw:
        experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
        experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
        if not isinstance(experiment_id, str):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", "locations: evalapp searches MLflow experiments only (mlflow_experiment.experiment_id)."
            )
        if experiment_id == DEFAULT_EXPERIMENT_ID and not Experiment.objects.filter(name=DEFAULT_EXPERIMENT_NAME).exists():
            continue  # nothing was ever logged to the default experiment
        experiments.append(resolve_experiment(experiment_id))
    return experiments


def _max_results(data: dict[str, Any]) -> int:
    value = data.get("max_results", 100)
    if isinstance(value, str):
        value = whole_number(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MlflowError("INVALID_PARAMETER_VALUE", "max_results must be a whole number from 1.")
    return min(value, MAX_SEARCH_RESULTS)  # the client asks again with the page token for more


class SearchTracesView(MlflowView):
    """SearchTracesV3: newest first, in keyset pages; the filter is MLflow's search syntax (traces.filters)."""

    def post(self, request: Request) -> JsonResponse:
        data = _json_object(request)
        experiments = _locations(data)
        order_by = data.get("order_by") or []
        if not isinstance(order_by, list) or any(not isinstance(item, str) or item.strip() not in NEWEST_FIRST for item in order_by):
            raise MlflowError("INVALID_PARAMETER_VALUE", "order_by: evalapp returns traces newest first only ('timestamp_ms DESC').")
        traces = Trace.objects.filter(experiment__in=experiments).prefetch_related(
            Prefetch("assessments", queryset=Assessment.objects.order_by("created_at", "pk"))
        )
        filter_string, page_token = data.get("filter") or "", data.get("page_token") or None
        if page_token is not None and not isinstance(page_token, str):
            raise MlflowError("INVALID_PARAMETER_VALUE", "page_token: pass back the next_page_token of the previous page.")
        try:
            if not isinstance(filter_string, str):
                raise FilterError("the filter must be text", 0)
            if filter_string.strip():
                traces = filter_traces(traces, filter_string)
            rows, next_cursor = page(traces, time_field="started_at", cursor=page_token, size=_max_results(data))
        except FilterError as error:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"filter: {error}") from None
        except CursorError as error:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"page_token: {error}") from None
        body: dict[str, Any] = {"traces": [wire.trace_info_json(row, list(row.assessments.all())) for row in rows]}
        if next_cursor:
            body["next_page_token"] = next_cursor
        return JsonResponse(body)


# --- assessments ----------------------------------------------------------------------------------------


class AssessmentsView(MlflowView):
    def post(self, request: Request, trace_id: str) -> JsonResponse:
        trace = _trace(trace_id)
        try:
            item = wire.parse_assessment(_json_object(request).get("assessment"), "assessment")
            assessment = _store_assessment(trace, item)
        except (PayloadError, FeedbackError) as error:
            raise _invalid(error) from None
        return JsonResponse({"assessment": wire.assessment_json(assessment, trace.trace_id)})


class AssessmentDetailView(MlflowView):
    def get(self, request: Request, trace_id: str, assessment_id: str) -> JsonResponse:
        trace = _trace(trace_id)
        assessment = Assessment.objects.filter(trace=trace, pk=whole_number(assessment_id) or 0).first()
        if assessment is None:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Assessment with ID {assessment_id} not found on trace {trace_id}.")
        return JsonResponse({"assessment": wire.assessment_json(assessment, trace.trace_id)})

    def patch(self, request: Request, trace_id: str, assessment_id: str) -> JsonResponse:
        raise MlflowError("NOT_IMPLEMENTED", "evalapp keeps every verdict: log a new one (mlflow.log_feedback) instead of updating one.")

    def delete(self, request: Request, trace_id: str, assessment_id: str) -> JsonResponse:
        raise MlflowError("NOT_IMPLEMENTED", "evalapp keeps every verdict: log a new one (mlflow.log_feedback) instead of deleting one.")


# --- span data (the trace's artifact) -------------------------------------------------------------------


class TraceDataView(MlflowView):
    """`traces.json` at the artifact location start-trace answered: PUT stores the spans, GET reads them back."""

    def put(self, request: Request, trace_id: str) -> HttpResponse:
        trace = _trace(trace_id)
        try:
            body = read_body(request._request, settings.EVALAPP_MAX_BODY_BYTES)
        except BodyError as error:
            return error_response(
                "REQUEST_LIMIT_EXCEEDED" if error.status == 413 else "INVALID_PARAMETER_VALUE", error.message, error.status
            )
        try:
            data = strict_json.loads(body, replace_unstorable_text=True)
        except ValueError as error:
            raise MlflowError("INVALID_PARAMETER_VALUE", strict_json.body_error(error)) from None
        try:
            ingest_traces(trace.experiment, [wire.parse_trace_data(data, trace.trace_id)])
        except PayloadError as error:
            raise _invalid(error) from None
        return HttpResponse(status=200)

    def get(self, request: Request, trace_id: str) -> JsonResponse:
        trace = _trace(trace_id)
        spans = Span.objects.filter(trace=trace).order_by("started_at", "pk")
        return JsonResponse({"spans": [wire.span_dict(span, trace.trace_id) for span in spans]})


class UnknownCallView(MlflowView):
    def _answer(self, request: Request, *args: Any, **kwargs: Any) -> JsonResponse:
        if request.path == "/version":
            raise MlflowError(
                "ENDPOINT_NOT_FOUND",
                "evalapp names no MLflow server version, so MLflow clients send a trace's spans with the trace "
                "(traces.json), not one by one as they end.",
            )
        raise MlflowError(
            "ENDPOINT_NOT_FOUND",
            f"evalapp answers only the MLflow calls its tracing client makes (experiments, traces, assessments, "
            f"search); {request.method} {request.path} is not one of them.",
        )

    get = post = put = patch = delete = _answer
