"""Recording what a judge said. Every judgement — automatic, by hand, from a job — ends here: one Assessment on the
trace or session, the earlier verdict of the same judge kept as overridden history, and a refused key pausing
the judge instead of failing every trace."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from judges.llm import AUTHENTICATION, CallResult
from judges.models import Judge, JudgeExchange, JudgeVersion, ModelEndpoint, OutputMode
from traces.models import Assessment, AssessmentSource, Session, Trace

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One judgement's result: the model call's (or why there was none), and whether the prompt was cut to fit."""

    result: CallResult
    truncated: bool = False
    # The exact messages sent (None when no call was made), kept with the assessment as the judge's own words.
    messages: list[dict[str, str]] | None = None

    @property
    def ok(self) -> bool:
        return self.result.ok


def _metadata(judge: Judge, outcome: Outcome) -> dict[str, Any]:
    result = outcome.result
    metadata: dict[str, Any] = {"endpoint": judge.endpoint.name, "attempts": result.attempts}
    if result.output_mode:
        metadata["output_mode"] = result.output_mode
    if outcome.truncated:
        metadata["truncated"] = True
    if judge.endpoint.is_standin:
        metadata["standin"] = True
    return metadata


def _valid_verdicts(judge: Judge, shadow: JudgeVersion | None, target: dict[str, Any]) -> list[Assessment]:
    """The judge's (or the shadow version's) valid verdicts on the target, newest first. Read by the target and name
    (or source) alone and narrowed here: with `source_type` and `valid` in the WHERE clause too, SQLite (which has no
    statistics) picked the name index and read every verdict the judge ever gave, on each result recorded."""
    if shadow is None:
        rows = Assessment.objects.filter(name=judge.name, **target)
        wanted = lambda row: row.source_type == AssessmentSource.LLM_JUDGE and row.valid  # noqa: E731
    else:
        rows = Assessment.all_objects.filter(source_id=f"judge:{judge.pk}", **target)
        wanted = lambda row: row.shadow and row.judge_version == shadow.version and row.valid  # noqa: E731
    fields = ("pk", "source_type", "valid", "shadow", "judge_version", "created_at")
    return [row for row in rows.order_by("-created_at", "-pk").only(*fields) if wanted(row)]


def record_result(
    judge: Judge, outcome: Outcome, *, trace: Trace | None = None, session: Session | None = None, shadow: JudgeVersion | None = None
) -> Assessment:
    """Write the assessment for `judge` on `trace` or `session`; the judge's earlier valid verdict there becomes
    history (`valid=False`, linked by `overrides`). Call inside the transaction that settles the evaluation.
    With `shadow` (`judge` then being its acting judge), a shadow assessment, which only overrides that shadow
    version's own earlier verdict and never pauses the live judge."""
    result = outcome.result
    target: dict[str, Any] = {"trace": trace} if trace is not None else {"session": session}
    previous = _valid_verdicts(judge, shadow, target)
    latest = previous[0] if previous else None
    assessment = Assessment.objects.create(
        shadow=shadow is not None,
        **target,
        name=judge.name,
        value=result.value if result.ok else None,
        rationale=result.rationale,
        source_type=AssessmentSource.LLM_JUDGE,
        source_id=f"judge:{judge.pk}",
        judge_name=judge.name,
        judge_version=judge.version,
        model=judge.endpoint.model,
        error_code=result.error_code,
        error_message=result.error_message,
        cost_usd=result.cost_usd,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        latency_ms=result.latency_ms,
        overrides=latest,
        metadata=_metadata(judge, outcome),
    )
    if previous:
        Assessment.all_objects.filter(pk__in=[verdict.pk for verdict in previous]).update(valid=False)
    if outcome.messages is not None and settings.EVALAPP_PROMPT_RETENTION_DAYS:
        JudgeExchange.of(assessment, outcome.messages, result.raw_content).save(force_insert=True)
    endpoint = judge.endpoint
    if result.ok and result.output_mode and endpoint.output_mode == OutputMode.AUTO and endpoint.detected_output_mode != result.output_mode:
        ModelEndpoint.objects.filter(pk=judge.endpoint_id).update(detected_output_mode=result.output_mode)
    if result.error_code == AUTHENTICATION and shadow is None:
        pause_judge(
            judge,
            f"Authentication failed at {endpoint.name}: {result.error_message} "
            "Fix the API key on the model endpoint; the judge resumes when the key changes.",
        )
    return assessment


def pause_judge(judge: Judge, reason: str) -> None:
    """Stop handing out the judge's work until the cause is fixed (its queued work waits; nothing fails)."""
    Judge.objects.filter(pk=judge.pk).update(paused_reason=reason, paused_at=timezone.now())
    judge.paused_reason = reason
    logger.warning("paused judge %s: %s", judge.name, reason)
