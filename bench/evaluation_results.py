"""Server time of an evaluation run's results: two runs of 5,000 rows on one dataset, each judged by 5 judges (3
yes/no, 2 scored 1–5: 25,000 evaluations and assessments per run; about 5% of the second run's verdicts differ
from the first's), in SQLite or PostgreSQL. Measures, in-process:

- `summary`: evaluations.results.summarize — per-judge pass rates with Wilson intervals, means with t intervals,
  gates and progress (four queries);
- `rows`: one page of 25 rows with their verdicts (evaluations.results.row_results), the first and the last page;
- `compare`: evaluations.results.compare — both runs joined by record, McNemar / Wilcoxon per judge, every
  regression and improvement with their outputs and rationales;
- `run page`, `compare page`: the pages rendered by Django's test client.

    .venv/bin/python bench/evaluation_results.py --db sqlite
    .venv/bin/python bench/evaluation_results.py --db postgres

PostgreSQL uses a scratch database `evalapp_bench_evaluations` on 127.0.0.1 (dropped and re-created); SQLite a temp
file. Data is written with bulk inserts (this measures reading)."""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import percentile, setup_database  # noqa: E402

JUDGES = [("correct", "boolean"), ("grounded", "boolean"), ("safe", "boolean"), ("helpful", "integer"), ("concise", "integer")]





def populate(args):
    from django.db import transaction
    from django.utils import timezone

    from datasets.models import Dataset, DatasetRecord
    from datasets.records import content_hash, record_key
    from evaluations.models import EvaluationRun, RunGate, RunRow
    from judges.models import Evaluation, EvaluationStatus, Judge, JudgeVersion, ModelEndpoint
    from traces.models import Assessment, AssessmentSource, Experiment, Trace

    rng = random.Random(41)
    now = timezone.now()
    endpoint = ModelEndpoint.objects.create(name="bench", model="openai/bench", api_base="http://127.0.0.1:9/v1")
    experiment = Experiment.objects.create(name="bench-evaluations")
    judges = []
    for name, output_type in JUDGES:
        extra = {"min_value": 1, "max_value": 5} if output_type == "integer" else {}
        judge = Judge.objects.create(experiment=experiment, name=name, instructions="Judge {{ outputs }}", endpoint=endpoint, output_type=output_type, **extra)
        JudgeVersion.objects.create(judge=judge, version=1, config={})
        judges.append(judge)
    dataset = Dataset.objects.create(experiment=experiment, name="bench-set")
    print(f"writing {args.rows:,} records and 2 runs of {args.rows:,} rows × {len(JUDGES)} judges ...", flush=True)
    began = time.monotonic()
    records = []
    for n in range(args.rows):
        inputs = {"question": f"question {n} about refunds and returns"}
        expectations = {"expected_facts": ["30-day window"]}
        records.append(DatasetRecord(dataset=dataset, key=record_key(inputs), inputs=inputs, expectations=expectations, content_hash=content_hash(inputs, expectations, None)))
    DatasetRecord.objects.bulk_create(records, batch_size=2000)
    records = list(DatasetRecord.objects.filter(dataset=dataset).order_by("pk"))
    runs = []
    for run_index in range(2):
        run = EvaluationRun.objects.create(
            id=uuid.uuid4(), experiment=experiment, dataset=dataset, dataset_name=dataset.name, name=f"agent v{run_index + 1}", status="done",
            judges=[{"judge_id": j.pk, "name": j.name, "version": 1, "output_type": j.output_type} for j in judges], row_count=args.rows, finished_at=now,
        )
        RunGate.objects.create(run=run, judge_name="correct", threshold=0.8)
        RunGate.objects.create(run=run, judge_name="helpful", metric="mean", threshold=3.5)
        chunk = 1000
        for offset in range(0, args.rows, chunk):
            with transaction.atomic():
                part = records[offset : offset + chunk]
                traces = [
                    Trace(trace_id=f"bench-{run_index}-{offset + i:06d}", experiment=experiment, name="agent", started_at=now, request_preview="q", response_preview="a")
                    for i in range(len(part))
                ]
                Trace.objects.bulk_create(traces, batch_size=1000)
                RunRow.objects.bulk_create(
                    [
                        RunRow(run=run, position=offset + i, record=record, record_version=1, record_hash=record.content_hash, inputs=record.inputs,
                               expectations=record.expectations, outputs=f"answer {offset + i} of run {run_index}", trace=trace)
                        for i, (record, trace) in enumerate(zip(part, traces))
                    ],
                    batch_size=1000,
                )
                assessments, evaluations = [], []
                for position, trace in enumerate(traces, start=offset):
                    for judge in judges:
                        # The same verdict as the first run's on the same record, except for about 5% of them.
                        same = random.Random(f"{position}-{judge.name}")
                        value = same.random() < 0.85 if judge.output_type == "boolean" else same.randint(2, 5)
                        if run_index and rng.random() < 0.05:
                            value = (not value) if judge.output_type == "boolean" else rng.randint(1, 5)
                        assessments.append(Assessment(trace=trace, name=judge.name, value=value, rationale="[bench] because the answer says so",
                                                      source_type=AssessmentSource.LLM_JUDGE, source_id=f"judge:{judge.pk}", judge_name=judge.name,
                                                      judge_version=1, cost_usd=Decimal("0.0004"), created_at=now))
                Assessment.objects.bulk_create(assessments, batch_size=2000)
                for assessment in assessments:
                    judge = next(j for j in judges if j.name == assessment.name)
                    evaluations.append(Evaluation(judge=judge, judge_version=1, trace_id=assessment.trace_id, manual=True, job=run.pk, status=EvaluationStatus.DONE,
                                                  assessment=assessment, cost_usd=Decimal("0.0004"), finished_at=now))
                Evaluation.objects.bulk_create(evaluations, batch_size=2000)
        runs.append(run)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"  written in {time.monotonic() - began:.0f} s", flush=True)
    return experiment, runs


def measure(name: str, action, rounds: int) -> None:
    from django.db import connection

    action()  # warm
    captured: list[str] = []

    def count(execute, sql, params, many, context):
        captured.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        action()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    print(f"{name:14} p50 {percentile(times, 0.5):7.1f} ms   p95 {percentile(times, 0.95):7.1f} ms   {len(captured):3d} queries   ({rounds} rounds)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench_evaluations")
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    setup_database(args, "evaluations")

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from evaluations.results import compare, row_results, summarize

    experiment, (base, new) = populate(args)
    summary = summarize(new)
    print(f"{args.db}: " + ", ".join(f"{m.name} n={m.n} " + (f"{m.pass_rate}" if m.pass_rate is not None else f"mean {m.mean}") for m in summary.judges), flush=True)
    comparison = compare(base, new)
    print(f"  compare: {comparison.matched:,} pairs, {len(comparison.regressions):,} regressions, {len(comparison.improvements):,} improvements; "
          + ", ".join(f"{j.name} p={j.p_value:.3g}" for j in comparison.judges if j.p_value is not None), flush=True)
    client = Client()
    client.force_login(get_user_model().objects.create_user(username="bench", password="x"))
    run_url = reverse("evaluation-run", args=[experiment.pk, new.pk])
    compare_url = reverse("evaluation-compare", args=[experiment.pk, new.pk]) + f"?with={base.pk}"
    last_page = -(-args.rows // 25)
    measure("summary", lambda: summarize(new), args.rounds)
    measure("runs list", lambda: client.get(reverse("experiment-evaluations", args=[experiment.pk])), args.rounds)
    measure("rows (first)", lambda: row_results(new, offset=0, limit=25), args.rounds)
    measure("rows (last)", lambda: row_results(new, offset=(last_page - 1) * 25, limit=25), args.rounds)
    measure("compare", lambda: compare(base, new), max(3, args.rounds // 3))
    measure("run page", lambda: client.get(run_url), args.rounds)
    measure("compare page", lambda: client.get(compare_url), max(3, args.rounds // 3))


if __name__ == "__main__":
    main()
