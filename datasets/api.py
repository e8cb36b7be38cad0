"""JSON API for evaluation datasets and their records (token or session auth). Viewers read; editors write.

Every change goes through datasets.actions, as the pages' do."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import EditorOrReadOnly
from datasets import api_schema
from datasets.actions import (
    DatasetNameTaken,
    TraceSelection,
    add_traces_to_dataset,
    create_dataset,
    delete_dataset,
    delete_record,
    merge_records,
    update_record,
)
from datasets.models import Dataset, DatasetRecord, RecordSource, search_records
from datasets.records import RECORD_KEYS, parse_records
from datasets.serializers import DatasetSerializer, RecordSerializer
from datasets.uploads import FORMATS, format_of, parse_upload
from traces import strict_json
from traces.http import BodyError, read_body
from traces.models import Experiment
from traces.pagination import CursorError, page
from traces.payload import PayloadError, page_size

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DATASET_FIELDS = ("name", "description")
FROM_TRACES_FIELDS = ("trace_ids", "filter_string")


class DatasetEditorOrReadOnly(EditorOrReadOnly):
    message = "Your account is a viewer: it can read datasets but not create or change them. Ask an admin to add you to the editors group."


class DatasetAPIView(APIView):
    permission_classes = [IsAuthenticated, DatasetEditorOrReadOnly]


def _bad(error: PayloadError, status_code: int = 400) -> JsonResponse:
    return JsonResponse(error.as_json(), status=status_code)


def _datasets(experiment: Experiment):
    return Dataset.objects.filter(experiment=experiment).select_related("created_by").annotate(record_count=Count("records"))


def dataset_for(experiment_id: int, dataset_id: int) -> Dataset:
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    return get_object_or_404(_datasets(experiment).select_related("experiment"), pk=dataset_id)


def _json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, read through the ingest path (size limit → 413, gzip allowed, strict JSON)."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise BodyError(415, f"Content-Type {content_type!r} is not supported; send application/json.")
    body = read_body(request._request, limit)
    try:
        return strict_json.loads(body)
    except ValueError as error:
        raise BodyError(400, strict_json.body_error(error)) from None


def _object(data: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError([("", "send a JSON object")])
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise PayloadError([(key, f"is not a field here; use {', '.join(allowed)}") for key in unknown])
    return data


@api_schema.dataset_list
class DatasetListView(DatasetAPIView):
    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        datasets = _datasets(experiment).order_by("name")
        if request.query_params.get("name"):
            datasets = datasets.filter(name=request.query_params["name"])
        return Response({"datasets": DatasetSerializer(datasets, many=True).data})

    def post(self, request: Request, experiment_id: int) -> Response | JsonResponse:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        try:
            data = _object(request.data, DATASET_FIELDS)
            dataset = create_dataset(experiment, data.get("name"), data.get("description", ""), user=request.user)
        except PayloadError as error:
            return _bad(error)
        except DatasetNameTaken as error:
            return _bad(PayloadError([("name", str(error))]))
        return Response(DatasetSerializer(dataset_for(experiment.pk, dataset.pk)).data, status=status.HTTP_201_CREATED)


@api_schema.dataset_detail
class DatasetDetailView(DatasetAPIView):
    def get(self, request: Request, experiment_id: int, dataset_id: int) -> Response:
        return Response(DatasetSerializer(dataset_for(experiment_id, dataset_id)).data)

    def delete(self, request: Request, experiment_id: int, dataset_id: int) -> Response:
        delete_dataset(dataset_for(experiment_id, dataset_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _page_size(request: Request) -> int:
    return page_size(request.query_params.get("page_size"), default=DEFAULT_PAGE_SIZE, most=MAX_PAGE_SIZE)


@api_schema.record_list
class RecordListView(DatasetAPIView):
    def get(self, request: Request, experiment_id: int, dataset_id: int) -> Response | JsonResponse:
        dataset = dataset_for(experiment_id, dataset_id)
        try:
            size = _page_size(request)
            records = search_records(dataset, request.query_params.get("search", ""))
            rows, next_cursor = page(records, time_field="created_at", cursor=request.query_params.get("cursor"), size=size)
        except PayloadError as error:
            return _bad(error)
        except CursorError as error:
            return _bad(PayloadError([("cursor", str(error))]))
        return Response({"records": RecordSerializer(rows, many=True).data, "next_cursor": next_cursor})

    def post(self, request: Request, experiment_id: int, dataset_id: int) -> JsonResponse:
        dataset = dataset_for(experiment_id, dataset_id)
        try:
            records = parse_records(_json_body(request, settings.EVALAPP_MAX_BODY_BYTES))
            result = merge_records(dataset, records, source=RecordSource.API)
        except BodyError as error:
            return JsonResponse({"detail": error.message}, status=error.status)
        except PayloadError as error:
            return _bad(error)
        return JsonResponse(result.as_json())


@api_schema.record_upload
class RecordUploadView(DatasetAPIView):
    """A CSV or JSON Lines file as the request body (datasets.uploads says how it is read)."""

    def post(self, request: Request, experiment_id: int, dataset_id: int) -> JsonResponse:
        dataset = dataset_for(experiment_id, dataset_id)
        file_format = request.query_params.get("file_format") or format_of("", request.content_type or "")
        if file_format not in FORMATS:
            return JsonResponse(
                {
                    "detail": "Say what the file is: Content-Type text/csv or application/x-ndjson, or ?file_format=csv or ?file_format=jsonl."
                },
                status=415,
            )
        try:
            content = read_body(request._request, settings.EVALAPP_DATASET_MAX_UPLOAD_BYTES)
            result = merge_records(dataset, parse_upload(content, file_format), source=RecordSource.UPLOAD)
        except BodyError as error:
            message = error.message.replace("EVALAPP_MAX_BODY_BYTES", "EVALAPP_DATASET_MAX_UPLOAD_BYTES")
            return JsonResponse({"detail": message.replace("send smaller batches", "upload the file in parts")}, status=error.status)
        except PayloadError as error:
            return _bad(error)
        return JsonResponse(result.as_json())


@api_schema.record_from_traces
class RecordFromTracesView(DatasetAPIView):
    def post(self, request: Request, experiment_id: int, dataset_id: int) -> JsonResponse:
        dataset = dataset_for(experiment_id, dataset_id)
        try:
            data = _object(_json_body(request, settings.EVALAPP_MAX_BODY_BYTES), FROM_TRACES_FIELDS)
            if not data:
                raise PayloadError([("", 'give "trace_ids" (a list) or "filter_string" (the trace filter language; "" for every trace)')])
            trace_ids = data.get("trace_ids", [])
            if not isinstance(trace_ids, list) or not all(isinstance(trace_id, str) for trace_id in trace_ids):
                raise PayloadError([("trace_ids", "must be a list of trace ids")])
            filter_string = data.get("filter_string", "")
            if not isinstance(filter_string, str):
                raise PayloadError([("filter_string", "must be text in the trace filter language")])
            result = add_traces_to_dataset(dataset, TraceSelection(trace_ids=tuple(trace_ids), filter_string=filter_string))
        except BodyError as error:
            return JsonResponse({"detail": error.message}, status=error.status)
        except PayloadError as error:
            return _bad(error)
        return JsonResponse(result.as_json())


@api_schema.record_detail
class RecordDetailView(DatasetAPIView):
    @staticmethod
    def _record(experiment_id: int, dataset_id: int, record_id: int) -> DatasetRecord:
        dataset = dataset_for(experiment_id, dataset_id)
        record = get_object_or_404(DatasetRecord, dataset=dataset, pk=record_id)
        record.dataset = dataset
        return record

    def get(self, request: Request, experiment_id: int, dataset_id: int, record_id: int) -> Response:
        return Response(RecordSerializer(self._record(experiment_id, dataset_id, record_id)).data)

    def patch(self, request: Request, experiment_id: int, dataset_id: int, record_id: int) -> Response | JsonResponse:
        record = self._record(experiment_id, dataset_id, record_id)
        try:
            data = _object(_json_body(request, settings.EVALAPP_MAX_BODY_BYTES), RECORD_KEYS)
            if not data:
                raise PayloadError([("", f"nothing to change; send any of {', '.join(RECORD_KEYS)}")])
            record = update_record(record, **data)
        except BodyError as error:
            return JsonResponse({"detail": error.message}, status=error.status)
        except PayloadError as error:
            return _bad(error)
        return Response(RecordSerializer(record).data)

    def delete(self, request: Request, experiment_id: int, dataset_id: int, record_id: int) -> Response:
        delete_record(self._record(experiment_id, dataset_id, record_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
