"""`manage.py demo`: an experiment full of realistic customer-support agent traces, to explore the app with.

The traces are scripted in evalapp/demo_script.py (conversations along one thread, a known share of bad answers,
a release half-way through the week). Everything is written through `ingest_traces`, so the demo exercises the
same path as the API and OTLP.
"""

from __future__ import annotations

import os
import random
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from evalapp.demo_script import build_traces
from evalapp.models import AlertKind, AlertRule
from judges.actions import create_judge
from judges.endpoint_actions import create_endpoint
from judges.models import Judge, ModelEndpoint
from traces.actions import create_experiment, ingest_traces
from traces.models import Experiment, Trace

STANDIN_URL = "http://127.0.0.1:8910/v1"
STANDIN_ENDPOINT = "Stand-in model (not a real LLM)"
DEMO_JUDGES: dict[str, dict[str, Any]] = {
    "relevance_to_query": {"builtin_key": "RelevanceToQuery"},
    "pii_leakage": {"builtin_key": "PIILeakage"},
    "retrieval_groundedness": {
        "builtin_key": "RetrievalGroundedness",
        "sample_rate": 0.5,
        "filter_string": "metadata.environment = 'production'",
    },
    "polite_tone": {
        "instructions": (
            "Is {{ outputs }} polite and professional in tone, as a reply to {{ inputs }}? "
            "Blunt is fine; rude, sarcastic or dismissive is not."
        ),
        "output_type": "boolean",
    },
    "answer_quality": {
        "instructions": "Rate how well {{ outputs }} resolves the customer's request in {{ inputs }}, 1 (not at all) to 5 (fully).",
        "output_type": "integer",
        "min_value": 1,
        "max_value": 5,
    },
    "user_frustration": {"scope": "session", "builtin_key": "UserFrustration", "session_idle_seconds": 120},
    "conversation_completeness": {"scope": "session", "builtin_key": "ConversationCompleteness"},
}
BATCH_SIZE = 200


class Command(BaseCommand):
    help = "Create a demo experiment of realistic customer-support agent traces, and a demo login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--experiment", default="demo-agent", help="experiment name (default: demo-agent)")
        parser.add_argument("--traces", type=int, default=400, help="how many traces to add (default: 400)")
        parser.add_argument("--seed", type=int, default=7, help="the same seed gives the same content")
        parser.add_argument("--if-missing", action="store_true", help="do nothing if the experiment has traces")
        parser.add_argument("--reset", action="store_true", help="delete the experiment and its traces first")
        parser.add_argument("--user", default="demo", help="login to create if missing (default: demo)")
        parser.add_argument("--password", default="demo", help="its password; an existing user's is never changed")
        parser.add_argument(
            "--standin-url",
            default=os.environ.get("EVALAPP_STANDIN_URL", STANDIN_URL),
            help="api_base of the stand-in model server (manage.py standin_llm)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.ensure_user(options["user"], options["password"])
        self.ensure_user("viewer", "viewer", editor=False)  # to see what a read-only colleague sees
        name: str = options["experiment"]
        if options["reset"]:
            Experiment.objects.filter(name=name).delete()
        experiment = Experiment.objects.filter(name=name).first() or create_experiment(
            name, "Demo data: an e-commerce customer-support agent."
        )
        self.ensure_judges(experiment, self.ensure_standin_endpoint(options["standin_url"]))
        self.ensure_alert_rules(experiment)
        if options["if_missing"] and experiment.traces.exists():
            self.stdout.write(f"Experiment {name!r} already has traces; no demo data added.")
            return
        seed: int = options["seed"]
        id_prefix = f"demo-{seed}-"
        traces = build_traces(random.Random(seed), options["traces"], id_prefix, next_free_number(id_prefix))
        for start in range(0, len(traces), BATCH_SIZE):
            ingest_traces(experiment, traces[start : start + BATCH_SIZE])
        sessions = len({trace.session_id for trace in traces if trace.session_id})
        errors = sum(1 for trace in traces if trace.spans[0].status == "ERROR")
        self.stdout.write(
            f"Experiment {name!r} (id {experiment.pk}): added {len(traces)} traces ({errors} errors, "
            f"{sessions} sessions); it now has {experiment.traces.count()} traces."
        )

    def ensure_standin_endpoint(self, api_base: str) -> ModelEndpoint:
        endpoint = ModelEndpoint.objects.filter(name=STANDIN_ENDPOINT).first()
        if endpoint is None:
            endpoint = create_endpoint(
                name=STANDIN_ENDPOINT,
                model="openai/evalapp-standin",
                api_base=api_base,
                api_key="standin-demo-key",
                max_concurrency=16,
                timeout_seconds=30,
                # Priced like a small real model, so cost charts and caps have something to show.
                input_cost_per_million="0.40",
                output_cost_per_million="1.60",
                context_window=128_000,
                is_standin=True,
            )
            self.stdout.write(f"Created model endpoint {STANDIN_ENDPOINT!r} -> {api_base}")
        return endpoint

    def ensure_judges(self, experiment: Experiment, endpoint: ModelEndpoint) -> None:
        for name, fields in DEMO_JUDGES.items():
            if not Judge.objects.filter(experiment=experiment, name=name).exists():
                create_judge(experiment, name=name, endpoint=endpoint, active=True, **fields)

    def ensure_alert_rules(self, experiment: Experiment) -> None:
        """Two rules, so the Alerts tab shows the release's refusals: relevance over the last three days (the 1.5.0
        half of the week) below 90%, and the trace error rate. Mail goes to the worker's log (console backend)."""
        if AlertRule.objects.filter(experiment=experiment).exists():
            return
        relevance = Judge.objects.get(experiment=experiment, name="relevance_to_query")
        AlertRule.objects.create(
            experiment=experiment, judge=relevance, kind=AlertKind.PASS_RATE_BELOW, threshold=0.9, hysteresis=0.02,
            window_minutes=3 * 24 * 60, email_to="oncall@example.com", created_by="demo",
        )
        AlertRule.objects.create(
            experiment=experiment, kind=AlertKind.TRACE_ERROR_RATE_ABOVE, threshold=0.2, hysteresis=0.02, window_minutes=24 * 60, created_by="demo"
        )

    def ensure_user(self, username: str, password: str, *, editor: bool = True) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return
        User.objects.create_user(username=username, password=password, is_staff=editor)
        role = "an editor (staff)" if editor else "a viewer (can read and give feedback, not change judges)"
        self.stdout.write(f"Created user {username!r}, {role}: log in as {username} / {password}")


def next_free_number(id_prefix: str) -> int:
    """One past the highest `<id_prefix><n>` stored in any experiment (trace ids are global), so a second run
    adds new traces instead of colliding with the first."""
    numbers = [
        int(suffix)
        for trace_id in Trace.objects.filter(trace_id__startswith=id_prefix).values_list("trace_id", flat=True)
        if (suffix := trace_id[len(id_prefix) :]).isdigit()
    ]
    return max(numbers, default=-1) + 1
