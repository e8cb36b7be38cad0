"""JSON API for experiments and traces, and the OTLP/HTTP receiver. Token or session auth on everything."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Prefetch, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from traces import otlp, strict_json
from traces.actions import create_experiment, ingest_traces
from traces.feedback import FeedbackError, add_feedback
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.http import BodyError, read_body
from traces.models import Assessment, AssessmentSource, Experiment, Session, Span, Trace
from traces.pagination import CursorError, page
from traces.payload import PayloadError, parse_timestamp, parse_trace_batch, whole_number
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


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    size = whole_number(raw)
    if size is None or not 1 <= size <= MAX_PAGE_SIZE:
        raise PayloadError([("page_size", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")])
    return size


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


class ExperimentListView(APIView):
    def get(self, request: Request) -> Response:
        experiments = Experiment.objects.order_by("name")
        return Response({"experiments": ExperimentSerializer(experiments, many=True).data})

    def post(self, request: Request) -> Response:
        serializer = ExperimentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        experiment = create_experiment(serializer.validated_data["name"], serializer.validated_data.get("description", ""))
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailView(APIView):
    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        return Response(ExperimentSerializer(experiment).data)


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
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        try:
            body = read_body(request._request, settings.EVALAPP_MAX_BODY_BYTES)
        except BodyError as error:
            return _error(error.status, error.message)
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type not in ("application/json", ""):
            return _error(415, f"Content-Type {content_type!r} is not supported; send application/json.")
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


class SessionDetailView(APIView):
    def get(self, request: Request, experiment_id: int, session_id: str) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)  # by pk: an id too big for the database is a 404
        session = get_object_or_404(Session, experiment=experiment, session_id=session_id)
        traces = Trace.objects.filter(experiment=experiment, session_id=session_id).order_by("started_at", "id")
        return Response(
            {**SessionSerializer(session).data, "traces": TraceSummarySerializer(traces, many=True).data}
        )


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

                grpc_code = {400: 3, 401: 16, 404: 5, 413: 8, 415: 3}.get(status_code, 13)
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

        header = request.headers.get("x-evalapp-experiment-id", "").strip()
        if "\x00" in header:
            return fail(400, "The x-evalapp-experiment-id header holds a NUL character; give an experiment id or name.")
        if header:
            named = header
        elif len(batch.experiment_ids) == 1:
            named = next(iter(batch.experiment_ids))
        elif len(batch.experiment_ids) > 1:
            return fail(400, f"The request names several experiments ({', '.join(sorted(batch.experiment_ids))}); send one per request.")
        else:
            return fail(
                400,
                "No experiment given: set the x-evalapp-experiment-id header (an experiment id or name) "
                f"or the resource attribute {otlp.EXPERIMENT_ATTRIBUTE}.",
            )
        pk = whole_number(named)
        experiment = Experiment.objects.filter(pk=pk).first() if pk is not None else Experiment.objects.filter(name=named).first()
        if experiment is None:
            return fail(404, f"Experiment {named!r} does not exist; create it first (POST /api/v1/experiments).")
        if not batch.traces:
            return self._success(is_protobuf)
        if len(batch.traces) > settings.EVALAPP_MAX_TRACES_PER_REQUEST:
            return fail(400, f"The request holds {len(batch.traces)} traces; the limit is {settings.EVALAPP_MAX_TRACES_PER_REQUEST}.")
        try:
            ingest_traces(experiment, batch.traces)
        except PayloadError as error:
            payload = error.as_json()
            return fail(400, payload["detail"], payload["errors"])
        return self._success(is_protobuf)

    @staticmethod
    def _success(is_protobuf: bool) -> HttpResponse:
        if is_protobuf:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            return HttpResponse(ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")
        return HttpResponse(b"{}", content_type="application/json")
