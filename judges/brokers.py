"""django-q2's brokers, patient with an outage (Q_CLUSTER["broker_class"] names one of these).

Left alone, a cluster whose database (the ORM broker) or Redis is down logs a traceback from its pusher, which
then exits and is respawned every ten seconds, and another from the scheduler every thirty. Here a dequeue that
finds its store down waits instead (1 s, doubling up to 30 s), logs one line when the outage starts and one a
minute while it lasts, and one when the store is back; the cluster goes on by itself. judges.quiet_log does the
same for the tracebacks django-q2 logs elsewhere (scheduler, saving results) while the database is down.

The Redis broker is judges.redis_broker.PatientRedis, in a module of its own: importing redis costs every process
~20 MiB (design note 47), and without REDIS_URL nothing needs it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django_q.brokers.orm import ORM

from judges.quiet_log import LOG_EVERY_SECONDS, store_unavailable
from traces.database import describe

logger = logging.getLogger(__name__)

FIRST_WAIT_SECONDS = 1.0
LONGEST_WAIT_SECONDS = 30.0


class Outage:
    """One store's outage as a worker sees it: how long to wait next, and when to say so."""

    def __init__(self, store: str, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.store, self.clock, self.sleep = store, clock, sleep
        self.began: float | None = None
        self.last_logged = 0.0
        self.wait_seconds = FIRST_WAIT_SECONDS
        self.failures = 0

    def failed(self, error: BaseException) -> None:
        """Log (at most once a minute) and wait before the next try."""
        now = self.clock()
        self.failures += 1
        if self.began is None:
            self.began, self.last_logged = now, now
            logger.warning(
                "%s unavailable (%s); waiting for it, retrying every %g s up to %g s",
                self.store,
                describe(error),
                self.wait_seconds,
                LONGEST_WAIT_SECONDS,
            )
        elif now - self.last_logged >= LOG_EVERY_SECONDS:
            self.last_logged = now
            logger.warning(
                "%s still unavailable after %.0f s and %d tries (%s)", self.store, now - self.began, self.failures, describe(error)
            )
        self.sleep(self.wait_seconds)
        self.wait_seconds = min(self.wait_seconds * 2, LONGEST_WAIT_SECONDS)

    def succeeded(self) -> None:
        if self.began is not None:
            logger.warning("%s is back after %.0f s; taking work again", self.store, self.clock() - self.began)
        self.began, self.failures, self.wait_seconds = None, 0, FIRST_WAIT_SECONDS


class PatientORM(ORM):
    """The ORM broker (the queue in the database), waiting out a database outage."""

    def __init__(self, list_key: str | None = None):
        super().__init__(list_key)
        self.outage = Outage("database")

    def dequeue(self):
        try:
            tasks = super().dequeue()
        except (OperationalError, InterfaceError) as error:
            if not store_unavailable(error):
                raise
            self.outage.failed(error)
            return None
        self.outage.succeeded()
        return tasks

    def acknowledge(self, task_id):
        """A task that finished as the database went away can't be removed from the queue: it is handed out again
        after Q_CLUSTER's `retry`, and the judging it claimed is not done twice (claims are conditional updates).
        Raising here would kill django-q2's monitor process."""
        try:
            return super().acknowledge(task_id)
        except (OperationalError, InterfaceError) as error:
            if not store_unavailable(error):
                raise
            logger.warning("could not acknowledge task %s (%s); it will be handed out again", task_id, describe(error))
            return None

