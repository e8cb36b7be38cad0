"""Server time of the experiment pages on a large experiment: 100,000 traces (5 spans each) over 30 days in 20,000
five-turn sessions, 4 trace judges + 1 session judge, every trace and session judged (2% errors), in SQLite or
PostgreSQL; `--traces 1000000 --sessions 2000` is issue 15's million (bench/pages_data.py writes the data).
Renders each page in-process with Django's test client (no network, no browser: the time Django spends) and
prints p50/p95 over repeated requests, and the p50 of the SQL time in them (what the driver's execute() took; on
SQLite rows fetched after it aren't counted).

    .venv/bin/python bench/pages.py --db sqlite
    .venv/bin/python bench/pages.py --db postgres
    .venv/bin/python bench/pages.py --db postgres --traces 1000000 --sessions 2000
    .venv/bin/python bench/pages.py --db postgres --traces 1000000 --sessions 2000 --reuse   # the same data again
    .venv/bin/python bench/pages.py --db sqlite --sqlite-dir /tmp/pages-1m --traces 1000000 --sessions 2000 [--reuse]
    .venv/bin/python bench/pages.py --first-load    # the Overview in Chromium: cold-cache time and bytes sent

Targets (issues 5 and 15): p95 ≤ 150 ms for the Traces tab (first page and filtered pages), the traces list API,
the Sessions tab, the Judges tab and a trace's page; ≤ 400 ms for the Overview tab. PostgreSQL uses a scratch
database `evalapp_bench_pages` on 127.0.0.1 (dropped and re-created unless --reuse; `--postgres-url postgres://user@/db?host=/socket/dir&port=5433` for a unix socket); SQLite a temp file.
Data is written with bulk inserts (this measures reading, not ingesting), which bypass the Overview's hourly
rollups (evalapp.overview.rollups): the first 30-day Overview after loading sums every hour from the raw rows ("cold"),
later ones read the stored hours. Then 1,000 more traces over the last three hours, and their verdicts, go in
through the real ingest action and Assessment saves (a steady state: a few hours stale), and the 30-day Overview
is measured again: its first request recomputes the stale hours.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages_data import SESSION_JUDGE, TRACE_JUDGES, populate, value_for  # noqa: E402
from bench.scratch import percentile, setup_database  # noqa: E402


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


def measure(client, url: str, runs: int) -> tuple[float, float, float, int]:
    """p50 and p95 of the whole request, the p50 of its SQL (the database's share, as the driver saw it; on a
    loaded machine the rest is mostly waiting for a core), and the response's size."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm caches (Django's, the database's)
        response = client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
    times, sql = [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - began)
        sql.append(sum(float(query["time"]) for query in queries.captured_queries))
        assert response.status_code == 200
    return percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000, percentile(sql, 0.5) * 1000, len(response.content)


def page_list(base: str, experiment_id: int, trace_id: str) -> list[tuple[str, str, int]]:
    def traces(query: str) -> str:
        return f"{base}/traces?" + urlencode({"q": query})

    return [
        ("Traces tab, first page", f"{base}/traces", 150),
        ("Traces tab, status = ERROR", f"{base}/traces?status=ERROR", 150),
        ("Traces tab, metadata (1/3)", traces("metadata.environment = 'staging' AND trace.status = 'OK'"), 150),
        ("Traces tab, metadata (1/500)", traces("metadata.customer = 'c-042'"), 150),
        ("Traces tab, verdict = no", traces("assessment.relevance = 'no'"), 150),
        ("Traces tab, verdict < 2", traces("assessment.quality < 2"), 150),
        ("Traces tab, verdict IS NULL", traces("assessment.safety IS NULL"), 150),
        ("Traces tab, matches nothing", traces("metadata.environment = 'nowhere'"), 150),
        ("Traces list API", f"/api/v1/experiments/{experiment_id}/traces", 150),
        ("Traces API, verdict = no", f"/api/v1/experiments/{experiment_id}/traces?" + urlencode({"filter_string": "assessment.relevance = 'no'"}), 150),
        ("Sessions tab", f"{base}/sessions", 150),
        ("Judges tab", f"{base}/judges", 150),
        ("A trace", f"{base}/traces/{trace_id}", 150),
        ("Overview tab, 24 h", f"{base}/overview?range=24h", 400),
        ("Overview tab, 7 d", f"{base}/overview?range=7d", 400),
        ("Overview tab, 30 d", f"{base}/overview?range=30d", 400),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=0, help="how many sessions the traces are in (default: five turns each)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="measure the data a previous run wrote (same --traces); skip the ingest step")
    parser.add_argument("--sqlite-dir", default="", help="where the SQLite file lives (default: a new temp dir); for --reuse")
    parser.add_argument("--only", default="", help="measure only the pages whose label contains this text")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench_pages")
    parser.add_argument("--first-load", action="store_true",
                        help="only the Overview's first load in a browser as `./run app` serves it (bench/first_load.py)")
    args = parser.parse_args()
    if args.first_load:
        import first_load

        first_load.measure(runs=5)
        return
    sessions = args.sessions or args.traces // 5
    setup_database(args, "pages", var_dir=args.sqlite_dir, fresh=not args.reuse)
    from traces.models import Experiment

    kept = Experiment.objects.filter(name="bench-pages").first() if args.reuse else None
    experiment_id, trace_id = (kept.pk, f"bench-{args.traces // 2:07d}") if kept else populate(args.traces, sessions)

    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})[0]
    client = Client()
    client.force_login(user)
    base = f"/experiments/{experiment_id}"
    pages = page_list(f"/experiments/{experiment_id}", experiment_id, trace_id)
    base = f"/experiments/{experiment_id}"
    print(f"\ndatabase: {args.db}; {args.traces:,} traces, {sessions:,} sessions, 5 judges; {args.runs} requests per page")
    print(f"load average before measuring: {' '.join(f'{value:.1f}' for value in os.getloadavg())}", flush=True)

    def report(label: str, url: str, target: int) -> None:
        p50, p95, sql, size = measure(client, url, args.runs)
        verdict = "ok" if p95 <= target else "OVER TARGET"
        print(
            f"{label:<29} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   SQL p50 {sql:6.1f} ms   (target p95 ≤ {target} ms: {verdict}; {size / 1024:.0f} KiB)",
            flush=True,
        )

    thirty_days = f"{base}/overview?range=30d"
    first_request(client, f"{base}/overview?range=24h")  # load templates and code (24 h doesn't use the hours)
    cold, _ = first_request(client, thirty_days)
    for label, url, target in pages:
        if args.only and args.only.lower() not in label.lower():
            continue
        if url == thirty_days:
            print(f"{'Overview tab, 30 d, cold':<29} {cold:7.1f} ms   (first request after loading: sums and stores every hour)", flush=True)
        report(label, url, target)

    if kept:
        return
    ingest_seconds = ingest_recent(experiment_id, 1_000)
    print(f"\n1,000 new traces over the last 3 hours ingested (10 requests of 100: {ingest_seconds * 100:.0f} ms each), with their verdicts")
    stale, _ = first_request(client, thirty_days)
    print(f"{'Overview tab, 30 d, stale':<29} {stale:7.1f} ms   (first request after that: recomputes the stale hours)", flush=True)
    report("Overview tab, 30 d", thirty_days, 400)


if __name__ == "__main__":
    main()
