"""Server time of the experiment pages on a large experiment: 100,000 traces over 30 days in 20,000 five-turn
sessions, 4 trace judges + 1 session judge, every trace and session judged (2% errors), in SQLite or PostgreSQL.
Renders each page in-process with Django's test client (no network, no browser: the time Django spends) and
prints p50/p95 over repeated requests.

    .venv/bin/python bench/pages.py --db sqlite
    .venv/bin/python bench/pages.py --db postgres
    .venv/bin/python bench/pages.py --first-load    # the Overview in Chromium: cold-cache time and bytes sent

Targets (issue 5): p95 ≤ 150 ms for the Traces tab (first page and a filtered page) and the Sessions tab,
≤ 400 ms for the Overview tab; the Judges tab and a trace's page are held to 150 ms too. PostgreSQL uses a scratch database `evalapp_bench_pages` on 127.0.0.1 (dropped and
re-created; `--postgres-url postgres://user@/db?host=/socket/dir&port=5433` for a unix socket); SQLite a temp file.
Data is written with bulk inserts (this measures reading, not ingesting), which bypass the Overview's hourly
rollups (evalapp.overview.rollups): the first 30-day Overview after loading sums every hour from the raw rows ("cold"),
later ones read the stored hours. Then 1,000 more traces over the last three hours, and their verdicts, go in
through the real ingest action and Assessment saves (a steady state: a few hours stale), and the 30-day Overview
is measured again: its first request recomputes the stale hours.
"""

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

TRACE_JUDGES = (
    ("relevance", "boolean", []),
    ("safety", "boolean", []),
    ("tone", "categorical", ["polite", "neutral", "rude"]),
    ("quality", "integer", []),
)
SESSION_JUDGE = ("frustration", "categorical", ["none", "some", "high"])





def value_for(rng: random.Random, output_type: str, categories: list[str]):
    if output_type == "boolean":
        return rng.random() < 0.85
    if output_type == "categorical":
        return rng.choices(categories, weights=[70, 25, 5])[0]
    return rng.randint(1, 5)


def populate(args) -> tuple[int, str]:
    from django.db import transaction
    from django.utils import timezone

    from judges.models import Evaluation, EvaluationStatus, Judge, JudgeVersion, ModelEndpoint
    from traces.models import Assessment, AssessmentSource, Experiment, Session, Trace

    rng = random.Random(7)
    now = timezone.now()
    start = now - timedelta(days=30)
    step = (now - start) / args.traces
    turns = 5
    endpoint = ModelEndpoint.objects.create(name="bench", model="openai/bench", api_base="http://127.0.0.1:9/v1")
    experiment = Experiment.objects.create(name="bench-pages")
    judges = []
    for name, output_type, categories in TRACE_JUDGES:
        judges.append(
            Judge.objects.create(
                experiment=experiment, name=name, instructions="Is {{ outputs }} fine?", output_type=output_type, categories=categories,
                endpoint=endpoint, active=True, enabled_at=start, created_at=start,
            )
        )
    name, output_type, categories = SESSION_JUDGE
    session_judge = Judge.objects.create(
        experiment=experiment, name=name, scope="session", builtin_key="UserFrustration", output_type=output_type, categories=categories,
        endpoint=endpoint, active=True, enabled_at=start, created_at=start,
    )
    for judge in [*judges, session_judge]:
        JudgeVersion.objects.create(judge=judge, version=1, config={}, created_at=start)

    print(f"writing {args.traces:,} traces, {args.traces // turns:,} sessions and their assessments ...", flush=True)
    began = time.monotonic()
    chunk = 5_000
    for offset in range(0, args.traces, chunk):
        with transaction.atomic():
            traces = []
            for n in range(offset, min(args.traces, offset + chunk)):
                at = start + step * n
                error = rng.random() < 0.03
                traces.append(
                    Trace(
                        trace_id=f"bench-{n:07d}", experiment=experiment, name="agent", status="ERROR" if error else "OK",
                        started_at=at, ended_at=at + timedelta(milliseconds=900), duration_ms=rng.randint(300, 4000),
                        request={"messages": [{"role": "user", "content": f"question {n} about my order"}]},
                        response={"content": f"answer {n}: your order ships tomorrow"},
                        request_preview=f"question {n} about my order", response_preview=f"answer {n}: your order ships tomorrow",
                        metadata={"environment": rng.choice(["production", "production", "staging"])},
                        session_id=f"s-{n // turns:06d}", user_id=f"user-{n % 997}",
                        input_tokens=120, output_tokens=40, total_tokens=160, span_count=5, created_at=at, updated_at=at,
                    )
                )
            Trace.objects.bulk_create(traces, batch_size=1000)
            saved = list(Trace.objects.filter(experiment=experiment, trace_id__in=[t.trace_id for t in traces]).only("pk", "trace_id", "started_at"))
            assessments, evaluations = [], []
            for trace in saved:
                for judge in judges:
                    failed = rng.random() < 0.02
                    at = trace.started_at + timedelta(seconds=2)
                    assessments.append(
                        Assessment(
                            trace=trace, name=judge.name, value=None if failed else value_for(rng, judge.output_type, judge.categories),
                            rationale="" if failed else "The answer addresses the question.", source_type=AssessmentSource.LLM_JUDGE,
                            judge_name=judge.name, judge_version=1, model="openai/bench",
                            error_code="timeout" if failed else "", error_message="no answer in 30 s" if failed else "",
                            cost_usd="0.00012", input_tokens=400, output_tokens=60, latency_ms=800, created_at=at,
                        )
                    )
                    evaluations.append(
                        Evaluation(
                            judge=judge, judge_version=1, trace=trace, status=EvaluationStatus.ERROR if failed else EvaluationStatus.DONE,
                            attempts=1, cost_usd="0.00012", created_at=at, started_at=at, finished_at=at,
                        )
                    )
            Assessment.objects.bulk_create(assessments, batch_size=2000)
            Evaluation.objects.bulk_create(evaluations, batch_size=2000)
            sessions = []
            for first in range(offset, min(args.traces, offset + chunk), turns):
                first_at = start + step * first
                last_at = start + step * (first + turns - 1)
                sessions.append(
                    Session(
                        experiment=experiment, session_id=f"s-{first // turns:06d}", user_id=f"user-{first % 997}", first_trace_at=first_at,
                        last_trace_at=last_at, trace_count=turns, last_ingested_at=last_at,
                    )
                )
            Session.objects.bulk_create(sessions, batch_size=1000)
            saved_sessions = Session.objects.filter(experiment=experiment, session_id__in=[s.session_id for s in sessions])
            Assessment.objects.bulk_create(
                [
                    Assessment(
                        session=session, name=session_judge.name, value=value_for(rng, "categorical", session_judge.categories),
                        rationale="The user got what they asked for.", source_type=AssessmentSource.LLM_JUDGE, judge_name=session_judge.name,
                        judge_version=1, model="openai/bench", cost_usd="0.0003", created_at=session.last_trace_at + timedelta(minutes=5),
                    )
                    for session in saved_sessions
                ],
                batch_size=2000,
            )
        print(f"  {min(args.traces, offset + chunk):>7,} traces", flush=True)
    print(f"data written in {time.monotonic() - began:.0f} s", flush=True)
    return experiment.pk, saved[0].trace_id


def ingest_recent(experiment_id: int, count: int) -> float:
    """`count` new traces over the last three hours in five-turn sessions, through ingest_traces in batches of
    100 (its after-commit signal marks their hours stale), then 4 verdicts per trace and one per session through
    Assessment saves (each marks its hour stale). Returns the seconds ingest_traces took."""
    from django.utils import timezone

    from traces.actions import ingest_traces
    from traces.models import Assessment, AssessmentSource, Experiment, Session, Trace
    from traces.payload import parse_trace_batch
    from traces.signals import traces_ingested

    traces_ingested.disconnect(dispatch_uid="judges-on-ingest")  # judging isn't measured: no queued evaluations
    rng = random.Random(11)
    experiment = Experiment.objects.get(pk=experiment_id)
    now = timezone.now()
    items = []
    for n in range(count):
        at = now - timedelta(hours=3) + timedelta(hours=3) * n / count
        items.append(
            {
                "trace_id": f"late-{n:05d}", "start_time": at.isoformat(),
                "end_time": (at + timedelta(milliseconds=rng.randint(300, 4000))).isoformat(),
                "status": "ERROR" if rng.random() < 0.03 else "OK", "session_id": f"late-s-{n // 5:05d}",
                "request": {"messages": [{"role": "user", "content": f"late question {n}"}]},
                "response": {"content": f"late answer {n}"}, "token_usage": {"input_tokens": 120, "output_tokens": 40},
            }
        )
    began = time.perf_counter()
    for offset in range(0, count, 100):
        ingest_traces(experiment, parse_trace_batch(items[offset : offset + 100], max_traces=100))
    ingest_seconds = time.perf_counter() - began
    for trace in Trace.objects.filter(experiment=experiment, trace_id__startswith="late-"):
        for name, output_type, categories in TRACE_JUDGES:
            Assessment.objects.create(
                trace=trace, name=name, value=value_for(rng, output_type, categories), source_type=AssessmentSource.LLM_JUDGE,
                judge_name=name, judge_version=1, model="openai/bench", cost_usd="0.00012",
            )
    name, output_type, categories = SESSION_JUDGE
    for session in Session.objects.filter(experiment=experiment, session_id__startswith="late-s-"):
        Assessment.objects.create(
            session=session, name=name, value=value_for(rng, output_type, categories), source_type=AssessmentSource.LLM_JUDGE,
            judge_name=name, judge_version=1, model="openai/bench", cost_usd="0.0003",
        )
    return ingest_seconds


def first_request(client, url: str) -> tuple[float, int]:
    began = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return (time.perf_counter() - began) * 1000, len(response.content)


def measure(client, url: str, runs: int) -> tuple[float, float, int]:
    for _ in range(3):  # warm caches (Django's, the database's)
        response = client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200
    return percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench_pages")
    parser.add_argument("--first-load", action="store_true",
                        help="only the Overview's first load in a browser as `./run app` serves it (bench/first_load.py)")
    args = parser.parse_args()
    if args.first_load:
        import first_load

        first_load.measure(runs=5)
        return
    setup_database(args, "pages")
    experiment_id, trace_id = populate(args)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    user = get_user_model().objects.create_user(username="bench", is_staff=True)
    client = Client()
    client.force_login(user)
    base = f"/experiments/{experiment_id}"
    pages = [
        ("Traces tab, first page", f"{base}/traces", 150),
        ("Traces tab, filtered", f"{base}/traces?q=metadata.environment+%3D+%27staging%27+AND+trace.status+%3D+%27OK%27", 150),
        ("Sessions tab", f"{base}/sessions", 150),
        ("Judges tab", f"{base}/judges", 150),
        ("A trace", f"{base}/traces/{trace_id}", 150),
        ("Overview tab, 24 h", f"{base}/overview?range=24h", 400),
        ("Overview tab, 30 d", f"{base}/overview?range=30d", 400),
    ]
    print(f"\ndatabase: {args.db}; {args.traces:,} traces, {args.traces // 5:,} sessions, 5 judges; {args.runs} requests per page")

    def report(label: str, url: str, target: int) -> None:
        p50, p95, size = measure(client, url, args.runs)
        verdict = "ok" if p95 <= target else "OVER TARGET"
        print(f"{label:<26} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (target p95 ≤ {target} ms: {verdict}; {size / 1024:.0f} KiB)", flush=True)

    thirty_days = f"{base}/overview?range=30d"
    first_request(client, f"{base}/overview?range=24h")  # load templates and code (24 h doesn't use the hours)
    cold, _ = first_request(client, thirty_days)
    for label, url, target in pages:
        if url == thirty_days:
            print(f"{'Overview tab, 30 d, cold':<26} {cold:7.1f} ms   (first request after loading: sums and stores every hour)", flush=True)
        report(label, url, target)

    ingest_seconds = ingest_recent(experiment_id, 1_000)
    print(f"\n1,000 new traces over the last 3 hours ingested (10 requests of 100: {ingest_seconds * 100:.0f} ms each), with their verdicts")
    stale, _ = first_request(client, thirty_days)
    print(f"{'Overview tab, 30 d, stale':<26} {stale:7.1f} ms   (first request after that: recomputes the stale hours)", flush=True)
    report("Overview tab, 30 d", thirty_days, 400)


if __name__ == "__main__":
    main()
