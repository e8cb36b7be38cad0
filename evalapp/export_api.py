"""GET /api/v1/experiments/<id>/traces/export: the traces a filter selects with each trace judge's latest verdict,
as CSV or JSONL, streamed (evalapp.exports). The same export as the Traces tab's, through a token."""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalapp import exports
from judges.models import Judge, Scope
from traces.api import _time_param
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.models import Experiment, Trace
from traces.openapi import EXPERIMENT_ID, errors
from traces.payload import PayloadError

_ROW = {
    "trace_id": "tr-0a1b2c", "name": "chat", "status": "OK", "started_at": "2026-12-01T09:30:00+00:00", "duration_ms": 1840,
    "session_id": "session-42", "user_id": "user-7", "total_tokens": 512, "request_preview": "Where is my order?",
    "response_preview": "It ships tomorrow.",
}
CSV_EXAMPLE = OpenApiExample(
    "CSV",
    media_type="text/csv",
    response_only=True,
    value=",".join([*exports.TRACE_COLUMNS, *(f"relevance.{c}" for c in exports.JUDGE_COLUMNS)]) + "\r\n"
    + ",".join(str(v) for v in _ROW.values()) + ",yes,The answer addresses the question.,1,\r\n",
)
JSONL_EXAMPLE = OpenApiExample(
    "JSON Lines",
    media_type="application/x-ndjson",
    response_only=True,
    value=json.dumps({**_ROW, "judges": {"relevance": {"value": "yes", "rationale": "The answer addresses the question.", "version": 1, "error": None}}}) + "\n",
)


class TraceExportView(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False):
        # `format` chooses the export here, not DRF's renderer: errors stay JSON, the export streams itself.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        operation_id="traces_export",
        summary="Export traces with their verdicts",
        description="Every trace the filter selects (all of them, newest first, not a page), with one column group per "
        "trace judge — its latest valid verdict's value, rationale, version and error — as CSV (`format=csv`, a header "
        "row; text that looks like a spreadsheet formula is prefixed with `'`) or JSON Lines (`format=jsonl`, one object "
        "per trace with a `judges` object). Streamed: memory stays bounded however many traces match.",
        tags=["Traces"],
        parameters=[
            EXPERIMENT_ID,
            OpenApiParameter("format", str, enum=list(exports.FORMATS), description="csv (default) or jsonl"),
            OpenApiParameter("filter_string", str, description="The filter language, as on the Traces tab."),
            OpenApiParameter("since", str, description="Traces started at or after this (ISO 8601 or epoch ms)."),
            OpenApiParameter("until", str, description="Traces started before this (ISO 8601 or epoch ms)."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV", examples=[CSV_EXAMPLE]),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="JSON Lines", examples=[JSONL_EXAMPLE]),
            **errors(400, 404),
        },
    )
    def get(self, request: Request, experiment_id: int):
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        export_format = request.query_params.get("format", "csv")
        traces = Trace.objects.filter(experiment=experiment)
        try:
            if export_format not in exports.FORMATS:
                raise PayloadError([("format", f"must be one of {', '.join(exports.FORMATS)}")])
            if since := _time_param(request, "since"):
                traces = traces.filter(started_at__gte=since)
            if until := _time_param(request, "until"):
                traces = traces.filter(started_at__lt=until)
            try:
                traces = filter_traces(traces, request.query_params.get("filter_string", ""))
            except FilterError as error:
                raise PayloadError([("filter_string", str(error))]) from None
        except PayloadError as error:
            return Response(error.as_json(), status=400)
        names = list(Judge.objects.filter(experiment=experiment, scope=Scope.TRACE).order_by("name").values_list("name", flat=True))
        response = StreamingHttpResponse(exports.stream(traces, names, export_format), content_type=exports.FORMATS[export_format])
        response["Content-Disposition"] = f'attachment; filename="traces-{experiment.pk}.{export_format}"'
        return response
