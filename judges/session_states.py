"""Where each session stands with each session judge, for a whole page of sessions at once.

The answers are those of `judges.explain.explain_session` (which the conversation page asks for one session), but
in a fixed number of queries however many sessions and judges a page shows: the latest valid verdicts, the
evaluations, and — only when a judge with a filter has to decide on an idle session nobody has decided on yet — the
sessions' first traces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone

from judges import selection
from judges.explain import JudgeState, from_assessment, from_evaluation
from judges.models import Evaluation, Judge
from traces.models import Assessment, AssessmentSource, Session, Span, Trace

WAITING_FOR_IDLE = "waiting_for_idle"


@dataclass
class SessionJudgeState:
    judge: Judge
    state: JudgeState
    # The verdict the state is about (judged, error, or the earlier verdict while new turns wait to go idle).
    assessment: Assessment | None = None
    # While waiting for the conversation to go idle: seconds until it counts as idle for this judge.
    seconds_left: int | None = None


def seconds_until_idle(judge: Judge, session: Session, now: datetime) -> int:
    """Seconds until `session` has been quiet for the judge's idle time (0 when it already has)."""
    return max(0, judge.idle_seconds() - int((now - session.last_ingested_at).total_seconds()))


class _FirstTraces:
    """The first trace of every session on the page, loaded in one go the first time any is asked for."""

    def __init__(self, sessions: list[Session]):
        self._sessions = sessions
        self._by_session: dict[tuple[int, str], Trace] | None = None

    def get(self, session: Session) -> Trace | None:
        if self._by_session is None:
            first_pk = (
                Trace.objects.filter(experiment_id=OuterRef("experiment_id"), session_id=OuterRef("session_id"))
                .order_by("started_at", "pk")
                .values("pk")[:1]
            )
            first_pks = Session.objects.filter(pk__in=[s.pk for s in self._sessions]).annotate(first_pk=Subquery(first_pk)).values("first_pk")
            traces = (
                Trace.objects.filter(pk__in=first_pks)
                .defer("request", "response")
                .prefetch_related(Prefetch("spans", queryset=Span.objects.only("pk", "trace_id", "span_type", "name")))
            )
            self._by_session = {(trace.experiment_id, trace.session_id): trace for trace in traces}
        return self._by_session.get((session.experiment_id, session.session_id))


def _state(
    judge: Judge,
    session: Session,
    latest: Assessment | None,
    evaluations: list[Evaluation],
    first_traces: _FirstTraces,
    now: datetime,
) -> SessionJudgeState:
    # The same steps, in the same order, as explain_session.
    evaluation = max(evaluations, key=lambda e: (e.session_generation, e.created_at, e.pk), default=None)
    current = evaluation is not None and evaluation.session_generation == session.trace_count
    if current and (state := from_evaluation(evaluation)):
        return SessionJudgeState(judge, state)
    if latest is not None and (evaluation is None or current):
        return SessionJudgeState(judge, from_assessment(latest), latest)
    if judge.is_paused and judge.active:
        return SessionJudgeState(judge, JudgeState("paused", f"judge paused: {judge.paused_reason}"))
    first = first_traces.get(session) if judge.filter_string else None
    decision = selection.decide_session(judge, session, first, now)
    if decision.code == selection.SELECTED:
        return SessionJudgeState(judge, JudgeState("pending", "idle; will be judged at the next sweep (within a minute)"))
    if decision.code == selection.WAITING_FOR_IDLE:
        left = seconds_until_idle(judge, session, now)
        if latest is not None:
            text = f"new turns since it was judged ({latest.value!r}); {decision.detail}"
            return SessionJudgeState(judge, JudgeState(WAITING_FOR_IDLE, text, latest.value, latest.pk), latest, left)
        return SessionJudgeState(judge, JudgeState(decision.code, decision.detail), None, left)
    return SessionJudgeState(judge, JudgeState(decision.code, decision.detail))


def session_judge_states(
    judges: list[Judge], sessions: list[Session], now: datetime | None = None
) -> dict[int, list[SessionJudgeState]]:
    """For each session (by pk), one state per judge, in the order of `judges` (all session-scope judges)."""
    now = now or timezone.now()
    if not judges or not sessions:
        return {session.pk: [] for session in sessions}
    session_pks = [session.pk for session in sessions]
    latest: dict[tuple[int, str], Assessment] = {}
    assessments = (
        Assessment.objects.filter(
            session_id__in=session_pks,
            name__in={judge.name for judge in judges},
            source_type=AssessmentSource.LLM_JUDGE,
            valid=True,
        )
        .defer("metadata")
        .order_by("-created_at", "-pk")
    )
    for assessment in assessments:
        latest.setdefault((assessment.session_id, assessment.name), assessment)
    evaluations: dict[tuple[int, int], list[Evaluation]] = {}
    judge_pks = {judge.pk for judge in judges}
    # By session only (see judges/states.py: SQLite may otherwise walk the judge index over every evaluation).
    for evaluation in Evaluation.objects.filter(session_id__in=session_pks).only(
        "pk", "judge_id", "session_id", "session_generation", "status", "error_code", "error_message", "assessment_id", "created_at"
    ):
        if evaluation.judge_id in judge_pks:
            evaluations.setdefault((evaluation.judge_id, evaluation.session_id), []).append(evaluation)
    first_traces = _FirstTraces(sessions)
    return {
        session.pk: [
            _state(judge, session, latest.get((session.pk, judge.name)), evaluations.get((judge.pk, session.pk), []), first_traces, now)
            for judge in judges
        ]
        for session in sessions
    }
