"""The Traces tab (newest first, one verdict column per trace judge, the filter language, keyset pagination) and
the trace page (span tree, readable inputs and outputs, every assessment, "Judge again", human feedback).

Chips still pending are refreshed by polling only while something is pending: on the table, one poller per loaded
page asks for its pending rows' cells (swapped out of band); on the trace page the judges section polls itself."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from evalapp.roles import editor_required
from evalapp.ui.chips import Chip, chip_for_assessment, chip_for_state, format_value
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from judges.actions import ConfigError
from judges.explain import explain_trace
from judges.jobs import start_job
from judges.llm import ERROR_TITLES
from judges.models import Judge, OutputType, Scope
from judges.states import TraceJudgeState, trace_states
from traces.feedback import FeedbackError, add_feedback
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.models import Assessment, AssessmentSource, Experiment, Span, Trace
from traces.pagination import CursorError, decode_cursor, page
from traces.payload import whole_number

PAGE_SIZE = 50
MAX_POLLED_TRACES = 200
MAX_NEW_COUNTED = 1000
NEW_TRACES_SLACK = timedelta(seconds=30)
MAX_PK = 2**63 - 1  # a 64-bit primary key
MAX_SPANS_SHOWN = 1000
MAX_JSON_CHARS = 100_000
ASSESSMENTS_CHANGED = "assessments-changed"
THUMBS = "thumbs"

STATUS_FILTERS = (("", "Any status"), ("OK", "OK"), ("ERROR", "Error"), ("IN_PROGRESS", "In progress"))
RANGE_FILTERS = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "": ("All time", None),
}


# --- the table ------------------------------------------------------------------------------------------


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
            range=time_range if time_range in RANGE_FILTERS else "",
            cursor=cursor,
        )

    def query(self, **changes: str) -> str:
        values = {"q": self.q, "status": self.status, "range": self.range, "cursor": self.cursor, **changes}
        return "?" + urlencode({key: value for key, value in values.items() if value})


@dataclass
class Cell:
    judge: Judge
    state: TraceJudgeState
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


def chip_for(state: TraceJudgeState) -> Chip:
    if state.assessment is not None and state.state in ("judged", "error"):
        return chip_for_assessment(state.assessment)
    return chip_for_state(state.state, state.text)


def trace_judges(experiment: Experiment) -> list[Judge]:
    return list(Judge.objects.filter(experiment=experiment, scope=Scope.TRACE).order_by("name"))


def build_rows(experiment: Experiment, traces: list[Trace], judges: list[Judge]) -> list[Row]:
    states = trace_states(judges, traces)
    rows = []
    for trace in traces:
        row = Row(trace, reverse("trace-detail", args=[experiment.pk, trace.trace_id]))
        for judge in judges:
            state = states[(trace.pk, judge.pk)]
            row.cells.append(Cell(judge, state, chip_for(state), f"verdict-{trace.pk}-{judge.pk}"))
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


def _filtered_traces(experiment: Experiment, filters: ListFilters):
    """The table's queryset for these filters, and the filter language's error in words ("" if none)."""
    queryset = _traces_queryset(experiment)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if since := RANGE_FILTERS[filters.range][1]:
        queryset = queryset.filter(started_at__gte=timezone.now() - since)
    try:
        return filter_traces(queryset, filters.q), ""
    except FilterError as error:
        return queryset.none(), f"Filter: {error}"


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
    traces, next_cursor = ([], None) if filter_error else page(queryset, time_field="started_at", cursor=filters.cursor or None, size=PAGE_SIZE)
    judges = trace_judges(experiment)
    rows = build_rows(experiment, traces, judges)
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
        "column_count": 6 + len(judges),
        "more_url": traces_url + filters.query(cursor=next_cursor) if next_cursor else "",
        "newest_url": traces_url + filters.query(cursor="") if filters.cursor else "",
        "poll_url": poll_url(experiment, rows),
        "new_traces_url": new_traces_url,
        "status_links": [(label, traces_url + filters.query(status=key, cursor=""), key == filters.status) for key, label in STATUS_FILTERS],
        "range_links": [(label, traces_url + filters.query(range=key, cursor=""), key == filters.range) for key, (label, _) in RANGE_FILTERS.items()],
        "is_filtered": bool(filters.q or filters.status or filters.range),
    }
    if is_partial_request(request, "more-row"):
        return render_tab(request, experiment, "traces", "evalapp/traces/tab.html#trace-rows", context)
    if is_partial_request(request, "trace-results"):
        return render_tab(request, experiment, "traces", "evalapp/traces/tab.html#trace-results", context)
    return render_tab(request, experiment, "traces", "evalapp/traces/tab.html", context)


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


# --- the trace page -------------------------------------------------------------------------------------


@dataclass
class Message:
    role: str
    text: str
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    name: str = ""


@dataclass
class Readable:
    """A JSON value as people read it: kind is empty | text | chat | json. `rest` holds what a chat leaves out."""

    kind: str
    text: str = ""
    messages: list[Message] = field(default_factory=list)
    rest: str = ""
    size: int = 0
    label: str = ""  # for text taken out of a JSON object: the key it came from


def pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if len(text) > MAX_JSON_CHARS:
        return text[:MAX_JSON_CHARS] + f"\n… ({len(text) - MAX_JSON_CHARS:,} more characters not shown)"
    return text


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI-style parts: text, images, audio…
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict) and "type" in part:
                parts.append(f"[{part['type']}]")
            else:
                parts.append(pretty_json(part))
        return "\n".join(parts)
    return pretty_json(content)


def _message(item: Any) -> Message | None:
    if not isinstance(item, dict) or not isinstance(item.get("role"), str) or not ("content" in item or "tool_calls" in item):
        return None
    calls = []
    for call in item.get("tool_calls") or []:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        arguments = function.get("arguments", "")
        if isinstance(arguments, str):
            try:
                arguments = pretty_json(json.loads(arguments))
            except ValueError:
                pass
        else:
            arguments = pretty_json(arguments)
        calls.append((str(function.get("name", "tool")), arguments))
    return Message(item["role"], _content_text(item.get("content")), calls, str(item.get("name") or item.get("tool_call_id") or ""))


def _messages(items: Any) -> list[Message] | None:
    if not isinstance(items, list) or not items:
        return None
    messages = [_message(item) for item in items]
    return None if any(message is None for message in messages) else messages


# Keys whose text is the point of an object ({"content": "..."} outputs), shown as text with the rest below.
TEXT_KEYS = ("content", "text", "output", "answer", "response", "result", "query", "question", "input", "prompt")


def _text_key(value: dict[str, Any]) -> str | None:
    """The key of an object's main text: its only key if that holds text, else the first of TEXT_KEYS that does."""
    if len(value) == 1:
        key, item = next(iter(value.items()))
        return key if isinstance(item, str) and isinstance(key, str) else None
    return next((key for key in TEXT_KEYS if isinstance(value.get(key), str)), None)


def readable(value: Any) -> Readable:
    """Chat messages (a list of them, {"messages": [...]}, one message, or a chat completion's choices) as a
    conversation; plain text, or an object's main text (`{"content": "..."}`), as text; anything else as
    pretty-printed JSON."""
    if value is None or value == "" or value == {} or value == []:
        return Readable("empty")
    if isinstance(value, str):
        return Readable("text", text=value, size=len(value))
    if (messages := _messages(value)) is not None:
        return Readable("chat", messages=messages)
    if isinstance(value, dict):
        if (messages := _messages(value.get("messages"))) is not None:
            rest = {key: item for key, item in value.items() if key != "messages"}
            return Readable("chat", messages=messages, rest=pretty_json(rest) if rest else "")
        choices = value.get("choices")
        if isinstance(choices, list) and choices and (messages := _messages([c.get("message") if isinstance(c, dict) else None for c in choices])):
            rest = {key: item for key, item in value.items() if key != "choices"}
            return Readable("chat", messages=messages, rest=pretty_json(rest) if rest else "")
        if (message := _message(value)) is not None:
            return Readable("chat", messages=[message])
        if (key := _text_key(value)) is not None:
            rest = {other: item for other, item in value.items() if other != key}
            return Readable("text", text=value[key], size=len(value[key]), rest=pretty_json(rest) if rest else "", label=key)
    text = pretty_json(value)
    return Readable("json", text=text, size=len(text))


@dataclass
class SpanRow:
    span: Span
    depth: int
    offset_pct: str
    width_pct: str
    inputs: Readable
    outputs: Readable
    attributes: str


def span_rows(trace: Trace, spans: list[Span]) -> list[SpanRow]:
    """Depth-first, children in start order, with each span's place on the trace's timeline (a waterfall)."""
    if not spans:
        return []
    start = min(span.started_at for span in spans)
    end = max([span.ended_at or span.started_at for span in spans] + ([trace.ended_at] if trace.ended_at else []))
    total = max((end - start).total_seconds(), 0.001)
    ids = {span.span_id for span in spans}
    children: dict[str, list[Span]] = {}
    roots = []
    for span in spans:  # already in start order
        if span.parent_span_id and span.parent_span_id in ids and span.parent_span_id != span.span_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)  # a root, or an orphan whose parent never arrived
    rows: list[SpanRow] = []
    seen: set[str] = set()
    stack = [(span, 0) for span in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:  # a parent cycle in bad data
            continue
        seen.add(span.span_id)
        offset = (span.started_at - start).total_seconds() / total * 100
        width = ((span.ended_at or end) - span.started_at).total_seconds() / total * 100
        rows.append(
            SpanRow(
                span,
                depth,
                f"{max(0.0, min(offset, 100.0)):.2f}",
                f"{max(0.4, min(width, 100.0 - offset)):.2f}",
                readable(span.inputs),
                readable(span.outputs),
                pretty_json(span.attributes) if span.attributes else "",
            )
        )
        stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, [])))
    return rows


def key_values(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)) for key, value in sorted((mapping or {}).items())]


@dataclass
class AssessmentView:
    assessment: Assessment
    chip: Chip
    source: str
    error_title: str


@dataclass
class JudgeView:
    judge: Judge
    state: TraceJudgeState
    chip: Chip
    assessments: list[AssessmentView]
    why_not: str = ""


def _assessment_view(assessment: Assessment) -> AssessmentView:
    if assessment.source_type == AssessmentSource.LLM_JUDGE:
        source = f"judge {assessment.judge_name or assessment.name}"
    elif assessment.source_type == AssessmentSource.HUMAN:
        source = f"person {assessment.source_id}" if assessment.source_id else "a person"
    else:
        source = f"code {assessment.source_id}".strip()
    title = ERROR_TITLES.get(assessment.error_code, assessment.error_code) if assessment.error_code else ""
    return AssessmentView(assessment, chip_for_assessment(assessment), source, title)


def judges_context(trace: Trace) -> dict[str, Any]:
    """Each trace judge's current state and assessments, then everything else said about the trace (people,
    code, judges since deleted), newest first, superseded ones included and marked."""
    judges = trace_judges(trace.experiment)
    states = trace_states(judges, [trace])
    by_name: dict[str, list[AssessmentView]] = {}
    for assessment in trace.assessments.order_by("-created_at", "-pk"):
        by_name.setdefault(assessment.name, []).append(_assessment_view(assessment))
    judge_views = []
    others: list[AssessmentView] = []
    for judge in judges:
        named = by_name.pop(judge.name, [])
        views = [view for view in named if view.assessment.source_type == AssessmentSource.LLM_JUDGE]
        others.extend(view for view in named if view.assessment.source_type != AssessmentSource.LLM_JUDGE)
        state = states[(trace.pk, judge.pk)]
        view = JudgeView(judge, state, chip_for(state), views)
        if not views and not state.is_pending:
            view.why_not = explain_trace(judge, trace).text
        judge_views.append(view)
    others.extend(view for views in by_name.values() for view in views)
    others.sort(key=lambda view: (view.assessment.created_at, view.assessment.pk), reverse=True)
    return {
        "detail_url": reverse("trace-detail", args=[trace.experiment_id, trace.trace_id]),
        "judge_views": judge_views,
        "other_assessments": others,
        "judges_pending": any(view.state.is_pending for view in judge_views),
    }


def _trace_for(experiment: Experiment, trace_id: str) -> Trace:
    return get_object_or_404(Trace.objects.select_related("experiment"), experiment=experiment, trace_id=trace_id)


def feedback_names(judges: list[Judge]) -> list[str]:
    return [THUMBS] + [judge.name for judge in judges]


def _detail_context(experiment: Experiment, trace: Trace, **forms: Any) -> dict[str, Any]:
    spans = list(trace.spans.order_by("started_at", "pk")[: MAX_SPANS_SHOWN + 1])
    judges_ctx = judges_context(trace)
    judges = [view.judge for view in judges_ctx["judge_views"]]
    return {
        "trace": trace,
        "traces_url": reverse("experiment-traces", args=[experiment.pk]),
        "request_view": readable(trace.request),
        "response_view": readable(trace.response),
        "spans": span_rows(trace, spans[:MAX_SPANS_SHOWN]),
        "spans_cut": len(spans) > MAX_SPANS_SHOWN,
        "metadata": key_values(trace.metadata),
        "tags": key_values(trace.tags),
        **judges_ctx,
        "judge_choices": judges,
        "feedback_names": feedback_names(judges),
        "feedback": {"name": THUMBS, "value": "", "rationale": ""},
        "feedback_errors": {},
        "judge_again_errors": [],
        **forms,
    }


@login_required
@require_GET
def trace_detail(request: HttpRequest, experiment_id: int, trace_id: str) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    trace = _trace_for(experiment, trace_id)
    if is_partial_request(request, "trace-judges"):
        return render(request, "evalapp/traces/detail.html#trace-judges", {"trace": trace, **judges_context(trace)})
    return render_tab(request, experiment, "traces", "evalapp/traces/detail.html", _detail_context(experiment, trace))


def _changed(response: HttpResponse) -> HttpResponse:
    """Tell the page's judges section to refresh (it shows pending chips and starts polling)."""
    return trigger_client_event(response, ASSESSMENTS_CHANGED)


@editor_required
@require_POST
def judge_again(request: HttpRequest, experiment_id: int, trace_id: str) -> HttpResponse:
    """Queue one chosen trace judge, or all of them, on this trace as a job the workers run."""
    experiment = get_experiment(experiment_id)
    trace = _trace_for(experiment, trace_id)
    judges = trace_judges(experiment)
    chosen = request.POST.get("judge", "all")
    if chosen != "all":
        judges = [judge for judge in judges if str(judge.pk) == chosen]
    errors: list[str] = []
    queued: list[str] = []
    if not judges:
        errors.append("Choose a judge of this experiment that judges single traces (or all of them).")
    for judge in judges:
        try:
            start_job(judge, trace_ids=[trace.trace_id])
        except ConfigError as error:
            errors.append(f"{judge.name}: {'; '.join(error.errors.values())}")
        else:
            queued.append(judge.name)
    notice = f"Queued {', '.join(queued)}; the verdicts below fill in as they arrive." if queued else ""
    forms = {"judge_again_errors": errors, "judge_again_notice": notice, "judge_again_choice": chosen}
    if request.htmx:
        context = {"trace": trace, "judge_choices": trace_judges(experiment), **forms}
        response = render(request, "evalapp/traces/detail.html#judge-again", context)
        return _changed(response) if queued else response
    if not errors:
        return HttpResponseRedirect(reverse("trace-detail", args=[experiment.pk, trace.trace_id]))
    return render_tab(request, experiment, "traces", "evalapp/traces/detail.html", _detail_context(experiment, trace, **forms))


YES = {"yes", "true", "pass", "good", "y", "1"}
NO = {"no", "false", "fail", "bad", "n", "0"}


def parse_feedback_value(text: str, judge: Judge | None) -> tuple[Any, str]:
    """A typed value → (value, error). Yes/no words become true/false, numbers become numbers, the rest stays
    text; when the feedback is about a judge, the value must fit that judge's output type."""
    text = text.strip()
    if not text:
        return None, "Give a value: yes or no, a number, or a category."
    lowered = text.lower()
    value: Any = text
    if lowered in YES | NO and not (judge and judge.output_type in (OutputType.INTEGER, OutputType.FLOAT)):
        value = lowered in YES
    else:
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
                value = number if number == number and abs(number) != float("inf") else text
            except ValueError:
                pass
    if judge is None:
        return value, ""
    if judge.output_type == OutputType.BOOLEAN and not isinstance(value, bool):
        return None, f"{judge.name} answers yes or no; type yes or no."
    if judge.output_type in (OutputType.INTEGER, OutputType.FLOAT) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return None, f"{judge.name} answers with a number; type a number."
    if judge.output_type == OutputType.INTEGER and isinstance(value, float):
        return None, f"{judge.name} answers with a whole number."
    if judge.output_type == OutputType.CATEGORICAL and judge.categories and text not in judge.categories:
        return None, f"{judge.name} answers one of: {', '.join(judge.categories)}."
    if judge.output_type in (OutputType.CATEGORICAL, OutputType.STRING):
        return text, ""
    return value, ""


@login_required
@require_POST
def trace_feedback(request: HttpRequest, experiment_id: int, trace_id: str) -> HttpResponse:
    """A person's verdict: thumbs up/down (with an optional comment), or a value about a judge or "thumbs".
    Viewers may give feedback too: it is their opinion, not a change to judges or endpoints."""
    experiment = get_experiment(experiment_id)
    trace = _trace_for(experiment, trace_id)
    judges = trace_judges(experiment)
    submitted = {key: request.POST.get(key, "") for key in ("name", "value", "rationale")}
    thumb = request.POST.get("thumb", "")
    errors: dict[str, str] = {}
    if thumb in ("up", "down"):
        name, value = THUMBS, thumb == "up"
    else:
        name = submitted["name"] or THUMBS
        judge = next((judge for judge in judges if judge.name == name), None)
        if name != THUMBS and judge is None:
            errors["name"] = "Choose what the feedback is about: thumbs or one of this experiment's trace judges."
        value, value_error = parse_feedback_value(submitted["value"], judge)
        if value_error:
            errors["value"] = value_error
    saved = None
    if not errors:
        try:
            saved = add_feedback(user=request.user, name=name, value=value, rationale=submitted["rationale"], trace=trace)
        except FeedbackError as error:
            errors = dict(error.errors)
    forms: dict[str, Any] = {"feedback_errors": errors, "feedback": submitted if errors else {"name": name, "value": "", "rationale": ""}}
    if saved is not None:
        forms["feedback_notice"] = f"Saved your feedback: {name} = {format_value(saved.value)}."
    if request.htmx:
        context = {"trace": trace, "feedback_names": feedback_names(judges), **forms}
        response = render(request, "evalapp/traces/detail.html#feedback", context)
        return _changed(response) if saved is not None else response
    if saved is not None:
        return HttpResponseRedirect(reverse("trace-detail", args=[experiment.pk, trace.trace_id]))
    return render_tab(request, experiment, "traces", "evalapp/traces/detail.html", _detail_context(experiment, trace, **forms))


urlpatterns = [
    path("experiments/<int:experiment_id>/traces", traces_tab, name="experiment-traces"),
    path("experiments/<int:experiment_id>/trace-verdicts", trace_verdicts, name="trace-verdicts"),
    path("experiments/<int:experiment_id>/trace-news", trace_news, name="trace-news"),
    path("experiments/<int:experiment_id>/traces/<str:trace_id>", trace_detail, name="trace-detail"),
    path("experiments/<int:experiment_id>/traces/<str:trace_id>/judge-again", judge_again, name="trace-judge-again"),
    path("experiments/<int:experiment_id>/traces/<str:trace_id>/feedback", trace_feedback, name="trace-feedback"),
]
