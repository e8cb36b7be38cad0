"""Claiming and settling judging work: one conditional UPDATE claims pending evaluations under a lease, another —
which only the claim holder's succeeds — settles each with its assessment, so two workers can never both record a
result; a heartbeat keeps a working drain's leases alive. judges.worker's drain is the main caller."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from judges import limits, sql
from judges.acting import acting_judge
from judges.models import Evaluation, EvaluationStatus, Judge, JudgeVersion, ModelEndpoint, VersionRole
from judges.results import Outcome, can_record_together, record_result, record_results
from judges.signals import job_settled
from traces.bulk import update_each
from traces.models import Experiment, Session

logger = logging.getLogger(__name__)
decisions = logging.getLogger("judges.decisions")

PENDING, RUNNING, DONE, ERROR = EvaluationStatus.PENDING, EvaluationStatus.RUNNING, EvaluationStatus.DONE, EvaluationStatus.ERROR


def lease_seconds() -> int:
    return settings.EVALAPP_LEASE_SECONDS


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_token() -> str:
    return f"{worker_id()}:{uuid.uuid4().hex[:8]}"


# --- claiming and settling ------------------------------------------------------------------------------


def claim(
    ids: list[int] | None, *, limit: int = 64, token: str | None = None, skip_endpoints: frozenset[int] = frozenset()
) -> tuple[str, list[Evaluation]]:
    """Atomically take up to `limit` pending evaluations (of unpaused judges) for this worker, with a lease; none of
    judges on `skip_endpoints` (endpoints whose slots are all taken, with work already waiting for them)."""
    token = token or new_token()
    taken = _take(ids, limit, token, skip_endpoints)
    if not taken:
        return token, []
    claimed = _with_judges(list(Evaluation.objects.filter(pk__in=taken)))
    claimed = _as_shadows(claimed, token)
    for evaluation in claimed:
        decisions.debug("claimed evaluation %s (judge %s) as %s", evaluation.pk, evaluation.judge.name, token)
    return token, claimed


def _take(ids: list[int] | None, limit: int, token: str, skip_endpoints: frozenset[int]) -> list[int]:
    """The claim itself, one UPDATE … RETURNING: the first `limit` pending evaluations by priority that may run now,
    leased to `token`. Written in SQL: through the ORM, compiling the choice and the UPDATE took most of a claim's
    time, and the draining thread claims after nearly every answer, mostly finding nothing (design note 54)."""
    now = timezone.now()
    evaluation, judge, endpoint, experiment, version = (
        sql.table(model) for model in (Evaluation, Judge, ModelEndpoint, Experiment, JudgeVersion)
    )
    # Work asked for by hand (a job) runs even when automatic evaluation is off; work waiting to retry after a
    # provider failure, or on a paused judge or endpoint, waits; a promoted or discarded shadow does no more work; an
    # experiment being deleted gets no money spent on it.
    conditions = [
        "e.status = %s", "(j.active OR e.manual)", "(e.not_before IS NULL OR e.not_before <= %s)",
        "(e.shadow_id IS NULL OR v.role = %s)", "j.paused_reason = ''", "m.paused_reason = ''", "x.deleting_since IS NULL",
    ]
    params: list[Any] = [PENDING, sql.when(now), VersionRole.SHADOW]
    if ids is not None:
        if not ids:
            return []
        conditions.append(f"e.id IN ({sql.placeholders(ids)})")
        params += ids
    if skip_endpoints:
        conditions.append(f"j.endpoint_id NOT IN ({sql.placeholders(skip_endpoints)})")
        params += sorted(skip_endpoints)
    # PostgreSQL: rows another worker is claiming this moment are passed over, not waited for.
    lock = " FOR UPDATE OF e SKIP LOCKED" if connection.vendor == "postgresql" else ""
    chosen = (
        f"SELECT e.id FROM {evaluation} e JOIN {judge} j ON j.id = e.judge_id JOIN {endpoint} m ON m.id = j.endpoint_id"
        f" JOIN {experiment} x ON x.id = j.experiment_id LEFT JOIN {version} v ON v.id = e.shadow_id"
        f" WHERE {' AND '.join(conditions)} ORDER BY e.priority, e.created_at, e.id LIMIT %s{lock}"
    )
    params.append(limit)
    lease = sql.when(now + timedelta(seconds=lease_seconds()))
    # The choice as a WITH clause, run once (PostgreSQL may run an `IN (subquery)` again for each row it updates,
    # claiming more than `limit`). What it chose is still pending when updated: SQLite runs the statement inside its
    # write lock, and PostgreSQL checks a row it locks FOR UPDATE against the WHERE clause again. (A `status = %s`
    # here too made SQLite look the rows up by status, reading every pending one.)
    taken = sql.rows(
        f"WITH chosen AS ({chosen}) UPDATE {evaluation} SET status = %s, claimed_by = %s, lease_expires_at = %s,"
        " attempts = attempts + 1, started_at = %s WHERE id IN (SELECT id FROM chosen) RETURNING id",
        [*params, RUNNING, token, lease, sql.when(now)],
    )
    return [pk for (pk,) in taken]


def _with_judges(evaluations: list[Evaluation]) -> list[Evaluation]:
    """Each evaluation with its judge (its endpoint and experiment), session and shadow version, each read once for
    the batch: joined to every row, the same few judges were built again for each (most of a claim's time). Not the
    trace: the drain reads the traces with their spans next (judges.worker._load)."""
    # The base managers, as a join would read them (JudgeVersion.objects leaves shadow versions out).
    judges = Judge._base_manager.select_related("endpoint", "experiment").in_bulk({evaluation.judge_id for evaluation in evaluations})
    sessions = Session._base_manager.in_bulk({evaluation.session_id for evaluation in evaluations if evaluation.session_id})
    shadows = JudgeVersion._base_manager.in_bulk({evaluation.shadow_id for evaluation in evaluations if evaluation.shadow_id})
    for evaluation in evaluations:
        evaluation.judge = judges[evaluation.judge_id]
        if evaluation.session_id:
            evaluation.session = sessions[evaluation.session_id]
        if evaluation.shadow_id:
            evaluation.shadow = shadows[evaluation.shadow_id]
    return evaluations


def _as_shadows(claimed: list[Evaluation], token: str) -> list[Evaluation]:
    """A shadow version's work is judged by the shadow's settings: its `judge` becomes the version's acting judge
    (judges.acting). Work whose shadow endpoint was deleted meanwhile is settled as cancelled."""
    if not any(evaluation.shadow_id for evaluation in claimed):
        return claimed
    kept = []
    endpoints = {e.pk: e for e in ModelEndpoint.objects.filter(pk__in={e.shadow.config.get("endpoint_id") for e in claimed if e.shadow_id})}
    for evaluation in claimed:
        if evaluation.shadow_id:
            endpoint = endpoints.get(evaluation.shadow.config.get("endpoint_id"))
            if endpoint is None:
                Evaluation.objects.filter(pk=evaluation.pk, claimed_by=token).update(
                    status=EvaluationStatus.CANCELLED, error_message="the shadow's model endpoint was deleted", finished_at=timezone.now(), lease_expires_at=None
                )
                continue
            evaluation.judge = acting_judge(evaluation.shadow, evaluation.judge, endpoint)
        kept.append(evaluation)
    return kept


class _LeaseLost(Exception):
    """Raised inside finish's transaction to undo an assessment whose evaluation this worker no longer holds."""


def _target(evaluation: Evaluation) -> dict[str, Any]:
    return {"trace": evaluation.trace} if evaluation.trace_id else {"session": evaluation.session}


def _settled(outcome: Outcome, assessment) -> dict[str, Any]:
    """What settling an evaluation with `outcome` writes to its row (finish, finish_many)."""
    result = outcome.result
    return {
        "status": DONE if result.ok else ERROR,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "cost_usd": result.cost_usd,
        "finished_at": timezone.now(),
        "lease_expires_at": None,
        "assessment": assessment,
    }


def finish(evaluation: Evaluation, token: str, outcome: Outcome) -> bool:
    """Record the result if we still hold the claim. False if the lease was lost to another worker."""
    try:
        with transaction.atomic():
            # The assessment first, so the evaluation is settled and linked to it in one UPDATE, which succeeds only
            # for the claim holder; a lost lease rolls the assessment back.
            assessment = record_result(evaluation.judge, outcome, shadow=evaluation.shadow if evaluation.shadow_id else None, **_target(evaluation))
            won = Evaluation.objects.filter(pk=evaluation.pk, claimed_by=token, status=RUNNING).update(**_settled(outcome, assessment))
            if not won:
                raise _LeaseLost
    except _LeaseLost:
        decisions.debug("evaluation %s: lease lost, result dropped", evaluation.pk)
        return False
    _log_result(evaluation, outcome)
    return True


def finish_many(results: list[tuple[Evaluation, Outcome]], token: str) -> list[Evaluation]:
    """finish() for a round's results: those still held by `token` recorded in one transaction and a handful of
    statements (judges.results.record_results) instead of ~5 statements and a commit each; a shadow's result and a
    refused key's go through finish() one at a time. Returns the evaluations whose result was recorded."""
    one_by_one = [(evaluation, outcome) for evaluation, outcome in results if not can_record_together(outcome, evaluation.shadow_id)]
    together = [(evaluation, outcome) for evaluation, outcome in results if can_record_together(outcome, evaluation.shadow_id)]
    recorded = []
    if together:
        with transaction.atomic():
            # The rows stay ours until the commit: locked on PostgreSQL; on SQLite the transaction holds the write lock.
            mine = Evaluation.objects.select_for_update().filter(pk__in=[evaluation.pk for evaluation, _ in together], claimed_by=token, status=RUNNING)
            held = set(mine.values_list("pk", flat=True))
            kept = [(evaluation, outcome) for evaluation, outcome in together if evaluation.pk in held]
            assessments = record_results([(evaluation.judge, outcome, _target(evaluation)) for evaluation, outcome in kept])
            settled = [(evaluation, _settled(outcome, assessment)) for (evaluation, outcome), assessment in zip(kept, assessments)]
            for evaluation, values in settled:
                for name, value in values.items():
                    setattr(evaluation, name, value)
            if settled:  # not bulk_update: its CASEs
                update_each(Evaluation, [evaluation for evaluation, _ in settled], list(settled[0][1]))
        for evaluation, outcome in together:
            if evaluation.pk in held:
                recorded.append(evaluation)
                _log_result(evaluation, outcome)
            else:
                decisions.debug("evaluation %s: lease lost, result dropped", evaluation.pk)
    recorded += [evaluation for evaluation, outcome in one_by_one if finish(evaluation, token, outcome)]
    return recorded


def _log_result(evaluation: Evaluation, outcome: Outcome) -> None:
    result = outcome.result
    decisions.debug(
        "evaluation %s (judge %s): %s",
        evaluation.pk,
        evaluation.judge.name,
        repr(result.value) if result.ok else f"{result.error_code}: {result.error_message}",
    )


def announce_if_settled(job) -> None:
    """Call after settling a job's evaluations: if none is left pending or running, tell whoever waits on the job
    (judges.signals.job_settled)."""
    if not Evaluation.objects.filter(job=job, status__in=(PENDING, RUNNING)).exists():
        for receiver, error in job_settled.send_robust(sender=Evaluation, job=job):
            if isinstance(error, Exception):
                logger.error("job %s settled, but %r failed: %s", job, receiver, error)


def release_claim(evaluation: Evaluation, token: str) -> None:
    """Give back work that was claimed but never started (time budget spent, judge paused meanwhile): it is
    picked up again, and the claim doesn't count as an attempt."""
    _give_back(Evaluation.objects.filter(pk=evaluation.pk, claimed_by=token, status=RUNNING))


def release_all(token: str) -> None:
    """release_claim for whatever a drain still holds, in one UPDATE (a drain's token is its own)."""
    _give_back(Evaluation.objects.filter(claimed_by=token, status=RUNNING))


def _give_back(claimed) -> None:
    claimed.update(status=PENDING, claimed_by="", lease_expires_at=None, attempts=F("attempts") - 1)


def heartbeat(token: str, stop: threading.Event) -> None:
    """Keep our leases alive while we work, so only a dead worker's evaluations are reclaimed."""
    interval = max(1.0, lease_seconds() / 3)
    try:
        while not stop.wait(interval):
            Evaluation.objects.filter(claimed_by=token, status=RUNNING).update(
                lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
            )
            limits.renew(token)
    finally:
        connection.close()
