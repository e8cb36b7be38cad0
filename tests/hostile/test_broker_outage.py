"""The broker (Redis) unavailable: ingest still stores and answers 200, /healthz says the broker is down (degraded,
not down), and the judging that could not be queued is found by the every-minute sweep once Redis is back —
every trace judged once, none lost, none twice. The Redis is the test's own redis-server on a free port, which
the test stops and starts again; skipped where redis-server is not installed."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import time_machine
from django.db.models import Count
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage

from judges import tasks
from judges.actions import create_judge
from judges.models import Evaluation
from judges.redis_broker import PatientRedis
from judges.sweep import STALE_PENDING
from tests.conftest import make_trace
from tests.hostile.conftest import free_port
from traces.models import Assessment, Trace

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed"),
]


class RedisServer:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.from_url(self.url, socket_connect_timeout=1)
        for _ in range(100):
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path, monkeypatch, settings) -> Iterator[RedisServer]:
    """django-q2 (and /healthz) pointed at a redis-server of this test's own."""
    server = RedisServer(tmp_path)
    server.start()
    monkeypatch.setattr(Conf, "BROKER_CLASS", "judges.redis_broker.PatientRedis")
    monkeypatch.setattr(Conf, "REDIS", server.url)
    monkeypatch.setattr(Conf, "SYNC", False)
    settings.REDIS_URL = server.url
    try:
        yield server
    finally:
        server.stop()


def queued_tasks(broker: PatientRedis) -> list[dict]:
    found = []
    while tasks_set := broker.dequeue():
        found += [SignedPackage.loads(payload) for _, payload in tasks_set]
    return found


def test_ingest_stores_while_redis_is_down_and_the_sweep_queues_the_judging_once_it_is_back(
    own_redis, api, client, experiment, endpoint, caplog
):
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)
    broker = PatientRedis()
    assert client.get("/healthz").json()["broker"] == "ok"

    own_redis.stop()
    body = {"traces": [make_trace(f"t{n}") for n in range(5)]}
    with caplog.at_level(logging.WARNING, logger="judges.queue"):
        response = api.post(f"/api/v1/experiments/{experiment.pk}/traces", body, format="json")
    assert response.status_code == 200, response.content
    assert Trace.objects.count() == 5
    assert Evaluation.objects.filter(status="pending").count() == 5
    assert [record.exc_info for record in caplog.records if record.name == "judges.queue"] == [None]  # one line, no traceback
    health = client.get("/healthz")
    assert (health.status_code, health.json()["status"], health.json()["broker"]) == (200, "degraded", "down")

    own_redis.start()  # empty: what was sent while it was down never arrived
    assert queued_tasks(broker) == []
    with time_machine.travel(timezone.now() + STALE_PENDING + timedelta(seconds=5)):
        report = tasks.sweep()
    assert report["enqueued"] == 5
    queued = queued_tasks(broker)
    assert {task["func"] for task in queued} == {"judges.tasks.judge_evaluations"}
    for task in queued:  # what a worker does with them
        tasks.judge_evaluations(*task["args"])

    per_trace = Assessment.objects.values("trace_id").annotate(n=Count("pk"))
    assert sorted(row["n"] for row in per_trace) == [1] * 5  # every trace judged, none twice
    assert not Evaluation.objects.exclude(status="done").exists()
    assert client.get("/healthz").json()["broker"] == "ok"


def test_a_worker_waits_out_a_redis_outage_and_takes_work_again(own_redis, caplog):
    broker = PatientRedis()
    slept: list[float] = []
    broker.outage.sleep = slept.append
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="judges.brokers"):
        assert [broker.dequeue() for _ in range(3)] == [None] * 3  # no exception: the pusher stays up
    assert slept == [1, 2, 4]
    own_redis.start()
    broker.enqueue("a task")
    assert [payload for _, payload in broker.dequeue()] == [b"a task"]
    lines = [record.getMessage() for record in caplog.records if record.name == "judges.brokers"]
    assert len(lines) == 2 and lines[0].startswith("Redis (the task broker) unavailable") and "is back" in lines[1]
