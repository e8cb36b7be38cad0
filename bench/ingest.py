"""Ingestion throughput on SQLite or PostgreSQL. Prints traces/s and checks that every trace and span was stored.

Two shapes of traffic:

- `--shape batches` (the default): N traces of 5 spans (~2 KB of text each) in batches of whole traces, through
  the JSON API and OTLP/HTTP protobuf, from 4 client connections, against gunicorn (not runserver); prints
  request latency p50/p95 too.
- `--shape exporter`: what an OpenTelemetry SDK's batch span processor sends: one client, OTLP/HTTP protobuf
  requests of 512 spans each, spans in the order they end (a trace's children before its root), agent traces of
  4–5 spans (~5.5 KB of protobuf each); a trace at a request's edge is split over two requests, as in real life.

- `--shape burst`: an instrumented application ending N traces of 5 spans as fast as it can (or at `--rate`
  traces/s) through the real OpenTelemetry SDK — BatchSpanProcessor + OTLPSpanExporter over HTTP — twice: with
  the SDK's default settings and with `--queue-size`/`--export-batch`/`--delay-ms`; counts what was stored,
  dropped by the SDK's queue, given up by the exporter, and retried after a 429/503 (bench/burst.py).

`--grpc` also sends the OTLP protobuf requests over gRPC, to `manage.py otlp_grpc` (its own process, 8 threads).

`--in-process` skips HTTP: each request body is decoded and ingested by `ingest_traces` in this process, one
transaction per request (what a gunicorn worker does, minus the web server), and the decode alone is timed too.

    .venv/bin/python bench/ingest.py --db sqlite --traces 5000 --batch 100
    .venv/bin/python bench/ingest.py --db postgres --traces 5000 --batch 100
    .venv/bin/python bench/ingest.py --db sqlite --shape exporter --traces 20000
    .venv/bin/python bench/ingest.py --db postgres --shape exporter --traces 20000 --in-process
    .venv/bin/python bench/ingest.py --db sqlite --traces 5000 --batch 100 --grpc
    .venv/bin/python bench/ingest.py --db postgres --shape burst --traces 10000 --web-workers 3

PostgreSQL uses a scratch database `evalapp_bench` on 127.0.0.1 (dropped and re-created); SQLite a temp file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
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


def make_trace(rng: random.Random, run: str, n: int, start_ns: int, *, spans_wanted: int = 5, scale: float = 1.0) -> dict:
    """One trace as plain values: 5 spans (or 4: no tool call), ~2 KB of text in inputs/outputs (times `scale`)."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(5)]
    question, answer = text(rng, int(300 * scale)), text(rng, int(400 * scale))
    spans = [
        ("agent", "AGENT", "", {"messages": [{"role": "user", "content": question}]}, {"content": answer}),
        ("retrieve", "RETRIEVER", ids[0], {"query": question[:80]}, [{"page_content": text(rng, int(500 * scale))}]),
        ("rerank", "RERANKER", ids[0], {"k": 3}, [{"page_content": text(rng, int(200 * scale))}]),
        ("chat", "CHAT_MODEL", ids[0], [{"role": "user", "content": question}], {"content": answer[: int(200 * scale)]}),
        ("lookup_order", "TOOL", ids[3], {"order_id": n}, {"status": text(rng, int(120 * scale))}),
    ][:spans_wanted]
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


def _attr(key: str, value):
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def otlp_spans(traces: list[dict]) -> list:
    """The traces' spans as OTLP protobuf Spans, trace by trace."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    attr = _attr
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
    return spans


def otlp_request(spans: list) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource_spans.resource.attributes.append(_attr("deployment.environment", "production"))
    resource_spans.resource.attributes.append(_attr("service.name", "support-agent"))
    return ExportTraceServiceRequest(resource_spans=[resource_spans]).SerializeToString()


def otlp_body(traces: list[dict]) -> bytes:
    return otlp_request(otlp_spans(traces))


def exporter_bodies(rng: random.Random, count: int, now_ns: int, spans_per_request: int) -> tuple[list[bytes], int]:
    """`count` agent traces of 4–5 spans as a batch span processor exports them: each trace's spans in the order
    they end (children first, the root last), cut into requests of `spans_per_request` spans regardless of where
    a trace ends. Returns the bodies and the number of spans."""
    stream = []
    for n in range(count):
        trace = make_trace(rng, "exporter", n, now_ns - (count - n) * 1_000_000, spans_wanted=rng.choice((4, 5)), scale=2.25)
        stream.extend(sorted(otlp_spans([trace]), key=lambda span: span.end_time_unix_nano))
    bodies = [otlp_request(stream[i : i + spans_per_request]) for i in range(0, len(stream), spans_per_request)]
    return bodies, len(stream)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


BUSY_RETRIES: list[str] = []  # requests refused with 503 + Retry-After and sent again


def send_all(port: int, path: str, bodies: list[bytes], headers: dict[str, str], concurrency: int) -> tuple[float, list[float]]:
    def worker(chunk: list[bytes]) -> list[float]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        latencies = []
        for body in chunk:
            began = time.perf_counter()
            while True:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                # Every ingest slot taken (traces.admission): wait as told and send again, as exporters do.
                if response.status == 503 and response.getheader("Retry-After", "").isdigit():
                    BUSY_RETRIES.append(path)
                    time.sleep(int(response.getheader("Retry-After")))
                    continue
                break
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


def send_grpc(port: int, bodies: list[bytes], metadata: tuple, concurrency: int) -> tuple[float, list[float]]:
    """send_all's gRPC twin: TraceService/Export with the same protobuf bytes, one channel per client."""
    import grpc

    def worker(chunk: list[bytes]) -> list[float]:
        latencies = []
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")  # bytes in and out
            for body in chunk:
                began = time.perf_counter()
                export(body, metadata=metadata, timeout=120)
                latencies.append(time.perf_counter() - began)
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


def in_process(experiment, bodies: list[bytes]) -> tuple[float, float, list[float]]:
    """Decode and ingest each body here, one transaction per request as the view does. Returns the seconds spent
    decoding alone (a separate pass), the seconds decoding + ingesting, and per-request latencies."""
    from traces import otlp
    from traces.actions import ingest_traces

    began = time.perf_counter()
    for body in bodies:
        otlp.decode_protobuf(body)
    decoding = time.perf_counter() - began
    latencies = []
    began, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        started = time.perf_counter()
        ingest_traces(experiment, otlp.decode_protobuf(body).traces)
        latencies.append(time.perf_counter() - started)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    # On a shared machine the wall time swings with the neighbours' load; this process's CPU time much less.
    print(f"CPU time in this process: {cpu / len(bodies) * 1000:.1f} ms a request ({cpu / elapsed:.0%} of the wall time)")
    return decoding, elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--shape", choices=["batches", "exporter", "burst"], default="batches")
    parser.add_argument("--traces", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100, help="traces per request (--shape batches)")
    parser.add_argument("--spans-per-request", type=int, default=512, help="--shape exporter")
    parser.add_argument("--in-process", action="store_true", help="no HTTP: decode and ingest in this process")
    parser.add_argument("--concurrency", type=int, help="client connections (4 for batches, 1 for the exporter)")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--grpc", action="store_true", help="also send the OTLP requests over gRPC (manage.py otlp_grpc)")
    parser.add_argument("--grpc-port", type=int, default=8766)
    parser.add_argument("--rate", type=float, default=0.0, help="--shape burst: traces/s the application ends (0: as fast as it can)")
    parser.add_argument("--queue-size", type=int, default=65536, help="--shape burst, tuned round: max_queue_size")
    parser.add_argument("--export-batch", type=int, default=2048, help="--shape burst, tuned round: max_export_batch_size")
    parser.add_argument("--delay-ms", type=int, default=1000, help="--shape burst, tuned round: schedule_delay_millis")
    parser.add_argument("--rounds", default="default,tuned", help="--shape burst: which rounds, in order")
    parser.add_argument("--exporters", type=int, default=1, help="--shape burst: applications (processes) sending at once, --traces split among them")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench")
    args = parser.parse_args()
    concurrency = args.concurrency or (1 if args.shape == "exporter" else 4)

    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    scratch = tempfile.mkdtemp(prefix="evalapp-bench-")
    env["EVALAPP_VAR_DIR"] = scratch
    env["EVALAPP_LOG_LEVEL"] = "WARNING"
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # settings refuse to start without one (DEBUG is off)
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

    os.environ.update({key: env[key] for key in ("EVALAPP_VAR_DIR", "SECRET_KEY") if key in env})
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
    runs = {}
    if args.shape == "burst":
        if args.in_process or args.grpc:
            raise SystemExit("--shape burst goes through the SDK's OTLP/HTTP exporter: no --in-process or --grpc")
        described = f"burst: {args.traces} traces of 5 spans through the OpenTelemetry SDK, " + (
            f"{args.rate:.0f} traces/s" if args.rate else "as fast as the application can end them"
        )
    elif args.shape == "exporter":
        print(f"building {args.traces} agent traces of 4–5 spans in requests of {args.spans_per_request} spans ...", flush=True)
        bodies, span_total = exporter_bodies(rng, args.traces, now_ns, args.spans_per_request)
        runs["otlp"] = (Experiment.objects.create(name="bench-exporter"), bodies, span_total)
        if args.grpc and not args.in_process:
            grpc_bodies, grpc_spans = exporter_bodies(rng, args.traces, now_ns, args.spans_per_request)
            runs["grpc"] = (Experiment.objects.create(name="bench-exporter-grpc"), grpc_bodies, grpc_spans)
        described = (
            f"exporter shape: {args.traces} traces, {span_total} spans in {len(bodies)} OTLP protobuf requests of "
            f"{args.spans_per_request} spans (~{sum(map(len, bodies)) / args.traces / 1000:.1f} KB a trace)"
        )
    else:
        print(f"building {args.traces} traces × 5 spans, twice (JSON and OTLP) ...", flush=True)
        for label in ("otlp",) if args.in_process else ("json", "otlp", "grpc") if args.grpc else ("json", "otlp"):
            experiment = Experiment.objects.create(name=f"bench-{label}")
            traces = [make_trace(rng, label, n, now_ns - (args.traces - n) * 1_000_000) for n in range(args.traces)]
            batches = [traces[i : i + args.batch] for i in range(0, len(traces), args.batch)]
            bodies = [json_body(batch) if label == "json" else otlp_body(batch) for batch in batches]  # grpc: OTLP too
            runs[label] = (experiment, bodies, args.traces * 5)
        text_bytes = len(json.dumps([s["inputs"] for s in traces[0]["spans"]])) + len(json.dumps([s["outputs"] for s in traces[0]["spans"]]))
        described = f"{args.traces} traces of 5 spans (~{text_bytes} bytes of span text each), batches of {args.batch}"

    def report(label: str, experiment, bodies: list[bytes], span_total: int, elapsed: float, latencies: list[float]) -> None:
        stored = Trace.objects.filter(experiment=experiment).count()
        spans = Span.objects.filter(trace__experiment=experiment).count()
        complete = "all stored" if stored == args.traces and spans == span_total else "MISSING DATA"
        print(
            f"{label:>4}: {args.traces / elapsed:8.0f} traces/s  "
            f"p50 {percentile(latencies, 0.5) * 1000:6.0f} ms  p95 {percentile(latencies, 0.95) * 1000:6.0f} ms "
            f"per request  (avg body {statistics.mean(len(b) for b in bodies) / 1024:.0f} KiB)  "
            f"stored {stored} traces, {spans} spans: {complete}",
            flush=True,
        )

    if args.in_process:
        print(f"database: {args.db}; {described}; in this process, no HTTP, one transaction per request")
        for label, (experiment, bodies, span_total) in runs.items():
            decoding, elapsed, latencies = in_process(experiment, bodies)
            print(f"decode alone: {args.traces / decoding:8.0f} traces/s")
            report(label, experiment, bodies, span_total, elapsed, latencies)
        return

    server = subprocess.Popen(
        [
            python, "-m", "gunicorn", "evalapp.wsgi:application",
            "--bind", f"127.0.0.1:{args.port}", "--workers", str(args.web_workers), "--log-level", "warning",
            "--timeout", "120",
        ],
        cwd=ROOT,
        env=env,
    )
    if args.grpc:
        receiver = subprocess.Popen([python, "manage.py", "otlp_grpc", "--port", str(args.grpc_port)], cwd=ROOT, env=env)
    try:
        wait_for(args.port)
        # Every worker's first request imports the views (before evalapp.wsgi did it at boot); a few at once reach
        # every worker, so what follows measures workers that are warm, as they are in a long-running server.
        with ThreadPoolExecutor(args.web_workers * 2) as pool:
            list(pool.map(lambda _: wait_for(args.port), range(args.web_workers * 4)))
        clients = f"{args.exporters} application(s) with an exporter each" if args.shape == "burst" else f"{concurrency} client connections"
        print(f"database: {args.db}; {described}; {clients}, {args.web_workers} gunicorn workers")
        if args.shape == "burst":
            burst_rounds(args, token, Experiment, Trace, Span)
            return
        for label, (experiment, bodies, span_total) in runs.items():
            if label == "grpc":
                metadata = (("authorization", f"Bearer {token}"), ("x-evalapp-experiment-id", str(experiment.pk)))
                elapsed, latencies = send_grpc(args.grpc_port, bodies, metadata, concurrency)
                report(label, experiment, bodies, span_total, elapsed, latencies)
                continue
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
            BUSY_RETRIES.clear()
            elapsed, latencies = send_all(args.port, path, bodies, headers, concurrency)
            report(label, experiment, bodies, span_total, elapsed, latencies)
            if BUSY_RETRIES:
                print(f"  ({len(BUSY_RETRIES)} requests refused with 503 + Retry-After and sent again: all ingest slots taken)")
    finally:
        server.terminate()
        server.wait(10)
        if args.grpc:
            receiver.terminate()
            receiver.wait(10)


def burst_rounds(args: argparse.Namespace, token: str, Experiment, Trace, Span) -> None:  # noqa: N803 (model classes)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from django.db import connections
    from django.db.models import Count

    from bench.burst import BurstResult, run_burst

    tuned = {"max_queue_size": args.queue_size, "max_export_batch_size": args.export_batch, "schedule_delay_millis": args.delay_ms}
    for label in args.rounds.split(","):
        options = tuned if label == "tuned" else None
        experiment = Experiment.objects.create(name=f"bench-burst-{label}")
        # Meanwhile a person reads a page of the API: how long does it wait for a web worker?
        probing, page_latencies = threading.Event(), []

        def probe() -> None:
            while not probing.is_set():
                began = time.perf_counter()
                connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
                connection.request("GET", "/api/v1/experiments", headers={"Authorization": f"Token {token}"})
                connection.getresponse().read()
                connection.close()
                page_latencies.append(time.perf_counter() - began)
                probing.wait(0.2)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        endpoint = f"http://127.0.0.1:{args.port}/v1/traces"
        headers = {"Authorization": f"Bearer {token}", "x-evalapp-experiment-id": str(experiment.pk)}
        if args.exporters == 1:
            result = run_burst(endpoint, headers, traces=args.traces, rate=args.rate, processor_options=options)
        else:
            connections.close_all()  # the applications are forked from here: none may share this process's connection
            shares = [args.traces // args.exporters + (n < args.traces % args.exporters) for n in range(args.exporters)]
            with ProcessPoolExecutor(args.exporters, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = [
                    pool.submit(run_burst, endpoint, headers, traces=share, rate=args.rate / args.exporters, processor_options=options, seed=n)
                    for n, share in enumerate(shares)
                ]
                parts = [future.result() for future in futures]
            result = BurstResult.combined(parts)
        probing.set()
        prober.join()
        stored = Trace.objects.filter(experiment=experiment).count()
        complete = Trace.objects.filter(experiment=experiment).annotate(n=Count("spans")).filter(n=5).count()
        spans = Span.objects.filter(trace__experiment=experiment).count()
        settings_text = ", ".join(f"{key}={value}" for key, value in (options or {}).items()) or "SDK defaults (queue 2048, batch 512, delay 5000 ms)"
        print(
            f"{label:>7}: {settings_text}\n"
            f"         ended {result.traces} traces in {result.seconds_producing:.1f} s ({result.traces / result.seconds_producing:.0f}/s), "
            f"all exported or dropped after {result.seconds_total:.1f} s; {result.requests} export requests, "
            f"{result.retries} retries after {result.retry_statuses or 'no refusals'}\n"
            f"         spans: {result.spans} ended, {result.spans_dropped} dropped by the SDK's queue, "
            f"{result.spans_failed} given up by the exporter, {spans} stored\n"
            f"         stored/sent: {stored}/{result.traces} traces ({complete} with all 5 spans)\n"
            f"         meanwhile GET /api/v1/experiments: p50 {percentile(page_latencies, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(page_latencies, 0.95) * 1000:.0f} ms, max {max(page_latencies) * 1000:.0f} ms ({len(page_latencies)} requests)",
            flush=True,
        )


if __name__ == "__main__":
    main()
