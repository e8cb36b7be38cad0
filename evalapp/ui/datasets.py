"""The Datasets tab: an experiment's evaluation datasets, a dataset's records (paged, searchable), uploads, and the
inline edit of a record's expectations. Every change goes through datasets.actions; adding traces from the Traces
tab is evalapp.ui.dataset_traces."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat, pluralize
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.roles import editor_required
from datasets.actions import DatasetNameTaken, create_dataset, delete_dataset, delete_record, merge_records, update_record
from datasets.models import Dataset, DatasetRecord, RecordSource, search_records
from datasets.uploads import FORMATS, format_of, parse_upload
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.evaluations import summary_view
from evaluations.models import EvaluationRun
from evaluations.results import summarize_many
from traces import strict_json
from traces.models import Experiment
from traces.pagination import CursorError, decode_cursor, page
from traces.payload import PayloadError

PAGE_SIZE = 25
RUNS_SHOWN = 10


def datasets_of(experiment: Experiment):
    last_run = EvaluationRun.objects.filter(dataset=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        Dataset.objects.filter(experiment=experiment)
        .annotate(
            record_count=Count("records"),
            run_count=Subquery(
                EvaluationRun.objects.filter(dataset=OuterRef("pk")).order_by().values("dataset").annotate(n=Count("pk")).values("n")[:1]
            ),
            last_run_at=Subquery(last_run.values("created_at")[:1]),
            last_run_name=Subquery(last_run.values("name")[:1]),
            last_run_id=Subquery(last_run.values("pk")[:1]),
        )
        .select_related("created_by")
        .order_by("name")
    )


def dataset_runs(dataset: Dataset) -> list[dict[str, Any]]:
    """The dataset's newest runs with their summaries (evaluations.results), for its page."""
    runs = list(EvaluationRun.objects.filter(dataset=dataset).select_related("created_by").order_by("-created_at", "-pk")[:RUNS_SHOWN])
    summaries = summarize_many(runs)
    return [summary_view(summaries[run.pk]) for run in runs]


def _tab(request: HttpRequest, experiment: Experiment, form: dict[str, Any] | None = None, status: int = 200) -> HttpResponse:
    context = {"datasets": list(datasets_of(experiment)), "form": form or {"name": "", "description": "", "errors": {}}}
    return render_tab(request, experiment, "datasets", "evalapp/datasets/tab.html", context, status=status)


@login_required
@require_GET
def datasets_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    return _tab(request, get_experiment(experiment_id))


@editor_required
@require_POST
def dataset_create(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    name, description = request.POST.get("name", ""), request.POST.get("description", "")
    try:
        dataset = create_dataset(experiment, name, description, user=request.user)
    except (PayloadError, DatasetNameTaken) as error:
        errors = dict(error.errors) if isinstance(error, PayloadError) else {"name": str(error)}
        return _tab(request, experiment, {"name": name, "description": description, "errors": errors}, status=400)
    messages.success(request, f"Dataset {dataset.name} created. Add records: upload a file, or pick traces on the Traces tab.")
    return redirect("dataset-detail", experiment.pk, dataset.pk)


def dataset_for(experiment: Experiment, dataset_id: int) -> Dataset:
    return get_object_or_404(datasets_of(experiment), pk=dataset_id)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _record_context(record: DatasetRecord, **extra: Any) -> dict[str, Any]:
    return {
        "record": record,
        "inputs_json": _pretty(record.inputs),
        "expectations_json": _pretty(record.expectations) if record.expectations else "",
        "outputs_json": "" if record.outputs is None else (record.outputs if isinstance(record.outputs, str) else _pretty(record.outputs)),
        **extra,
    }


@login_required
@require_GET
def dataset_detail(request: HttpRequest, experiment_id: int, dataset_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    dataset = dataset_for(experiment, dataset_id)
    return _detail(request, experiment, dataset)


def _detail(
    request: HttpRequest, experiment: Experiment, dataset: Dataset, *, upload_errors: list | None = None, status: int = 200
) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    cursor = request.GET.get("cursor", "")
    try:
        decode_cursor(cursor) if cursor else None
    except CursorError:
        cursor = ""
    rows, next_cursor = page(search_records(dataset, search), time_field="created_at", cursor=cursor or None, size=PAGE_SIZE)
    for row in rows:
        row.dataset = dataset  # the rows link to it: no query per row
    url = reverse("dataset-detail", args=[experiment.pk, dataset.pk])
    context = {
        "dataset": dataset,
        "records": [_record_context(row) for row in rows],
        "search": search,
        "detail_url": url,
        "more_url": url + "?" + urlencode({key: value for key, value in (("q", search), ("cursor", next_cursor)) if value})
        if next_cursor
        else "",
        "upload_errors": upload_errors or [],
        "upload_limit": filesizeformat(settings.EVALAPP_DATASET_MAX_UPLOAD_BYTES),
        "formats": ", ".join(FORMATS.values()),
    }
    if is_partial_request(request, "more-records"):
        return render_tab(request, experiment, "datasets", "evalapp/datasets/detail.html#record-rows", context)
    if is_partial_request(request, "record-results"):
        return render_tab(request, experiment, "datasets", "evalapp/datasets/detail.html#record-results", context)
    context["runs"] = dataset_runs(dataset)
    return render_tab(request, experiment, "datasets", "evalapp/datasets/detail.html", context, status=status)


@editor_required
@require_POST
def dataset_upload(request: HttpRequest, experiment_id: int, dataset_id: int) -> HttpResponse:
    """A CSV or JSON Lines file from the dataset page. Over the size limit: 413 before the body is read; any bad
    row: the page again with every row and column at fault, and nothing stored."""
    experiment = get_experiment(experiment_id)
    dataset = dataset_for(experiment, dataset_id)
    limit = settings.EVALAPP_DATASET_MAX_UPLOAD_BYTES
    too_large = [
        ("file", f"is larger than the upload limit of {filesizeformat(limit)} (EVALAPP_DATASET_MAX_UPLOAD_BYTES); upload it in parts")
    ]
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit + 64 * 1024:  # the file plus the form around it
        return _detail(request, experiment, dataset, upload_errors=too_large, status=413)
    upload = request.FILES.get("file")
    if upload is None:
        return _detail(request, experiment, dataset, upload_errors=[("file", "choose a CSV or JSON Lines file to upload")], status=400)
    if upload.size > limit:
        return _detail(request, experiment, dataset, upload_errors=too_large, status=413)
    file_format = format_of(upload.name or "", upload.content_type or "")
    try:
        if file_format is None:
            raise PayloadError([("file", f"{upload.name!r} is neither .csv nor .jsonl; name the file after its format")])
        result = merge_records(dataset, parse_upload(upload.read(), file_format), source=RecordSource.UPLOAD)
    except PayloadError as error:
        return _detail(request, experiment, dataset, upload_errors=error.errors, status=400)
    messages.success(
        request,
        f"Uploaded {upload.name}: {result.created:,} new record{pluralize(result.created)}, {result.updated:,} updated, {result.unchanged:,} unchanged.",
    )
    return redirect("dataset-detail", experiment.pk, dataset.pk)


@editor_required
@require_POST
def dataset_delete(request: HttpRequest, experiment_id: int, dataset_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    dataset = dataset_for(experiment, dataset_id)
    delete_dataset(dataset)
    messages.success(
        request, f"Deleted the dataset {dataset.name} and its {dataset.record_count:,} record{pluralize(dataset.record_count)}."
    )
    if request.htmx:
        return HttpResponseClientRedirect(reverse("experiment-datasets", args=[experiment.pk]))
    return redirect("experiment-datasets", experiment.pk)


def _record(experiment: Experiment, dataset_id: int, record_id: int) -> DatasetRecord:
    dataset = get_object_or_404(Dataset, pk=dataset_id, experiment=experiment)
    record = get_object_or_404(DatasetRecord, pk=record_id, dataset=dataset)
    record.dataset = dataset
    return record


@editor_required
@require_http_methods(["GET", "POST"])
def record_edit(request: HttpRequest, experiment_id: int, dataset_id: int, record_id: int) -> HttpResponse:
    """The expectations of one record as a JSON box (GET), saved (POST): bad JSON or a bad shape shows the reason
    under the box, which keeps the text; nothing is saved. "Cancel" (GET ?cancel=1) gives back the row."""
    experiment = get_experiment(experiment_id)
    record = _record(experiment, dataset_id, record_id)
    if request.method == "GET":
        if request.GET.get("cancel"):
            return render(request, "evalapp/datasets/detail.html#record-row", _record_context(record))
        return render(request, "evalapp/datasets/detail.html#record-edit", _record_context(record, text=_pretty(record.expectations)))
    text = request.POST.get("expectations", "")
    try:
        value = strict_json.loads(text) if text.strip() else {}
    except ValueError as error:
        return render(
            request, "evalapp/datasets/detail.html#record-edit", _record_context(record, text=text, error=f"Not valid JSON: {error}.")
        )
    try:
        record = update_record(record, expectations=value)
    except PayloadError as error:
        reason = "; ".join(f"{where}: {message}" if where else message for where, message in error.errors)
        return render(request, "evalapp/datasets/detail.html#record-edit", _record_context(record, text=text, error=reason))
    return render(request, "evalapp/datasets/detail.html#record-row", _record_context(record, saved=True))


@editor_required
@require_POST
def record_delete(request: HttpRequest, experiment_id: int, dataset_id: int, record_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    record = _record(experiment, dataset_id, record_id)
    delete_record(record)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, f"Deleted record {record_id}.")
    return redirect("dataset-detail", experiment.pk, dataset_id)


urlpatterns = [
    path("experiments/<int:experiment_id>/datasets", datasets_tab, name="experiment-datasets"),
    path("experiments/<int:experiment_id>/datasets/new", dataset_create, name="dataset-create"),
    path("experiments/<int:experiment_id>/datasets/<int:dataset_id>", dataset_detail, name="dataset-detail"),
    path("experiments/<int:experiment_id>/datasets/<int:dataset_id>/upload", dataset_upload, name="dataset-upload"),
    path("experiments/<int:experiment_id>/datasets/<int:dataset_id>/delete", dataset_delete, name="dataset-delete"),
    path("experiments/<int:experiment_id>/datasets/<int:dataset_id>/records/<int:record_id>/edit", record_edit, name="dataset-record-edit"),
    path(
        "experiments/<int:experiment_id>/datasets/<int:dataset_id>/records/<int:record_id>/delete",
        record_delete,
        name="dataset-record-delete",
    ),
]
