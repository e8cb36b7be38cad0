""""Why was this trace (or session) not judged?" — one answer per judge, for the UI and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from judges import selection
from judges.llm import ERROR_TITLES
from judges.models import Evaluation, EvaluationStatus, Judge
from traces.models import Assessment, AssessmentSource, Session, Trace


@dataclass
class JudgeState:
    state: str  # judged | pending | running | error | filtered_out | sampled_out | too_old | waiting_for_idle | in_progress | judge_off | paused | not_selected
    text: str
    value: Any = None
    assessment_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "text": self.text, "value": self.value, "assessment_id": self.assessment_id}


def from_assessment(assessment: Assessment) -> JudgeState:
    if assessment.error_code:
        title = ERROR_TITLES.get(assessment.error_code, assessment.error_code)
        return JudgeState("error", f"{title}: {assessment.error_message}", None, assessment.pk)
    return JudgeState("judged", f"judged: {assessment.value!r}", assessment.value, assessment.pk)


def from_evaluation(evaluation: Evaluation) -> JudgeState | None:
    if evaluation.status == EvaluationStatus.PENDING:
        return JudgeState("pending", "queued for judging")
    if evaluation.status == EvaluationStatus.RUNNING:
        return JudgeState("running", "being judged now")
    if evaluation.status == EvaluationStatus.SKIPPED:
        return JudgeState(evaluation.error_code, evaluation.error_message)
    if evaluation.status == EvaluationStatus.CANCELLED:
        return JudgeState("judge_off", "queued, then cancelled when automatic evaluation was switched off")
    if evaluation.status == EvaluationStatus.ERROR and evaluation.assessment_id is None:
        return JudgeState("error", f"{ERROR_TITLES.get(evaluation.error_code, evaluation.error_code)}: {evaluation.error_message}")
    return None


def explain_trace(judge: Judge, trace: Trace) -> JudgeState:
    latest = (
        Assessment.objects.filter(trace=trace, name=judge.name, source_type=AssessmentSource.LLM_JUDGE, valid=True)
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is not None:
        return from_assessment(latest)
    evaluation = Evaluation.objects.filter(judge=judge, trace=trace).order_by("-created_at", "-pk").first()
    if evaluation is not None and (state := from_evaluation(evaluation)):
        return state
    if judge.is_paused and judge.active:
        return JudgeState("paused", f"judge paused: {judge.paused_reason}")
    decision = selection.decide_trace(judge, trace, lambda: selection.trace_record(trace))
    if decision.code == selection.SELECTED:
        return JudgeState("pending", "selected; about to be queued")
    return JudgeState(decision.code, decision.detail)


def explain_session(judge: Judge, session: Session) -> JudgeState:
    latest = (
        Assessment.objects.filter(session=session, name=judge.name, source_type=AssessmentSource.LLM_JUDGE, valid=True)
        .order_by("-created_at", "-pk")
        .first()
    )
    evaluation = Evaluation.objects.filter(judge=judge, session=session).order_by("-session_generation", "-created_at").first()
    if evaluation is not None and evaluation.session_generation == session.trace_count and (state := from_evaluation(evaluation)):
        return state
    if latest is not None and (evaluation is None or evaluation.session_generation == session.trace_count):
        return from_assessment(latest)
    if judge.is_paused and judge.active:
        return JudgeState("paused", f"judge paused: {judge.paused_reason}")
    first = Trace.objects.filter(experiment_id=session.experiment_id, session_id=session.session_id).order_by("started_at", "pk").first()
    decision = selection.decide_session(judge, session, first, timezone.now())
    if decision.code == selection.SELECTED:
        return JudgeState("pending", "idle; will be judged at the next sweep (within a minute)")
    if latest is not None and decision.code == selection.WAITING_FOR_IDLE:
        return JudgeState("waiting_for_idle", f"new turns since it was judged ({latest.value!r}); {decision.detail}", latest.value, latest.pk)
    return JudgeState(decision.code, decision.detail)
