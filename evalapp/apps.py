from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_schedule(sender, **kwargs) -> None:
    from evalapp.tasks import ensure_schedule

    ensure_schedule()


class EvalappConfig(AppConfig):
    name = "evalapp"
    verbose_name = "evalapp"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from evalapp.overview import compute, rollups
        from traces.models import Assessment
        from traces.signals import assessments_written, traces_expiring, traces_written

        # The Overview's hourly rollups go stale when what they sum changes (evalapp.overview.rollups).
        traces_written.connect(rollups.traces_written_receiver, dispatch_uid="overview-rollups-on-ingest")
        traces_expiring.connect(compute.traces_expiring_receiver, dispatch_uid="overview-rollups-on-retention")
        post_save.connect(rollups.assessment_saved_receiver, sender=Assessment, dispatch_uid="overview-rollups-on-assessment")
        assessments_written.connect(rollups.assessments_written_receiver, dispatch_uid="overview-rollups-on-assessments")
        post_migrate.connect(_create_schedule, sender=self, dispatch_uid="evalapp-alerts-schedule")
