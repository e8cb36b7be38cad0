from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_schedule(sender, **kwargs) -> None:
    from evaluations.tasks import ensure_schedule

    ensure_schedule()


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    verbose_name = "Evaluation runs"

    def ready(self) -> None:
        from evaluations import receivers
        from judges.signals import job_settled

        job_settled.connect(receivers.job_settled, dispatch_uid="evaluations-job-settled")
        post_migrate.connect(_create_schedule, sender=self, dispatch_uid="evaluations-schedule")
