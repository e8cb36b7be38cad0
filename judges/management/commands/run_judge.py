from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from judges.errors import ConfigError
from judges.llm import ERROR_TITLES
from judges.manual import judge_by_hand
from judges.models import Judge
from traces.payload import whole_number


class Command(BaseCommand):
    help = (
        "Judge one trace or one session now, in this process, and record the assessment (ignores sampling, filters "
        "and the on/off switch; honours the endpoint's limits and the judge's spend cap, like every judgement)."
    )

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
            [evaluation] = judge_by_hand(found, trace_ids=[trace] if trace else None, session_ids=[session] if session else None)
        except ConfigError as error:
            raise CommandError(str(error)) from None
        assessment = evaluation.assessment
        if assessment is None:  # released unjudged (e.g. the judge was paused meanwhile): it waits in the queue
            raise CommandError(f"{found.name} did not judge it now ({evaluation.status}); it stays queued for the workers.")
        if assessment.error_code:
            self.stdout.write(f"{found.name} v{assessment.judge_version}: {ERROR_TITLES.get(assessment.error_code, assessment.error_code)} — {assessment.error_message}")
            return
        cost = f"${assessment.cost_usd:.6f}" if assessment.cost_usd is not None else "cost unknown"
        self.stdout.write(
            f"{found.name} v{assessment.judge_version}: {assessment.value!r} — {assessment.rationale}\n"
            f"  {assessment.input_tokens} + {assessment.output_tokens} tokens, {cost}, {assessment.latency_ms} ms"
        )
