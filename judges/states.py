"""Judge states for many traces at once (the Traces table): per (trace, judge) the latest verdict, the work still
queued, or why the judge skipped the trace, in a fixed number of queries however many rows and judges there are.

The answers follow judges.explain.explain_trace (which the trace page uses for the full story), with one
difference that matters in a live table: work queued after a verdict ("Judge again") shows as pending, so the
chip can fill in when it is done, instead of showing the verdict it is about to replace."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from judges import selection
from judges.explain import JudgeState, from_assessment, from_evaluation
from judges.models import Evaluation, EvaluationStatus, Judge, Scope
from traces.models import Assessment, AssessmentSource, Span, Trace

PENDING = "pending"
RUNNING = "running"
PENDING_STATES = frozenset({PENDING, RUNNING})

_ASSESSMENT_FIELDS = ("pk", "trace_id", "name", "value", "rationale", "source_type", "error_code", "error_message", "created_at")
_EVALUATION_FIELDS = ("pk", "judge_id", "trace_id", "status", "manual", "error_code", "error_message", "assessment_id", "created_at")


@dataclass
class TraceJudgeState(JudgeState):
    # The verdict behind a "judged" or "error" state (or the one a pending re-run will replace), for its chip.
    assessment: Assessment | None = None

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES


def _queued(judge: Judge, evaluation: Evaluation, earlier: Assessment | None) -> TraceJudgeState:
    """A pending or running evaluation: it will move, unless nothing will ever claim it."""
    if judge.is_paused:
        return TraceJudgeState("paused", f"judge paused: {judge.paused_reason}", assessment=earlier)
    if evaluation.status == EvaluationStatus.PENDING and not evaluation.manual and not judge.active:
        return TraceJudgeState("judge_off", "automatic evaluation is off for this judge", assessment=earlier)
    text = "queued for judging" if evaluation.status == EvaluationStatus.PENDING else "being judged now"
    if earlier is not None and not earlier.error_code:
        text += f" (was {earlier.value!r})"
    return TraceJudgeState(evaluation.status, text, assessment=earlier)


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


def trace_states(judges: Sequence[Judge], traces: Sequence[Trace]) -> dict[tuple[int, int], TraceJudgeState]:
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
    # By trace only, judges picked here: with `judge_id IN (...)` too, SQLite without fresh statistics walks the
    # judge index (every evaluation of those judges: 150 ms at 100,000 traces) instead of the trace index (<1 ms).
    for evaluation in Evaluation.objects.filter(trace_id__in=trace_pks).order_by("-created_at", "-pk").only(*_EVALUATION_FIELDS):
        if evaluation.judge_id in judge_pks:
            evaluations.setdefault((evaluation.trace_id, evaluation.judge_id), evaluation)
    spans_of = _span_loader(trace_pks)

    states: dict[tuple[int, int], TraceJudgeState] = {}
    for trace in traces:
        for judge in judges:
            assessment = assessments.get((trace.pk, judge.name))
            evaluation = evaluations.get((trace.pk, judge.pk))
            states[(trace.pk, judge.pk)] = _state(judge, trace, assessment, evaluation, spans_of)
    return states


def _state(
    judge: Judge,
    trace: Trace,
    assessment: Assessment | None,
    evaluation: Evaluation | None,
    spans_of: Callable[[int], list[tuple[str, str]]],
) -> TraceJudgeState:
    if evaluation is not None and evaluation.status in PENDING_STATES:
        return _queued(judge, evaluation, assessment)
    if assessment is not None:
        found = from_assessment(assessment)
        return TraceJudgeState(found.state, found.text, found.value, found.assessment_id, assessment=assessment)
    if evaluation is not None and (found := from_evaluation(evaluation)) is not None:
        return TraceJudgeState(found.state, found.text, found.value, found.assessment_id)
    if judge.is_paused and judge.active:
        return TraceJudgeState("paused", f"judge paused: {judge.paused_reason}")
    uses_spans = selection.filter_uses_spans(judge.filter_string)
    decision = selection.decide_trace(judge, trace, lambda: selection.trace_record(trace, spans_of(trace.pk) if uses_spans else []))
    if decision.code == selection.SELECTED:
        # Selection runs when ingest commits, and the every-minute sweep catches what it missed.
        return TraceJudgeState(PENDING, "selected; about to be queued")
    return TraceJudgeState(decision.code, decision.detail)
