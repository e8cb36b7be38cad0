"""The judging doorbell: at most one judging task waits in the broker at a time.

Every drain claims whatever is pending (judges.worker.drain, `take_more`), so a task queued while one is waiting
adds nothing but a no-op for a worker to run later — and with a task per ingest request, a drain of two minutes
left hundreds of them in the queue, which a lone worker process then worked through one by one (~10 ms each,
broker included) while new work waited behind them: a burst's first claim 1 s late (design note 51).

`ring()` runs after the work's transaction committed. It queues a task only when none is waiting: the row says
when one was last queued; a task clears it (`answer()`) as it starts, before its drain claims anything. So
work committed before a ring that found a task waiting is claimed by that task's drain (which starts later), and
work committed after the answer rings again. A task that was queued and lost (a broker restart) or is stuck
behind a busy worker only silences the bell for RING_SECONDS; the every-minute sweep covers the rest."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.conf import Conf

from judges.models import JudgingBell

# A task queued this long ago and not started is taken as lost or stuck behind a busy worker: ring again.
RING_SECONDS = 10


def ring(*, trust_a_waiting_task: bool = False) -> bool:
    """True when the caller should queue a judging task now (no task is waiting), and the bell now says one is.
    `trust_a_waiting_task` (a drain asking for help): a task queued long ago counts as waiting, not lost — with one
    worker process, the helper queued at the start of a long drain waits for it, and taking it for lost every
    RING_SECONDS queued ~12 spare tasks a 120-s drain; new work's rings still replace a lost one."""
    now = timezone.now()
    bell = JudgingBell.objects.filter(queue=Conf.CLUSTER_NAME)
    if trust_a_waiting_task:
        waiting, free = Q(rung_at__isnull=False), Q(rung_at__isnull=True)
    else:
        silent_since = now - timedelta(seconds=RING_SECONDS)
        waiting, free = Q(rung_at__gt=silent_since), Q(rung_at__isnull=True) | Q(rung_at__lte=silent_since)
    if bell.filter(waiting).exists():  # a read: most rings under load stop here, writing nothing
        return False
    if bell.filter(free).update(rung_at=now):
        return True
    try:
        with transaction.atomic():
            JudgingBell.objects.create(queue=Conf.CLUSTER_NAME, rung_at=now)
    except IntegrityError:  # another process rang first
        return False
    return True


def answer() -> None:
    """A judging task is starting: the next work committed needs a task of its own unless this one's drain takes it."""
    JudgingBell.objects.filter(queue=Conf.CLUSTER_NAME, rung_at__isnull=False).update(rung_at=None)
