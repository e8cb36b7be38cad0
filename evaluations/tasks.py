"""evaluations' entry points for the broker (django-q2): the every-minute check of runs."""

from __future__ import annotations

from evaluations.actions import finish_runs
from judges import queue

RUNS_SCHEDULE = "evalapp: finish evaluation runs"


def check_runs() -> dict[str, int]:
    return finish_runs()


def ensure_schedule() -> None:
    """Idempotent: the every-minute check that marks settled runs done and gives up abandoned ones."""
    queue.schedule_every_minute(RUNS_SCHEDULE, check_runs)
