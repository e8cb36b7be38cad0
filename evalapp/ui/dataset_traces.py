"""The Traces tab's "Add to dataset": the ticked traces at once, or every trace the tab's filters select — counted
first and added on confirmation, pinned to the traces counted (none logged since is added). Editors only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.roles import editor_required
from datasets.actions import AddTracesResult, DatasetNameTaken, TraceSelection, add_traces_to_dataset, create_dataset, select_traces
from datasets.models import Dataset
from evalapp.overview.ranges import PRESETS
from evalapp.ui.common import get_experiment
from evalapp.ui.dataset_choices import dataset_panel_context
from evalapp.ui.traces import STATUS_FILTERS, ListFilters
from traces.models import Experiment
from traces.payload import PayloadError


def _filters(request: HttpRequest) -> ListFilters:
    status, time_range = request.POST.get("status", ""), request.POST.get("range", "")
    return ListFilters(
        q=request.POST.get("q", "").strip(),
        status=status if status in dict(STATUS_FILTERS) else "",
        range=time_range if time_range in PRESETS else "",
    )


def _moment(raw: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        raise PayloadError([("counted_at", "is not a time this page wrote; count the traces again")]) from None
    if moment is not None and moment.tzinfo is None:
        raise PayloadError([("counted_at", "is not a time this page wrote; count the traces again")])
    return moment


def _what(filters: ListFilters) -> str:
    parts = [f"the filter {filters.q}" if filters.q else ""]
    parts.append(f"status {filters.status}" if filters.status else "")
    parts.append(PRESETS[filters.range].label.lower() if filters.range else "")
    said = ", ".join(part for part in parts if part)
    return f"matching {said}" if said else "in this experiment (no filter)"


def _target(experiment: Experiment, chosen: str, new_name: str, *, create: bool, user: Any) -> Dataset | str:
    """The chosen dataset; for "new", its name until `create` makes it (DatasetNameTaken, PayloadError if it can't)."""
    if chosen == "new":
        if not new_name.strip():
            raise PayloadError([("new_name", "Name the new dataset, or choose an existing one.")])
        return create_dataset(experiment, new_name, user=user) if create else new_name.strip()
    dataset = Dataset.objects.filter(experiment=experiment, pk=int(chosen) if chosen.isdigit() else 0).first()
    if dataset is None:
        raise PayloadError([("dataset", "Choose a dataset of this experiment (it may have been deleted).")])
    return dataset


def _added_text(result: AddTracesResult, dataset: Dataset) -> str:
    merged = result.merged
    text = f"Added {result.matched:,} trace{pluralize(result.matched)} to {dataset.name}: {merged.created:,} new record{pluralize(merged.created)}"
    text += f", {merged.updated:,} updated, {merged.unchanged:,} already there"
    if result.skipped:
        text += f"; {result.skipped:,} without a request skipped"
    return text + "."


@editor_required
@require_POST
def add_to_dataset(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    filters = _filters(request)
    action = request.POST.get("action", "")
    chosen, new_name = request.POST.get("dataset", ""), request.POST.get("new_name", "")
    panel: dict[str, Any] = {"chosen": chosen, "new_name": new_name, "errors": []}
    try:
        if action == "count":
            panel["confirm"] = _count(experiment, filters, chosen, new_name, request.user)
        elif action in ("selected", "confirm"):
            trace_ids = tuple(request.POST.getlist("trace_ids")) if action == "selected" else ()
            if action == "selected" and not trace_ids:
                raise PayloadError([("trace_ids", "Tick the traces to add first (or add all traces matching the filter).")])
            if action == "selected":
                selection = TraceSelection(trace_ids=trace_ids)
            else:
                selection = TraceSelection(
                    filter_string=filters.q,
                    status=filters.status,
                    since=_moment(request.POST.get("since", "")),
                    logged_before=_moment(request.POST.get("counted_at", "")),
                )
            with transaction.atomic():  # a new dataset is only kept with its records
                dataset = _target(experiment, chosen, new_name, create=True, user=request.user)
                result = add_traces_to_dataset(dataset, selection)
            panel["result"] = _added_text(result, dataset)
            panel["result_url"] = reverse("dataset-detail", args=[experiment.pk, dataset.pk])
            panel["chosen"], panel["new_name"] = str(dataset.pk), ""
        elif action != "cancel":
            raise PayloadError([("action", "Choose what to add: the selected traces, or all matching the filter.")])
    except DatasetNameTaken as error:
        panel["errors"] = [str(error)]
    except PayloadError as error:
        panel["errors"] = [
            message if where in ("", "new_name", "dataset", "trace_ids") else f"{where}: {message}" for where, message in error.errors
        ]
    context = {"experiment": experiment, "dataset_panel": dataset_panel_context(experiment, filters, **panel)}
    if request.htmx:
        return render(request, "evalapp/traces/_dataset_panel.html", context)
    for text in panel["errors"]:
        messages.error(request, text)
    if panel.get("result"):
        messages.success(request, panel["result"])
    return redirect(reverse("experiment-traces", args=[experiment.pk]) + filters.query())


def _count(experiment: Experiment, filters: ListFilters, chosen: str, new_name: str, user: Any) -> dict[str, Any]:
    """How many traces "all matching" would add now, and the times that pin that set for the confirmation."""
    target = _target(experiment, chosen, new_name, create=False, user=user)
    counted_at = timezone.now()
    since = counted_at - PRESETS[filters.range].span if filters.range else None
    count = select_traces(
        experiment, TraceSelection(filter_string=filters.q, status=filters.status, since=since, logged_before=counted_at)
    ).count()
    return {
        "count": count,
        "count_text": f"{count:,} trace{pluralize(count)}",
        "what": _what(filters),
        "target": target if isinstance(target, str) else target.name,
        "since": since.isoformat() if since else "",
        "counted_at": counted_at.isoformat(),
    }


urlpatterns = [
    path("experiments/<int:experiment_id>/traces/add-to-dataset", add_to_dataset, name="traces-add-to-dataset"),
]
