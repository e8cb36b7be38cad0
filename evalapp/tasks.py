"""evalapp's entry points for the broker (django-q2): the every-minute alert check."""

from __future__ import annotations

from dataclasses import asdict

from evalapp.alerts.evaluate import check_rules
from judges import queue

ALERTS_SCHEDULE = "evalapp: check alert rules"


def check_alerts() -> dict:
    return asdict(check_rules())


def ensure_schedule() -> None:
    """Idempotent: the every-minute alert check, on the queue this process serves."""
    queue.schedule_every_minute(ALERTS_SCHEDULE, check_alerts)
