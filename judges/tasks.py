"""django-q2 task entry points. Each carries only ids; the Evaluation rows say what is left to do."""

from __future__ import annotations

import logging

from django.db import transaction
from django_q.models import Schedule
from django_q.tasks import async_task

from judges import engine

logger = logging.getLogger(__name__)

CHUNK = 64
SWEEP_SCHEDULE = "evalapp: sweep judging work"


def enqueue(function: str, *args, name: str = "") -> None:
    async_task(f"judges.tasks.{function}", *args, task_name=name or None, q_options={"ack_failure": True})


def enqueue_judging(ids: list[int]) -> None:
    for start in range(0, len(ids), CHUNK):
        enqueue("judge_evaluations", ids[start : start + CHUNK])


def on_ingest(experiment_id: int, trace_pks: list[int]) -> int:
    """Fallback when selecting at ingest failed: select here, then judge."""
    ids = engine.select_traces(experiment_id, trace_pks)
    return engine.drain(ids) if ids else 0


def judge_evaluations(ids: list[int]) -> int:
    """Judge these, then whatever else is pending (see engine.drain)."""
    return engine.drain(ids)


def backfill(judge_id: int) -> int:
    ids = engine.backfill_judge(judge_id)
    enqueue_judging(ids)
    return len(ids)


def sweep() -> dict:
    report = engine.sweep()
    enqueue_judging(report.pending_ids)
    return {
        "traces_examined": report.traces_examined,
        "sessions_selected": report.sessions_selected,
        "reclaimed": report.reclaimed,
        "abandoned": report.abandoned,
        "enqueued": len(report.pending_ids),
    }


def ensure_schedule() -> None:
    """Idempotent: the every-minute sweep that reclaims leases, judges idle sessions and catches misses."""
    Schedule.objects.update_or_create(
        name=SWEEP_SCHEDULE,
        defaults={"func": "judges.tasks.sweep", "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )


def traces_ingested_receiver(sender, *, experiment_id: int, trace_pks: list[int], session_pks: list[int], **kwargs) -> None:
    """Signal receiver (traces → judges): select the batch's work and queue it. Ingest never waits for judging;
    with no active trace judge this costs one query."""
    try:
        # Selecting is a couple of queries: done here, the pending rows exist the moment ingest returns.
        ids = engine.select_traces(experiment_id, trace_pks)
        if ids:
            enqueue_judging(ids)
    except Exception:  # the database or broker had a hiccup: the sweep will find these traces
        logger.exception("could not select or enqueue judging for %d traces; the sweep will pick them up", len(trace_pks))


def after_commit(function: str, *args) -> None:
    def send() -> None:
        try:
            enqueue(function, *args)
        except Exception:  # the broker is down: the change is saved, and the sweep will do the work
            logger.exception("could not enqueue %s%r; the sweep will catch up", function, args)

    transaction.on_commit(send)
