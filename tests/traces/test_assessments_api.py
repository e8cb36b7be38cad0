"""Assessments from code: list them by trace, session, judge or source; give a person's feedback."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from judges.actions import create_judge
from tests.conftest import make_trace
from traces.models import Assessment, AssessmentSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(api, experiment):
    traces = [make_trace("t1", session_id="s1"), make_trace("t2", minutes=1, session_id="s1"), make_trace("t3", minutes=2)]
    assert api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": traces}, format="json").status_code == 200
    return experiment


def url(experiment) -> str:
    return f"/api/v1/experiments/{experiment.pk}/assessments"


def test_feedback_on_a_trace_and_a_session_is_stored_as_human_and_listed(api, logged):
    thumbs = api.post(url(logged), {"trace_id": "t1", "name": "thumbs", "value": True, "rationale": "  spot on "}, format="json")
    assert thumbs.status_code == 201, thumbs.content
    body = thumbs.json()
    assert (body["trace_id"], body["session_id"], body["value"], body["rationale"]) == ("t1", None, True, "spot on")
    assert (body["source_type"], body["source_id"]) == ("HUMAN", "pat")
    on_session = api.post(url(logged), {"session_id": "s1", "name": "resolved", "value": "partly"}, format="json")
    assert on_session.status_code == 201 and on_session.json()["session_id"] == "s1"

    assert [a["name"] for a in api.get(url(logged), {"trace_id": "t1"}).json()["assessments"]] == ["thumbs"]
    assert [a["name"] for a in api.get(url(logged), {"session_id": "s1"}).json()["assessments"]] == ["resolved"]
    assert len(api.get(url(logged)).json()["assessments"]) == 2
    assert api.get(url(logged), {"judge": "resolved"}).json()["assessments"][0]["value"] == "partly"
    assert api.get(url(logged), {"source_type": "llm_judge"}).json()["assessments"] == []


def test_new_feedback_from_the_same_person_supersedes_the_earlier_one(api, logged):
    first = api.post(url(logged), {"trace_id": "t1", "name": "thumbs", "value": True}, format="json").json()
    second = api.post(url(logged), {"trace_id": "t1", "name": "thumbs", "value": False, "rationale": "missed the refund"}, format="json").json()
    assert second["overrides"] == first["id"] and second["valid"] is True
    assert Assessment.objects.get(pk=first["id"]).valid is False
    current = api.get(url(logged), {"trace_id": "t1", "valid": "true"}).json()["assessments"]
    assert [a["value"] for a in current] == [False]


def test_assessment_listing_pages_with_a_cursor(api, logged):
    for index in range(5):
        Assessment.objects.create(trace=logged.traces.get(trace_id="t3"), name=f"judge{index}", value=index, source_type=AssessmentSource.LLM_JUDGE)
    first = api.get(url(logged), {"page_size": 2}).json()
    second = api.get(url(logged), {"page_size": 2, "cursor": first["next_cursor"]}).json()
    third = api.get(url(logged), {"page_size": 2, "cursor": second["next_cursor"]}).json()
    names = [a["name"] for page in (first, second, third) for a in page["assessments"]]
    assert names == ["judge4", "judge3", "judge2", "judge1", "judge0"] and third["next_cursor"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trace_id": "t1", "value": True}, "name"),
        ({"trace_id": "t1", "name": "thumbs"}, "value"),
        ({"trace_id": "t1", "name": "thumbs", "value": {"a": 1}}, "value"),
        ({"trace_id": "t1", "name": "thumbs", "value": ""}, "value"),
        ({"trace_id": "t1", "name": "thumbs", "value": True, "rationale": 5}, "rationale"),
        ({"trace_id": "nope", "name": "thumbs", "value": True}, "trace_id"),
        ({"session_id": "nope", "name": "thumbs", "value": True}, "session_id"),
        ({"name": "thumbs", "value": True}, "trace_id"),
        ({"trace_id": "t1", "session_id": "s1", "name": "thumbs", "value": True}, "trace_id"),
        ({"trace_id": "t1", "name": "thumbs", "value": True, "score": 3}, "score"),
        ({"trace_id": "t1", "name": "x" * 201, "value": True}, "name"),
    ],
)
def test_bad_feedback_gets_a_400_naming_the_field_and_writes_nothing(api, logged, body, field):
    response = api.post(url(logged), body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert not Assessment.objects.exists()


def test_feedback_under_a_judges_name_must_be_a_value_that_judge_gives(api, logged, endpoint):
    create_judge(logged, name="helpful", endpoint=endpoint, instructions="Is {{ outputs }} helpful?", output_type="boolean")
    response = api.post(url(logged), {"trace_id": "t1", "name": "helpful", "value": "yes"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "value", "message": "helpful answers yes or no."}]
    assert api.post(url(logged), {"trace_id": "t1", "name": "helpful", "value": True}, format="json").status_code == 201


def test_bad_listing_parameters_are_400_and_a_token_is_required(api, logged):
    assert api.get(url(logged), {"source_type": "robot"}).json()["errors"][0]["field"] == "source_type"
    assert api.get(url(logged), {"cursor": "garbage"}).status_code == 400
    assert api.get("/api/v1/experiments/999/assessments").status_code == 404
    assert APIClient().get(url(logged)).status_code == 401
    assert APIClient().post(url(logged), {"trace_id": "t1", "name": "thumbs", "value": True}, format="json").status_code == 401


def test_viewers_may_give_feedback(viewer_api, api, logged):
    response = viewer_api.post(url(logged), {"trace_id": "t2", "name": "thumbs", "value": False}, format="json")
    assert response.status_code == 201 and response.json()["source_id"] == "vic"


def test_sessions_search_by_user_time_and_id(api, experiment):
    traces = [make_trace("a", session_id="chat-1", user_id="u1"), make_trace("b", minutes=30, session_id="chat-2", user_id="u2")]
    api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": traces}, format="json")
    sessions = f"/api/v1/experiments/{experiment.pk}/sessions"
    assert [s["session_id"] for s in api.get(sessions, {"user_id": "u2"}).json()["sessions"]] == ["chat-2"]
    assert [s["session_id"] for s in api.get(sessions, {"search": "t-1"}).json()["sessions"]] == ["chat-1"]
    assert [s["session_id"] for s in api.get(sessions, {"since": "2026-11-20T12:10:00Z"}).json()["sessions"]] == ["chat-2"]
    assert api.get(sessions, {"since": "yesterday-ish"}).json()["errors"][0]["field"] == "since"
