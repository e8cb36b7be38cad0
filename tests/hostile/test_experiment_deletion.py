"""Deleting an experiment: everything on it goes, in batches, in the background; another experiment is untouched;
a wrong name deletes nothing; viewers can't; it is gone from lists and refuses traces at once; and a deletion
that dies half-way is finished by the next task or the sweep."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_q.conf import Conf

from evalapp.alerts.evaluate import check_rules
from evalapp.models import AlertKind, AlertRule, OverviewHour
from judges import tasks, worker
from judges.actions import create_judge
from judges.models import AuditEvent, Evaluation, Judge, JudgeVersion
from tests.conftest import ingest, make_trace, record_verdict
from tests.hostile.conftest import otlp_body, trace_ids
from traces import deletion, retention
from traces.actions import ExperimentNameTaken, create_experiment
from traces.feedback import add_feedback
from traces.models import Assessment, Experiment, Session, Span, Trace

pytestmark = [pytest.mark.hostile, pytest.mark.django_db(transaction=True)]


def rows_of(experiment_id: int) -> dict[str, int]:
    """How many rows of each kind hang off the experiment."""
    on_trace = {"trace__experiment_id": experiment_id}
    on_session = {"session__experiment_id": experiment_id}
    return {
        "experiment": Experiment.all_objects.filter(pk=experiment_id).count(),
        "traces": Trace.objects.filter(experiment_id=experiment_id).count(),
        "spans": Span.objects.filter(**on_trace).count(),
        "sessions": Session.objects.filter(experiment_id=experiment_id).count(),
        "assessments": Assessment.objects.filter(**on_trace).count() + Assessment.objects.filter(**on_session).count(),
        "evaluations": Evaluation.objects.filter(judge__experiment_id=experiment_id).count(),
        "judges": Judge.objects.filter(experiment_id=experiment_id).count(),
        "judge_versions": JudgeVersion.objects.filter(judge__experiment_id=experiment_id).count(),
        "alert_rules": AlertRule.objects.filter(experiment_id=experiment_id).count(),
        "overview_hours": OverviewHour.objects.filter(experiment_id=experiment_id).count(),
        "audit_events": AuditEvent.objects.filter(experiment_id=experiment_id).count(),
    }


def fill(experiment: Experiment, endpoint, user, prefix: str, traces: int = 30) -> None:
    """Traces in conversations, a judge with verdicts and pending work, feedback, an alert rule."""
    made = ingest(experiment, *[make_trace(f"{prefix}{n}", minutes=n, session_id=f"{prefix}s{n % 4}") for n in range(traces)])
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint, active=True, user=user)
    for trace in made[:10]:
        record_verdict(judge, trace, True)
    add_feedback(user=user, name="thumbs", value=True, trace=made[0])
    Evaluation.objects.create(judge=judge, judge_version=judge.version, trace=made[-1])
    AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, window_minutes=60)


@pytest.fixture
def two_experiments(experiment, endpoint, user):
    other = create_experiment("other-agent")
    fill(experiment, endpoint, user, "a")
    fill(other, endpoint, user, "b")
    return experiment, other


def test_deleting_an_experiment_removes_everything_on_it_and_leaves_another_untouched(two_experiments):
    doomed, other = two_experiments
    before = rows_of(doomed.pk)
    assert all(before.values()), before  # every kind of row is there to be deleted
    other_before = rows_of(other.pk)

    deletion.request_deletion(doomed, "checkout-agent")
    assert deletion.delete_marked(doomed.pk, batch=7)  # several batches

    assert rows_of(doomed.pk) == dict.fromkeys(before, 0)
    assert rows_of(other.pk) == other_before


def test_a_wrong_name_deletes_nothing(two_experiments, api):
    doomed, _ = two_experiments
    before = rows_of(doomed.pk)
    for wrong in ("checkout", "Checkout-Agent", " checkout-agent", ""):
        with pytest.raises(deletion.NameMismatch):
            deletion.request_deletion(doomed, wrong)
    url = f"/api/v1/experiments/{doomed.pk}"
    answer = api.delete(url, {"confirm_name": "checkout"}, format="json")
    assert answer.status_code == 400 and "exactly" in answer.json()["detail"]
    assert api.delete(url).status_code == 400  # no name at all
    assert rows_of(doomed.pk) == before
    assert Experiment.objects.filter(pk=doomed.pk).exists()  # still listed


def test_viewers_cannot_delete_an_experiment(experiment, viewer_api, viewer_client):
    ingest(experiment, make_trace("t1"))
    assert viewer_api.delete(f"/api/v1/experiments/{experiment.pk}", {"confirm_name": "checkout-agent"}, format="json").status_code == 403
    url = reverse("experiment-delete", args=[experiment.pk])
    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url, {"confirm_name": "checkout-agent"}).status_code == 403
    assert Experiment.objects.filter(pk=experiment.pk).exists() and Trace.objects.count() == 1


def test_a_marked_experiment_is_hidden_and_refuses_traces_with_410(experiment, endpoint, api, client, token):
    [trace] = ingest(experiment, make_trace("t1"))
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint, active=True)
    pending = Evaluation.objects.create(judge=judge, judge_version=judge.version, trace=trace)
    rule = AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, window_minutes=60)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks, "enqueue_experiment_deletion", lambda experiment_id: None)  # no worker: it stays marked
        answer = api.delete(f"/api/v1/experiments/{experiment.pk}", {"confirm_name": "checkout-agent"}, format="json")
    assert answer.status_code == 202 and answer.json()["traces_left"] == 1

    assert api.get("/api/v1/experiments").json()["experiments"] == []
    gone = api.get(f"/api/v1/experiments/{experiment.pk}")
    assert gone.status_code == 410 and gone.json()["traces_left"] == 1
    refused = api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": [make_trace("t2")]}, format="json")
    assert refused.status_code == 410 and "being deleted" in refused.json()["detail"]
    for header in (str(experiment.pk), "checkout-agent"):
        otlp = client.post(
            "/v1/traces", otlp_body(*trace_ids(1)), content_type="application/x-protobuf",
            headers={"Authorization": f"Token {token}", "x-evalapp-experiment-id": header},
        )
        assert otlp.status_code == 410
    assert list(Trace.objects.values_list("trace_id", flat=True)) == ["t1"]
    with pytest.raises(ExperimentNameTaken, match="being deleted"):
        create_experiment("checkout-agent")
    assert worker.claim([pending.pk])[1] == []  # no judging spent on it
    check_rules()
    rule.refresh_from_db()
    assert rule.last_checked_at is None  # nor alerts about it
    # Asking again answers the progress; nothing changes.
    assert api.delete(f"/api/v1/experiments/{experiment.pk}", {"confirm_name": "checkout-agent"}, format="json").status_code == 202


def test_the_api_deletion_runs_as_a_background_task(experiment, api, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)  # the task runs when the mark commits
    ingest(experiment, *[make_trace(f"t{n}") for n in range(5)])
    answer = api.delete(f"/api/v1/experiments/{experiment.pk}?confirm_name=checkout-agent")
    assert answer.status_code == 202
    assert rows_of(experiment.pk) == dict.fromkeys(rows_of(experiment.pk), 0)
    assert api.get(f"/api/v1/experiments/{experiment.pk}").status_code == 404


def test_a_deletion_that_dies_half_way_is_finished_by_the_sweep(two_experiments, monkeypatch):
    doomed, other = two_experiments
    other_before = rows_of(other.pk)
    real_batch = retention.delete_batch
    calls = []

    def dies_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(retention, "delete_batch", dies_on_the_third)
    deletion.request_deletion(doomed, "checkout-agent")
    with pytest.raises(RuntimeError):
        deletion.delete_marked(doomed.pk, batch=5)
    half = rows_of(doomed.pk)
    assert 0 < half["traces"] < 30 and half["experiment"] == 1  # half done; what is left is whole
    assert not Experiment.objects.filter(pk=doomed.pk).exists()  # still hidden

    tasks.sweep()
    assert rows_of(doomed.pk) == dict.fromkeys(half, 0)
    assert rows_of(other.pk) == other_before


def test_the_page_asks_for_the_name_and_the_list_shows_progress(experiment, editor_client):
    ingest(experiment, *[make_trace(f"t{n}") for n in range(3)])
    url = reverse("experiment-delete", args=[experiment.pk])
    page = editor_client.get(url).content.decode()
    assert "Type the experiment" in page and "<strong>3</strong> traces" in page
    wrong = editor_client.post(url, {"confirm_name": "checkout"})
    assert wrong.status_code == 200 and "exactly to confirm; nothing was deleted" in wrong.content.decode()
    assert Experiment.objects.filter(pk=experiment.pk).exists()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks, "enqueue_experiment_deletion", lambda experiment_id: None)
        done = editor_client.post(url, {"confirm_name": "checkout-agent"})
    assert done.status_code == 302
    listing = editor_client.get(reverse("experiment-list")).content.decode()
    assert "Deleting <strong>checkout-agent</strong>" in listing and "0 of 3 traces deleted" in listing
    assert 'hx-trigger="every 3s"' in listing  # polls while it runs
    assert f'href="/experiments/{experiment.pk}/"' not in listing

    deletion.delete_marked(experiment.pk)
    rows = editor_client.get(reverse("experiments-deleting"), headers={"HX-Request": "true"}).content.decode()
    assert "Deleting" not in rows and "hx-trigger" not in rows  # done: the polling stops
    assert editor_client.get(url).status_code == 404
