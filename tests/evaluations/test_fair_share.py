"""A big evaluation run never keeps production's verdicts waiting: its judging is queued behind live work
(RUN_PRIORITY), so a live trace logged while hundreds of run judgements are pending is claimed next — by a
worker in this process, and by a real `qcluster` worker. Order, not timing, is asserted."""

from __future__ import annotations

import pytest

from evaluations.actions import RunData, create_run
from evaluations.models import EvaluationRun
from judges import worker
from judges.actions import create_judge
from judges.endpoint_actions import update_endpoint
from judges.models import Evaluation, EvaluationStatus
from judges.selection import select_traces
from tests.conftest import ingest, judge_pending, make_trace
from tests.e2e.test_workers import clusters, wait_for  # noqa: F401
from traces.models import Assessment

RUN_ROWS = 300


def start_big_run(experiment, judge) -> EvaluationRun:
    records = [{"inputs": {"question": f"question {n}"}, "outputs": f"answer {n}"} for n in range(RUN_ROWS)]
    return create_run(experiment, name="big", data=RunData(records=records), judges=[judge.name])


@pytest.mark.django_db
def test_a_live_trace_is_judged_before_the_runs_backlog(experiment, endpoint):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful for {{ inputs }}?", endpoint=endpoint, active=True)
    run = start_big_run(experiment, judge)
    backlog = list(Evaluation.objects.filter(job=run.pk).order_by("pk").values_list("pk", flat=True))
    judge_pending(backlog[:20], limit=4)  # the run is under way...
    [live] = ingest(experiment, make_trace("live-1"))  # ...when production logs a trace
    select_traces(experiment.pk, [live.pk])  # what ingest's commit does

    before = Assessment.objects.order_by("-pk").values_list("pk", flat=True).first()
    max_in_flight = 4
    worker.drain(None, take_more=True, max_in_flight=max_in_flight)
    since = list(Assessment.objects.filter(pk__gt=before).order_by("pk").values_list("trace__evaluation_run", flat=True))
    # The live verdict is among the first calls the worker made once the trace was there (they finish in any
    # order), ahead of the 280 run judgements still waiting.
    assert since.count(None) == 1 and since.index(None) < max_in_flight
    assert Evaluation.objects.filter(job=run.pk, status=EvaluationStatus.DONE).count() == RUN_ROWS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_a_real_worker_a_live_trace_is_judged_while_the_run_is_still_far_from_done(experiment, endpoint, standin, clusters):  # noqa: F811
    standin.config.latency_ms = 100
    # The run's pace is the endpoint's (16 calls at a time: ≥ 1.9 s for 300), not the machine's: at 64 at a time the
    # run was over in ~1.5 s, as long as a live verdict can take on a busy 2-core machine, and the test raced it.
    update_endpoint(endpoint, max_concurrency=16)
    worker_process = clusters()
    worker_process.wait_ready()
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful for {{ inputs }}?", endpoint=endpoint, active=True)
    run = start_big_run(experiment, judge)
    wait_for(lambda: Evaluation.objects.filter(job=run.pk, status=EvaluationStatus.DONE).count() >= 20, 120, [worker_process], "the run to be under way")
    ingest(experiment, make_trace("live-1"))
    wait_for(lambda: Assessment.objects.filter(trace__trace_id="live-1").exists(), 120, [worker_process], "the live verdict")
    still_pending = Evaluation.objects.filter(job=run.pk).exclude(status=EvaluationStatus.DONE).count()
    assert still_pending > RUN_ROWS // 3, f"only {still_pending} run judgements were left when the live trace was judged"
