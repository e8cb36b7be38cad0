"""The judging worker alone: its own CPU a judgement and its rate, with no web server, client or broker in the way.

N traces stored on SQLite (a scratch directory), one active judge on the stand-in model (its own process, 500 ms a
call, endpoint concurrency 32), then one `judges.worker.drain` in this process judges the backlog. Prints the rate
against the endpoint's bound (32 / 0.5 s = 64/s), this process's CPU a judgement, how many of the drain's claims
found nothing, how many results each write took, and how long a call took in the pool against the stand-in's 500 ms
(the rest is the call's own Python and its wait for the GIL). What `bench/evaluate.py` measures end to end, taken
apart (design note 54).

    .venv/bin/python bench/drain.py [--traces 1500]
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scoring import wait_http  # noqa: E402


def trace(n: int) -> dict:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    span = {"start_time": start.isoformat(), "end_time": (start + timedelta(milliseconds=900)).isoformat()}
    return {
        "trace_id": f"drain-{n}",
        "spans": [
            {"span_id": f"{n}-root", "name": "agent", "span_type": "AGENT", **span, "status": "OK",
             "inputs": {"messages": [{"role": "user", "content": f"Where is my order #{1000 + n}?"}]},
             "outputs": {"content": f"Order #{1000 + n} is with UPS and arrives tomorrow."}},
            {"span_id": f"{n}-llm", "parent_span_id": f"{n}-root", "name": "chat", "span_type": "CHAT_MODEL", **span,
             "inputs": {"messages": [{"role": "user", "content": f"Where is my order #{1000 + n}?"}]},
             "outputs": {"content": "It arrives tomorrow."}},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1500)
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--standin-port", type=int, default=8941)
    args = parser.parse_args()
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update(EVALAPP_VAR_DIR=tempfile.mkdtemp(prefix="evalapp-drain-"), DJANGO_SETTINGS_MODULE="evalapp.settings",
                      EVALAPP_ENDPOINT_ALLOWED_HOSTS="127.0.0.1", EVALAPP_LOG_LEVEL="WARNING")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    standin = subprocess.Popen(
        [sys.executable, "manage.py", "standin_llm", "--port", str(args.standin_port), "--latency-ms", str(args.latency_ms)],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )
    try:
        wait_http(args.standin_port, "/health")
        measure(args)
    finally:
        standin.terminate()


def measure(args) -> None:
    from judges import llm, selection, worker
    from judges.actions import create_judge
    from judges.endpoint_actions import create_endpoint
    from traces.actions import create_experiment, ingest_traces
    from traces.models import Trace
    from traces.payload import parse_trace_batch

    endpoint = create_endpoint(name="stand-in", model="openai/evalapp-standin", api_base=f"http://127.0.0.1:{args.standin_port}/v1",
                               api_key="bench", max_concurrency=args.concurrency, timeout_seconds=30, is_standin=True)
    experiment = create_experiment("drain")
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)
    for start in range(0, args.traces, 500):
        batch = [trace(n) for n in range(start, min(args.traces, start + 500))]
        ingest_traces(experiment, parse_trace_batch({"traces": batch}, max_traces=500))
    ids = selection.select_traces(experiment.pk, list(Trace.objects.values_list("pk", flat=True)))
    llm.warm_up()
    worker.drain(ids[:40], take_more=False)  # connections, slots and first calls before the clock

    claims, writes, calls = collections.Counter(), collections.Counter(), []
    real_claim, real_finish_many, real_call_model = worker.claim, worker.finish_many, worker.call_model

    def claim(*args, **kwargs):
        token, claimed = real_claim(*args, **kwargs)
        claims["found nothing" if not claimed else "found some"] += 1
        return token, claimed

    def finish_many(results, token):
        writes[len(results)] += 1
        return real_finish_many(results, token)

    def call_model(judge, prepared):
        began = time.monotonic()
        outcome = real_call_model(judge, prepared)
        calls.append(time.monotonic() - began)
        return outcome

    worker.claim, worker.finish_many, worker.call_model = claim, finish_many, call_model
    cpu, began = sum(os.times()[:2]), time.perf_counter()
    judged = worker.drain(None, take_more=True)
    wall, cpu = time.perf_counter() - began, sum(os.times()[:2]) - cpu
    bound = args.concurrency / (args.latency_ms / 1000)
    print(f"drained {judged} judgements in {wall:.1f} s: {judged / wall:.1f}/s, {judged / wall / bound:.0%} of the bound ({bound:.0f}/s); "
          f"this process's CPU {cpu:.1f} s, {cpu / judged * 1000:.1f} ms a judgement")
    print(f"  claims: {claims['found some']} found work, {claims['found nothing']} found nothing; "
          f"results written in {sum(writes.values())} batches, {statistics.mean(list(writes.elements())):.1f} a batch")
    ordered = sorted(calls)
    print(f"  a call in the pool: p50 {ordered[len(ordered) // 2] * 1000:.0f} ms, p90 {ordered[int(len(ordered) * 0.9)] * 1000:.0f} ms, "
          f"mean {statistics.mean(calls) * 1000:.0f} ms (the stand-in answers in {args.latency_ms} ms)")


if __name__ == "__main__":
    main()
