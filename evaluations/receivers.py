"""What evaluations does when judges announces something (connected in evaluations.apps)."""

from __future__ import annotations

from evaluations.actions import finish_if_judged


def job_settled(sender, *, job, **kwargs) -> None:
    """A job has no work left: if it is a run's judging (job id = run id), the run is done."""
    finish_if_judged(job)
