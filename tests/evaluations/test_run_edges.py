"""Edges a review found: a copied trace must not join a live conversation; a run that did not finish never passes;
gates compare exact figures; long-running runs are not given up while they log, and a given-up run's queued work
is cancelled; huge page numbers and offsets are a page or a 400, not a 500; the runs list finds a name among
older runs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf

from evaluations.actions import create_run, finish_runs
from evaluations.inputs import RunData
from evaluations.models import EvaluationRun, GateMetric, GateOperator, RunGate, RunStatus
from evaluations.results import JudgeMetric, _gate, summarize
from judges.actions import create_judge
from judges.models import Evaluation, EvaluationStatus
from tests.conftest import ingest, make_trace
from tests.evaluations.conftest import Row, build_run, dataset_with, yes_no_judge
from traces.models import Session, Trace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)  # tasks stay in the broker


def post_json(api, url, body):
    return api.post(url, data=json.dumps(body), content_type="application/json")


def test_a_copied_production_trace_does_not_join_its_live_conversation(experiment, endpoint, user):
    yes_no_judge(experiment, endpoint, "correct")
    live = make_trace("live-1")
    live["spans"][0]["attributes"] = {"session.id": "chat-42", "user.id": "ann"}
    ingest(experiment, live)
    conversation = Session.objects.get(experiment=experiment, session_id="chat-42")
    assert conversation.trace_count == 1

    run = create_run(experiment, user=user, data=RunData(trace_ids=["live-1"]), judges=["correct"])

    copy = Trace.objects.get(evaluation_run=run.id)
    assert (copy.session_id, copy.user_id) == ("", "")
    conversation.refresh_from_db()
    assert conversation.trace_count == 1


def test_a_run_that_did_not_finish_never_passes(experiment, endpoint):
    judge = yes_no_judge(experiment, endpoint, "correct")
    rows = [Row(inputs={"q": "a"}, outputs="x", verdicts={"correct": True})]
    finished = build_run(experiment, [judge], rows, name="finished")
    cancelled = build_run(experiment, [judge], rows, name="cancelled", status=RunStatus.CANCELLED)
    gated = build_run(experiment, [judge], rows, name="gated", status=RunStatus.CANCELLED, gates=[("correct", "pass_rate", ">=", 0.5)])
    assert summarize(finished).passed is True
    assert summarize(cancelled).passed is False
    assert summarize(gated).passed is False and summarize(gated).gates[0].passed is True


def test_a_gate_compares_the_exact_figure_not_the_rounded_one():
    gate = RunGate(judge_name="correct", metric=GateMetric.PASS_RATE, operator=GateOperator.AT_LEAST, threshold=0.9)
    just_below = JudgeMetric(name="correct", output_type="boolean", n=9999, errors=0, pending=0, passes=8999, pass_rate=round(8999 / 9999, 4))
    assert just_below.pass_rate == 0.9  # shown as 0.9 ...
    assert _gate(gate, just_below).passed is False  # ... and still below the gate
    mean_gate = RunGate(judge_name="score", metric=GateMetric.MEAN, operator=GateOperator.AT_LEAST, threshold=4.0)
    mean = JudgeMetric(name="score", output_type="integer", n=3, errors=0, pending=0, mean=4.0, exact_mean=3.99996)
    assert _gate(mean_gate, mean).passed is False


def test_a_run_still_logging_after_a_day_is_kept_and_a_silent_one_is_given_up_with_its_queued_work(api, experiment, endpoint):
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful for {{ inputs }}?", endpoint=endpoint)
    url = f"/api/v1/experiments/{experiment.pk}/evaluation-runs"
    records = [{"inputs": {"q": "a"}}, {"inputs": {"q": "b"}}]
    busy = post_json(api, url, {"records": records, "judges": ["helpful"], "predict": True}).json()
    silent = post_json(api, url, {"records": records, "judges": ["helpful"], "predict": True}).json()
    for run in (busy, silent):
        logged = post_json(api, f"{url}/{run['id']}/predictions", {"predictions": [{"position": 0, "outputs": "x", "latency_ms": 5}]})
        assert logged.status_code == 200, logged.content
    day_ago = timezone.now() - timedelta(hours=25)
    EvaluationRun.objects.update(created_at=day_ago)
    Trace.objects.filter(evaluation_run=silent["id"]).update(updated_at=day_ago)  # its last prediction, a day ago

    assert finish_runs()["cancelled"] == 1
    assert EvaluationRun.objects.get(pk=busy["id"]).status == RunStatus.PREDICTING
    assert EvaluationRun.objects.get(pk=silent["id"]).status == RunStatus.CANCELLED
    silent_work = Evaluation.objects.filter(job=silent["id"])
    assert silent_work.exists() and not silent_work.filter(status=EvaluationStatus.PENDING).exists()
    assert Evaluation.objects.filter(job=busy["id"], status=EvaluationStatus.PENDING).exists()


@pytest.fixture
def small_run(experiment, endpoint):
    judge = yes_no_judge(experiment, endpoint, "correct")
    dataset, records = dataset_with(experiment, "d", ["q1", "q2"])
    return build_run(experiment, [judge], [Row(inputs={}, record=r, outputs="a", verdicts={"correct": True}) for r in records], name="r", dataset=dataset)


def test_a_huge_page_number_shows_the_last_page_and_a_huge_offset_is_a_400(viewer_client, viewer_api, small_run):
    page = viewer_client.get(reverse("evaluation-run", args=[small_run.experiment_id, small_run.pk]) + "?page=" + "9" * 25)
    assert page.status_code == 200 and b"q1" in page.content
    rows = viewer_api.get(f"/api/v1/evaluation-runs/{small_run.pk}/rows?offset=" + "9" * 25)
    assert rows.status_code == 400 and rows.json()["errors"][0]["field"] == "offset"


def test_the_runs_list_finds_a_name_among_older_runs(api, experiment, endpoint, monkeypatch):
    judge = yes_no_judge(experiment, endpoint, "correct")
    rows = [Row(inputs={"q": "a"}, outputs="x", verdicts={"correct": True})]
    build_run(experiment, [judge], rows, name="the-old-one")
    from evaluations import api as runs_api

    for number in range(3):
        build_run(experiment, [judge], rows, name=f"newer-{number}")
    monkeypatch.setattr(runs_api, "MAX_RUNS_LISTED", 2)  # the old run is not among the newest two
    found = api.get(f"/api/v1/experiments/{experiment.pk}/evaluation-runs?name=the-old-one").json()["runs"]
    assert [run["name"] for run in found] == ["the-old-one"]
