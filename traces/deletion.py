"""Deleting an experiment: everything that hangs off it — traces, spans, sessions, verdicts, evaluations, judges,
alert rules, the Overview's rollups, the audit log — in batches, without holding up ingest of other experiments.

Two steps. `request_deletion` checks the typed name and marks the experiment (`deleting_since`): from that moment
it is gone from every list and lookup (`Experiment.objects` leaves it out), ingest to it is refused (410), and
`experiment_deleting` is sent so judges queues the deletion task. `delete_marked` then deletes its traces and
sessions with retention's batch deleter (traces.retention.delete_batch: one short transaction per BATCH traces, so
ingest waits one batch at most), and last, once nothing big is left, the experiment row with what is left on it
(judges and their versions, alert rules, rollups: a few rows each, gone by cascade) in one transaction. Each step
is safe to repeat, so a task that dies half-way is finished by the next one or by the every-minute sweep
(`continue_deletions`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from traces import retention
from traces.models import Experiment, Session, Trace
from traces.signals import experiment_deleting

logger = logging.getLogger(__name__)

EVERYTHING = datetime(9999, 1, 1, tzinfo=UTC)  # a cutoff no trace starts after
SWEEP_SECONDS = 10.0


class NameMismatch(ValueError):
    """The name typed to confirm a deletion isn't the experiment's."""


@dataclass
class Progress:
    name: str
    traces_total: int
    traces_left: int
    sessions_left: int

    @property
    def traces_deleted(self) -> int:
        return max(0, self.traces_total - self.traces_left)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "status": "deleting",
            "traces_total": self.traces_total,
            "traces_deleted": self.traces_deleted,
            "traces_left": self.traces_left,
            "sessions_left": self.sessions_left,
        }


def request_deletion(experiment: Experiment, confirm_name: str, *, by: str = "") -> Experiment:
    """Mark `experiment` for deletion if `confirm_name` is its name exactly (else NameMismatch, nothing changed);
    its contents are deleted in the background. Asking again for one already being deleted changes nothing."""
    if confirm_name != experiment.name:
        raise NameMismatch(f"type the experiment's name, {experiment.name!r}, exactly to confirm; nothing was deleted")
    with transaction.atomic():
        now, total = timezone.now(), experiment.traces.count()
        if Experiment.objects.filter(pk=experiment.pk).update(deleting_since=now, deleting_traces_total=total):
            experiment.deleting_since, experiment.deleting_traces_total = now, total
            logger.warning("experiment %r (id %s) marked for deletion%s", experiment.name, experiment.pk, f" by {by}" if by else "")
            experiment_deleting.send(sender=Experiment, experiment_id=experiment.pk)
    return experiment


def progress(experiment: Experiment) -> Progress:
    traces_left = Trace.objects.filter(experiment_id=experiment.pk).count()
    return Progress(
        name=experiment.name,
        traces_total=max(experiment.deleting_traces_total or 0, traces_left),
        traces_left=traces_left,
        sessions_left=Session.objects.filter(experiment_id=experiment.pk).count(),
    )


def being_deleted(**lookup) -> Experiment | None:
    """The experiment matching `lookup` (pk=… or name=…) if it is being deleted, for a precise refusal."""
    return Experiment.all_objects.filter(deleting_since__isnull=False, **lookup).first()


def delete_marked(experiment_id: int, *, seconds: float = SWEEP_SECONDS, batch: int = retention.BATCH) -> bool:
    """Go on deleting a marked experiment for up to `seconds`. True when it is gone (or was never marked)."""
    experiment = Experiment.all_objects.filter(pk=experiment_id, deleting_since__isnull=False).first()
    if experiment is None:
        return not Experiment.all_objects.filter(pk=experiment_id).exists()
    deadline = time.monotonic() + seconds
    while True:
        traces, sessions = retention.delete_batch(experiment, EVERYTHING, batch, history=False)
        if traces < batch and sessions < batch:
            break
        if time.monotonic() >= deadline:
            return False
    with transaction.atomic():
        # Locked, and checked empty under the lock: traces an ingest that began before the mark has written since
        # are deleted first (by the next round), never left without their experiment.
        locked = Experiment.all_objects.select_for_update().filter(pk=experiment_id).first()
        if locked is None:
            return True
        if Trace.objects.filter(experiment_id=experiment_id).exists() or Session.objects.filter(experiment_id=experiment_id).exists():
            return False
        locked.delete()
    logger.warning("experiment %r (id %s) deleted", experiment.name, experiment_id)
    return True


def continue_deletions(seconds: float = SWEEP_SECONDS) -> list[int]:
    """The sweep's share: go on with every marked experiment (a task that died, a broker that was down). Returns
    the ids of those now gone."""
    deadline = time.monotonic() + seconds
    done = []
    for experiment_id in Experiment.all_objects.filter(deleting_since__isnull=False).order_by("deleting_since").values_list("pk", flat=True):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if delete_marked(experiment_id, seconds=left):
            done.append(experiment_id)
    return done
