from __future__ import annotations

from django.apps import AppConfig


class EvalappConfig(AppConfig):
    name = "evalapp"
    verbose_name = "evalapp"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from evalapp import rollups
        from traces.models import Assessment
        from traces.signals import traces_written

        # The Overview's hourly rollups go stale when what they sum changes (evalapp.rollups).
        traces_written.connect(rollups.traces_written_receiver, dispatch_uid="overview-rollups-on-ingest")
        post_save.connect(rollups.assessment_saved_receiver, sender=Assessment, dispatch_uid="overview-rollups-on-assessment")
