"""Judging by hand — the one path, with every limit the workers honour.

A job is a set of manual evaluations sharing a `job` id ("Judge again", the API's run-on-ids, the `run_judge`
command): the workers judge them like any other work (endpoint slots, requests per minute, spend cap), even while
the judge's automatic evaluation is off. `judge_by_hand` judges a job in this process instead of waiting for a
worker (the command; tests). `start_try` is the form's "Try it": one call of an unsaved definition, under the
same limits, made by a worker (judges.try_runs) while the page polls, recorded nowhere else."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from judges import tasks, try_runs, worker
from judges.errors import ConfigError
from judges.llm import TRANSIENT
from judges.models import Evaluation, EvaluationStatus, Judge, Scope, TryRun
from traces import bulk
from traces.models import Assessment, AssessmentSource, Session, Trace

MAX_JOB_TARGETS = 500
_FINISHED = {EvaluationStatus.DONE, EvaluationStatus.ERROR, EvaluationStatus.CANCELLED, EvaluationStatus.SKIPPED}


def _ids(errors: dict[str, str], field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        errors[field] = "must be a non-empty list of id strings"
        return []
    unique = list(dict.fromkeys(value))
    if len(unique) > MAX_JOB_TARGETS:
        errors[field] = f"at most {MAX_JOB_TARGETS} ids per job (got {len(unique)}); split the list"
        return []
    return unique


def _missing(field: str, wanted: list[str], found: set[str], where: str) -> None:
    missing = [item for item in wanted if item not in found]
    if missing:
        shown = ", ".join(repr(item) for item in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ConfigError({field: f"not found in {where}: {shown}"})


def start_job(judge: Judge, *, trace_ids: Any = None, session_ids: Any = None, queue: bool = True) -> uuid.UUID:
    """Queue `judge` on these traces (trace judges) or sessions (session judges); returns the job id to poll.
    Unknown ids, the wrong scope, or a paused judge are refused as a whole: nothing is queued. With
    `queue=False` the rows are made but no task is sent (judge_by_hand judges them itself)."""
    errors: dict[str, str] = {}
    if (trace_ids is None) == (session_ids is None):
        raise ConfigError({"trace_ids": "send either trace_ids (for a trace judge) or session_ids (for a session judge)"})
    field = "trace_ids" if trace_ids is not None else "session_ids"
    wanted = _ids(errors, field, trace_ids if trace_ids is not None else session_ids)
    if errors:
        raise ConfigError(errors)
    expected = "trace_ids" if judge.scope == Scope.TRACE else "session_ids"
    if field != expected:
        kind = "single traces" if judge.scope == Scope.TRACE else "whole sessions"
        raise ConfigError({field: f"{judge.name} judges {kind}; send {expected}"})
    if judge.is_paused:
        raise ConfigError({"judge": f"{judge.name} is paused: {judge.paused_reason}"})
    where = f"experiment {judge.experiment_id}"
    job = uuid.uuid4()
    with transaction.atomic():
        if field == "trace_ids":
            traces = {
                t.trace_id: t for t in Trace.objects.filter(experiment_id=judge.experiment_id, trace_id__in=wanted).only("pk", "trace_id")
            }
            _missing(field, wanted, set(traces), where)
            rows = [Evaluation(judge=judge, judge_version=judge.version, trace=traces[item], manual=True, job=job) for item in wanted]
        else:
            sessions = {s.session_id: s for s in Session.objects.filter(experiment_id=judge.experiment_id, session_id__in=wanted)}
            _missing(field, wanted, set(sessions), where)
            rows = [
                Evaluation(
                    judge=judge,
                    judge_version=judge.version,
                    session=sessions[item],
                    session_generation=sessions[item].trace_count,
                    manual=True,
                    job=job,
                )
                for item in wanted
            ]
        Evaluation.objects.bulk_create(rows)
        if queue:
            tasks.enqueue_judging(list(Evaluation.objects.filter(job=job).values_list("pk", flat=True)))
    return job


def start_judges_on_traces(judges: list[Judge], trace_pks: list[int], *, job: uuid.UUID, priority: int) -> list[int]:
    """Queue every judge on every trace (by primary key) as the job `job`, at `priority` — an evaluation run's
    judging (the job id is the run's id; called again as more of its traces arrive): the workers take it with the same endpoint slots, per-minute budgets and
    spend caps as any other work, after everything of a lower priority number. No cap on the number of traces
    (a run's rows were bounded when it was created). Trace judges only; a paused judge refuses the whole job.
    Call inside the transaction that makes the traces' state final; the work is queued on commit. Returns the
    evaluation ids."""
    for judge in judges:
        if judge.scope != Scope.TRACE:
            raise ConfigError({"judges": f"{judge.name} judges whole sessions; an evaluation run judges single traces"})
        if judge.is_paused:
            raise ConfigError({"judges": f"{judge.name} is paused: {judge.paused_reason}"})
    # Written by traces.bulk.insert from one model's defaults, not bulk_create: preparing every value of 1,500 rows
    # through the fields took most of a run's prediction post, inside the transaction the worker's claims wait on.
    base = bulk.defaults(Evaluation, manual=True, job=job, priority=priority)
    rows = [{**base, "judge_id": judge.pk, "judge_version": judge.version, "trace_id": pk} for pk in trace_pks for judge in judges]
    ids = sorted(pk for (pk,) in bulk.insert(Evaluation, rows, returning=["id"]))
    tasks.enqueue_judging(ids)
    return ids


def rejudge_provider_errors(judge: Judge, *, since: datetime) -> int:
    """Judge again, as jobs, every trace or session whose latest verdict from `judge` since `since` is a provider
    failure (5xx, 429, timeout, refused connection) — what an outage left behind. Returns how many were queued."""
    target = "trace__trace_id" if judge.scope == Scope.TRACE else "session__session_id"
    failed = list(
        Assessment.objects.filter(
            source_type=AssessmentSource.LLM_JUDGE,
            name=judge.name,
            valid=True,
            error_code__in=TRANSIENT,
            created_at__gte=since,
            **({"trace__experiment_id": judge.experiment_id} if judge.scope == Scope.TRACE else {"session__experiment_id": judge.experiment_id}),
        ).values_list(target, flat=True)
    )
    field = "trace_ids" if judge.scope == Scope.TRACE else "session_ids"
    for start in range(0, len(failed), MAX_JOB_TARGETS):
        start_job(judge, **{field: failed[start : start + MAX_JOB_TARGETS]})
    return len(failed)


def judge_by_hand(judge: Judge, *, trace_ids: Any = None, session_ids: Any = None) -> list[Evaluation]:
    """Judge these now, in this process, as a job (with the same checks and limits as any job); returns the
    job's evaluations, settled, with their assessments."""
    job = start_job(judge, trace_ids=trace_ids, session_ids=session_ids, queue=False)
    ids = list(Evaluation.objects.filter(job=job).order_by("pk").values_list("pk", flat=True))
    worker.drain(ids, take_more=False, max_in_flight=min(len(ids), settings.EVALAPP_DRAIN_CONCURRENCY))
    return list(Evaluation.objects.filter(job=job).select_related("assessment", "trace", "session").order_by("pk"))


def start_try(unsaved: Judge, target: Trace | Session, *, shown_name: str = "") -> TryRun:
    """The form's "Try it": queue one call of the unsaved definition on `target` (judges.try_runs runs it in a
    worker, under the endpoint's limits); the page polls the returned run. Nothing else is recorded."""
    where = {"session": target} if isinstance(target, Session) else {"trace": target}
    tried = TryRun.objects.create(
        id=uuid.uuid4(), experiment_id=unsaved.experiment_id, definition=try_runs.definition_json(unsaved), shown_name=shown_name, **where
    )
    tasks.enqueue_try(str(tried.pk))
    return tried


def job_json(job: uuid.UUID | str) -> dict[str, Any] | None:
    """The job's progress and results so far; None for an unknown job id."""
    evaluations = list(Evaluation.objects.filter(job=job).select_related("judge", "trace", "session", "assessment").order_by("pk"))
    if not evaluations:
        return None
    finished = [e for e in evaluations if e.status in _FINISHED]
    if len(finished) == len(evaluations):
        state = "done"
    elif any(e.status != EvaluationStatus.PENDING for e in evaluations):
        state = "running"
    else:
        state = "queued"
    results = []
    for evaluation in evaluations:
        assessment = evaluation.assessment
        target = {"trace_id": evaluation.trace.trace_id} if evaluation.trace_id else {"session_id": evaluation.session.session_id}
        results.append(
            {
                **target,
                "status": evaluation.status,
                "value": assessment.value if assessment else None,
                "rationale": assessment.rationale if assessment else "",
                "error_code": evaluation.error_code or None,
                "error_message": evaluation.error_message or None,
                "cost_usd": str(evaluation.cost_usd) if evaluation.cost_usd is not None else None,
                "assessment_id": evaluation.assessment_id,
            }
        )
    first = evaluations[0]
    return {
        "id": str(job),
        "judge": first.judge.name,
        "experiment_id": first.judge.experiment_id,
        "judge_version": first.judge_version,
        "status": state,
        "total": len(evaluations),
        "done": len(finished),
        "errors": sum(1 for e in evaluations if e.status == EvaluationStatus.ERROR),
        "created_at": first.created_at,
        "results": results,
    }
