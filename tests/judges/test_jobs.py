"""Judging chosen traces or sessions by hand, as a job to poll (API `.../run` and `/api/v1/jobs/<id>`)."""

from __future__ import annotations

import pytest

from judges.actions import create_judge, update_judge
from judges.models import Evaluation, EvaluationStatus
from tests.conftest import ingest, judge_pending, make_trace
from traces.models import Assessment

pytestmark = pytest.mark.django_db(transaction=True)


def _work_off_queue() -> None:
    judge_pending(list(Evaluation.objects.filter(status=EvaluationStatus.PENDING).values_list("pk", flat=True)))


def test_a_job_judges_the_given_traces_even_with_the_judge_off_and_reports_progress(api, experiment, endpoint):
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", output_type="boolean", endpoint=endpoint, active=False)
    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1), make_trace("t3", minutes=2))

    started = api.post(f"/api/v1/experiments/{experiment.pk}/judges/helpful/run", {"trace_ids": ["t1", "t3", "t1"]}, format="json")
    assert started.status_code == 202, started.content
    job = started.json()
    assert (job["status"], job["total"], job["done"], job["judge"]) == ("queued", 2, 0, "helpful")
    assert started["Location"] == f"/api/v1/jobs/{job['id']}"

    _work_off_queue()
    polled = api.get(f"/api/v1/jobs/{job['id']}").json()
    assert (polled["status"], polled["done"], polled["errors"]) == ("done", 2, 0)
    assert [r["trace_id"] for r in polled["results"]] == ["t1", "t3"]
    assert all(isinstance(r["value"], bool) and r["rationale"] and r["assessment_id"] for r in polled["results"])
    assert Assessment.objects.filter(name="helpful").count() == 2
    assert not Assessment.objects.filter(trace__trace_id="t2").exists()


def test_a_session_job_judges_the_whole_conversation(api, experiment, endpoint):
    create_judge(experiment, name="frustration", scope="session", builtin_key="UserFrustration", endpoint=endpoint)
    ingest(experiment, make_trace("a1", session_id="s1"), make_trace("a2", minutes=1, session_id="s1"))
    started = api.post(f"/api/v1/experiments/{experiment.pk}/judges/frustration/run", {"session_ids": ["s1"]}, format="json")
    assert started.status_code == 202, started.content
    _work_off_queue()
    result = api.get(f"/api/v1/jobs/{started.json()['id']}").json()["results"][0]
    assert result["session_id"] == "s1" and result["status"] == "done" and result["value"] is not None


def test_switching_a_judge_off_does_not_cancel_a_job_asked_for_by_hand(api, experiment, endpoint):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint, active=True)
    ingest(experiment, make_trace("t1"))
    Evaluation.objects.all().delete()  # what ingest selected automatically is not the point here
    job = api.post(f"/api/v1/experiments/{experiment.pk}/judges/helpful/run", {"trace_ids": ["t1"]}, format="json").json()
    update_judge(judge, active=False)
    _work_off_queue()
    assert api.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "done"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "trace_ids", "send either trace_ids"),
        ({"trace_ids": []}, "trace_ids", "non-empty list"),
        ({"trace_ids": "t1"}, "trace_ids", "non-empty list"),
        ({"trace_ids": [1]}, "trace_ids", "non-empty list"),
        ({"trace_ids": ["t1", "nope"]}, "trace_ids", "not found in experiment"),
        ({"session_ids": ["s1"]}, "session_ids", "judges single traces; send trace_ids"),
        ({"trace_ids": ["t1"], "session_ids": ["s1"]}, "trace_ids", "send either"),
        ({"trace_ids": ["t1"], "colour": "red"}, "colour", "is not a setting here"),
    ],
)
def test_bad_job_requests_get_a_400_naming_the_field_and_queue_nothing(api, experiment, endpoint, body, field, message):
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    ingest(experiment, make_trace("t1"))
    response = api.post(f"/api/v1/experiments/{experiment.pk}/judges/helpful/run", body, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == field and message in error["message"]
    assert not Evaluation.objects.filter(manual=True).exists()


def test_jobs_need_an_editor_and_unknown_jobs_are_404(api, viewer_api, experiment, endpoint):
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    ingest(experiment, make_trace("t1"))
    refused = viewer_api.post(f"/api/v1/experiments/{experiment.pk}/judges/helpful/run", {"trace_ids": ["t1"]}, format="json")
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert api.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/api/v1/jobs/not-a-uuid").status_code == 404
    assert api.post(f"/api/v1/experiments/{experiment.pk}/judges/missing/run", {"trace_ids": ["t1"]}, format="json").status_code == 404


def test_a_paused_judge_refuses_a_job_with_the_reason(api, experiment, endpoint):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    ingest(experiment, make_trace("t1"))
    from judges.results import pause_judge

    pause_judge(judge, "Authentication failed at the endpoint")
    response = api.post(f"/api/v1/experiments/{experiment.pk}/judges/helpful/run", {"trace_ids": ["t1"]}, format="json")
    assert response.status_code == 400 and "paused: Authentication failed" in response.json()["detail"]
