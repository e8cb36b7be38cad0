"""What judges does when traces are written (connected in judges.apps): select the batch's work and queue it; and
what it tells traces about feedback under a judge's name."""

from __future__ import annotations

import logging

from judges import selection, tasks
from judges.models import Judge
from traces.feedback import ValueRule

logger = logging.getLogger(__name__)


def traces_ingested(sender, *, experiment_id: int, trace_pks: list[int], session_pks: list[int], **kwargs) -> None:
    """Runs when an ingest commits. Ingest never waits for judging; with no active trace judge this costs one
    query. Selecting is a couple of queries, done here, so the pending rows exist the moment ingest returns."""
    try:
        ids = selection.select_traces(experiment_id, trace_pks)
        if ids:
            tasks.enqueue_judging(ids)
    except Exception:  # the database had a hiccup: the sweep will find these traces
        logger.exception("could not select judging work for %d traces; the sweep will pick them up", len(trace_pks))


def experiment_deleting(sender, *, experiment_id: int, **kwargs) -> None:
    """An experiment was marked for deletion: queue the task that deletes it (once the mark commits)."""
    tasks.enqueue_experiment_deletion(experiment_id)


def feedback_value_rule(sender, *, experiment_id: int, scope: str, name: str, **kwargs) -> ValueRule | None:
    """Feedback named like one of the experiment's judges of that scope must be a value that judge could give."""
    judge = Judge.objects.filter(experiment_id=experiment_id, scope=scope, name=name).only("name", "output_type", "categories").first()
    return judge.value_rule if judge is not None else None
