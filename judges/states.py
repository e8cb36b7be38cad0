"""Where each judge's verdict on a trace or session stands, and why (not) judged — one ladder per scope.

The ladders are pure functions of what is loaded (the judge, the item, its latest valid verdict, its evaluations);
two loaders feed them: one for a single item (the API's "why not judged") and one for a whole page at once (the
Traces and Sessions tables, the trace and conversation pages), in a fixed number of queries however many rows and
judges there are. Both ask the same ladder, so every page and the API say the same thing.

Work queued after a verdict ("Judge again", a new session generation) shows as queued, so a chip can fill in when
it is done, with the verdict it will replace kept beside it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone

from judges import selection
from judges.llm import ERROR_TITLES
from judges.models import Evaluation, EvaluationStatus, Judge, Scope, VerdictState
from traces.models import Assessment, AssessmentSource, Session, Span, Trace

PENDING_STATES = frozenset({VerdictState.PENDING, VerdictState.RUNNING})

_ASSESSMENT_FIELDS = ("pk", "trace_id", "name", "value", "rationale", "source_type", "error_code", "error_message", "created_at")
_EVALUATION_FIELDS = (
    "pk", "judge_id", "trace_id", "session_id", "session_generation", "status", "manual", "error_code", "error_message",
    "assessment_id", "created_at", "not_before", "shadow_id",
)


@dataclass
class JudgeState:
    state: VerdictState
    text: str
    value: Any = None
    assessment_id: int | None = None
    # The verdict behind a "judged" or "error" state (or the one queued work will replace), for its chip.
    assessment: Assessment | None = None
    # While waiting for a conversation to go idle: seconds until it counts as idle for this judge.
    seconds_left: int | None = None

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES

    def as_json(self) -> dict[str, Any]:
        return {"state": str(self.state), "text": self.text, "value": self.value, "assessment_id": self.assessment_id}


# --- the ladder's steps, shared by both scopes ----------------------------------------------------------


def from_assessment(judge: Judge, assessment: Assessment) -> JudgeState:
    if assessment.error_code:
        title = ERROR_TITLES.get(assessment.error_code, assessment.error_code)
        return JudgeState(VerdictState.ERROR, f"{title}: {assessment.error_message}", None, assessment.pk, assessment)
    return JudgeState(VerdictState.JUDGED, f"judged: {judge.describe_value(assessment.value)}", assessment.value, assessment.pk, assessment)


def _queued(judge: Judge, evaluation: Evaluation, earlier: Assessment | None) -> JudgeState:
    """A pending or running evaluation: it will move, unless nothing will ever claim it."""
    if judge.is_paused:
        return JudgeState(VerdictState.PAUSED, f"judge paused: {judge.paused_reason}", assessment=earlier)
    if evaluation.status == EvaluationStatus.PENDING and not evaluation.manual and not judge.active:
        return JudgeState(VerdictState.JUDGE_OFF, "automatic evaluation is off for this judge", assessment=earlier)
    text = "queued for judging" if evaluation.status == EvaluationStatus.PENDING else "being judged now"
    if evaluation.status == EvaluationStatus.PENDING and evaluation.not_before and evaluation.not_before > timezone.now():
        failure = ERROR_TITLES.get(evaluation.error_code, evaluation.error_code).lower()
        text = f"queued; the model endpoint failed ({failure}), tried again from {evaluation.not_before:%H:%M:%S} UTC"
    if earlier is not None and not earlier.error_code:
        text += f" (was {judge.describe_value(earlier.value)})"
    return JudgeState(VerdictState(evaluation.status), text, assessment=earlier)


def _settled(evaluation: Evaluation) -> JudgeState | None:
    """An evaluation that ended without a verdict of its own to show (skipped, cancelled, abandoned)."""
    if evaluation.status == EvaluationStatus.SKIPPED:
        return JudgeState(VerdictState(evaluation.error_code), evaluation.error_message)
    if evaluation.status == EvaluationStatus.CANCELLED:
        return JudgeState(VerdictState.JUDGE_OFF, "queued, then cancelled when automatic evaluation was switched off")
    if evaluation.status == EvaluationStatus.ERROR and evaluation.assessment_id is None:
        return JudgeState(VerdictState.ERROR, f"{ERROR_TITLES.get(evaluation.error_code, evaluation.error_code)}: {evaluation.error_message}")
    return None


def _paused(judge: Judge) -> JudgeState | None:
    if judge.is_paused and judge.active:
        return JudgeState(VerdictState.PAUSED, f"judge paused: {judge.paused_reason}")
    return None


# --- traces ---------------------------------------------------------------------------------------------


def trace_ladder(
    judge: Judge,
    trace: Trace,
    assessment: Assessment | None,
    evaluation: Evaluation | None,
    spans_of: Callable[[], list[tuple[str, str]]],
    verdicts_of: Callable[[], dict[str, Any]] = dict,
) -> JudgeState:
    """`assessment`: the judge's latest valid verdict on the trace; `evaluation`: its latest evaluation there;
    `spans_of`: (type, name) pairs of the trace's spans, `verdicts_of`: judges' verdicts on it, each asked for
    only when the judge's filter needs them."""
    if evaluation is not None and evaluation.status in PENDING_STATES:
        return _queued(judge, evaluation, assessment)
    if assessment is not None:
        return from_assessment(judge, assessment)
    if evaluation is not None and (state := _settled(evaluation)) is not None:
        return state
    if (state := _paused(judge)) is not None:
        return state
    uses_spans, uses_verdicts = selection.filter_uses_spans(judge.filter_string), selection.filter_uses_verdicts(judge.filter_string)
    decision = selection.decide_trace(
        judge, trace, lambda: selection.trace_record(trace, spans_of() if uses_spans else [], verdicts_of() if uses_verdicts else None)
    )
    if decision.selected:
        # Selection runs when ingest commits, and the every-minute sweep catches what it missed.
        return JudgeState(VerdictState.PENDING, "selected; about to be queued")
    return JudgeState(decision.state, decision.detail)


def _span_loader(trace_pks: list[int]) -> Callable[[int], list[tuple[str, str]]]:
    """(span type, name) pairs per trace, loaded in one query the first time a filter on spans needs them."""
    index: dict[int, list[tuple[str, str]]] | None = None

    def spans_of(trace_pk: int) -> list[tuple[str, str]]:
        nonlocal index
        if index is None:
            index = defaultdict(list)
            for trace_id, span_type, name in Span.objects.filter(trace_id__in=trace_pks).values_list("trace_id", "span_type", "name"):
                index[trace_id].append((span_type, name))
        return index.get(trace_pk, [])

    return spans_of


def trace_states(judges: Sequence[Judge], traces: Sequence[Trace]) -> dict[tuple[int, int], JudgeState]:
    """{(trace pk, judge pk): state} for every trace-scope judge on every trace given. Two queries (three when a
    judge's filter looks at spans), whatever the number of traces and judges. `traces` need every field the
    judges' filters read (metadata and tags included) and `created_at`; their request and response may be deferred."""
    judges = [judge for judge in judges if judge.scope == Scope.TRACE]
    traces = list(traces)
    if not judges or not traces:
        return {}
    trace_pks = [trace.pk for trace in traces]
    assessments: dict[tuple[int, str], Assessment] = {}
    for assessment in (
        Assessment.objects.filter(
            trace_id__in=trace_pks, name__in={judge.name for judge in judges}, source_type=AssessmentSource.LLM_JUDGE, valid=True
        )
        .order_by("-created_at", "-pk")
        .only(*_ASSESSMENT_FIELDS)
    ):
        assessments.setdefault((assessment.trace_id, assessment.name), assessment)
    evaluations: dict[tuple[int, int], Evaluation] = {}
    judge_pks = {judge.pk for judge in judges}
    # By trace only, judges and live versions picked here: with `judge_id IN (...)` too, SQLite without fresh
    # statistics walks the judge index (every evaluation of those judges: 150 ms at 100,000 traces), and with
    # `shadow_id IS NULL` the shadow index (every live evaluation: seconds at a million traces), instead of the trace
    # index (<1 ms).
    for evaluation in Evaluation.objects.filter(trace_id__in=trace_pks).order_by("-created_at", "-pk").only(*_EVALUATION_FIELDS):
        if evaluation.judge_id in judge_pks and evaluation.shadow_id is None:
            evaluations.setdefault((evaluation.trace_id, evaluation.judge_id), evaluation)
    spans_of = _span_loader(trace_pks)
    verdicts: dict[int, dict[str, Any]] = {}

    def verdicts_of(trace_pk: int) -> dict[str, Any]:
        if not verdicts:  # loaded once, the first time a filter on verdicts needs them
            verdicts.update(selection.verdicts_of(trace_pks) or {0: {}})
        return verdicts.get(trace_pk, {})

    return {
        (trace.pk, judge.pk): trace_ladder(
            judge, trace, assessments.get((trace.pk, judge.name)), evaluations.get((trace.pk, judge.pk)),
            lambda trace=trace: spans_of(trace.pk), lambda trace=trace: verdicts_of(trace.pk),
        )
        for trace in traces
        for judge in judges
    }


def trace_state(judge: Judge, trace: Trace) -> JudgeState:
    """One judge on one trace (the API's "why not judged")."""
    return trace_states([judge], [trace])[(trace.pk, judge.pk)]


# --- sessions -------------------------------------------------------------------------------------------


def session_ladder(
    judge: Judge,
    session: Session,
    latest: Assessment | None,
    evaluations: list[Evaluation],
    first_trace: Callable[[], Trace | None],
    now: datetime,
) -> JudgeState:
    """`latest`: the judge's latest valid verdict on the session; `evaluations`: all of its evaluations there (one
    per generation); `first_trace`: the conversation's first trace, asked for only when the judge has a filter."""
    evaluation = max(evaluations, key=lambda e: (e.session_generation, e.created_at, e.pk), default=None)
    current = evaluation is not None and evaluation.session_generation == session.trace_count
    if current and evaluation.status in PENDING_STATES:
        return _queued(judge, evaluation, latest)
    if current and (state := _settled(evaluation)) is not None:
        return state
    if latest is not None and (evaluation is None or current):
        return from_assessment(judge, latest)
    if (state := _paused(judge)) is not None:
        return state
    decision = selection.decide_session(judge, session, first_trace() if judge.filter_string else None, now)
    if decision.selected:
        return JudgeState(VerdictState.PENDING, "idle; will be judged at the next sweep (within a minute)")
    if decision.state == VerdictState.WAITING_FOR_IDLE:
        left = selection.seconds_until_idle(judge, session, now)
        if latest is not None:
            text = f"new turns since it was judged ({judge.describe_value(latest.value)}); {decision.detail}"
            return JudgeState(VerdictState.WAITING_FOR_IDLE, text, latest.value, latest.pk, latest, left)
        return JudgeState(decision.state, decision.detail, seconds_left=left)
    return JudgeState(decision.state, decision.detail)


class _FirstTraces:
    """The first trace of every session asked about, loaded in one go the first time any is needed."""

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


def session_states(judges: Sequence[Judge], sessions: Sequence[Session], now: datetime | None = None) -> dict[tuple[int, int], JudgeState]:
    """{(session pk, judge pk): state} for every session-scope judge on every session given, in a fixed number of
    queries: the latest valid verdicts, the evaluations, and — only when a judge with a filter has to decide on an
    idle session nobody has decided on yet — the sessions' first traces."""
    now = now or timezone.now()
    judges = [judge for judge in judges if judge.scope == Scope.SESSION]
    sessions = list(sessions)
    if not judges or not sessions:
        return {}
    session_pks = [session.pk for session in sessions]
    latest: dict[tuple[int, str], Assessment] = {}
    assessments = Assessment.objects.filter(
        session_id__in=session_pks, name__in={judge.name for judge in judges}, source_type=AssessmentSource.LLM_JUDGE, valid=True
    ).order_by("-created_at", "-pk")
    for assessment in assessments.defer("metadata"):
        latest.setdefault((assessment.session_id, assessment.name), assessment)
    evaluations: dict[tuple[int, int], list[Evaluation]] = defaultdict(list)
    judge_pks = {judge.pk for judge in judges}
    # By session only (SQLite may otherwise walk the judge or shadow index over every evaluation; see trace_states).
    for evaluation in Evaluation.objects.filter(session_id__in=session_pks).only(*_EVALUATION_FIELDS):
        if evaluation.judge_id in judge_pks and evaluation.shadow_id is None:
            evaluations[(evaluation.session_id, evaluation.judge_id)].append(evaluation)
    first_traces = _FirstTraces(sessions)
    return {
        (session.pk, judge.pk): session_ladder(
            judge,
            session,
            latest.get((session.pk, judge.name)),
            evaluations.get((session.pk, judge.pk), []),
            lambda session=session: first_traces.get(session),
            now,
        )
        for session in sessions
        for judge in judges
    }


def session_state(judge: Judge, session: Session, now: datetime | None = None) -> JudgeState:
    """One judge on one session (the API's "why not judged")."""
    return session_states([judge], [session], now)[(session.pk, judge.pk)]
