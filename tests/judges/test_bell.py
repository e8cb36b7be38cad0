"""The judging doorbell (judges.bell): one judging task waits in the broker at a time, whatever the ingest rate."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from judges import queue, tasks, try_runs, worker
from judges.actions import create_judge
from judges.models import Evaluation, Judge, JudgingBell
from tests.conftest import ingest, make_trace
from traces.models import Assessment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, tuple]]:
    """The judging tasks that would reach the broker: (task path, args) each (the judge's look-back task aside)."""
    sent: list[tuple[str, tuple]] = []

    def enqueue(task, *args):
        if task is not tasks.backfill:
            sent.append((queue.task_path(task), args))

    monkeypatch.setattr(queue, "enqueue", enqueue)
    return sent


def helpful(experiment, endpoint):
    return create_judge(experiment, endpoint=endpoint, name="helpful", instructions="Is {{ outputs }} helpful?", active=True)


def test_work_committed_while_a_task_waits_is_judged_by_that_task_without_another(experiment, endpoint, queued):
    helpful(experiment, endpoint)
    for n in range(5):  # five ingest requests, each committing its own work
        ingest(experiment, make_trace(f"t{n}", minutes=n))
    assert Evaluation.objects.filter(status="pending").count() == 5
    assert len(queued) == 1, "a task per request: each after the first finds nothing left to do"
    [(path, (first_ids,))] = queued
    assert path == "judges.tasks.judge_evaluations" and len(first_ids) == 1

    assert tasks.judge_evaluations(first_ids) == 5  # the waiting task's drain takes what came after it
    assert Assessment.objects.filter(name="helpful", valid=True).count() == 5


def test_a_starting_task_lets_the_next_work_queue_its_own(experiment, endpoint, queued):
    helpful(experiment, endpoint)
    ingest(experiment, make_trace("t1"))
    tasks.judge_evaluations(*queued[0][1])  # answers the bell, then judges
    ingest(experiment, make_trace("t2", minutes=1))  # after that task started: it may have looked already
    assert len(queued) == 2
    assert tasks.judge_evaluations(*queued[1][1]) == 1


def test_a_task_lost_in_the_broker_silences_the_bell_only_briefly(experiment, endpoint, queued):
    helpful(experiment, endpoint)
    ingest(experiment, make_trace("t1"))  # its task is lost: never started
    ingest(experiment, make_trace("t2", minutes=1))
    assert len(queued) == 1
    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        ingest(experiment, make_trace("t3", minutes=2))
    assert len(queued) == 2
    assert tasks.judge_evaluations(*queued[1][1]) == 3


def test_a_large_selection_starts_every_worker_process_at_once(experiment, endpoint, queued, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    helpful(experiment, endpoint)
    ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(200)])  # 4 chunks of up to 64
    assert [len(args[0]) for _, args in queued] == [64, 64, 64]
    assert len({pk for _, (ids,) in queued for pk in ids}) == 192


def test_each_broker_queue_has_its_own_bell(experiment, endpoint, queued, monkeypatch):
    from django_q.conf import Conf

    helpful(experiment, endpoint)
    ingest(experiment, make_trace("t1"))
    monkeypatch.setattr(Conf, "CLUSTER_NAME", "another-queue")  # another deployment's workers on the same database
    ingest(experiment, make_trace("t2", minutes=1))
    assert len(queued) == 2
    queues = list(JudgingBell.objects.values_list("queue", flat=True))
    assert len(queues) == 2 and "another-queue" in queues


def test_a_drain_that_used_its_time_budget_queues_its_sequel(experiment, endpoint, queued, settings, monkeypatch):
    settings.EVALAPP_DRAIN_SECONDS = 0.05

    def long_drain(ids, **kwargs):
        time.sleep(0.06)
        return 0

    monkeypatch.setattr(worker, "drain", long_drain)
    tasks.judge_evaluations([])
    assert queued == [("judges.tasks.judge_evaluations", ([],))]

    queued.clear()
    monkeypatch.setattr(worker, "drain", lambda ids, **kwargs: 0)  # ended early: nothing left
    tasks.judge_evaluations([])
    assert queued == []


def test_a_try_it_queued_while_a_drain_runs_is_answered_beside_it_not_after_it(experiment, endpoint, standin, queued):
    """With one worker process, a drain may hold it for EVALAPP_DRAIN_SECONDS; the form's Try it must not wait for it."""
    from judges.manual import start_try
    from judges.models import TryRun

    standin.config.latency_ms = 300
    judge = helpful(experiment, endpoint)
    traces = ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(3)])
    unsaved = Judge(experiment=experiment, endpoint=endpoint, name="tried", instructions="Is {{ outputs }} polite?")
    start_try(unsaved, traces[0])  # asked for while judging work is pending: the drain below starts on both
    done = worker.drain(list(Evaluation.objects.filter(judge=judge).values_list("pk", flat=True)), side_work=try_runs.run_waiting)
    assert done == 3
    run = TryRun.objects.get()
    assert run.status == "done" and run.outcome["result"]["error_code"] == ""
    assert [path for path, _ in queued] == ["judges.tasks.judge_evaluations", "judges.tasks.run_try"]
    assert try_runs.run(str(run.pk)) is False  # its own task, run later, finds it done


def test_a_drain_that_keeps_finding_a_backlog_asks_for_another_worker_once_while_the_bell_is_rung(experiment, endpoint, standin, queued):
    """One task waits at a time, so without asking, a backlog stayed with the one process whose task came first."""
    standin.config.latency_ms = 50
    helpful(experiment, endpoint)
    ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(60)])
    [(_, (first_ids,))] = queued
    queued.clear()
    assert tasks.judge_evaluations(first_ids[:8]) == 60  # its own 8 first, then claims of the rest that come back full
    assert queued == [("judges.tasks.judge_evaluations", ([],))], "one call for help: the bell says a task is waiting"
    assert tasks.judge_evaluations([]) == 0  # the helper, run after everything was judged, finds nothing


def test_a_drain_that_takes_all_there_is_asks_for_no_help(experiment, endpoint, standin, queued):
    helpful(experiment, endpoint)
    ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(5)])
    [(_, (first_ids,))] = queued
    queued.clear()
    assert tasks.judge_evaluations(first_ids) == 5
    assert queued == []


def test_a_call_for_help_trusts_a_task_queued_long_ago_where_new_work_takes_it_for_lost(experiment, endpoint, queued):
    """With one worker process, the helper queued early in a long drain waits for that drain to end: asking again
    every RING_SECONDS piled up spare tasks. New work still replaces a task that may be lost."""
    from judges import bell

    assert bell.ring(trust_a_waiting_task=True)
    later = timezone.now() + timedelta(seconds=bell.RING_SECONDS + 1)
    with time_machine.travel(later):
        assert not bell.ring(trust_a_waiting_task=True)
        assert bell.ring()
    bell.answer()
    assert bell.ring(trust_a_waiting_task=True)
