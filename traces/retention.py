"""Retention: an experiment's traces older than N days are deleted, with their spans, verdicts and evaluations, by
the every-minute sweep (judges.sweep). Off unless an experiment sets `retention_days` or EVALAPP_RETENTION_DAYS is
set (an experiment's 0 keeps everything whatever the default).

What goes: traces that started before the cutoff — `now - N days` rounded down to the hour, so every hour it
empties is closed and whole — and sessions whose last turn is before it (all their turns), with what was said about
them. A conversation with turns on both sides of the cutoff keeps its newer turns and its session row, counts
unchanged (its session judges decided on them; a smaller count would look like a new conversation to judge).

History: before each batch, `traces_expiring` lets the Overview's rollups store the hours the batch empties (summed
from the rows still there); `Experiment.retained_from` then tells them those hours can't be recounted.

Locks: a batch of BATCH traces (oldest first) and the sessions they empty, in one short transaction of its own: on
SQLite the write lock for one batch, on PostgreSQL row locks on that batch only. Ingest waits one batch at most.
A sweep stops after SWEEP_SECONDS and goes on at the next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from traces.models import Experiment, Session, Trace
from traces.signals import traces_expiring

BATCH = 200
SWEEP_SECONDS = 10.0
HOUR = timedelta(hours=1)


def effective_days(experiment: Experiment) -> int:
    """The experiment's retention in days (0: kept for good)."""
    return settings.EVALAPP_RETENTION_DAYS if experiment.retention_days is None else experiment.retention_days


def cutoff_for(days: int, now: datetime) -> datetime:
    return (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


@dataclass
class Expiring:
    """What a retention of `days` would delete now (the dry run shown before it is switched on)."""

    days: int
    cutoff: datetime
    traces: int
    sessions: int
    oldest: datetime | None


def count_expiring(experiment: Experiment, days: int, now: datetime | None = None) -> Expiring:
    cutoff = cutoff_for(days, now or timezone.now())
    found = Trace.objects.filter(experiment=experiment, started_at__lt=cutoff).aggregate(count=Count("id"), oldest=Min("started_at"))
    sessions = Session.objects.filter(experiment=experiment, last_trace_at__lt=cutoff).count()
    return Expiring(days, cutoff, found["count"], sessions, found["oldest"])


def delete_expired(now: datetime | None = None, *, batch: int = BATCH, seconds: float = SWEEP_SECONDS) -> int:
    """One sweep's retention work over every experiment that has some: batches until done or `seconds` are up.
    Returns the number of traces deleted."""
    now = now or timezone.now()
    deadline = time.monotonic() + seconds
    kept = Q(retention_days__gt=0) | Q(retention_days__isnull=True) if settings.EVALAPP_RETENTION_DAYS else Q(retention_days__gt=0)
    deleted = 0
    for experiment in Experiment.objects.filter(kept).order_by("pk"):
        cutoff = cutoff_for(effective_days(experiment), now)
        while time.monotonic() < deadline:
            traces, sessions = delete_batch(experiment, cutoff, batch)
            deleted += traces
            if traces < batch and sessions < batch:
                break
    return deleted


def delete_batch(experiment: Experiment, cutoff: datetime, size: int = BATCH, *, history: bool = True) -> tuple[int, int]:
    """Delete the experiment's `size` oldest traces that started before `cutoff` and the sessions left without
    turns (at most `size`), with everything that hangs off them, in one transaction. Returns (traces, sessions).
    `history=False` (the experiment itself is going, traces.deletion): no rollups stored, no retained_from."""
    with transaction.atomic():
        rows = list(
            Trace.objects.filter(experiment=experiment, started_at__lt=cutoff).order_by("started_at", "pk").values_list("pk", "started_at")[:size]
        )
        # Traces go oldest first, so once this batch is gone no trace that started before its last one is left:
        # a session whose last turn is before that has none.
        through = rows[-1][1] if len(rows) == size else cutoff
        sessions = list(
            Session.objects.filter(experiment=experiment, last_trace_at__lt=through).order_by("last_trace_at").values_list("pk", "last_trace_at")[:size]
        )
        if not rows and not sessions:
            return 0, 0
        if history:
            moments = [started for _, started in rows] + [last for _, last in sessions]
            start = min(moments).replace(minute=0, second=0, microsecond=0)
            end = max(moments).replace(minute=0, second=0, microsecond=0) + HOUR
            traces_expiring.send(sender=Trace, experiment_id=experiment.pk, start=start, end=min(end, cutoff))
        Trace.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        Session.objects.filter(pk__in=[pk for pk, _ in sessions]).delete()
        if history:
            # Hours wholly before the oldest trace left are history now.
            retained = through.replace(minute=0, second=0, microsecond=0)
            Experiment.objects.filter(pk=experiment.pk).filter(Q(retained_from__isnull=True) | Q(retained_from__lt=retained)).update(
                retained_from=retained
            )
    return len(rows), len(sessions)


def set_retention(experiment: Experiment, days: int | None) -> Experiment:
    """Keep the experiment's traces `days` days (0: for good; None: as EVALAPP_RETENTION_DAYS says). The sweep
    applies it from its next run."""
    if days is not None and days < 0:
        raise ValueError("retention days can't be negative")
    experiment.retention_days = days
    experiment.save(update_fields=["retention_days"])
    return experiment
