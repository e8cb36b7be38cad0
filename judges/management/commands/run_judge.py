from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from judges.actions import ConfigError, run_judge_on_session, run_judge_on_trace
from judges.llm import ERROR_TITLES
from judges.models import Judge
from traces.models import Session, Trace
from traces.payload import whole_number


class Command(BaseCommand):
    help = "Run a judge on one trace or one session now and record the assessment (ignores sampling and filters)."

    def add_arguments(self, parser):
        parser.add_argument("judge", help="judge name")
        parser.add_argument("--experiment", required=True, help="experiment id or name")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--trace", help="trace id")
        target.add_argument("--session", help="session id")

    def handle(self, *args, judge: str, experiment: str, trace: str | None, session: str | None, **options):
        pk = whole_number(experiment)
        lookup = {"experiment__pk": pk} if pk is not None else {"experiment__name": experiment}
        found = Judge.objects.select_related("endpoint", "experiment").filter(name=judge, **lookup).first()
        if found is None:
            raise CommandError(f"No judge {judge!r} in experiment {experiment!r}.")
        try:
            if trace:
                target = Trace.objects.filter(trace_id=trace, experiment=found.experiment).first()
                if target is None:
                    raise CommandError(f"No trace {trace!r} in experiment {found.experiment.name!r}.")
                assessment = run_judge_on_trace(found, target)
            else:
                target = Session.objects.filter(session_id=session, experiment=found.experiment).first()
                if target is None:
                    raise CommandError(f"No session {session!r} in experiment {found.experiment.name!r}.")
                assessment = run_judge_on_session(found, target)
        except ConfigError as error:
            raise CommandError(str(error)) from None
        if assessment.error_code:
            self.stdout.write(f"{found.name} v{assessment.judge_version}: {ERROR_TITLES.get(assessment.error_code, assessment.error_code)} — {assessment.error_message}")
            return
        cost = f"${assessment.cost_usd:.6f}" if assessment.cost_usd is not None else "cost unknown"
        self.stdout.write(
            f"{found.name} v{assessment.judge_version}: {assessment.value!r} — {assessment.rationale}\n"
            f"  {assessment.input_tokens} + {assessment.output_tokens} tokens, {cost}, {assessment.latency_ms} ms"
        )
