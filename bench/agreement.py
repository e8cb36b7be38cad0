"""Server time of a judge's agreement with people: 100,000 traces, a yes/no judge's verdict on each (100,000
verdicts, 10% of them re-judged so the earlier verdict is history), 2,000 traces labelled by a person (about 10%
against the judge) and 300 of them by a second person, in SQLite or PostgreSQL. Measures, in-process:

- `report`: judges.labels.report — the pairs of every version, accuracy and κ with their bootstrap intervals,
  the inter-annotator figures and the first page of disagreements (what the API answers); the figures are
  remembered by their pairs (judges.labels.measured), so `cold` is the same with the cache emptied first, as
  after a new label;
- `page`: the Agreement page rendered by Django's test client (the same plus the template);
- `card`: the Judges tab's agreement line (evalapp.ui.agreement.attach_agreement) for the judge.

    .venv/bin/python bench/agreement.py --db sqlite
    .venv/bin/python bench/agreement.py --db postgres

Target (issue 13): p95 ≤ 150 ms for the agreement and the first page of disagreements on both databases.
PostgreSQL uses a scratch database `evalapp_bench_agreement` on 127.0.0.1 (dropped and re-created); SQLite a temp
file. Data is written with bulk inserts (this measures reading)."""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import percentile, setup_database  # noqa: E402


def populate(args):
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from judges.models import Judge, JudgeVersion, ModelEndpoint
    from traces.models import Assessment, AssessmentSource, Experiment, Trace

    rng = random.Random(13)
    now = timezone.now()
    start = now - timedelta(days=30)
    endpoint = ModelEndpoint.objects.create(name="bench", model="openai/bench", api_base="http://127.0.0.1:9/v1")
    experiment = Experiment.objects.create(name="bench-agreement")
    judge = Judge.objects.create(experiment=experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint, created_at=start)
    JudgeVersion.objects.create(judge=judge, version=1, config={}, created_at=start)
    source = f"judge:{judge.pk}"
    print(f"writing {args.verdicts:,} traces and verdicts, {args.labels:,} labels ...", flush=True)
    began = time.monotonic()
    truth: dict[int, bool] = {}
    chunk = 5_000
    for offset in range(0, args.verdicts, chunk):
        with transaction.atomic():
            traces = [
                Trace(trace_id=f"bench-{n:07d}", experiment=experiment, name="agent", started_at=start + timedelta(seconds=25 * n), request_preview="q", response_preview="a")
                for n in range(offset, min(args.verdicts, offset + chunk))
            ]
            Trace.objects.bulk_create(traces, batch_size=1000)
            verdicts = []
            for trace in traces:
                truth[trace.pk] = rng.random() < 0.8
                said = truth[trace.pk] if rng.random() > 0.1 else not truth[trace.pk]
                if rng.random() < 0.1:  # judged twice: the first verdict is history
                    verdicts.append(Assessment(trace=trace, name="helpful", value=not said, source_type=AssessmentSource.LLM_JUDGE, source_id=source,
                                               judge_name="helpful", judge_version=1, valid=False, created_at=now))
                verdicts.append(Assessment(trace=trace, name="helpful", value=said, rationale="[bench] because", source_type=AssessmentSource.LLM_JUDGE,
                                           source_id=source, judge_name="helpful", judge_version=1, created_at=now))
            Assessment.objects.bulk_create(verdicts, batch_size=2000)
    users = [get_user_model().objects.create_user(username=name, password="x") for name in ("ann", "bob")]
    labelled = rng.sample(sorted(truth), args.labels)
    labels = [Assessment(trace_id=pk, name="helpful", value=truth[pk], source_type=AssessmentSource.HUMAN, source_id="ann", created_at=now) for pk in labelled]
    labels += [
        Assessment(trace_id=pk, name="helpful", value=truth[pk] if rng.random() > 0.1 else not truth[pk], source_type=AssessmentSource.HUMAN,
                   source_id="bob", created_at=now + timedelta(seconds=1))
        for pk in labelled[: args.second]
    ]
    Assessment.objects.bulk_create(labels, batch_size=2000)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after a bulk load: the planner's row counts
    print(f"  written in {time.monotonic() - began:.0f} s", flush=True)
    return judge, users[0]


def measure(name: str, action, rounds: int) -> None:
    action()  # warm: imports, caches, the database's own
    times, cpu = [], []
    for _ in range(rounds):
        began, began_cpu = time.perf_counter(), time.process_time()
        action()
        times.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    print(
        f"{name:8} p50 {percentile(times, 0.5):6.1f} ms   p95 {percentile(times, 0.95):6.1f} ms   "
        f"(this process's CPU: p50 {percentile(cpu, 0.5):6.1f}, p95 {percentile(cpu, 0.95):6.1f} ms; {rounds} requests)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench_agreement")
    parser.add_argument("--verdicts", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--second", type=int, default=300, help="labels by a second person")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    setup_database(args, "agreement")

    from django.test import Client
    from django.urls import reverse

    from evalapp.ui.agreement import attach_agreement
    from judges.labels import report
    from judges.models import Judge

    judge, user = populate(args)
    judge = Judge.objects.select_related("endpoint").get(pk=judge.pk)
    first = report(judge)
    current = first["versions"][0]
    print(f"{args.db}: {current['n']:,} pairs, accuracy {current['accuracy']}, κ {current['kappa']}, "
          f"{first['disagreements']['total']:,} disagreements, inter-annotator n {first['inter_annotator']['n']}", flush=True)
    client = Client()
    client.force_login(user)
    url = reverse("judge-agreement", args=[judge.experiment_id, judge.pk])
    from django.core.cache import cache

    def cold() -> None:
        cache.clear()  # as after a new label: the figures' bootstrap is computed again
        report(judge)

    measure("cold", cold, args.rounds)
    measure("report", lambda: report(judge), args.rounds)
    measure("page", lambda: client.get(url), args.rounds)
    measure("card", lambda: attach_agreement([judge]), args.rounds)


if __name__ == "__main__":
    main()
