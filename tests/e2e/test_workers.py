"""Automatic evaluation end to end: real `qcluster` processes, the real broker (ORM or Redis, as configured),
the stand-in model over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django_q.conf import Conf

from judges import tasks
from judges.actions import create_judge
from judges.endpoint_actions import update_endpoint
from judges.models import Evaluation
from tests.conftest import ingest, make_trace
from traces.models import Assessment, Session

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 4


def database_url() -> str:
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{settings['USER']}{password}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


class Cluster:
    def __init__(self, queue: str, log: Path, database: str | None = None, **settings: str):
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database or database_url(),
            EVALAPP_Q_QUEUE=queue,
            EVALAPP_LEASE_SECONDS=str(LEASE_SECONDS),
            EVALAPP_Q_WORKERS="2",
            EVALAPP_LOG_LEVEL="DEBUG",
            EVALAPP_Q_LOG_LEVEL="INFO",  # for the "running" line wait_ready looks for
            **settings,
        )
        self.log_path = log
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        for attempt in (sig, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, attempt)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # the worker processes it forked
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: "running." in self.log_path.read_text(), timeout, [self], "the cluster to start")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()[-4000:]


@pytest.fixture
def clusters(tmp_path, monkeypatch):
    """Start qcluster processes on a queue of this test's own; all are stopped before the database is flushed."""
    queue = f"evalapp-test-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setattr(Conf, "CLUSTER_NAME", queue)  # where this process enqueues
    started: list[Cluster] = []

    def start(database: str | None = None, **settings: str) -> Cluster:
        cluster = Cluster(queue, tmp_path / f"qcluster-{len(started)}.log", database, **settings)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.kill(signal.SIGTERM if cluster.process.poll() is None else signal.SIGKILL)


def wait_for(condition: Callable[[], bool], timeout: float, clusters: list[Cluster] = (), what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    logs = "\n\n".join(cluster.output() for cluster in clusters)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n--- worker logs ---\n{logs}")


def ingest_in_batches(experiment, traces: list[dict]) -> None:
    """As an application logs: batches of 50, each its own transaction (and its own judging task)."""
    for start in range(0, len(traces), 50):
        ingest(experiment, *traces[start : start + 50])


def judge(experiment, endpoint, name: str = "helpful", **fields):
    return create_judge(
        experiment,
        name=name,
        instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?",
        endpoint=endpoint,
        active=True,
        **fields,
    )


def settled() -> bool:
    return not Evaluation.objects.filter(status__in=["pending", "running"]).exists()


def test_ingested_trace_is_judged_by_a_worker_within_seconds(experiment, endpoint, clusters):
    worker = clusters()
    judge(experiment, endpoint)
    ingest_in_batches(experiment, [make_trace("t1")])
    wait_for(lambda: Assessment.objects.filter(trace__trace_id="t1", name="helpful").exists(), 60, [worker], "the assessment")
    assessment = Assessment.objects.get()
    assert assessment.error_code == "" and assessment.rationale.startswith("[stand-in model]")
    assert Evaluation.objects.get().status == "done"


def test_two_workers_share_the_work_without_duplicates(experiment, endpoint, clusters, standin):
    standin.config.latency_ms = 200
    # 16 calls at a time a process (the endpoint allows 64): more work than one process takes, which is when the
    # others must join in (a drain whose claims come back full asks for help). With 128 one fast process could take
    # all 300 before another's task started, and on a loaded machine it did.
    workers = [clusters(EVALAPP_DRAIN_CONCURRENCY="16"), clusters(EVALAPP_DRAIN_CONCURRENCY="16")]
    for worker in workers:
        worker.wait_ready()
    judge(experiment, endpoint, "helpful")
    create_judge(experiment, name="pii", builtin_key="PIILeakage", endpoint=endpoint, active=True)
    ingest_in_batches(experiment, [make_trace(f"t{n}", minutes=n) for n in range(150)])
    wait_for(lambda: Assessment.objects.count() >= 300 and settled(), 120, workers, "300 assessments")
    time.sleep(1)  # anything doubled would land now
    pairs = Counter(Assessment.objects.values_list("name", "trace__trace_id"))
    assert len(pairs) == 300 and set(pairs.values()) == {1}
    assert Counter(Evaluation.objects.values_list("status", "error_message")) == {("done", ""): 300}
    claimers = {token.rsplit(":", 1)[0] for token in Evaluation.objects.values_list("claimed_by", flat=True)}
    assert len(claimers) >= 2, "both clusters should have taken part"


def test_killed_worker_work_is_finished_by_another_none_lost_none_doubled(experiment, endpoint, clusters, standin):
    standin.config.latency_ms = 3000
    doomed = clusters()
    judge(experiment, endpoint)
    ingest_in_batches(experiment, [make_trace(f"t{n}", minutes=n) for n in range(12)])
    wait_for(lambda: Evaluation.objects.filter(status="running").exists(), 60, [doomed], "work in progress")
    doomed.kill(signal.SIGKILL)
    in_flight = Evaluation.objects.filter(status="running").count()
    assert in_flight > 0

    standin.config.latency_ms = 100
    survivor = clusters()
    time.sleep(LEASE_SECONDS + 1)
    tasks.sweep()  # what the every-minute schedule does: reclaim expired leases and re-enqueue them
    wait_for(lambda: Assessment.objects.count() >= 12 and settled(), 90, [survivor], "all 12 traces judged")
    time.sleep(1)
    assert Counter(Assessment.objects.values_list("trace__trace_id", flat=True)) == Counter({f"t{n}": 1 for n in range(12)})
    assert Evaluation.objects.filter(attempts__gte=2).count() >= 1
    assert not Evaluation.objects.exclude(status="done").exists()


def test_429_storm_ends_with_every_trace_judged_or_recorded_as_rate_limited(experiment, endpoint, clusters, standin):
    standin.config.rate_429 = 0.6
    standin.config.retry_after_seconds = 0.05
    standin.config.seed = 4
    update_endpoint(endpoint, max_retries=6)
    worker = clusters()
    judge(experiment, endpoint)
    ingest_in_batches(experiment, [make_trace(f"t{n}", minutes=n) for n in range(40)])
    wait_for(lambda: Assessment.objects.count() >= 40 and settled(), 120, [worker], "40 results")
    outcomes = Counter(Assessment.objects.values_list("error_code", flat=True))
    assert sum(outcomes.values()) == 40
    assert set(outcomes) <= {"", "rate_limited"}
    assert outcomes[""] >= 30  # with 7 tries at 60% failure, about 97% get through
    assert Counter(r["outcome"] for r in standin.requests)["429"] > 20


def test_session_is_judged_after_going_idle_and_rejudged_with_history(experiment, endpoint, clusters):
    worker = clusters()
    create_judge(experiment, name="frustration", scope="session", builtin_key="UserFrustration", endpoint=endpoint, active=True, session_idle_seconds=10)
    ingest_in_batches(experiment, [make_trace("t1", session_id="s1"), make_trace("t2", minutes=1, session_id="s1", request={"messages": [{"role": "user", "content": "This is useless!!!"}]})])
    time.sleep(10.5)
    tasks.sweep()
    wait_for(lambda: Assessment.objects.filter(session__session_id="s1").exists(), 60, [worker], "the session verdict")
    first = Assessment.objects.get(session__session_id="s1")
    assert first.value == "unresolved"

    ingest_in_batches(experiment, [make_trace("t3", minutes=2, session_id="s1", response="Sorry! A replacement ships today. Thanks for waiting.")])
    tasks.sweep()
    assert Assessment.objects.filter(session__session_id="s1").count() == 1  # not idle yet: not judged again
    time.sleep(10.5)
    tasks.sweep()
    wait_for(lambda: Assessment.objects.filter(session__session_id="s1").count() == 2, 60, [worker], "the re-judged session")
    first.refresh_from_db()
    latest = Assessment.objects.get(session__session_id="s1", valid=True)
    assert first.valid is False and latest.overrides_id == first.pk
    assert Session.objects.get().trace_count == 3


def test_the_daily_spend_cap_holds_across_worker_processes(experiment, endpoint, clusters, standin):
    from decimal import Decimal

    from django.db.models import Max, Sum

    standin.config.latency_ms = 300
    workers = [clusters(), clusters()]  # two qclusters, four worker processes
    for worker in workers:
        worker.wait_ready()
    cap = Decimal("0.0010")  # about eight calls of the stand-in at the endpoint's prices
    judge(experiment, endpoint, daily_cost_cap_usd=str(cap))
    ingest_in_batches(experiment, [make_trace(f"t{n}", minutes=n) for n in range(40)])
    wait_for(lambda: Assessment.objects.count() >= 40 and settled(), 120, workers, "every trace judged or capped")
    spent = Assessment.objects.aggregate(total=Sum("cost_usd"))["total"]
    one_call = Assessment.objects.aggregate(most=Max("cost_usd"))["most"]
    capped = Assessment.objects.filter(error_code="budget_exceeded").count()
    assert capped >= 25  # most were refused, across both clusters
    # Each worker used to count only its own spend (4 workers: up to 4 caps). Now calls reserve against one
    # shared row: past the cap by at most the calls that started just under it, one per worker.
    assert spent <= cap + 4 * one_call, (spent, one_call)
