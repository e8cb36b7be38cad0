"""Handing work to the background workers (django-q2). The only module that talks to the broker.

One policy for everyone: work is queued when the transaction that made it commits, never before (a worker must
find the rows). If the broker can't take it, the failure is logged and nothing is raised: the change is saved,
and the every-minute sweep finds the pending evaluations nobody picked up (judges.sweep.stale_pending)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from judges.quiet_log import store_unavailable
from traces.database import describe

logger = logging.getLogger(__name__)


def task_path(task: Callable[..., Any]) -> str:
    """The dotted path django-q2 stores for a task function (what its schedules name)."""
    return f"{task.__module__}.{task.__qualname__}"


def enqueue(task: Callable[..., Any], *args: Any) -> None:
    """Queue `task(*args)` now. Raises if the broker is unreachable; most callers want `enqueue_on_commit`."""
    async_task(task_path(task), *args, q_options={"ack_failure": True})


def enqueue_on_commit(task: Callable[..., Any], *args: Any) -> None:
    """Queue `task(*args)` once the current transaction commits (at once outside one); a broker failure is
    logged and left to the sweep."""
    transaction.on_commit(lambda: enqueue_or_log(task, *args))


def enqueue_or_log(task: Callable[..., Any], *args: Any) -> None:
    """Queue `task(*args)` now; a broker failure is logged and left to the sweep."""
    try:
        enqueue(task, *args)
    except Exception as error:  # the broker is down: the change is saved, and the sweep will find the work
        if store_unavailable(error):  # an outage: one line, not a traceback per request
            logger.warning("could not queue %s (%s); the every-minute sweep will catch up", task_path(task), describe(error))
        else:
            logger.exception("could not queue %s%r; the every-minute sweep will catch up", task_path(task), args)


def schedule_every_minute(name: str, task: Callable[..., Any]) -> None:
    """Idempotent. The schedule names the queue this process is configured for (EVALAPP_Q_QUEUE), so the workers
    that serve that queue run it."""
    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": task_path(task),
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "cluster": Conf.CLUSTER_NAME,
        },
    )


def broker_problem() -> str | None:
    """None if the broker answers (or is the database itself: no REDIS_URL); else why not, in one line."""
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as error:  # the class only: its message names the host and port, and /healthz is public
        return f"{type(error).__name__}: Redis can't be reached at REDIS_URL"
    return None
