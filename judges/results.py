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
from traces.signals import assessments_written

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


def _new_assessment(judge: Judge, outcome: Outcome, target: dict[str, Any], overrides_pk: int | None) -> Assessment:
    result = outcome.result
    return Assessment(
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
        overrides_id=overrides_pk,
        metadata=_metadata(judge, outcome),
    )


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
    assessment = _new_assessment(judge, outcome, target, previous[0].pk if previous else None)
    assessment.shadow = shadow is not None
    assessment.save(force_insert=True)
    if previous:
        Assessment.all_objects.filter(pk__in=[verdict.pk for verdict in previous]).update(valid=False)
    if outcome.messages is not None and settings.EVALAPP_PROMPT_RETENTION_DAYS:
        JudgeExchange.of(assessment, outcome.messages, result.raw_content).save(force_insert=True)
    endpoint = judge.endpoint
    if mode := _newly_detected_mode(judge, outcome):
        ModelEndpoint.objects.filter(pk=judge.endpoint_id).update(detected_output_mode=mode)
    if result.error_code == AUTHENTICATION and shadow is None:
        pause_judge(
            judge,
            f"Authentication failed at {endpoint.name}: {result.error_message} "
            "Fix the API key on the model endpoint; the judge resumes when the key changes.",
        )
    return assessment


def _newly_detected_mode(judge: Judge, outcome: Outcome) -> str:
    """The output mode an AUTO endpoint's answer showed working, when it isn't the one already stored; else ""."""
    endpoint, mode = judge.endpoint, outcome.result.output_mode
    if outcome.ok and mode and endpoint.output_mode == OutputMode.AUTO and endpoint.detected_output_mode != mode:
        return mode
    return ""


def can_record_together(outcome: Outcome, shadow_id: int | None) -> bool:
    """Whether record_results may write this result in a batch: not a shadow's (it overrides only its version's
    verdicts) and not a refused key (which pauses the judge) — those go through record_result one at a time."""
    return shadow_id is None and outcome.result.error_code != AUTHENTICATION


def record_results(items: list[tuple[Judge, Outcome, dict[str, Any]]]) -> list[Assessment]:
    """record_result for a round of live judges' results (each `can_record_together`), in a handful of statements
    instead of ~5 each: the targets' earlier verdicts read at once, the assessments and the judges' words inserted
    in one statement each, the overridden verdicts marked in one, the Overview's hours marked stale in one
    (traces.signals.assessments_written). Call inside the transaction that settles the evaluations. A second result
    for the same judge and target (two generations of a session) is recorded after the first, one at a time."""
    firsts, seconds, keys = [], [], set()
    for index, (judge, outcome, target) in enumerate(items):
        key = _key(judge, target)
        (seconds if key in keys else firsts).append(index)
        keys.add(key)
    written: dict[int, Assessment] = {}
    if firsts:
        latest, previous = _valid_verdicts_of(keys)
        batch = [items[index] for index in firsts]
        assessments = Assessment.objects.bulk_create(
            [_new_assessment(judge, outcome, target, latest.get(_key(judge, target))) for judge, outcome, target in batch]
        )
        written.update(zip(firsts, assessments))
        if previous:
            Assessment.all_objects.filter(pk__in=previous).update(valid=False)
        if settings.EVALAPP_PROMPT_RETENTION_DAYS:
            JudgeExchange.objects.bulk_create(
                [
                    JudgeExchange.of(assessment, outcome.messages, outcome.result.raw_content)
                    for assessment, (_, outcome, _) in zip(assessments, batch)
                    if outcome.messages is not None
                ]
            )
        detected = {judge.endpoint_id: mode for judge, outcome, _ in batch if (mode := _newly_detected_mode(judge, outcome))}
        for endpoint_pk, mode in detected.items():
            ModelEndpoint.objects.filter(pk=endpoint_pk).update(detected_output_mode=mode)
        assessments_written.send(sender=Assessment, assessments=assessments)
    for index in seconds:
        judge, outcome, target = items[index]
        written[index] = record_result(judge, outcome, **target)
    return [written[index] for index in range(len(items))]


def _key(judge: Judge, target: dict[str, Any]) -> tuple[str, str, int]:
    [(kind, row)] = target.items()
    return judge.name, kind, row.pk


def _valid_verdicts_of(keys: set[tuple[str, str, int]]) -> tuple[dict[tuple[str, str, int], int], list[int]]:
    """_valid_verdicts for many (judge name, target kind, target pk) at once: the latest one's pk for each, and
    every one's pk. One query per kind of target, by its (target, name) index."""
    latest: dict[tuple[str, str, int], int] = {}
    previous: list[int] = []
    for kind in ("trace", "session"):
        pks = {pk for _, k, pk in keys if k == kind}
        if not pks:
            continue
        names = {name for name, k, _ in keys if k == kind}
        rows = Assessment.objects.filter(**{f"{kind}_id__in": pks, "name__in": names}).order_by("-created_at", "-pk")
        # Plain values, not model instances (deferred-field instances cost more than the query): only the latest one's
        # pk is linked to (`overrides`).
        for pk, name, target_pk, source_type, valid in rows.values_list("pk", "name", f"{kind}_id", "source_type", "valid"):
            key = (name, kind, target_pk)
            if key in keys and source_type == AssessmentSource.LLM_JUDGE and valid:
                latest.setdefault(key, pk)
                previous.append(pk)
    return latest, previous


def pause_judge(judge: Judge, reason: str) -> None:
    """Stop handing out the judge's work until the cause is fixed (its queued work waits; nothing fails)."""
    Judge.objects.filter(pk=judge.pk).update(paused_reason=reason, paused_at=timezone.now())
    judge.paused_reason = reason
    logger.warning("paused judge %s: %s", judge.name, reason)
