"""Which traces and sessions a judge should judge, and why not — and turning "should" into pending evaluations.

The decisions (`decide_trace`, `decide_session`) are pure rules over a loaded judge and item; the engine's
selection (`select_traces`, `select_sessions`, `backfill_judge`) and the "why (not) judged" answers
(judges.states) both use them, so what the UI says is what the worker did."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.db.models import Exists, OuterRef
from django.utils import timezone

from judges.models import (
    LIVE_PRIORITY,
    LOOKBACK_PRIORITY,
    SHADOW_PRIORITY,
    Evaluation,
    EvaluationStatus,
    Judge,
    JudgeVersion,
    Scope,
    VerdictState,
    VersionRole,
)
from traces import filter_memory, filters
from traces.models import Assessment, AssessmentSource, Session, Span, Trace, TraceStatus

logger = logging.getLogger("judges.decisions")

SESSION_CANDIDATES_PER_SWEEP = 5000
BACKFILL_CHUNK = 1000


@lru_cache(maxsize=512)
def parsed_filter(text: str):
    return filters.parse(text) if text.strip() else None


def _matches(judge: Judge, record: filter_memory.FilterRecord | Callable[[], filter_memory.FilterRecord]) -> Decision | None:
    """None when the judge's filter (if any) selects the record; else why not. A filter saved before today's
    limits that no longer parses excludes everything and says so, rather than stopping the judge's neighbours."""
    if not judge.filter_string:
        return None
    try:
        tree = parsed_filter(judge.filter_string)
    except filters.FilterError as error:
        return Decision(VerdictState.FILTERED_OUT, f"the judge's filter can't be used any more ({error}); edit the judge to fix it")
    if filter_memory.matches(tree, record() if callable(record) else record):
        return None
    return Decision(VerdictState.FILTERED_OUT, f"does not match the filter {judge.filter_string}")


def filter_uses_spans(text: str) -> bool:
    return "span." in text


def filter_uses_verdicts(text: str) -> bool:
    return "assessment" in text


def verdicts_of(trace_pks: list[int]) -> dict[int, dict[str, object]]:
    """Per trace: each judge's latest valid verdict's value (what `assessment.<judge>` compares)."""
    found: dict[int, dict[str, object]] = defaultdict(dict)
    rows = Assessment.objects.filter(trace_id__in=trace_pks, source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code="")
    for trace_id, name, value in rows.values_list("trace_id", "name", "value"):
        found[trace_id][name] = value
    return found


def trace_record(trace: Trace, spans: list[tuple[str, str]] | None = None, verdicts: dict[str, object] | None = None) -> filter_memory.FilterRecord:
    """What the filter language reads of a trace; `spans` as (type, name) pairs, or read from `trace.spans`;
    `verdicts` by judge name (read when not given and the caller says the filter needs them)."""
    return filter_memory.FilterRecord(
        status=trace.status,
        name=trace.name,
        duration_ms=trace.duration_ms,
        started_at=trace.started_at,
        session_id=trace.session_id,
        user_id=trace.user_id,
        metadata=dict(trace.metadata or {}),
        tags=dict(trace.tags or {}),
        spans=spans if spans is not None else [(span.span_type, span.name) for span in trace.spans.all()],
        assessments=verdicts or {},
    )


@dataclass
class Decision:
    """`state` is PENDING when the judge should judge the item; otherwise why it won't."""

    state: VerdictState
    detail: str = ""

    @property
    def selected(self) -> bool:
        return self.state == VerdictState.PENDING

    def __str__(self) -> str:
        return "selected" if self.selected else str(self.state)


SELECTED = Decision(VerdictState.PENDING)
JUDGE_OFF = Decision(VerdictState.JUDGE_OFF, "automatic evaluation is off for this judge")
# An evaluation run's trace (Trace.evaluation_run, design note 40) is judged by that run's judges only.
RUN_TRACE = Decision(VerdictState.JUDGE_OFF, "this trace belongs to an evaluation run: only the run's judges judge it")


def decide_trace(judge: Judge, trace: Trace, record: filter_memory.FilterRecord | Callable[[], filter_memory.FilterRecord]) -> Decision:
    """For a trace-scope judge. `record` may be a callable producing the FilterRecord (spans loaded lazily)."""
    if trace.evaluation_run:
        decision = RUN_TRACE
    elif not judge.active:
        decision = JUDGE_OFF
    elif trace.status == TraceStatus.IN_PROGRESS:
        decision = Decision(VerdictState.IN_PROGRESS, "the trace is still in progress (its root span has not arrived)")
    elif judge.lookback_start() and trace.created_at < judge.lookback_start():
        decision = Decision(VerdictState.TOO_OLD, judge.too_old_reason("logged"))
    elif (excluded := _matches(judge, record)) is not None:
        decision = excluded
    elif not judge.should_sample(trace.trace_id):
        decision = Decision(VerdictState.SAMPLED_OUT, f"not in the {judge.sample_rate:.0%} sample")
    else:
        decision = SELECTED
    logger.debug("judge %s, trace %s: %s", judge.name, trace.trace_id, decision)
    return decision


def seconds_until_idle(judge: Judge, session: Session, now: datetime) -> int:
    """Seconds until `session` has been quiet for the judge's idle time (0 when it already has)."""
    return max(0, judge.idle_seconds() - int((now - session.last_ingested_at).total_seconds()))


def decide_session(judge: Judge, session: Session, first_trace: Trace | None, now: datetime) -> Decision:
    """For a session-scope judge; the filter reads the conversation's first trace (which is there before the
    conversation goes idle, so a session the filter excludes never shows a countdown to a verdict)."""
    if not judge.active:
        decision = JUDGE_OFF
    elif judge.lookback_start() and session.last_ingested_at < judge.lookback_start():
        decision = Decision(VerdictState.TOO_OLD, judge.too_old_reason("its last turn was logged"))
    elif judge.filter_string and first_trace is None:
        decision = Decision(VerdictState.FILTERED_OUT, f"its first trace does not match the filter {judge.filter_string}")
    elif judge.filter_string and (excluded := _matches(judge, lambda: trace_record(first_trace))) is not None:
        decision = Decision(excluded.state, excluded.detail.replace("does not match", "its first trace does not match"))
    elif not judge.should_sample(session.session_id):
        decision = Decision(VerdictState.SAMPLED_OUT, f"not in the {judge.sample_rate:.0%} sample")
    elif (left := seconds_until_idle(judge, session, now)) > 0:
        # Only a conversation the judge will judge waits for a verdict: filter and sample come first.
        decision = Decision(VerdictState.WAITING_FOR_IDLE, f"waiting for the conversation to go idle ({left} s left)")
    else:
        decision = SELECTED
    logger.debug("judge %s, session %s: %s", judge.name, session.session_id, decision)
    return decision


# --- creating the work ----------------------------------------------------------------------------------


def _span_index(trace_pks: list[int]) -> dict[int, list[tuple[str, str]]]:
    index: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for trace_id, span_type, name in Span.objects.filter(trace_id__in=trace_pks).values_list("trace_id", "span_type", "name"):
        index[trace_id].append((span_type, name))
    return index


def _each_judge(judges: Iterable[Judge], decide_for: Callable[[Judge], list[Evaluation]]) -> list[Evaluation]:
    """One judge's broken decision (a filter that can't be evaluated) must not stop the others' work."""
    rows: list[Evaluation] = []
    for judge in judges:
        try:
            rows.extend(decide_for(judge))
        except Exception:
            logger.exception("judge %s (id %s): could not decide what to judge; its other work and other judges go on", judge.name, judge.pk)
    return rows


def select_traces(
    experiment_id: int, trace_pks: list[int], *, judges: list[Judge] | None = None, priority: int = LIVE_PRIORITY, only_missing: bool = False
) -> list[int]:
    """Create pending evaluations for every active trace judge that should judge these traces; returns the ids
    of the pending (automatic) evaluations for them, new or left over. `only_missing` (the sweep's second look):
    traces every judge already has work for are passed over without being read or decided again."""
    if judges is None:
        judges = list(Judge.objects.filter(experiment_id=experiment_id, active=True, scope=Scope.TRACE).select_related("endpoint"))
    if judges and trace_pks and only_missing:
        have = Counter(
            Evaluation.objects.filter(judge__in=judges, trace_id__in=trace_pks, manual=False, shadow__isnull=True).values_list("trace_id", flat=True)
        )
        trace_pks = [pk for pk in trace_pks if have[pk] < len(judges)]
    if not judges or not trace_pks:
        return []
    traces = list(
        Trace.objects.filter(pk__in=trace_pks, experiment_id=experiment_id, evaluation_run__isnull=True).exclude(status=TraceStatus.IN_PROGRESS)
    )
    spans = _span_index([t.pk for t in traces]) if any(filter_uses_spans(j.filter_string) for j in judges) else {}
    verdicts = verdicts_of([t.pk for t in traces]) if any(filter_uses_verdicts(j.filter_string) for j in judges) else {}

    shadows = running_shadows(judges)

    def decide_for(judge: Judge) -> list[Evaluation]:
        rows = [
            Evaluation(judge=judge, judge_version=judge.version, trace=trace, priority=priority)
            for trace in traces
            if decide_trace(judge, trace, lambda trace=trace: trace_record(trace, spans.get(trace.pk, []), verdicts.get(trace.pk))).selected
        ]
        return rows + shadow_rows(rows, shadows.get(judge.pk))

    rows = _each_judge(judges, decide_for)
    if not rows:
        return []
    Evaluation.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        Evaluation.objects.filter(
            judge__in=judges, trace_id__in={row.trace_id for row in rows}, status=EvaluationStatus.PENDING, manual=False
        ).values_list("pk", flat=True)
    )


def running_shadows(judges: list[Judge]) -> dict[int, JudgeVersion]:
    """The judges' shadow versions (judges.shadow), by judge id: one query."""
    return {row.judge_id: row for row in JudgeVersion.all_objects.filter(judge__in=judges, role=VersionRole.SHADOW)}


def shadow_rows(live_rows: list[Evaluation], shadow: JudgeVersion | None) -> list[Evaluation]:
    """The shadow's work beside the live version's: exactly the items the live version was selected to judge (the
    same decision, so the same sample), at the lowest priority."""
    if shadow is None:
        return []
    return [
        Evaluation(
            judge=row.judge, judge_version=shadow.version, shadow=shadow, trace=row.trace, session=row.session,
            session_generation=row.session_generation, priority=SHADOW_PRIORITY,
        )
        for row in live_rows
        if row.status == EvaluationStatus.PENDING
    ]


def _idle_candidates(judge: Judge, now: datetime) -> list[Session]:
    decided = Evaluation.objects.filter(
        judge=judge, session=OuterRef("pk"), session_generation=OuterRef("trace_count"), manual=False, shadow__isnull=True
    )
    candidates = Session.objects.filter(
        experiment_id=judge.experiment_id,
        trace_count__gt=0,
        last_ingested_at__lte=now - timedelta(seconds=judge.idle_seconds()),
    ).filter(~Exists(decided))
    if judge.lookback_start():
        candidates = candidates.filter(last_ingested_at__gte=judge.lookback_start())
    return list(candidates[:SESSION_CANDIDATES_PER_SWEEP])


def _first_traces(judge: Judge, sessions: list[Session]) -> dict[str, Trace]:
    first: dict[str, Trace] = {}
    if judge.filter_string:
        traces = (
            Trace.objects.filter(experiment_id=judge.experiment_id, session_id__in=[s.session_id for s in sessions])
            .order_by("session_id", "started_at", "pk")
            .prefetch_related("spans")
        )
        for trace in traces:
            first.setdefault(trace.session_id, trace)
    return first


def _session_rows(judge: Judge, now: datetime, priority: int) -> list[Evaluation]:
    """Pending work for the idle sessions the judge should judge, and SKIPPED rows for the ones it shouldn't (so
    the next sweep doesn't reconsider them)."""
    candidates = _idle_candidates(judge, now)
    first_traces = _first_traces(judge, candidates) if candidates else {}
    rows = []
    for session in candidates:
        decision = decide_session(judge, session, first_traces.get(session.session_id), now)
        generation = {
            "judge": judge, "judge_version": judge.version, "session": session, "session_generation": session.trace_count, "priority": priority,
        }
        if decision.selected:
            rows.append(Evaluation(**generation))
        elif decision.state in (VerdictState.FILTERED_OUT, VerdictState.SAMPLED_OUT):
            rows.append(Evaluation(**generation, status=EvaluationStatus.SKIPPED, error_code=decision.state, error_message=decision.detail))
    return rows + shadow_rows(rows, running_shadows([judge]).get(judge.pk))


def select_sessions(now: datetime | None = None, *, judges: list[Judge] | None = None, priority: int = LIVE_PRIORITY) -> list[int]:
    """Pending evaluations for every idle session generation an active session judge hasn't decided on yet."""
    now = now or timezone.now()
    if judges is None:
        judges = list(Judge.objects.filter(active=True, scope=Scope.SESSION).select_related("endpoint"))
    created: list[int] = []
    for judge in judges:
        rows = _each_judge([judge], lambda judge: _session_rows(judge, now, priority))
        if not rows:
            continue
        Evaluation.objects.bulk_create(rows, ignore_conflicts=True)
        created.extend(
            Evaluation.objects.filter(
                judge=judge, session__in=[row.session for row in rows], status=EvaluationStatus.PENDING, manual=False
            ).values_list("pk", flat=True)
        )
    return created


def backfill_judge(judge_id: int) -> list[int]:
    """A judge just created or switched on: what was logged up to an hour before counts as new."""
    judge = Judge.objects.select_related("endpoint").filter(pk=judge_id, active=True).first()
    if judge is None:
        return []
    if judge.scope == Scope.SESSION:
        return select_sessions(judges=[judge], priority=LOOKBACK_PRIORITY)
    pks = list(
        Trace.objects.filter(experiment_id=judge.experiment_id, created_at__gte=judge.lookback_start(), evaluation_run__isnull=True)
        .exclude(status=TraceStatus.IN_PROGRESS)
        .values_list("pk", flat=True)
    )
    ids: list[int] = []
    for start in range(0, len(pks), BACKFILL_CHUNK):
        ids.extend(select_traces(judge.experiment_id, pks[start : start + BACKFILL_CHUNK], judges=[judge], priority=LOOKBACK_PRIORITY))
    return ids
