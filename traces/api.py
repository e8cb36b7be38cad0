"""JSON API for experiments and traces, and the OTLP/HTTP receiver. Token or session auth on everything."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db.models import Prefetch, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import can_edit
from traces import api_schema, deletion, otlp, otlp_schema, strict_json
from traces.actions import ExperimentNameTaken, create_experiment, ingest_traces
from traces.admission import IngestBusy, bounded_lock_wait, ingest_slot
from traces.feedback import FeedbackError, add_feedback
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.http import BodyError, read_body
from traces.models import Assessment, AssessmentSource, Experiment, Session, Span, Trace
from traces.otlp_receiver import GRPC_CODES, ExportRefused, store_export
from traces.pagination import CursorError, page
from traces.payload import PayloadError, page_size, parse_timestamp, parse_trace_batch, whole_number
from traces.serializers import (
    AssessmentSerializer,
    ExperimentSerializer,
    SessionSerializer,
    TraceDetailSerializer,
    TraceSummarySerializer,
)

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _error(status_code: int, message: str, errors: list | None = None) -> JsonResponse:
    body: dict = {"detail": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status_code)


def _ingest_lock_wait_bounded(view_class: type[APIView]) -> type[APIView]:
    """A POST (ingest) to this view waits at most EVALAPP_INGEST_LOCK_WAIT_SECONDS for any write lock — its
    authentication's token stamp included — then answers 503 busy (traces.admission.bounded_lock_wait)."""
    dispatch = view_class.dispatch

    def bounded_dispatch(self: APIView, request, *args, **kwargs):
        if request.method != "POST":
            return dispatch(self, request, *args, **kwargs)
        with bounded_lock_wait():
            return dispatch(self, request, *args, **kwargs)

    view_class.dispatch = bounded_dispatch  # type: ignore[method-assign]
    return view_class


def _busy(response: HttpResponse, error: IngestBusy) -> HttpResponse:
    """A refusal under overload: 503 (OTLP exporters retry on it) with the Retry-After they wait for."""
    response["Retry-After"] = str(error.retry_after)
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # type: ignore[attr-defined]  # django.request would log each; admission logs a summary
    return response


def _page_size(request: Request) -> int:
    return page_size(request.query_params.get("page_size"), default=DEFAULT_PAGE_SIZE, most=MAX_PAGE_SIZE)


def _time_param(request: Request, name: str):
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    epoch_ms = whole_number(raw)
    value: object = raw if epoch_ms is None else epoch_ms
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise PayloadError([(name, str(error))]) from None


@api_schema.experiment_list
class ExperimentListView(APIView):
    def get(self, request: Request) -> Response:
        experiments = Experiment.objects.order_by("name")
        return Response({"experiments": ExperimentSerializer(experiments, many=True).data})

    def post(self, request: Request) -> Response:
        serializer = ExperimentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            experiment = create_experiment(serializer.validated_data["name"], serializer.validated_data.get("description", ""))
        except ExperimentNameTaken as error:
            raise ValidationError({"name": [str(error)]}) from None
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


def _gone(experiment: Experiment) -> JsonResponse:
    progress = deletion.progress(experiment)
    message = f"Experiment {experiment.name!r} is being deleted ({progress.traces_left} traces left); it takes no more traces."
    return JsonResponse({"detail": message, **progress.as_json()}, status=410)


def _live_experiment(experiment_id: int) -> Experiment | JsonResponse:
    """The experiment, a 410 saying how far its deletion is, or 404."""
    if (deleting := deletion.being_deleted(pk=experiment_id)) is not None:
        return _gone(deleting)
    return get_object_or_404(Experiment, pk=experiment_id)


@api_schema.experiment_detail
class ExperimentDetailView(APIView):
    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = _live_experiment(experiment_id)
        if isinstance(experiment, JsonResponse):
            return experiment
        return Response(ExperimentSerializer(experiment).data)

    def delete(self, request: Request, experiment_id: int) -> HttpResponse:
        """Editors only; the experiment's name, exactly, in `confirm_name` (body or query). 202 with the progress:
        the deletion goes on in the background; GET answers 410 with the progress until it is gone, then 404."""
        if not can_edit(request.user):
            return _error(403, "Your account is a viewer: it can't delete experiments. Ask an editor or an admin.")
        if (deleting := deletion.being_deleted(pk=experiment_id)) is not None:
            return JsonResponse(deletion.progress(deleting).as_json(), status=202)
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        confirm = request.data.get("confirm_name") if isinstance(request.data, dict) else None
        confirm = confirm if confirm is not None else request.query_params.get("confirm_name")
        if not isinstance(confirm, str) or not confirm:
            return _error(400, "Send the experiment's name in confirm_name to confirm the deletion.", [{"field": "confirm_name", "message": "required"}])
        try:
            experiment = deletion.request_deletion(experiment, confirm, by=request.user.get_username())
        except deletion.NameMismatch as error:
            return _error(400, str(error), [{"field": "confirm_name", "message": str(error)}])
        return JsonResponse(deletion.progress(experiment).as_json(), status=202)


@api_schema.trace_list
@_ingest_lock_wait_bounded
class TraceListView(APIView):
    """GET: newest first, keyset-paginated. POST: ingest a batch (see README for the schema)."""

    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        traces = Trace.objects.filter(experiment=experiment)
        try:
            size = _page_size(request)
            since = _time_param(request, "since")
            until = _time_param(request, "until")
            if since:
                traces = traces.filter(started_at__gte=since)
            if until:
                traces = traces.filter(started_at__lt=until)
            if request.query_params.get("session_id"):
                traces = traces.filter(session_id=request.query_params["session_id"])
            if request.query_params.get("status"):
                traces = traces.filter(status=request.query_params["status"].upper())
            if request.query_params.get("filter_string", "").strip():
                try:
                    traces = filter_traces(traces, request.query_params["filter_string"])
                except FilterError as error:
                    raise PayloadError([("filter_string", str(error))]) from None
            rows, next_cursor = page(traces, time_field="started_at", cursor=request.query_params.get("cursor"), size=size)
        except PayloadError as error:
            return Response(error.as_json(), status=400)
        except CursorError as error:
            return Response(PayloadError([("cursor", str(error))]).as_json(), status=400)
        return Response({"traces": TraceSummarySerializer(rows, many=True).data, "next_cursor": next_cursor})

    def post(self, request: Request, experiment_id: int) -> HttpResponse:
        experiment = _live_experiment(experiment_id)
        if isinstance(experiment, JsonResponse):
            return experiment
        try:
            body = read_body(request._request, settings.EVALAPP_MAX_BODY_BYTES)
        except BodyError as error:
            return _error(error.status, error.message)
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type not in ("application/json", ""):
            return _error(415, f"Content-Type {content_type!r} is not supported; send application/json.")
        try:
            with ingest_slot():
                return self._decode_and_store(experiment, body)
        except IngestBusy as error:
            return _busy(_error(503, str(error)), error)

    @staticmethod
    def _decode_and_store(experiment: Experiment, body: bytes) -> JsonResponse:
        try:
            data = strict_json.loads(body, replace_unstorable_text=True)
        except ValueError as error:
            return _error(400, strict_json.body_error(error))
        try:
            batch = parse_trace_batch(data, max_traces=settings.EVALAPP_MAX_TRACES_PER_REQUEST)
            result = ingest_traces(experiment, batch)
        except PayloadError as error:
            return JsonResponse(error.as_json(), status=400)
        return JsonResponse(result.as_json(), status=200)


@api_schema.trace_detail
class TraceDetailView(APIView):
    def get(self, request: Request, trace_id: str) -> Response:
        trace = get_object_or_404(
            Trace.objects.prefetch_related(
                Prefetch("spans", queryset=Span.objects.order_by("started_at", "id")),
                Prefetch("assessments", queryset=Assessment.objects.select_related("trace", "session").order_by("created_at", "id")),
            ),
            trace_id=trace_id,
        )
        return Response(TraceDetailSerializer(trace).data)


@api_schema.session_list
class SessionListView(APIView):
    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        try:
            size = _page_size(request)
            sessions = Session.objects.filter(experiment=experiment)
            since = _time_param(request, "since")
            until = _time_param(request, "until")
            if since:
                sessions = sessions.filter(last_trace_at__gte=since)
            if until:
                sessions = sessions.filter(last_trace_at__lt=until)
            if request.query_params.get("user_id"):
                sessions = sessions.filter(user_id=request.query_params["user_id"])
            if request.query_params.get("search", "").strip():
                sessions = sessions.filter(session_id__contains=request.query_params["search"].strip())
            rows, next_cursor = page(
                sessions,
                time_field="last_trace_at",
                cursor=request.query_params.get("cursor"),
                size=size,
            )
        except PayloadError as error:
            return Response(error.as_json(), status=400)
        except CursorError as error:
            return Response(PayloadError([("cursor", str(error))]).as_json(), status=400)
        return Response({"sessions": SessionSerializer(rows, many=True).data, "next_cursor": next_cursor})


ASSESSMENT_FIELDS = ("trace_id", "session_id", "name", "value", "rationale")


@api_schema.assessment_list
class AssessmentListView(APIView):
    """GET: assessments of an experiment, newest first, by trace, session, judge (name) or source.
    POST: a person's feedback on a trace or a session (a HUMAN assessment)."""

    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        params = request.query_params
        assessments = Assessment.objects.select_related("trace", "session")
        try:
            size = _page_size(request)
            if params.get("trace_id"):
                assessments = assessments.filter(trace__experiment=experiment, trace__trace_id=params["trace_id"])
            elif params.get("session_id"):
                assessments = assessments.filter(session__experiment=experiment, session__session_id=params["session_id"])
            else:
                assessments = assessments.filter(Q(trace__experiment=experiment) | Q(session__experiment=experiment))
            if params.get("judge"):
                assessments = assessments.filter(name=params["judge"])
            if params.get("source_type"):
                source = params["source_type"].upper()
                if source not in AssessmentSource.values:
                    raise PayloadError([("source_type", f"must be one of {', '.join(AssessmentSource.values)}")])
                assessments = assessments.filter(source_type=source)
            if params.get("valid", "").lower() in ("true", "1"):
                assessments = assessments.filter(valid=True)
            rows, next_cursor = page(assessments, time_field="created_at", cursor=params.get("cursor"), size=size)
        except PayloadError as error:
            return Response(error.as_json(), status=400)
        except CursorError as error:
            return Response(PayloadError([("cursor", str(error))]).as_json(), status=400)
        return Response({"assessments": AssessmentSerializer(rows, many=True).data, "next_cursor": next_cursor})

    def post(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        data = request.data
        if not isinstance(data, dict):
            return Response(PayloadError([("", "send a JSON object")]).as_json(), status=400)
        unknown = sorted(set(data) - set(ASSESSMENT_FIELDS))
        if unknown:
            return Response(PayloadError([(field, f"is not a feedback field; use {', '.join(ASSESSMENT_FIELDS)}") for field in unknown]).as_json(), status=400)
        target: dict = {}
        if isinstance(data.get("trace_id"), str) and data["trace_id"]:
            trace = Trace.objects.filter(experiment=experiment, trace_id=data["trace_id"]).first()
            if trace is None:
                return Response(PayloadError([("trace_id", f"no trace {data['trace_id']!r} in this experiment")]).as_json(), status=400)
            target["trace"] = trace
        if isinstance(data.get("session_id"), str) and data["session_id"]:
            session = Session.objects.filter(experiment=experiment, session_id=data["session_id"]).first()
            if session is None:
                return Response(PayloadError([("session_id", f"no session {data['session_id']!r} in this experiment")]).as_json(), status=400)
            target["session"] = session
        try:
            assessment = add_feedback(
                user=request.user, name=data.get("name"), value=data.get("value"), rationale=data.get("rationale", ""), **target
            )
        except FeedbackError as error:
            return Response(PayloadError(list(error.errors.items())).as_json(), status=400)
        return Response(AssessmentSerializer(assessment).data, status=status.HTTP_201_CREATED)


@api_schema.session_detail
class SessionDetailView(APIView):
    def get(self, request: Request, experiment_id: int, session_id: str) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)  # by pk: an id too big for the database is a 404
        session = get_object_or_404(Session, experiment=experiment, session_id=session_id)
        traces = Trace.objects.filter(experiment=experiment, session_id=session_id).order_by("started_at", "id")
        return Response(
            {**SessionSerializer(session).data, "traces": TraceSummarySerializer(traces, many=True).data}
        )


@otlp_schema.otlp_traces
@_ingest_lock_wait_bounded
class OtlpTracesView(APIView):
    """OTLP/HTTP `POST /v1/traces`: protobuf or JSON, optionally gzip. The experiment comes from the
    `x-evalapp-experiment-id` header (an id or a name) or the resource attribute `evalapp.experiment.id`."""

    def post(self, request: Request) -> HttpResponse:
        content_type = request.content_type.split(";")[0].strip().lower()
        is_protobuf = content_type in ("application/x-protobuf", "application/protobuf")
        if not is_protobuf and content_type != "application/json":
            return _error(415, f"Content-Type {content_type!r} is not supported; send application/x-protobuf or application/json.")

        def fail(status_code: int, message: str, errors: list | None = None) -> HttpResponse:
            if is_protobuf:
                from google.rpc.status_pb2 import Status

                grpc_code = GRPC_CODES.get(status_code, 13)
                return HttpResponse(
                    Status(code=grpc_code, message=message).SerializeToString(),
                    status=status_code,
                    content_type="application/x-protobuf",
                )
            return _error(status_code, message, errors)

        try:
            body = read_body(request._request, settings.EVALAPP_MAX_BODY_BYTES)
        except BodyError as error:
            return fail(error.status, error.message)
        try:
            with ingest_slot():
                return self._decode_and_store(body, is_protobuf, request.headers.get("x-evalapp-experiment-id", ""), fail)
        except IngestBusy as error:
            return _busy(fail(503, str(error)), error)

    def _decode_and_store(self, body: bytes, is_protobuf: bool, experiment_header: str, fail: Callable[..., HttpResponse]) -> HttpResponse:
        try:
            if is_protobuf:
                batch = otlp.decode_protobuf(body)
            else:
                try:
                    data = strict_json.loads(body, replace_unstorable_text=True)
                except ValueError as error:
                    return fail(400, strict_json.body_error(error))
                batch = otlp.decode_json(data)
        except PayloadError as error:
            payload = error.as_json()
            return fail(400, payload["detail"], payload["errors"])

        try:
            store_export(batch, experiment_header)
        except ExportRefused as error:
            return fail(error.status, error.message, error.errors)
        return self._success(is_protobuf)

    @staticmethod
    def _success(is_protobuf: bool) -> HttpResponse:
        if is_protobuf:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            return HttpResponse(ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")
        return HttpResponse(b"{}", content_type="application/json")
