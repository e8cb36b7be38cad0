"""The entry points the broker calls (django-q2 tasks), and nothing else calls them by name. Each carries only
ids; the Evaluation rows say what is left to do. Queue them with judges.queue."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django_q.conf import Conf

from judges import align_work, bell, queue, selection, try_runs, worker
from judges import sweep as sweeping
from traces import deletion
from traces.database import database_unavailable, describe

logger = logging.getLogger(__name__)

CHUNK = 64
DELETE_TASK_SECONDS = 120.0  # well inside the broker's task timeout (EVALAPP_Q_TIMEOUT); then a fresh task goes on
SWEEP_SCHEDULE = "evalapp: sweep judging work"


def judge_evaluations(ids: list[int]) -> int:
    """Judge these, then whatever else is pending (see judges.worker.drain). The database going away ends the
    task with a line, not a traceback: what it had claimed is reclaimed when its lease runs out, and the sweep
    queues the rest once the database is back. A drain that ran out of its time budget queues its own sequel; one
    that keeps finding a backlog asks for another worker process (a task, unless one waits: judges.bell)."""
    try:
        bell.answer()
        started = time.monotonic()
        helper = None if Conf.SYNC else lambda: _ring_and_queue([], asking_for_help=True)  # sync mode would nest drains
        judged = worker.drain(ids, side_work=try_runs.run_waiting, ask_for_help=helper)
        if time.monotonic() - started >= settings.EVALAPP_DRAIN_SECONDS:
            _ring_and_queue([])  # stopped for time, maybe with work left: a fresh task goes on (after others waiting)
        return judged
    except (OperationalError, InterfaceError) as error:
        if not database_unavailable(error):
            raise
        logger.warning("judging stopped: the database is unavailable (%s); the sweep takes the work up again once it is back", describe(error))
        return 0


def enqueue_judging(ids: list[int]) -> None:
    """Judging for these pending evaluations once the current transaction commits: a task, unless one is already
    waiting in the broker (whose drain will take these too: judges.bell); for a large batch, a task per chunk up
    to one per worker process, so every idle process starts on it."""
    if ids:
        transaction.on_commit(lambda: _ring_and_queue(ids))


def _ring_and_queue(ids: list[int], *, asking_for_help: bool = False) -> None:
    try:
        if not bell.ring(trust_a_waiting_task=asking_for_help):
            return
    except (OperationalError, InterfaceError) as error:  # can't tell whether a task waits: queue one (a spare is harmless)
        logger.warning("could not check for a waiting judging task (%s); queueing one", describe(error))
    chunks = [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)] or [[]]
    for chunk in chunks[: settings.Q_CLUSTER["workers"]]:
        queue.enqueue_or_log(judge_evaluations, chunk)


def backfill(judge_id: int) -> int:
    """A judge was created or switched on: select its one-hour look-back and queue the judging."""
    ids = selection.backfill_judge(judge_id)
    enqueue_judging(ids)
    return len(ids)


def delete_experiment(experiment_id: int) -> bool:
    """Delete a marked experiment (traces.deletion); not finished in DELETE_TASK_SECONDS, queue the rest as a new
    task. Whatever happens to it, the sweep goes on with it."""
    done = deletion.delete_marked(experiment_id, seconds=DELETE_TASK_SECONDS)
    if not done:
        queue.enqueue_on_commit(delete_experiment, experiment_id)
    return done


def enqueue_experiment_deletion(experiment_id: int) -> None:
    queue.enqueue_on_commit(delete_experiment, experiment_id)


def run_try(run_id: str) -> bool:
    """A "Try it" of the judge form (judges.try_runs)."""
    return try_runs.run(run_id)


def enqueue_try(run_id: str) -> None:
    queue.enqueue_on_commit(run_try, run_id)


def sweep() -> dict:
    report = sweeping.sweep()
    enqueue_judging(report.pending_ids)
    return {
        "traces_examined": report.traces_examined,
        "traces_expired": report.traces_expired,
        "experiments_deleted": report.experiments_deleted,
        "sessions_selected": report.sessions_selected,
        "reclaimed": report.reclaimed,
        "abandoned": report.abandoned,
        "endpoints_resumed": report.endpoints_resumed,
        "enqueued": len(report.pending_ids),
    }


def ensure_schedule() -> None:
    """Idempotent: the every-minute sweep that reclaims leases, judges idle sessions and catches misses."""
    queue.schedule_every_minute(SWEEP_SCHEDULE, sweep)


def run_align(run_id: str) -> bool:
    """One task of an align() run (judges.align_work.run); a run longer than a task goes on in a new one."""
    more = align_work.run(run_id) == align_work.MORE
    if more:
        enqueue_align(run_id)
    return more


def enqueue_align(run_id: str) -> None:
    queue.enqueue_on_commit(run_align, run_id)
