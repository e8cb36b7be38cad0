"""The Sessions tab (one row per conversation, most recent activity first) and the conversation page."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from accounts.roles import editor_required
from evalapp.overview.ranges import PRESETS
from evalapp.ui.chips import Chip, chip_for_assessment, chip_for_judge_state, chip_for_state, chip_for_value
from evalapp.ui.common import get_experiment, is_partial_request, render_tab
from evalapp.ui.feedback import feedback_names, read_feedback_form
from evalapp.ui.formatting import format_cost
from judges.errors import ConfigError
from judges.llm import ERROR_TITLES
from judges.manual import start_job
from judges.models import Judge, Scope, VerdictState
from judges.states import JudgeState, session_states
from traces.chat import message_text
from traces.feedback import THUMBS, FeedbackError, add_feedback
from traces.models import Assessment, AssessmentSource, Experiment, Session, Trace, TraceStatus
from traces.pagination import CursorError, decode_cursor, page

PAGE_SIZE = 50
MAX_TURNS = 500


def format_countdown(seconds: int) -> str:
    """2:41, or 1:02:05 past an hour (the page's script ticks it down the same way)."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _judges(experiment: Experiment) -> list[Judge]:
    return list(Judge.objects.filter(experiment=experiment, scope=Scope.SESSION).order_by("name"))


# --- the Sessions tab ---------------------------------------------------------------------------------------


@dataclass
class SessionSearch:
    """The tab's filters, read from and written back to the query string so every view has its own URL."""

    text: str = ""
    user: str = ""
    period: str = ""

    @classmethod
    def from_query(cls, query: QueryDict) -> SessionSearch:
        period = query.get("period", "")
        return cls(text=query.get("q", "").strip(), user=query.get("user", "").strip(), period=period if period in PRESETS else "")

    @property
    def active(self) -> bool:
        return bool(self.text or self.user or self.period)

    def apply(self, sessions: QuerySet[Session], now: datetime) -> QuerySet[Session]:
        if self.text:
            sessions = sessions.filter(Q(session_id__icontains=self.text) | Q(user_id__icontains=self.text))
        if self.user:
            sessions = sessions.filter(user_id=self.user)
        if self.period:
            sessions = sessions.filter(last_trace_at__gte=now - PRESETS[self.period].span)
        return sessions


@dataclass
class RowState:
    """What the State column says about a whole conversation."""

    kind: str  # waiting | pending | judged | error | not_judged | active | idle
    label: str
    title: str = ""
    seconds_left: int | None = None

    @property
    def moving(self) -> bool:
        return self.kind in ("waiting", "pending")


@dataclass
class SessionRow:
    session: Session
    url: str
    state: RowState
    cells: list[Chip] = field(default_factory=list)


def row_state(session: Session, judged: list[tuple[Judge, JudgeState]], now: datetime) -> RowState:
    """The session's state over all its judges: waiting (the soonest countdown), queued, error, judged."""
    if not judged:
        quiet = (now - session.last_ingested_at).total_seconds()
        if quiet < settings.EVALAPP_SESSION_IDLE_SECONDS:
            return RowState("active", "active", "new turns are still arriving; no session judge to judge it")
        return RowState("idle", "idle", "no session judge in this experiment")
    states = [state for _, state in judged]
    waiting = [(judge, state) for judge, state in judged if state.state == VerdictState.WAITING_FOR_IDLE]
    if waiting:
        left = min(state.seconds_left or 0 for _, state in waiting)
        title = "; ".join(f"{judge.name}: {state.text}" for judge, state in waiting)
        return RowState("waiting", f"judged in {format_countdown(left)}", f"active: {title}", left)
    summary = "; ".join(f"{judge.name}: {state.text}" for judge, state in judged)
    if any(state.is_pending for state in states):
        return RowState("pending", "judging…" if any(state.state == VerdictState.RUNNING for state in states) else "queued", summary)
    if any(state.state == VerdictState.ERROR for state in states):
        return RowState("error", "error", summary)
    if any(state.state == VerdictState.JUDGED for state in states):
        return RowState("judged", "judged", summary)
    return RowState("not_judged", "not judged", summary)


@login_required
def sessions_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    now = timezone.now()
    search = SessionSearch.from_query(request.GET)
    cursor = request.GET.get("cursor") or None
    notice = ""
    if cursor:
        try:
            decode_cursor(cursor)
        except CursorError:
            cursor = None
            notice = "That page link is no longer valid; showing the most recent sessions."
    sessions, next_cursor = page(
        search.apply(Session.objects.filter(experiment=experiment), now), time_field="last_trace_at", cursor=cursor, size=PAGE_SIZE
    )
    judges = _judges(experiment)
    states = session_states(judges, sessions, now)
    rows = []
    for session in sessions:
        judged = [(judge, states[(session.pk, judge.pk)]) for judge in judges]
        rows.append(
            SessionRow(
                session=session,
                url=reverse("session-detail", args=[experiment.pk, session.session_id]),
                state=row_state(session, judged, now),
                cells=[chip_for_judge_state(state) for _, state in judged],
            )
        )
    context = {
        "rows": rows,
        "judges": judges,
        "search": search,
        "periods": [(key, preset.label) for key, preset in PRESETS.items()],
        "cursor": cursor,
        "next_cursor": next_cursor,
        "notice": notice,
        "moving": any(row.state.moving for row in rows),
        "tab_url": reverse("experiment-sessions", args=[experiment.pk]),
    }
    if is_partial_request(request, "sessions-results"):
        return render_tab(request, experiment, "sessions", "evalapp/sessions/tab.html#results", context)
    return render_tab(request, experiment, "sessions", "evalapp/sessions/tab.html", context)


# --- the conversation page ----------------------------------------------------------------------------------


@dataclass
class Message:
    text: str
    structured: bool = False  # JSON rather than prose: shown as a block of code
    missing: bool = False


@dataclass
class Turn:
    number: int
    trace: Trace
    trace_url: str
    user: Message
    assistant: Message


@dataclass
class JudgeLine:
    judge: Judge
    chip: Chip
    text: str
    seconds_left: int | None = None

    @property
    def countdown(self) -> str:
        return format_countdown(self.seconds_left or 0)


@dataclass
class AssessmentLine:
    assessment: Assessment
    chip: Chip
    source: str
    error: str = ""
    superseded: str = ""
    cost: str = ""
    tokens: str = ""


def trace_url(experiment_id: int, trace_id: str) -> str:
    try:
        return reverse("trace-detail", args=[experiment_id, trace_id])
    except NoReverseMatch:  # the Traces tab's trace page not wired up yet
        return f"/experiments/{experiment_id}/traces/{quote(trace_id, safe='')}"


def _message(value: Any, preview: str, *, role: str, missing: str) -> Message:
    text = message_text(value, role=role) if value is not None else None
    if text is None and preview:
        return Message(preview)
    if text is None:
        return Message(missing, missing=True)
    if isinstance(text, str):
        return Message(text)
    return Message(json.dumps(text, indent=2, ensure_ascii=False, default=str), structured=True)


def conversation(experiment: Experiment, session: Session) -> list[Turn]:
    traces = Trace.objects.filter(experiment=experiment, session_id=session.session_id).order_by("started_at", "pk")[:MAX_TURNS]
    turns = []
    for number, trace in enumerate(traces, 1):
        if trace.status == TraceStatus.ERROR and trace.response is None and not trace.response_preview:
            assistant = Message("(the application failed on this turn and sent no answer)", missing=True)
        else:
            assistant = _message(trace.response, trace.response_preview, role="assistant", missing="(no response logged)")
        user = _message(trace.request, trace.request_preview, role="user", missing="(no request logged)")
        turns.append(Turn(number, trace, trace_url(experiment.pk, trace.trace_id), user, assistant))
    return turns


def _superseded(assessment: Assessment, newer: Assessment | None) -> str:
    if assessment.valid:
        return ""
    if assessment.source_type == AssessmentSource.HUMAN:
        return "replaced by newer feedback from the same person"
    before = getattr(assessment, "evaluation", None)
    after = getattr(newer, "evaluation", None) if newer is not None else None
    if before is not None and after is not None and after.session_generation > before.session_generation:
        return f"superseded after new turns (judged at {before.session_generation} turns, re-judged at {after.session_generation})"
    if newer is not None:
        return "superseded by a later run"
    return "superseded"


def assessment_lines(session: Session) -> list[AssessmentLine]:
    # Shadow versions' verdicts too (Assessment.all_objects), marked: shown here, counted nowhere.
    assessments = list(Assessment.all_objects.filter(session=session).select_related("evaluation").order_by("-created_at", "-pk"))
    newer_of = {a.overrides_id: a for a in assessments if a.overrides_id}
    lines = []
    for assessment in assessments:
        if assessment.source_type == AssessmentSource.HUMAN:
            source = f"feedback from {assessment.source_id or 'someone'}"
        elif assessment.source_type == AssessmentSource.LLM_JUDGE:
            version = f" v{assessment.judge_version}" if assessment.judge_version else ""
            source = f"judge {assessment.judge_name or assessment.name}{version}" + (f" · {assessment.model}" if assessment.model else "")
            if assessment.shadow:
                source += " · shadow version, counted nowhere"
        else:
            source = f"code {assessment.source_id}".strip()
        error = ""
        if assessment.error_code:
            title = ERROR_TITLES.get(assessment.error_code, assessment.error_code)
            error = f"{title}: {assessment.error_message}" if assessment.error_message else title
        tokens = ""
        if assessment.input_tokens is not None or assessment.output_tokens is not None:
            tokens = f"{assessment.input_tokens or 0:,} in / {assessment.output_tokens or 0:,} out tokens"
        lines.append(
            AssessmentLine(
                assessment=assessment,
                chip=chip_for_assessment(assessment),
                source=source,
                error=error,
                superseded=_superseded(assessment, newer_of.get(assessment.pk)),
                cost=format_cost(assessment.cost_usd),
                tokens=tokens,
            )
        )
    return lines


def judge_lines(judges: list[Judge], session: Session, assessments: dict[int, Assessment], now: datetime) -> list[JudgeLine]:
    """Each session judge's answer to "where does this conversation stand?" (judges.states), as a chip and a line."""
    states = session_states(judges, [session], now)
    lines = []
    for judge in judges:
        state = states[(session.pk, judge.pk)]
        assessment = assessments.get(state.assessment_id) if state.assessment_id else None
        if state.state in (VerdictState.JUDGED, VerdictState.ERROR) and assessment is not None:
            chip = chip_for_assessment(assessment)
        elif state.state == VerdictState.JUDGED:
            chip = chip_for_value(state.value, title=state.text)
        else:
            chip = chip_for_state(state.state, state.text)
        lines.append(JudgeLine(judge, chip, state.text, state.seconds_left))
    return lines


def _session(experiment: Experiment, session_id: str) -> Session:
    return get_object_or_404(Session, experiment=experiment, session_id=session_id)


def _urls(experiment: Experiment, session: Session) -> dict[str, str]:
    args = [experiment.pk, session.session_id]
    return {
        "detail_url": reverse("session-detail", args=args),
        "feedback_url": reverse("session-feedback", args=args),
        "judge_url": reverse("session-judge", args=args),
        "tab_url": reverse("experiment-sessions", args=[experiment.pk]),
    }


def _judging_context(experiment: Experiment, session: Session, judges: list[Judge] | None = None) -> dict[str, Any]:
    judges = _judges(experiment) if judges is None else judges
    assessments = assessment_lines(session)
    lines = judge_lines(judges, session, {line.assessment.pk: line.assessment for line in assessments}, timezone.now())
    return {
        "judge_lines": lines,
        "assessment_lines": assessments,
        "judging_moving": any(line.chip.kind in ("pending", "running", "waiting") for line in lines),
        **_urls(experiment, session),
    }


def _feedback_context(judges: list[Judge], form: dict[str, str] | None = None, errors: dict[str, str] | None = None, saved: bool = False) -> dict[str, Any]:
    return {
        "feedback_names": feedback_names(judges),
        "feedback_form": form or {"name": THUMBS},
        "feedback_errors": errors or {},
        "feedback_saved": saved,
    }


def _render_detail(request: HttpRequest, experiment: Experiment, session: Session, **extra: Any) -> HttpResponse:
    judges = _judges(experiment)
    context = {
        "session": session,
        "turns": conversation(experiment, session),
        "max_turns": MAX_TURNS,
        **_judging_context(experiment, session, judges),
        **_feedback_context(judges),
        **extra,
    }
    return render_tab(request, experiment, "sessions", "evalapp/sessions/detail.html", context)


@login_required
def session_detail(request: HttpRequest, experiment_id: int, session_id: str) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    session = _session(experiment, session_id)
    if is_partial_request(request, "session-judging"):
        context = {"session": session, **_judging_context(experiment, session)}
        return render_tab(request, experiment, "sessions", "evalapp/sessions/detail.html#judging", context)
    return _render_detail(request, experiment, session)


@require_POST
@login_required
def session_feedback(request: HttpRequest, experiment_id: int, session_id: str) -> HttpResponse:
    """Anyone who can read the conversation may say what they think of it (viewers included)."""
    experiment = get_experiment(experiment_id)
    session = _session(experiment, session_id)
    judges = _judges(experiment)
    form = {key: request.POST.get(key, "") for key in ("name", "value", "other_value", "comment")}
    # 👍 and 👎 are typed values like any other ("true", "false"); "other" is the text box's.
    typed = form["other_value"] if form["value"] == "other" else form["value"]
    name, value, errors = read_feedback_form(form["name"], typed, judges, scope="session")
    if not errors:
        try:
            add_feedback(user=request.user, name=name, value=value, rationale=form["comment"], session=session)
        except FeedbackError as error:
            errors = {"comment" if key == "rationale" else key: message for key, message in error.errors.items()}
    if errors:
        if request.htmx:
            context = {"session": session, **_urls(experiment, session), **_feedback_context(judges, form, errors)}
            return render_tab(request, experiment, "sessions", "evalapp/sessions/detail.html#feedback", context)
        return _render_detail(request, experiment, session, **_feedback_context(judges, form, errors))
    if not request.htmx:
        return HttpResponseRedirect(reverse("session-detail", args=[experiment.pk, session.session_id]))
    context = {"session": session, **_urls(experiment, session), **_feedback_context(judges, saved=True)}
    response = render_tab(request, experiment, "sessions", "evalapp/sessions/detail.html#feedback", context)
    return trigger_client_event(response, "feedback-saved")


@require_POST
@editor_required
def session_judge_again(request: HttpRequest, experiment_id: int, session_id: str) -> HttpResponse:
    """Judge the conversation now with one session judge, whatever its automatic-evaluation settings."""
    experiment = get_experiment(experiment_id)
    session = _session(experiment, session_id)
    judges = _judges(experiment)
    chosen = next((judge for judge in judges if str(judge.pk) == request.POST.get("judge", "")), None)
    extra: dict[str, str] = {}
    if chosen is None:
        extra["judge_error"] = "Choose one of this experiment's session judges."
    else:
        try:
            start_job(chosen, session_ids=[session.session_id])
            extra["judge_notice"] = f"Queued {chosen.name} on this conversation; its verdict appears here when it is done."
        except ConfigError as error:
            extra["judge_error"] = "; ".join(error.errors.values())
    if not request.htmx:
        if "judge_error" in extra:
            return _render_detail(request, experiment, session, **extra)
        return HttpResponseRedirect(reverse("session-detail", args=[experiment.pk, session.session_id]))
    context = {"session": session, **_judging_context(experiment, session, judges), **extra}
    return render_tab(request, experiment, "sessions", "evalapp/sessions/detail.html#judging", context)


urlpatterns = [
    path("experiments/<int:experiment_id>/sessions", sessions_tab, name="experiment-sessions"),
    # The action routes come first: a session id may contain "/" (hence <path:>), and they end in a fixed word.
    path("experiments/<int:experiment_id>/sessions/<path:session_id>/feedback", session_feedback, name="session-feedback"),
    path("experiments/<int:experiment_id>/sessions/<path:session_id>/judge", session_judge_again, name="session-judge"),
    path("experiments/<int:experiment_id>/sessions/<path:session_id>", session_detail, name="session-detail"),
]
