"""A model provider that fails for a while (5xx, refused connections) ends in verdicts, not in errors: work waits
and retries, the endpoint pauses itself after its outage window and resumes when it answers again."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db.models import Count
from django.utils import timezone

from judges import selection, tasks, worker
from judges.actions import create_judge
from judges.endpoint_actions import update_endpoint
from judges.llm import PROVIDER_ERROR, CallResult
from judges.models import Evaluation, ModelEndpoint
from judges.outages import MAX_ISOLATED_FAILURES
from judges.results import Outcome
from judges.states import trace_state
from tests.conftest import ingest, make_trace
from traces.models import Assessment, Trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def judge(experiment, endpoint):
    return create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)


def assert_judged_once_each(traces: int) -> None:
    assert not Assessment.objects.exclude(error_code="").exists(), list(Assessment.objects.values_list("error_code", "error_message"))
    per_trace = Assessment.objects.values("trace_id").annotate(n=Count("pk"))
    assert sorted(row["n"] for row in per_trace) == [1] * traces  # no doubles
    assert Evaluation.objects.filter(status="done").count() == traces


def test_an_outage_pauses_the_endpoint_and_its_work_is_judged_when_it_recovers(experiment, endpoint, judge, standin, fast_retries, monkeypatch):
    from judges import outages

    monkeypatch.setattr(outages, "FIRST_RETRY_SECONDS", 30.0)  # the first retry comes after this round's budget
    update_endpoint(endpoint, outage_retry_seconds=60)
    ids = selection.select_traces(experiment.pk, [trace.pk for trace in ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(6)])])
    standin.config.rate_500 = 1.0  # the provider is down
    start = timezone.now()

    worker.drain(ids, budget_seconds=8)
    assert not Assessment.objects.exists()  # nothing recorded as an error
    assert Evaluation.objects.filter(status="pending", not_before__gt=start).count() == 6
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and not endpoint.is_paused  # still inside its outage window
    assert "model endpoint failed" in trace_state(judge, Trace.objects.get(trace_id="t0")).text

    with time_machine.travel(start + timedelta(seconds=70)):  # still down after the window: it pauses itself
        worker.drain(None, budget_seconds=20)
        endpoint.refresh_from_db()
        assert endpoint.is_paused and "Provider error since" in endpoint.paused_reason
        assert worker.claim(None)[1] == []  # nothing is handed out while it is paused
        assert tasks.sweep()["endpoints_resumed"] == []  # the minute's check: still failing
    assert not Assessment.objects.exists()

    standin.config.rate_500 = 0.0  # it recovers
    with time_machine.travel(start + timedelta(seconds=200)):
        report = tasks.sweep()
        assert report["endpoints_resumed"] == [endpoint.name]
        worker.drain(None, budget_seconds=20)
    assert not ModelEndpoint.objects.get(pk=endpoint.pk).is_paused
    assert_judged_once_each(6)


def test_a_request_that_keeps_failing_while_the_endpoint_answers_others_becomes_an_error(experiment, judge, monkeypatch, standin):
    ingest(experiment, make_trace("bad"), make_trace("good", minutes=1))
    real_call = worker.call_model

    def call(judge, prepared):
        if "answer bad" in str(prepared.prompt.messages):
            return Outcome(CallResult(error_code=PROVIDER_ERROR, error_message="500 on this one request"))
        return real_call(judge, prepared)

    monkeypatch.setattr(worker, "call_model", call)
    selection.select_traces(experiment.pk, list(Trace.objects.values_list("pk", flat=True)))
    moment = timezone.now()
    for round in range(MAX_ISOLATED_FAILURES + 1):
        with time_machine.travel(moment + timedelta(minutes=2 * round)):
            Evaluation.objects.filter(trace__trace_id="good").update(status="pending", claimed_by="")  # others keep succeeding
            worker.drain(None, budget_seconds=4)  # shorter than the first retry delay: one try per round
    bad = Evaluation.objects.get(trace__trace_id="bad")
    assert (bad.status, bad.error_code, bad.transient_failures) == ("error", PROVIDER_ERROR, MAX_ISOLATED_FAILURES - 1)
    assert not ModelEndpoint.objects.get().is_paused


def test_errors_an_outage_left_are_rejudged_in_bulk_from_the_judges_tab(client, user, experiment, judge, standin):
    from django.urls import reverse

    from judges.results import record_result
    from tests.conftest import judge_pending

    ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(3)])
    Evaluation.objects.all().delete()  # what an outage left before this change: recorded errors
    for trace in Trace.objects.all():
        failure = Outcome(CallResult(error_code=PROVIDER_ERROR, error_message="502 Bad Gateway (after 5 attempts)"))
        assessment = record_result(judge, failure, trace=trace)
        Evaluation.objects.create(judge=judge, judge_version=1, trace=trace, status="error", error_code=PROVIDER_ERROR, finished_at=timezone.now(), assessment=assessment)
    client.force_login(user)
    tab = client.get(reverse("experiment-judges", args=[experiment.pk])).content.decode()
    assert "Re-judge 3 provider errors" in tab

    response = client.post(reverse("judge-rejudge-errors", args=[experiment.pk, judge.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert Evaluation.objects.filter(manual=True, status="pending").count() == 3
    judge_pending()
    latest = Assessment.objects.filter(valid=True)
    assert latest.count() == 3 and not latest.exclude(error_code="").exists()
    assert Assessment.objects.filter(valid=False, error_code=PROVIDER_ERROR).count() == 3  # kept as history


def test_viewers_cannot_rejudge(client, viewer, experiment, judge):
    from django.urls import reverse

    client.force_login(viewer)
    assert client.post(reverse("judge-rejudge-errors", args=[experiment.pk, judge.pk])).status_code == 403


def test_a_sweep_that_stopped_running_is_reported_by_healthz_and_the_judges_tab(client, user, experiment):
    from django.urls import reverse
    from django_q.conf import Conf
    from django_q.models import Schedule

    from judges.sweep import sweep

    tasks.ensure_schedule()
    schedule = Schedule.objects.get(name=tasks.SWEEP_SCHEDULE)
    assert schedule.cluster == Conf.CLUSTER_NAME  # on the queue the workers serve (EVALAPP_Q_QUEUE), not a default one
    assert client.get("/healthz").json()["status"] == "ok"  # not due yet
    Schedule.objects.filter(pk=schedule.pk).update(next_run=timezone.now() - timedelta(minutes=10))  # due, never ran
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and "EVALAPP_Q_QUEUE" in body["sweep"]["message"]
    client.force_login(user)
    assert "Background work is stalled" in client.get(reverse("experiment-judges", args=[experiment.pk])).content.decode()

    sweep()
    assert client.get("/healthz").json()["sweep"]["ok"] is True
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert client.get("/healthz").json()["status"] == "degraded"
