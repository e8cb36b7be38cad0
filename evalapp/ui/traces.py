"""The Traces tab: newest first, one verdict column per trace judge, the filter language, status and time quick
filters, keyset pagination, and the "3 new traces — show" notice.

Chips still pending are refreshed by polling only while something is pending: one poller per loaded page asks for
its pending rows' cells (swapped out of band). The trace page is evalapp.ui.trace_page; what can be done there,
evalapp.ui.trace_actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.roles import can_edit
from evalapp import exports
from evalapp.overview.ranges import PRESETS
from evalapp.overview.sql import window_plans
from evalapp.ui.chips import Chip, chip_for_judge_state
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.dataset_choices import dataset_panel_context
from judges.models import Judge, Scope
from judges.states import JudgeState, trace_states
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.models import Experiment, Trace
from traces.pagination import BoundedPage, CursorError, bounded_page, decode_cursor, page
from traces.payload import whole_number

PAGE_SIZE = 50
# How many traces a filter-language search looks at before it stops and offers to search older ones: ~60 ms of a
# PostgreSQL scan on this 2-core machine (a million traces took 1.0–1.3 s to read through).
SEARCH_DEPTH = 50_000
MAX_POLLED_TRACES = 200
MAX_NEW_COUNTED = 1000
NEW_TRACES_SLACK = timedelta(seconds=30)
MAX_PK = 2**63 - 1  # a 64-bit primary key

STATUS_FILTERS = (("", "Any status"), ("OK", "OK"), ("ERROR", "Error"), ("IN_PROGRESS", "In progress"))


@dataclass(frozen=True)
class ListFilters:
    """What the table shows, all of it in the query string so reload and back land on the same view."""

    q: str = ""
    status: str = ""
    range: str = ""
    cursor: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> ListFilters:
        status = request.GET.get("status", "")
        time_range = request.GET.get("range", "")
        cursor = request.GET.get("cursor", "")
        try:
            decode_cursor(cursor) if cursor else None
        except CursorError:
            cursor = ""  # a stale or hand-edited link: start from the newest
        return cls(
            q=request.GET.get("q", "").strip(),
            status=status if status in dict(STATUS_FILTERS) else "",
            range=time_range if time_range in PRESETS else "",
            cursor=cursor,
        )

    def query(self, **changes: str) -> str:
        values = {"q": self.q, "status": self.status, "range": self.range, "cursor": self.cursor, **changes}
        return "?" + urlencode({key: value for key, value in values.items() if value})


@dataclass
class Cell:
    judge: Judge
    state: JudgeState
    chip: Chip
    dom_id: str


@dataclass
class Row:
    trace: Trace
    url: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def is_pending(self) -> bool:
        return any(cell.state.is_pending for cell in self.cells)


def trace_judges(experiment: Experiment) -> list[Judge]:
    return list(Judge.objects.filter(experiment=experiment, scope=Scope.TRACE).order_by("name"))


def build_rows(experiment: Experiment, traces: list[Trace], judges: list[Judge]) -> list[Row]:
    states = trace_states(judges, traces)
    rows = []
    for trace in traces:
        row = Row(trace, reverse("trace-detail", args=[experiment.pk, trace.trace_id]))
        for judge in judges:
            state = states[(trace.pk, judge.pk)]
            row.cells.append(Cell(judge, state, chip_for_judge_state(state), f"verdict-{trace.pk}-{judge.pk}"))
        rows.append(row)
    return rows


def poll_url(experiment: Experiment, rows: list[Row]) -> str:
    """Where a page's poller asks for its pending rows; empty when nothing on the page is pending."""
    pending = [str(row.trace.pk) for row in rows if row.is_pending]
    if not pending:
        return ""
    return reverse("trace-verdicts", args=[experiment.pk]) + "?" + urlencode({"t": pending}, doseq=True)


def _traces_queryset(experiment: Experiment):
    # request/response can be large and the table shows only their previews.
    return Trace.objects.filter(experiment=experiment).defer("request", "response")


def _quick_filtered(experiment: Experiment, filters: ListFilters):
    """The table's queryset with the status and time quick filters, which its indexes serve."""
    queryset = _traces_queryset(experiment)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.range:
        queryset = queryset.filter(started_at__gte=timezone.now() - PRESETS[filters.range].span)
    return queryset


def _filtered_traces(experiment: Experiment, filters: ListFilters):
    """The table's queryset for these filters, and the filter language's error in words ("" if none)."""
    queryset = _quick_filtered(experiment, filters)
    try:
        return filter_traces(queryset, filters.q), ""
    except FilterError as error:
        return queryset.none(), f"Filter: {error}"


def _table_page(experiment: Experiment, filters: ListFilters, queryset) -> BoundedPage:
    """The table's page. A filter-language search looks at the newest SEARCH_DEPTH traces from the cursor and offers
    to search older ones, so a filter that matches nothing answers as fast as one that matches (design note 48).
    PostgreSQL plans it without parallel workers: the page wants 51 rows, and starting workers took longer than
    finding them."""
    with window_plans():
        if not filters.q:
            return BoundedPage(*page(queryset, time_field="started_at", cursor=filters.cursor or None, size=PAGE_SIZE), searched_to=None)
        unfiltered = _quick_filtered(experiment, filters)
        return bounded_page(queryset, unfiltered, time_field="started_at", cursor=filters.cursor or None, size=PAGE_SIZE, depth=SEARCH_DEPTH)


def _logged_since(queryset, since: datetime, limit: int) -> int:
    """How many of the queryset's traces were logged (created) after `since`, counting up to limit + 1."""
    return queryset.filter(updated_at__gt=since, created_at__gt=since).order_by()[: limit + 1].count()


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


@login_required
@require_GET
def traces_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    filters = ListFilters.from_request(request)
    traces_url = reverse("experiment-traces", args=[experiment.pk])
    queryset, filter_error = _filtered_traces(experiment, filters)
    found = BoundedPage([], None, None) if filter_error else _table_page(experiment, filters, queryset)
    traces, next_cursor = found.rows, found.next_cursor
    judges = trace_judges(experiment)
    rows = build_rows(experiment, traces, judges)
    editor = can_edit(request.user)
    new_traces_url = ""
    if not filters.cursor and not filter_error:
        # The notice counts traces logged after `since` beyond the `seen` ones logged after it already. Starting
        # NEW_TRACES_SLACK back covers an ingest that was writing (not yet visible) while this page was drawn.
        since = timezone.now() - NEW_TRACES_SLACK
        seen = _logged_since(queryset, since, MAX_NEW_COUNTED)
        new_traces_url = reverse("trace-news", args=[experiment.pk]) + filters.query(since=str(_micros(since)), seen=str(seen))
    context = {
        "filters": filters,
        "traces_url": traces_url,
        "filter_error": filter_error,
        "rows": rows,
        "judges": judges,
        "column_count": 6 + len(judges) + (1 if editor else 0),
        "dataset_panel": dataset_panel_context(experiment, filters) if editor else {},
        "more_url": traces_url + filters.query(cursor=next_cursor) if next_cursor else "",
        "searched_to": found.searched_to,
        "search_depth": SEARCH_DEPTH,
        "newest_url": traces_url + filters.query(cursor="") if filters.cursor else "",
        "poll_url": poll_url(experiment, rows),
        "new_traces_url": new_traces_url,
        "status_links": [(label, traces_url + filters.query(status=key, cursor=""), key == filters.status) for key, label in STATUS_FILTERS],
        "range_links": [
            *((preset.label, traces_url + filters.query(range=key, cursor=""), key == filters.range) for key, preset in PRESETS.items()),
            ("All time", traces_url + filters.query(range="", cursor=""), not filters.range),
        ],
        "is_filtered": bool(filters.q or filters.status or filters.range),
        "export_urls": [
            (label, reverse("traces-export", args=[experiment.pk]) + filters.query(cursor="", format=key)) for key, label in (("csv", "CSV"), ("jsonl", "JSONL"))
        ],
    }
    if is_partial_request(request, "more-row"):
        return render_tab(request, experiment, "traces", "evalapp/traces/tab.html#trace-rows", context)
    if is_partial_request(request, "trace-results"):
        return render_tab(request, experiment, "traces", "evalapp/traces/tab.html#trace-results", context)
    return render_tab(request, experiment, "traces", "evalapp/traces/tab.html", context)


@login_required
@require_GET
def traces_export(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The traces the tab's filters select (all pages of them), with each trace judge's latest verdict, as CSV or
    JSONL, streamed (evalapp.exports)."""
    experiment = get_experiment(experiment_id)
    export_format = request.GET.get("format", "csv")
    if export_format not in exports.FORMATS:
        return HttpResponseBadRequest(f"format must be one of {', '.join(exports.FORMATS)}", content_type="text/plain")
    queryset, filter_error = _filtered_traces(experiment, ListFilters.from_request(request))
    if filter_error:
        return HttpResponseBadRequest(filter_error, content_type="text/plain")
    names = [judge.name for judge in trace_judges(experiment)]
    response = StreamingHttpResponse(exports.stream(queryset, names, export_format), content_type=exports.FORMATS[export_format])
    response["Content-Disposition"] = f'attachment; filename="traces-{experiment.pk}.{export_format}"'
    return response


@login_required
@require_GET
def trace_news(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The notice over the first page of the table, polled while it is open: how many traces its filters select
    were logged since the page was drawn ("3 new traces — show"), so new traces never move rows under the reader."""
    experiment = get_experiment(experiment_id)
    filters = ListFilters.from_request(request)
    raw_since, raw_seen = request.GET.get("since", ""), request.GET.get("seen", "0")
    since_micros = whole_number(raw_since)
    if since_micros is None or since_micros >= 10**17:
        return HttpResponseBadRequest("since: microseconds since 1970 (from the page's link) are required")
    seen = whole_number(raw_seen)
    if seen is None or seen > MAX_NEW_COUNTED + 1:
        return HttpResponseBadRequest(f"seen: a whole number up to {MAX_NEW_COUNTED + 1:,} (from the page's link) is required")
    since = datetime.fromtimestamp(since_micros / 1_000_000, tz=dt_timezone.utc)
    queryset, filter_error = _filtered_traces(experiment, filters)
    # Below zero when traces the page counted have left a "last hour" filter since.
    count = 0 if filter_error else max(0, _logged_since(queryset, since, MAX_NEW_COUNTED + seen) - seen)
    context = {
        "new_traces_url": request.get_full_path(),
        "new_count": count,
        "new_count_text": f"{MAX_NEW_COUNTED:,}+ new traces" if count > MAX_NEW_COUNTED else f"{count:,} new trace{pluralize(count)}",
        "show_url": reverse("experiment-traces", args=[experiment.pk]) + filters.query(),
    }
    return render(request, "evalapp/traces/tab.html#new-traces", context)


@login_required
@require_GET
def trace_verdicts(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """A table poller's answer: the cells of the traces it asked about (out of band), and itself again while any is
    still pending (an empty answer removes it, and the polling stops)."""
    experiment = get_experiment(experiment_id)
    values = request.GET.getlist("t")[:MAX_POLLED_TRACES]
    pks = [pk for value in values if (pk := whole_number(value)) is not None and pk <= MAX_PK]
    traces = list(_traces_queryset(experiment).filter(pk__in=pks).order_by("-started_at", "-pk"))
    rows = build_rows(experiment, traces, trace_judges(experiment))
    return render(request, "evalapp/traces/tab.html#verdicts", {"rows": rows, "poll_url": poll_url(experiment, rows)})



urlpatterns = [
    path("experiments/<int:experiment_id>/traces", traces_tab, name="experiment-traces"),
    path("experiments/<int:experiment_id>/trace-verdicts", trace_verdicts, name="trace-verdicts"),
    path("experiments/<int:experiment_id>/trace-news", trace_news, name="trace-news"),
    path("experiments/<int:experiment_id>/traces/export", traces_export, name="traces-export"),
]
