"""The shadow version API: start, read, promote, discard, diff; editors change, viewers only read."""

from __future__ import annotations

import pytest

from judges import selection, tasks
from judges.actions import create_judge
from judges.models import JudgeVersion, VersionRole
from tests.conftest import ingest, make_trace

pytestmark = pytest.mark.django_db(transaction=True)

TONE = "Is the tone of {{ outputs }} polite, given {{ inputs }}?"


@pytest.fixture
def judge(experiment, endpoint):
    return create_judge(experiment, name="relevance", instructions="Is {{ outputs }} relevant to {{ inputs }}?", endpoint=endpoint, active=True)


def url(judge, tail: str = "") -> str:
    return f"/api/v1/experiments/{judge.experiment_id}/judges/{judge.name}/shadow{tail}"


def test_an_editor_starts_reads_diffs_and_promotes_a_shadow(api, judge, standin):
    started = api.post(url(judge), {"instructions": TONE}, format="json")
    assert started.status_code == 201, started.content
    assert started.json()["version"] == 2 and started.json()["status"] == "shadow"
    traces = ingest(judge.experiment, make_trace("a1"), make_trace("a2", minutes=1))
    tasks.judge_evaluations(selection.select_traces(judge.experiment_id, [trace.pk for trace in traces]))
    read = api.get(url(judge)).json()
    assert read["judged"] == 2 and read["cost_usd"] > 0
    diff = api.get(url(judge, "/diff")).json()
    assert diff["compared"] == 2 and diff["shadow_version"] == 2 and diff["agreement_with_people"]["live"]["status"] == "insufficient"
    promoted = api.post(url(judge, "/promote"))
    assert promoted.status_code == 200 and promoted.json() == {"promoted": 2, "version": 3}
    assert api.get(url(judge)).status_code == 404
    assert api.get(url(judge, "/diff")).json()["shadow_status"] == "promoted"  # the latest ended shadow, as history


def test_discard_and_its_errors(api, judge):
    assert api.post(url(judge, "/discard")).status_code == 404
    assert api.post(url(judge), {"instructions": TONE}, format="json").status_code == 201
    again = api.post(url(judge), {"instructions": TONE + " Strictly."}, format="json")
    assert again.status_code == 400 and "already this judge's shadow" in again.json()["detail"]
    discarded = api.post(url(judge, "/discard"))
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "instructions: is required"),
        ({"instructions": TONE, "sample_rate": 0.2}, "sample_rate: is not a setting here"),
        ({"instructions": TONE, "endpoint": "nope"}, "endpoint: no model endpoint 'nope'"),
        ({"instructions": TONE, "output_type": "categorical"}, "categories"),
    ],
)
def test_a_bad_start_is_a_400_naming_the_field_and_writes_nothing(api, judge, body, fragment):
    response = api.post(url(judge), body, format="json")
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert not JudgeVersion.all_objects.filter(role=VersionRole.SHADOW).exists()


def test_viewers_read_but_cannot_start_promote_or_discard(api, viewer_api, judge):
    assert viewer_api.post(url(judge), {"instructions": TONE}, format="json").status_code == 403
    assert api.post(url(judge), {"instructions": TONE}, format="json").status_code == 201
    assert viewer_api.get(url(judge)).status_code == 200
    assert viewer_api.get(url(judge, "/diff")).status_code == 200
    assert viewer_api.post(url(judge, "/promote")).status_code == 403
    assert viewer_api.post(url(judge, "/discard")).status_code == 403
    assert JudgeVersion.all_objects.get(role=VersionRole.SHADOW).version == 2  # still running


def test_diff_parameters_are_checked(api, judge):
    assert api.get(url(judge, "/diff"), {"page": "x"}).status_code == 400
    assert api.get(url(judge, "/diff"), {"version": "7"}).status_code == 404
