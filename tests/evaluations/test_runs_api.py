"""The evaluation runs API: starting a run from a dataset, inline records or existing traces; judges by name or
built-in; gates; predictions logged as the rows' traces; judging as a job of the run at a priority behind live work;
precise 4xx for bad input with nothing written; viewers read but can't start runs."""

from __future__ import annotations

import json

import pytest
from django_q.conf import Conf

from datasets.actions import create_dataset, merge_records
from datasets.records import RecordIn
from evaluations.models import EvaluationRun, RunGate, RunRow
from judges.actions import create_judge, delete_judge
from judges.models import LIVE_PRIORITY, RUN_PRIORITY, Evaluation, Judge
from judges.selection import select_traces
from tests.conftest import ingest, judge_pending, make_trace
from traces.models import Trace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    """Tasks stay in the broker: each test judges what is pending itself (tests.conftest.judge_pending)."""
    monkeypatch.setattr(Conf, "SYNC", False)


def runs_url(experiment) -> str:
    return f"/api/v1/experiments/{experiment.pk}/evaluation-runs"


def post_json(api, url, body):
    return api.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def helpful(experiment, endpoint):
    return create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)


@pytest.fixture
def dataset(experiment):
    dataset = create_dataset(experiment, "refunds")
    merge_records(
        dataset,
        [
            RecordIn(inputs={"question": "refund window?"}, expectations={"expected_facts": ["30 days"]}),
            RecordIn(inputs={"question": "contact support?"}, expectations={"expected_response": "by e-mail"}),
        ],
    )
    return dataset


def test_a_run_on_a_dataset_copies_its_records_and_waits_for_predictions(api, experiment, dataset, helpful):
    response = post_json(api, runs_url(experiment), {"name": "v2", "dataset": "refunds", "judges": ["helpful"], "gates": ["helpful>=0.5"], "predict": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "predicting" and body["row_count"] == 2
    assert [row["inputs"] for row in body["rows"]] == [{"question": "refund window?"}, {"question": "contact support?"}]
    run = EvaluationRun.objects.get(pk=body["id"])
    assert run.judges == [{"judge_id": helpful.pk, "name": "helpful", "version": 1, "output_type": "boolean"}]
    rows = list(run.rows.all())
    assert [(row.record.inputs, row.record_version, row.record_hash) for row in rows] == [
        (record.inputs, record.version, record.content_hash) for record in dataset.records.order_by("created_at", "pk")
    ]
    assert list(RunGate.objects.filter(run=run).values_list("judge_name", "metric", "operator", "threshold")) == [("helpful", "pass_rate", ">=", 0.5)]
    assert not Evaluation.objects.exists()


def read_url(run_id) -> str:
    return f"/api/v1/evaluation-runs/{run_id}"


def test_predictions_become_run_traces_and_the_last_one_starts_the_judging_behind_live_work(
    api, experiment, dataset, helpful, django_capture_on_commit_callbacks
):
    body = post_json(api, runs_url(experiment), {"dataset": dataset.pk, "judges": ["helpful"], "predict": True}).json()
    url = f"{runs_url(experiment)}/{body['id']}/predictions"
    first = post_json(api, url, {"predictions": [{"position": 0, "outputs": "Within 30 days.", "latency_ms": 40}]})
    assert first.status_code == 200 and first.json() == {"logged": 1, "waiting": 1, "status": "predicting"}
    # Judged as it arrives; the run is not done while a row is still to come.
    assert Evaluation.objects.count() == 1
    judge_pending()
    assert api.get(read_url(body["id"])).json()["status"] == "predicting"
    again = post_json(api, url, {"predictions": [{"position": 0, "outputs": "Within 30 days."}]})  # a retry
    assert again.status_code == 200 and Evaluation.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):  # as after the request's commit
        last = post_json(api, url, {"predictions": [{"position": 1, "error": "TimeoutError: predict_fn took longer than 5 s", "latency_ms": 5000}]})
    assert last.json() == {"logged": 1, "waiting": 0, "status": "judging"}

    run = EvaluationRun.objects.get(pk=body["id"])
    first_row, error_row = run.rows.order_by("position")
    assert first_row.trace.response == "Within 30 days." and first_row.trace.evaluation_run == run.pk
    assert first_row.trace.expectations == {"expected_facts": ["30 days"]}
    assert error_row.trace.status == "ERROR" and error_row.error.startswith("TimeoutError")
    # Only the row that has an answer is judged, as the run's job, behind live work.
    [evaluation] = Evaluation.objects.all()
    assert (evaluation.job, evaluation.trace_id, evaluation.priority, evaluation.manual) == (run.pk, first_row.trace_id, RUN_PRIORITY, True)
    assert post_json(api, url, {"predictions": [{"position": 0, "outputs": "again"}]}).status_code == 409

    # Its only judgement was settled while predicting: the run is done once the last row is in.
    detail = api.get(read_url(run.pk)).json()
    summary = detail["summary"]
    assert detail["status"] == "done" and (summary["done"], summary["total"], summary["row_errors"]) == (1, 1, 1)
    [metric] = summary["judges"]
    assert (metric["name"], metric["n"]) == ("helpful", 1)
    rows = api.get(f"{read_url(run.pk)}/rows").json()
    assert [row["verdicts"]["helpful"]["state"] for row in rows["rows"]] == ["judged", "missing"]


def test_run_traces_are_left_out_of_automatic_evaluation(api, experiment, helpful):
    live = create_judge(experiment, name="live", instructions="Is {{ outputs }} polite?", endpoint=helpful.endpoint, active=True)
    body = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": "hi"}, "outputs": "hello"}], "judges": ["helpful"]}).json()
    run_trace = Trace.objects.get(evaluation_run=body["id"])
    [production] = ingest(experiment, make_trace("prod-1"))
    assert select_traces(experiment.pk, [run_trace.pk, production.pk], judges=[live]) != []
    assert set(Evaluation.objects.filter(judge=live).values_list("trace_id", flat=True)) == {production.pk}
    assert Evaluation.objects.get(judge=live).priority == LIVE_PRIORITY


def test_outputs_given_are_judged_at_once_without_predictions(api, experiment, helpful, django_capture_on_commit_callbacks):
    records = [{"inputs": {"q": "refund?"}, "outputs": "30 days"}, {"inputs": {"q": "hours?"}, "outputs": "I don't know"}]
    body = post_json(api, runs_url(experiment), {"records": records, "judges": ["helpful"], "gates": ["helpful >= 60%"]}).json()
    assert body["status"] == "judging" and "rows" in body and body["rows"] == []
    with django_capture_on_commit_callbacks(execute=True):  # the worker's job_settled, after its commit
        judge_pending()
    detail = api.get(read_url(body["id"])).json()
    assert detail["status"] == "done"
    [gate] = detail["summary"]["gates"]
    assert (gate["threshold"], gate["n"]) == (0.6, 2)


def test_existing_traces_are_evaluated_as_copies_with_their_spans(api, experiment, helpful):
    ingest(experiment, make_trace("old-1"), make_trace("old-2", minutes=1))
    body = post_json(api, runs_url(experiment), {"trace_ids": ["old-1"], "judges": ["helpful"]}).json()
    run = EvaluationRun.objects.get(pk=body["id"])
    [row] = run.rows.all()
    assert row.source_trace_id == "old-1" and row.trace.trace_id != "old-1"
    assert sorted(row.trace.spans.values_list("name", flat=True)) == ["agent", "chat", "search_docs"]
    assert row.trace.evaluation_run == run.pk
    by_filter = post_json(api, runs_url(experiment), {"filter_string": "trace.status = 'OK'", "judges": ["helpful"]}).json()
    assert by_filter["row_count"] == 2  # the first run's copy is not evaluated again


def test_a_builtin_name_makes_the_experiments_judge_once_with_automatic_evaluation_off(api, experiment, endpoint):
    records = [{"inputs": {"q": "refund?"}, "outputs": "30 days"}]
    first = post_json(api, runs_url(experiment), {"records": records, "judges": ["Correctness", "safety"]})
    assert first.status_code == 201, first.content
    made = {judge.name: judge for judge in Judge.objects.filter(experiment=experiment)}
    assert {name: (judge.builtin_key, judge.active, judge.endpoint_id) for name, judge in made.items()} == {
        "correctness": ("Correctness", False, endpoint.pk),
        "safety": ("Safety", False, endpoint.pk),
    }
    again = post_json(api, runs_url(experiment), {"records": records, "judges": ["correctness"]})
    assert again.status_code == 201 and Judge.objects.filter(experiment=experiment).count() == 2


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"dataset": "nope", "judges": ["helpful"]}, "dataset", "no dataset 'nope'"),
        ({"records": [], "judges": ["helpful"]}, "records", "is empty"),
        ({"records": [{"expectations": {}}], "judges": ["helpful"]}, "records[0].inputs", "is required"),
        ({"records": [{"inputs": {"q": 1}}], "judges": ["helpful"]}, "records", "no record has outputs"),
        ({"records": [{"inputs": {"q": 1}, "outputs": "x"}], "judges": ["nobody"]}, "judges[0]", "no judge 'nobody'"),
        ({"records": [{"inputs": {"q": 1}, "outputs": "x"}], "judges": []}, "judges", "non-empty list"),
        ({"records": [{"inputs": {"q": 1}, "outputs": "x"}], "judges": ["helpful"], "gates": ["helpful>=1.5"]}, "gates[0]", "share from 0 to 1"),
        ({"records": [{"inputs": {"q": 1}, "outputs": "x"}], "judges": ["helpful"], "gates": ["other>=0.5"]}, "gates[0]", "not one of this run's judges"),
        ({"records": [{"inputs": {"q": 1}, "outputs": "x"}], "judges": ["helpful"], "gates": ["helpful.mean>=3"]}, "gates[0]", "gate its pass rate"),
        ({"records": [{"inputs": {"q": 1}, "outputs": "x"}], "judges": ["helpful"], "gates": ["helpful=0.5"]}, "gates[0]", "is not a gate"),
        ({"trace_ids": ["missing"], "judges": ["helpful"]}, "trace_ids", "no trace 'missing'"),
        ({"judges": ["helpful"]}, "", "exactly one of"),
    ],
)
def test_bad_input_is_refused_precisely_and_nothing_is_written(api, experiment, helpful, body, field, words):
    response = post_json(api, runs_url(experiment), body)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(error["field"] == field and words in error["message"] for error in errors), errors
    assert not EvaluationRun.objects.exists() and not RunRow.objects.exists() and not Trace.objects.exists()


def test_a_deleted_judge_or_dataset_is_refused(api, experiment, helpful, dataset):
    dataset_id = dataset.pk
    dataset.delete()
    gone = post_json(api, runs_url(experiment), {"dataset": dataset_id, "judges": ["helpful"]})
    assert gone.status_code == 400 and "deleted?" in gone.json()["detail"]
    delete_judge(helpful)
    response = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": 1}, "outputs": "x"}], "judges": ["helpful"]})
    assert response.status_code == 400 and "no judge 'helpful'" in response.json()["detail"]


def test_viewers_read_runs_but_cannot_start_or_feed_them(api, viewer_api, experiment, helpful):
    body = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": 1}}], "judges": ["helpful"], "predict": True}).json()
    refused = post_json(viewer_api, runs_url(experiment), {"records": [{"inputs": {"q": 2}, "outputs": "x"}], "judges": ["helpful"]})
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    fed = post_json(viewer_api, f"{runs_url(experiment)}/{body['id']}/predictions", {"predictions": [{"position": 0, "outputs": "x"}]})
    assert fed.status_code == 403
    assert viewer_api.get(runs_url(experiment)).json()["runs"][0]["id"] == body["id"]
    assert EvaluationRun.objects.count() == 1 and not Trace.objects.exists()


def test_bad_predictions_are_refused_with_their_positions(api, experiment, helpful):
    body = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": 1}}], "judges": ["helpful"], "predict": True}).json()
    url = f"{runs_url(experiment)}/{body['id']}/predictions"
    response = post_json(api, url, {"predictions": [{"position": 7, "outputs": "x"}, {"position": 0, "latency_ms": -1}]})
    assert response.status_code == 400
    assert {error["field"] for error in response.json()["errors"]} == {"predictions[0].position", "predictions[1].latency_ms"}
    assert not Trace.objects.exists()


def test_run_traces_and_their_verdicts_stay_out_of_the_overview_and_alerts(api, experiment, helpful):
    from datetime import timedelta

    from django.utils import timezone

    from evalapp.overview.aggregates import exact_percentiles, raw_tallies
    from evalapp.overview.compute import boolean_pass_rates
    from evalapp.overview.ranges import TimeRange
    from tests.conftest import BASE_TIME, judge_now

    [production] = ingest(experiment, make_trace("prod-1"))
    judge_now(helpful, production)
    body = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": "a"}, "outputs": "x"}, {"inputs": {"q": "b"}, "outputs": "y"}], "judges": ["helpful"]}).json()
    judge_pending()
    assert Evaluation.objects.filter(job=body["id"], status="done").count() == 2

    window = [(BASE_TIME - timedelta(days=1), timezone.now() + timedelta(hours=1))]
    tallies = raw_tallies(experiment, window, "day", names=None, categorical={}, histogram=False).values()
    assert sum(tally.traces for tally in tallies) == 1
    assert sum(tally.judge("trace", "helpful").counts["judged"] for tally in tallies) == 1
    assert boolean_pass_rates([experiment.pk], window[0][0]) == {experiment.pk: 1.0 if production.assessments.get().value else 0.0}
    percentiles = exact_percentiles(experiment, TimeRange(window[0][0], window[0][1], "day"))
    assert percentiles[None]["p50_ms"] == production.duration_ms


def test_the_worker_that_settles_the_last_judgement_marks_the_run_done(api, experiment, helpful, django_capture_on_commit_callbacks):
    body = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": "a"}, "outputs": "x"}, {"inputs": {"q": "b"}, "outputs": "y"}], "judges": ["helpful"]}).json()
    run = EvaluationRun.objects.get(pk=body["id"])
    assert run.status == "judging"
    with django_capture_on_commit_callbacks(execute=True):
        judge_pending()
    run.refresh_from_db()
    assert run.status == "done" and run.finished_at is not None


def test_the_every_minute_check_finishes_settled_runs_and_gives_up_abandoned_ones(api, experiment, helpful):
    from datetime import timedelta

    from django.utils import timezone

    from evaluations.actions import finish_runs

    judged = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": "a"}, "outputs": "x"}], "judges": ["helpful"]}).json()
    waiting = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": "b"}}], "judges": ["helpful"], "predict": True}).json()
    fresh = post_json(api, runs_url(experiment), {"records": [{"inputs": {"q": "c"}}], "judges": ["helpful"], "predict": True}).json()
    EvaluationRun.objects.filter(pk=waiting["id"]).update(created_at=timezone.now() - timedelta(hours=25))
    judge_pending()  # settled without the worker's signal (as when the sweep abandons an evaluation)
    assert finish_runs() == {"finished": 1, "cancelled": 1}
    assert {run.pk.hex: run.status for run in EvaluationRun.objects.all()} == {
        judged["id"].replace("-", ""): "done",
        waiting["id"].replace("-", ""): "cancelled",
        fresh["id"].replace("-", ""): "predicting",
    }
