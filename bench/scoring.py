"""Judging speed, end to end: gunicorn + qcluster(s) + the stand-in model at 500 ms per call.

(a) latency: a steady stream of traces (default 10/s for 30 s) through the JSON API with 3 active judges;
    time from each ingest response to each assessment row, p50/p95. Target p95 ≤ 2.5 s.
(b) throughput: 2,000 traces already stored, then a judge is switched on (backfill) with endpoint concurrency
    32; judgements per second until all are done. Bound: 32 / 0.5 s = 64/s; target ≥ 80% of it.
(c) live verdicts while a look-back runs: 1,000 traces stored, a judge switched on (its one-hour look-back), and
    meanwhile 5 traces/s arrive for a live judge on the same endpoint: receipt → assessment p95 of the live traces
    (the server's own clock: the trace row's created_at to the assessment's). Target p95 ≤ 2.5 s.
(d) bursts: an OpenTelemetry exporter with its default 5 s delay sends ~50 traces at once; 8 bursts of 50, one
    judge, the endpoint at its default settings (the adaptive limit starts at its ceiling, 64): receipt → assessment p95.
    Target ≤ 1.5 s with a 0.5 s judge.

    .venv/bin/python bench/scoring.py --db sqlite
    .venv/bin/python bench/scoring.py --db postgres          # PostgreSQL + Redis broker
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def wait_http(port: int, path: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port}")


def cpu_counters() -> tuple[int, int]:
    """(stolen, all) CPU time of the whole machine so far, in ticks (/proc/stat): on a virtual machine, the time the
    host gave to others while ours wanted to run. A share of a few percent made an evaluation run seconds slower."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def tree_cpu_seconds(*pids: int) -> float:
    """CPU time (user + system) of processes and all their living descendants, from /proc: what a server's processes
    spent, which a busy machine changes far less than the wall time."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = set(pids), list(pids)
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(member, 0.0) for member in tree)


def trace_body(trace_id: str, n: int) -> dict:
    now = datetime.now(tz=UTC).isoformat()
    return {
        "trace_id": trace_id,
        "start_time": now,
        "end_time": now,
        "request": {"messages": [{"role": "user", "content": f"Where is my order #{1000 + n}? It was due yesterday."}]},
        "response": {"content": f"Order #{1000 + n} is with UPS and arrives tomorrow before noon."},
        "metadata": {"environment": "production"},
        "spans": [
            {"span_id": "root", "name": "agent", "span_type": "AGENT", "start_time": now, "end_time": now},
            {"span_id": "llm", "parent_span_id": "root", "name": "chat", "span_type": "CHAT_MODEL", "start_time": now, "end_time": now},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=10.0, help="traces per second in (a)")
    parser.add_argument("--seconds", type=int, default=30, help="duration of (a)")
    parser.add_argument("--backlog", type=int, default=2000, help="traces in (b)")
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per qcluster (the default server has 1)")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--standin-port", type=int, default=8912)
    parser.add_argument("--only", default="abcd", help="which parts to run, e.g. --only cd")
    args = parser.parse_args()

    env = dict(os.environ)
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    scratch = tempfile.mkdtemp(prefix="evalapp-scoring-")
    env.update(EVALAPP_VAR_DIR=scratch, EVALAPP_LOG_LEVEL="WARNING", EVALAPP_Q_WORKERS=str(args.workers), EVALAPP_Q_QUEUE=f"bench-{os.getpid()}",
               EVALAPP_ENDPOINT_ALLOWED_HOSTS="127.0.0.1")  # the stand-in model answers on loopback
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # settings refuse to start without one (DEBUG is off)
    if args.db == "postgres":
        import psycopg

        url = "postgres://postgres@127.0.0.1:5432/evalapp_bench"
        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
            connection.execute('DROP DATABASE IF EXISTS "evalapp_bench" WITH (FORCE)')
            connection.execute('CREATE DATABASE "evalapp_bench"')
        env["DATABASE_URL"] = url
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    token = subprocess.run(
        [python, "manage.py", "create_token", "bench", "--create-user"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalapp.settings"
    import django

    django.setup()
    from judges.endpoint_actions import create_endpoint

    processes = []
    logs = Path(scratch)
    try:
        processes.append(subprocess.Popen(
            [python, "manage.py", "standin_llm", "--port", str(args.standin_port), "--latency-ms", str(args.latency_ms)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        ))
        processes.append(subprocess.Popen(
            [python, "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{args.port}", "--workers", "2", "--log-level", "warning"],
            cwd=ROOT, env=env,
        ))
        for index in range(args.clusters):
            processes.append(subprocess.Popen(
                [python, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=open(logs / f"qcluster-{index}.log", "w"), stderr=subprocess.STDOUT
            ))
        wait_http(args.standin_port, "/health")
        wait_http(args.port, "/healthz")
        args.server_pids = {"stand-in": [processes[0].pid], "web": [processes[1].pid], "qcluster": [process.pid for process in processes[2:]]}
        endpoint = create_endpoint(
            name="bench stand-in", model="openai/evalapp-standin", api_base=f"http://127.0.0.1:{args.standin_port}/v1",
            api_key="bench", max_concurrency=args.concurrency, timeout_seconds=30, is_standin=True,
        )
        print(f"database: {args.db}{' + Redis broker' if args.db == 'postgres' else ' + ORM broker'}; stand-in latency {args.latency_ms} ms; "
              f"{args.clusters} qcluster(s) × {args.workers} workers; endpoint concurrency {args.concurrency}", flush=True)
        warm_workers(args, token, endpoint)

        if "a" in args.only:
            steady_stream(args, connection_factory(args), token, endpoint)
        if "b" in args.only:
            backlog_throughput(args, connection_factory(args), token, endpoint)
        if "c" in args.only:
            live_during_look_back(args, token)
        if "d" in args.only:
            bursts(args, token)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def connection_factory(args) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)


def post(connection: http.client.HTTPConnection, token: str, experiment_id: int, traces: list[dict]) -> None:
    connection.request("POST", f"/api/v1/experiments/{experiment_id}/traces", body=json.dumps({"traces": traces}),
                       headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"ingest answered {response.status}")


def server_latencies(experiment, expected: int, seconds: float = 180) -> tuple[list[float], int]:
    """Receipt (the trace row written) → assessment, by the server's clock, once `expected` assessments exist."""
    from traces.models import Assessment

    deadline = time.time() + seconds
    while Assessment.objects.filter(trace__experiment=experiment).count() < expected and time.time() < deadline:
        time.sleep(0.25)
    rows = list(Assessment.objects.filter(trace__experiment=experiment).values_list("trace__created_at", "created_at", "error_code"))
    return [(created - received).total_seconds() for received, created, _ in rows], sum(1 for *_, code in rows if code)


def live_during_look_back(args, token: str) -> None:
    from judges.actions import create_judge, update_judge
    from judges.endpoint_actions import create_endpoint
    from traces.actions import create_experiment

    endpoint = create_endpoint(name="bench stand-in (c)", model="openai/evalapp-standin", api_base=f"http://127.0.0.1:{args.standin_port}/v1",
                               api_key="bench", max_concurrency=args.concurrency, timeout_seconds=30, is_standin=True)
    connection = connection_factory(args)
    old = create_experiment("look-back")
    for start in range(0, 1000, 200):
        post(connection, token, old.pk, [trace_body(f"lb-{n}", n) for n in range(start, start + 200)])
    look_back = create_judge(old, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=False)
    live = create_experiment("live")
    create_judge(live, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)
    update_judge(look_back, active=True)  # 1,000 traces of look-back queued now
    began, total = time.time(), 100
    for n in range(total):  # 5 traces/s for 20 s
        if (pause := began + n / 5 - time.time()) > 0:
            time.sleep(pause)
        post(connection, token, live.pk, [trace_body(f"live-{n}", n)])
    latencies, errors = server_latencies(live, total)
    print(f"(c) {total} live traces at 5/s during a 1,000-trace look-back (endpoint concurrency {args.concurrency}): "
          f"{len(latencies)}/{total} judged ({errors} errors); receipt → assessment p50 {percentile(latencies, 0.5):.2f} s, "
          f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s", flush=True)


def bursts(args, token: str) -> None:
    from judges.actions import create_judge
    from judges.endpoint_actions import create_endpoint
    from traces.actions import create_experiment

    endpoint = create_endpoint(name="bench stand-in (d)", model="openai/evalapp-standin", api_base=f"http://127.0.0.1:{args.standin_port}/v1",
                               api_key="bench", timeout_seconds=30, is_standin=True)  # default concurrency settings
    experiment = create_experiment("bursts")
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)
    connection = connection_factory(args)
    rounds, size = 8, 50
    for burst in range(rounds):
        post(connection, token, experiment.pk, [trace_body(f"burst-{burst}-{n}", n) for n in range(size)])
        time.sleep(5)
    latencies, errors = server_latencies(experiment, rounds * size)
    print(f"(d) {rounds} bursts of {size} traces 5 s apart, one judge, default endpoint settings: {len(latencies)}/{rounds * size} judged "
          f"({errors} errors); receipt → assessment p50 {percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
          f"max {max(latencies):.2f} s", flush=True)
    from traces.models import Assessment

    by_burst: dict[int, list[float]] = {}
    for trace_id, received, created in Assessment.objects.filter(trace__experiment=experiment).values_list("trace__trace_id", "trace__created_at", "created_at"):
        by_burst.setdefault(int(trace_id.split("-")[1]), []).append((created - received).total_seconds())
    print("    p95 per burst (the first starts at the endpoint's initial limit): "
          + ", ".join(f"{percentile(values, 0.95):.2f}" for _, values in sorted(by_burst.items())) + " s", flush=True)
    phases(experiment)


def phases(experiment) -> None:
    """Where receipt → assessment goes, per burst: selected (the evaluation row written at ingest commit),
    claimed by a worker, settled (call made, result written), assessment stored — p95 of each step."""
    from judges.models import Evaluation

    steps: dict[int, list[tuple[float, float, float]]] = {}
    rows = Evaluation.objects.filter(trace__experiment=experiment, finished_at__isnull=False).values_list(
        "trace__trace_id", "trace__created_at", "created_at", "started_at", "finished_at", "assessment__latency_ms"
    )
    for trace_id, received, selected, claimed, finished, call_ms in rows:
        steps.setdefault(int(trace_id.split("-")[1]), []).append(
            ((selected - received).total_seconds(), (claimed - selected).total_seconds(), (finished - claimed).total_seconds(), (call_ms or 0) / 1000)
        )
    for burst, values in sorted(steps.items()):
        selected, waiting, judging, call = (percentile([v[i] for v in values], 0.95) for i in range(4))
        print(f"    burst {burst}: p95 receipt → selected {selected:.2f} s, selected → claimed {waiting:.2f} s, "
              f"claimed → settled {judging:.2f} s (the model call itself {call:.2f} s)", flush=True)


def warm_workers(args, token: str, endpoint):
    """Each qcluster worker process imports the model client as it spawns (judges.llm.warm_up, seconds on a busy
    machine): judge a few small batches before the clock starts, so what follows measures warm workers, as in a
    server that has been running."""
    from judges.actions import create_judge
    from traces.actions import create_experiment
    from traces.models import Assessment

    experiment = create_experiment(f"warm-up {secrets.token_hex(3)}")
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)
    connection = connection_factory(args)
    batches = 2 * args.workers * args.clusters
    for batch in range(batches):
        post(connection, token, experiment.pk, [trace_body(f"warm-{batch}-{n}", n) for n in range(4)])
    deadline = time.time() + 180
    while Assessment.objects.filter(trace__experiment=experiment).count() < 4 * batches and time.time() < deadline:
        time.sleep(0.25)
    time.sleep(2)
    return experiment


def steady_stream(args, connection, token: str, endpoint) -> None:
    """(a) latency under a steady stream"""
    from judges.actions import create_judge
    from traces.actions import create_experiment
    from traces.models import Assessment

    experiment = create_experiment("latency")
    for name, fields in {
        "helpful": {"instructions": "Is {{ outputs }} a helpful answer to {{ inputs }}?"},
        "relevance": {"builtin_key": "RelevanceToQuery"},
        "pii": {"builtin_key": "PIILeakage"},
    }.items():
        create_judge(experiment, name=name, endpoint=endpoint, active=True, **fields)
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    answered: dict[str, float] = {}
    total = int(args.rate * args.seconds)
    began = time.time()
    for n in range(total):
        target = began + n / args.rate
        if (pause := target - time.time()) > 0:
            time.sleep(pause)
        trace_id = f"lat-{n}"
        connection.request("POST", f"/api/v1/experiments/{experiment.pk}/traces", body=json.dumps({"traces": [trace_body(trace_id, n)]}),
                           headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"ingest answered {response.status}")
        answered[trace_id] = time.time()
    expected = total * 3
    deadline = time.time() + 120
    while Assessment.objects.filter(trace__experiment=experiment).count() < expected and time.time() < deadline:
        time.sleep(0.5)
    rows = list(Assessment.objects.filter(trace__experiment=experiment).values_list("trace__trace_id", "created_at", "error_code"))
    latencies = [created.timestamp() - answered[trace_id] for trace_id, created, _ in rows]
    errors = sum(1 for *_, code in rows if code)
    print(f"(a) {total} traces at {args.rate:g}/s × 3 judges: {len(rows)}/{expected} assessments ({errors} errors); "
          f"ingest response → assessment p50 {percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
          f"max {max(latencies):.2f} s", flush=True)



def backlog_throughput(args, connection, token: str, endpoint) -> None:
    """(b) throughput on a backlog"""
    from judges.actions import create_judge, update_judge
    from traces.actions import create_experiment
    from traces.models import Assessment

    backlog = create_experiment("backlog")
    judge = create_judge(backlog, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=False)
    for start in range(0, args.backlog, 200):
        body = json.dumps({"traces": [trace_body(f"bl-{n}", n) for n in range(start, min(start + 200, args.backlog))]})
        connection.request("POST", f"/api/v1/experiments/{backlog.pk}/traces", body=body, headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
        connection.getresponse().read()
    began = time.time()
    cpu_before = {name: tree_cpu_seconds(*pids) for name, pids in args.server_pids.items()}
    update_judge(judge, active=True)  # backfill: everything logged in the last hour
    deadline = began + 600
    done = 0
    while time.time() < deadline:
        done = Assessment.objects.filter(trace__experiment=backlog).count()
        if done >= args.backlog:
            break
        time.sleep(0.25)
    elapsed = time.time() - began
    bound = args.concurrency / (args.latency_ms / 1000)
    rate = done / elapsed
    print(f"(b) backlog of {args.backlog}: {done} judged in {elapsed:.1f} s = {rate:.1f} judgements/s "
          f"({rate / bound:.0%} of the {bound:.0f}/s bound)", flush=True)
    if done:
        print("    CPU a judgement: " + ", ".join(
            f"{name} {(tree_cpu_seconds(*pids) - cpu_before[name]) / done * 1000:.1f} ms" for name, pids in args.server_pids.items()
        ) + f" (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
