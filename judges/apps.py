from __future__ import annotations

import sys

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_schedule(sender, **kwargs) -> None:
    from judges.tasks import ensure_schedule

    ensure_schedule()


class JudgesConfig(AppConfig):
    name = "judges"
    verbose_name = "Judges"

    def ready(self) -> None:
        from judges import receivers
        from traces.signals import experiment_deleting, feedback_value_rule, traces_ingested

        traces_ingested.connect(receivers.traces_ingested, dispatch_uid="judges-on-ingest")
        experiment_deleting.connect(receivers.experiment_deleting, dispatch_uid="judges-delete-experiment")
        feedback_value_rule.connect(receivers.feedback_value_rule, dispatch_uid="judges-feedback-values")
        post_migrate.connect(_create_schedule, sender=self, dispatch_uid="judges-schedule")
        if "qcluster" in sys.argv[1:2]:
            # litellm and the OpenAI client take seconds to import and a first call more; each worker process does
            # that as it starts, before it takes a task, so a burst's first judgements don't wait on it. Not in the
            # qcluster parent: its sentinel, monitor and pusher would each carry those pages without calling a model.
            from django_q.signals import post_spawn

            from judges.llm import warm_up

            post_spawn.connect(warm_up, dispatch_uid="judges-warm-up")
