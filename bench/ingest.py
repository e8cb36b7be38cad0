"""Ingestion throughput: N traces of 5 spans (~2 KB of text each) through the JSON API and OTLP/HTTP protobuf,
against gunicorn (not runserver), on SQLite or PostgreSQL. Prints traces/s and request latency p50/p95, and
checks that every trace and span was stored.

    .venv/bin/python bench/ingest.py --db sqlite --traces 5000 --batch 100
    .venv/bin/python bench/ingest.py --db postgres --traces 5000 --batch 100

PostgreSQL uses a scratch database `evalapp_bench` on 127.0.0.1 (dropped and re-created); SQLite a temp file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "order refund shipping delivery account password invoice return label warehouse customer package tracking "
    "address payment card discount coupon warranty replacement battery charger screen size colour stock support"
).split()


def text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


def make_trace(rng: random.Random, run: str, n: int, start_ns: int) -> dict:
    """One trace as plain values: 5 spans, ~2 KB of text in inputs/outputs."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(5)]
    question, answer = text(rng, 300), text(rng, 400)
    spans = [
        ("agent", "AGENT", "", {"messages": [{"role": "user", "content": question}]}, {"content": answer}),
        ("retrieve", "RETRIEVER", ids[0], {"query": question[:80]}, [{"page_content": text(rng, 500)}]),
        ("rerank", "RERANKER", ids[0], {"k": 3}, [{"page_content": text(rng, 200)}]),
        ("chat", "CHAT_MODEL", ids[0], [{"role": "user", "content": question}], {"content": answer[:200]}),
        ("lookup_order", "TOOL", ids[3], {"order_id": n}, {"status": text(rng, 120)}),
    ]
    return {
        "trace_id": trace_id,
        "session": f"{run}-s{n // 4}",
        "spans": [
            {
                "span_id": ids[i],
                "parent": parent,
                "name": name,
                "type": span_type,
                "start_ns": start_ns + i * 1_000_000,
                "end_ns": start_ns + (200 - i * 10) * 1_000_000,
                "inputs": inputs,
                "outputs": outputs,
            }
            for i, (name, span_type, parent, inputs, outputs) in enumerate(spans)
        ],
    }


def iso(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


def json_body(traces: list[dict]) -> bytes:
    return json.dumps(
        {
            "traces": [
                {
                    "trace_id": trace["trace_id"],
                    "session_id": trace["session"],
                    "metadata": {"environment": "production"},
                    "spans": [
                        {
                            "span_id": span["span_id"],
                            "parent_span_id": span["parent"] or None,
                            "name": span["name"],
                            "span_type": span["type"],
                            "start_time": iso(span["start_ns"]),
                            "end_time": iso(span["end_ns"]),
                            "inputs": span["inputs"],
                            "outputs": span["outputs"],
                            "attributes": {"gen_ai.usage.input_tokens": 100} if span["type"] == "CHAT_MODEL" else {},
                        }
                        for span in trace["spans"]
                    ],
                }
                for trace in traces
            ]
        }
    ).encode()


def otlp_body(traces: list[dict]) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def attr(key: str, value) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    spans = []
    for trace in traces:
        for span in trace["spans"]:
            attributes = [
                attr("mlflow.spanType", json.dumps(span["type"])),
                attr("mlflow.spanInputs", json.dumps(span["inputs"])),
                attr("mlflow.spanOutputs", json.dumps(span["outputs"])),
            ]
            if not span["parent"]:
                attributes.append(attr("session.id", trace["session"]))
            if span["type"] == "CHAT_MODEL":
                attributes.append(attr("gen_ai.usage.input_tokens", 100))
            spans.append(
                Span(
                    trace_id=bytes.fromhex(trace["trace_id"]),
                    span_id=bytes.fromhex(span["span_id"]),
                    parent_span_id=bytes.fromhex(span["parent"]) if span["parent"] else b"",
                    name=span["name"],
                    start_time_unix_nano=span["start_ns"],
                    end_time_unix_nano=span["end_ns"],
                    attributes=attributes,
                )
            )
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource_spans.resource.attributes.append(attr("deployment.environment", "production"))
    return ExportTraceServiceRequest(resource_spans=[resource_spans]).SerializeToString()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def send_all(port: int, path: str, bodies: list[bytes], headers: dict[str, str], concurrency: int) -> tuple[float, list[float]]:
    def worker(chunk: list[bytes]) -> list[float]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        latencies = []
        for body in chunk:
            began = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise SystemExit(f"{path} answered {response.status}: {payload[:300]!r}")
            latencies.append(time.perf_counter() - began)
        connection.close()
        return latencies

    chunks = [bodies[i::concurrency] for i in range(concurrency)]
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(worker, chunks))
    return time.perf_counter() - began, [latency for chunk in results for latency in chunk]


def wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--traces", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4, help="client connections")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench")
    args = parser.parse_args()

    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    scratch = tempfile.mkdtemp(prefix="evalapp-bench-")
    env["EVALAPP_VAR_DIR"] = scratch
    env["EVALAPP_LOG_LEVEL"] = "WARNING"
    if args.db == "postgres":
        import psycopg

        database = args.postgres_url.rsplit("/", 1)[1]
        with psycopg.connect(args.postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = args.postgres_url
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    token = subprocess.run(
        [python, "manage.py", "create_token", "bench", "--create-user"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()

    os.environ.update({key: env[key] for key in ("EVALAPP_VAR_DIR",) if key in env})
    if "DATABASE_URL" in env:
        os.environ["DATABASE_URL"] = env["DATABASE_URL"]
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalapp.settings"
    import django

    django.setup()
    from traces.models import Experiment, Span, Trace

    rng = random.Random(42)
    now_ns = time.time_ns()
    print(f"building {args.traces} traces × 5 spans, twice (JSON and OTLP) ...", flush=True)
    runs = {}
    for label in ("json", "otlp"):
        experiment = Experiment.objects.create(name=f"bench-{label}")
        traces = [make_trace(rng, label, n, now_ns - (args.traces - n) * 1_000_000) for n in range(args.traces)]
        batches = [traces[i : i + args.batch] for i in range(0, len(traces), args.batch)]
        bodies = [json_body(batch) if label == "json" else otlp_body(batch) for batch in batches]
        runs[label] = (experiment, bodies)
    text_bytes = len(json.dumps([s["inputs"] for s in traces[0]["spans"]])) + len(json.dumps([s["outputs"] for s in traces[0]["spans"]]))

    server = subprocess.Popen(
        [
            python, "-m", "gunicorn", "evalapp.wsgi:application",
            "--bind", f"127.0.0.1:{args.port}", "--workers", str(args.web_workers), "--log-level", "warning",
            "--timeout", "120",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for(args.port)
        print(f"database: {args.db}; {args.traces} traces of 5 spans (~{text_bytes} bytes of span text each), "
              f"batches of {args.batch}, {args.concurrency} client connections, {args.web_workers} gunicorn workers")
        for label, (experiment, bodies) in runs.items():
            if label == "json":
                path = f"/api/v1/experiments/{experiment.pk}/traces"
                headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
            else:
                path = "/v1/traces"
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/x-protobuf",
                    "x-evalapp-experiment-id": str(experiment.pk),
                }
            elapsed, latencies = send_all(args.port, path, bodies, headers, args.concurrency)
            stored = Trace.objects.filter(experiment=experiment).count()
            spans = Span.objects.filter(trace__experiment=experiment).count()
            complete = "all stored" if stored == args.traces and spans == args.traces * 5 else "MISSING DATA"
            print(
                f"{label:>4}: {args.traces / elapsed:8.0f} traces/s  "
                f"p50 {percentile(latencies, 0.5) * 1000:6.0f} ms  p95 {percentile(latencies, 0.95) * 1000:6.0f} ms "
                f"per request of {args.batch}  (avg body {statistics.mean(len(b) for b in bodies) / 1024:.0f} KiB)  "
                f"stored {stored} traces, {spans} spans: {complete}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
