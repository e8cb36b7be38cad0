"""One alert check (evalapp.alerts.evaluate.check_rules) with 50 rules over an experiment holding 1,000,000
assessments: 200,000 traces over 30 days, 5 trace judges (4 yes/no, 1 scored 1–5), every trace judged.

The 50 rules mix every kind and four window lengths (15 min, 1 h, 4 h, 24 h), drops tested against the window
before; the check shares one tally per distinct window across the rules. Prints the check's wall time (best and
median of --repeat runs) and its query count.

    .venv/bin/python bench/alerts.py --db postgres     # scratch database evalapp_bench_alerts on 127.0.0.1
    .venv/bin/python bench/alerts.py --db sqlite --traces 50000

Target (issue 14): ≤ 1 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import setup_database  # noqa: E402 - bench/ is not a package

JUDGES = (("relevance", "boolean"), ("safety", "boolean"), ("groundedness", "boolean"), ("tone_ok", "boolean"), ("quality", "integer"))
DAYS = 30


def load(traces: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from evalapp.models import AlertKind, AlertRule
    from judges.models import Judge, ModelEndpoint
    from traces.models import Assessment, AssessmentSource, Experiment, Trace

    rng = random.Random(5)
    now = timezone.now()
    experiment = Experiment.objects.create(name="alerts-bench")
    endpoint = ModelEndpoint.objects.create(name="bench", model="openai/bench")
    judges = [Judge.objects.create(experiment=experiment, name=name, output_type=kind, endpoint=endpoint, instructions="{{ outputs }}") for name, kind in JUDGES]
    started = time.perf_counter()
    batch = 5000
    step = DAYS * 24 * 3600 / traces
    for first in range(0, traces, batch):
        with transaction.atomic():
            rows = Trace.objects.bulk_create(
                Trace(
                    trace_id=f"bench-{index}", experiment=experiment, started_at=now - timedelta(seconds=(traces - index) * step),
                    duration_ms=rng.randint(200, 4000), status="ERROR" if rng.random() < 0.03 else "OK",
                )
                for index in range(first, min(traces, first + batch))
            )
            Assessment.objects.bulk_create(
                Assessment(
                    trace=trace, name=judge.name, judge_name=judge.name, judge_version=1, source_type=AssessmentSource.LLM_JUDGE,
                    value=(rng.random() < 0.85) if judge.output_type == "boolean" else rng.randint(1, 5),
                    error_code="" if rng.random() > 0.02 else "provider_error", cost_usd="0.0004", created_at=trace.started_at,
                )
                for trace in rows
                for judge in judges
            )
    print(f"loaded {traces:,} traces and {traces * len(judges):,} assessments in {time.perf_counter() - started:.0f} s")
    rules = []
    for judge in judges[:4]:
        for window in (15, 60, 240, 1440):
            rules.append(AlertRule(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.7, window_minutes=window))
        rules.append(AlertRule(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_DROP, threshold=0.1, window_minutes=60))
        rules.append(AlertRule(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_DROP, threshold=0.1, window_minutes=1440))
        rules.append(AlertRule(experiment=experiment, judge=judge, kind=AlertKind.JUDGE_ERROR_RATE_ABOVE, threshold=0.1, window_minutes=60))
        rules.append(AlertRule(experiment=experiment, judge=judge, kind=AlertKind.JUDGE_ERROR_RATE_ABOVE, threshold=0.1, window_minutes=1440))
        rules.append(AlertRule(experiment=experiment, judge=judge, kind=AlertKind.JUDGE_COST_ABOVE, threshold=50, window_minutes=1440))
        rules.append(AlertRule(experiment=experiment, judge=judge, kind=AlertKind.JUDGE_COST_ABOVE, threshold=50, window_minutes=60))
    quality = judges[4]
    rules += [
        AlertRule(experiment=experiment, judge=quality, kind=AlertKind.MEAN_BELOW, threshold=2.5, window_minutes=60),
        AlertRule(experiment=experiment, judge=quality, kind=AlertKind.MEAN_BELOW, threshold=2.5, window_minutes=1440),
        AlertRule(experiment=experiment, judge=quality, kind=AlertKind.MEAN_DROP, threshold=0.5, window_minutes=60),
        AlertRule(experiment=experiment, judge=quality, kind=AlertKind.MEAN_DROP, threshold=0.5, window_minutes=240),
        AlertRule(experiment=experiment, kind=AlertKind.TRACE_ERROR_RATE_ABOVE, threshold=0.1, window_minutes=60),
        AlertRule(experiment=experiment, kind=AlertKind.TRACE_ERROR_RATE_ABOVE, threshold=0.1, window_minutes=1440),
        AlertRule(experiment=experiment, kind=AlertKind.LATENCY_P95_ABOVE, threshold=10000, window_minutes=60),
        AlertRule(experiment=experiment, kind=AlertKind.LATENCY_P95_ABOVE, threshold=10000, window_minutes=1440),
        AlertRule(experiment=experiment, judge=quality, kind=AlertKind.JUDGE_ERROR_RATE_ABOVE, threshold=0.1, window_minutes=60),
        AlertRule(experiment=experiment, judge=quality, kind=AlertKind.JUDGE_COST_ABOVE, threshold=50, window_minutes=1440),
    ]
    AlertRule.objects.bulk_create(rules)
    print(f"{len(rules)} rules")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench_alerts")
    parser.add_argument("--traces", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    setup_database(args)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from evalapp.alerts.evaluate import check_rules

    load(args.traces)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would have after a bulk load
    times = []
    for attempt in range(args.repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            report = check_rules()
            times.append(time.perf_counter() - started)
        if attempt == 0:
            print(f"checked {report.rules} rules: {report.opened} opened, {len(queries)} queries")
    print(f"{args.db}: one check of {report.rules} rules over {args.traces * len(JUDGES):,} assessments: best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms ({args.repeat} runs)")


if __name__ == "__main__":
    main()
