"""The every-minute sweep: whatever the on-ingest path missed or a dead worker left behind.

It reclaims evaluations whose lease ran out, looks again at traces written since its last run (with an overlap),
selects idle sessions, and re-queues pending work nobody has picked up (its task was lost, or the broker was
down when it was queued); then deletes traces past their experiment's retention (traces.retention) and goes on
with experiments being deleted (traces.deletion: what a dead task or a down broker left)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule

from judges import outages, try_runs
from judges.models import Evaluation, EvaluationStatus, JudgeExchange, SweepState
from judges.selection import select_sessions, select_traces
from traces import deletion, retention
from traces.models import Trace, TraceStatus

logger = logging.getLogger(__name__)

PENDING, RUNNING, ERROR = EvaluationStatus.PENDING, EvaluationStatus.RUNNING, EvaluationStatus.ERROR
MAX_ATTEMPTS = 3
SWEEP_OVERLAP = timedelta(minutes=2)
SWEEP_SETTLE = timedelta(seconds=5)
SWEEP_MAX_TRACES = 20_000
STALE_PENDING = timedelta(seconds=30)
SELECT_CHUNK = 1000


@dataclass
class SweepReport:
    traces_examined: int = 0
    traces_expired: int = 0
    experiments_deleted: list[int] = field(default_factory=list)
    sessions_selected: int = 0
    reclaimed: int = 0
    abandoned: int = 0
    endpoints_resumed: list[str] = field(default_factory=list)
    pending_ids: list[int] = field(default_factory=list)


def reclaim_expired(now: datetime | None = None) -> tuple[list[int], int]:
    """Running evaluations whose lease ran out (their worker died): back to pending, or error after
    MAX_ATTEMPTS tries."""
    now = now or timezone.now()
    expired = Evaluation.objects.filter(status=RUNNING, lease_expires_at__lt=now)
    abandoned = expired.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=ERROR,
        error_code="provider_error",
        error_message=f"The worker judging this stopped {MAX_ATTEMPTS} times before finishing; not retried automatically.",
        finished_at=now,
        lease_expires_at=None,
    )
    reclaimable = list(expired.filter(attempts__lt=MAX_ATTEMPTS).values_list("pk", flat=True))
    reclaimed = Evaluation.objects.filter(pk__in=reclaimable, status=RUNNING, lease_expires_at__lt=now).update(
        status=PENDING, claimed_by="", lease_expires_at=None
    )
    if reclaimed or abandoned:
        logger.info("sweep: %d expired leases reclaimed, %d abandoned", reclaimed, abandoned)
    return reclaimable, abandoned


def sweep_traces(now: datetime | None = None, *, max_traces: int = SWEEP_MAX_TRACES) -> int:
    """Look again at traces written since the last sweep (with an overlap), selecting what an enqueue missed.
    A run that hits the size cap leaves a (time, id) cursor, and the next run continues from it."""
    now = now or timezone.now()
    state = SweepState.objects.filter(name="traces").first()
    end = now - SWEEP_SETTLE
    traces = Trace.objects.filter(updated_at__lt=end, experiment__deleting_since__isnull=True).exclude(status=TraceStatus.IN_PROGRESS)
    if state is None:
        traces = traces.filter(updated_at__gte=now - timedelta(hours=1))
    elif state.cursor_pk is not None:
        traces = traces.filter(Q(updated_at__gt=state.watermark) | Q(updated_at=state.watermark, pk__gt=state.cursor_pk))
    else:
        traces = traces.filter(updated_at__gte=state.watermark - SWEEP_OVERLAP)
    rows = list(traces.order_by("updated_at", "pk").values_list("pk", "experiment_id", "updated_at")[:max_traces])
    by_experiment: dict[int, list[int]] = defaultdict(list)
    for pk, experiment_id, _ in rows:
        by_experiment[experiment_id].append(pk)
    for experiment_id, pks in by_experiment.items():
        for chunk in range(0, len(pks), SELECT_CHUNK):
            select_traces(experiment_id, pks[chunk : chunk + SELECT_CHUNK], only_missing=True)
    if len(rows) == max_traces:
        defaults = {"watermark": rows[-1][2], "cursor_pk": rows[-1][0]}
    else:
        defaults = {"watermark": end, "cursor_pk": None}
    SweepState.objects.update_or_create(name="traces", defaults=defaults)
    return len(rows)


def stale_pending(now: datetime | None = None) -> list[int]:
    """Pending work nobody has picked up for a while: its task was lost (or the judge was just resumed)."""
    now = now or timezone.now()
    return list(
        Evaluation.objects.filter(
            Q(judge__active=True) | Q(manual=True),
            Q(not_before__isnull=True) | Q(not_before__lte=now),
            status=PENDING,
            created_at__lt=now - STALE_PENDING,
            judge__paused_reason="",
            judge__endpoint__paused_reason="",
            judge__experiment__deleting_since__isnull=True,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:10_000]
    )


SWEEP_RAN = "sweep-ran"
SWEEP_LATE = timedelta(minutes=5)


@dataclass
class SweepHealth:
    ok: bool
    last_run: datetime | None
    message: str = ""


def sweep_health(now: datetime | None = None) -> SweepHealth:
    """Whether the every-minute sweep is running. Late when its last run is over five minutes old, or when it
    never ran although its schedule came due five minutes ago (no worker serves the queue it is on)."""
    now = now or timezone.now()
    last_run = SweepState.objects.filter(name=SWEEP_RAN).values_list("watermark", flat=True).first()
    if last_run is not None and now - last_run <= SWEEP_LATE:
        return SweepHealth(True, last_run)
    due = Schedule.objects.filter(func="judges.tasks.sweep").values_list("next_run", flat=True).first()
    if last_run is None and (due is None or now - due <= SWEEP_LATE):
        return SweepHealth(True, None, "the sweep has not run yet")
    since = f"since {last_run:%Y-%m-%d %H:%M} UTC" if last_run else "ever"
    return SweepHealth(
        False,
        last_run,
        f"The every-minute sweep has not run {since}: idle sessions are not judged and work a stopped worker held is "
        f"not picked up again. Start a worker (manage.py qcluster) that serves the queue {Conf.CLUSTER_NAME!r} (EVALAPP_Q_QUEUE).",
    )


EXCHANGES_PER_SWEEP = 10_000


def drop_old_exchanges(now: datetime | None = None) -> int:
    """The judges' own words past the retention (EVALAPP_PROMPT_RETENTION_DAYS), a bounded batch per sweep."""
    days = settings.EVALAPP_PROMPT_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = JudgeExchange.objects.filter(created_at__lt=cutoff) if days else JudgeExchange.objects.all()
    dropped = 0
    while dropped < EXCHANGES_PER_SWEEP and (batch := list(old.values_list("pk", flat=True)[:1000])):
        dropped += JudgeExchange.objects.filter(pk__in=batch).delete()[0]
    return dropped


def sweep(now: datetime | None = None) -> SweepReport:
    report = SweepReport()
    drop_old_exchanges(now)
    try_runs.drop_old(now)
    SweepState.objects.update_or_create(name=SWEEP_RAN, defaults={"watermark": now or timezone.now()})
    report.endpoints_resumed = outages.probe_paused()
    reclaimed_ids, report.abandoned = reclaim_expired(now)
    report.reclaimed = len(reclaimed_ids)
    report.traces_examined = sweep_traces(now)
    fresh_sessions = select_sessions(now)
    report.sessions_selected = len(fresh_sessions)
    report.pending_ids = list(dict.fromkeys(reclaimed_ids + fresh_sessions + stale_pending(now)))
    # Last: judging work first, then retention's batches for what is left of the sweep's time.
    report.traces_expired = retention.delete_expired(now)
    report.experiments_deleted = deletion.continue_deletions()
    return report
